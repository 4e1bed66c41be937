//! Users, sessions, tokens, the sign-in throttle and the per-owner claim limit against a
//! real Postgres.

use std::time::Duration;

use minutes_shared::accounts::{hash_password, AccountError, Role, UserRepo};
use minutes_shared::credentials::CredentialRepo;
use minutes_shared::jobs::{Claim, Reservation, Scope, UploadAllowance};
use minutes_shared::throttle::{account_key, LoginThrottle};
use uuid::Uuid;

use super::jobs::{new_job, TestDb};

const LEASE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn users_are_unique_by_email_in_any_case_and_stored_with_argon2id() {
    let db = TestDb::new().await;
    let users = UserRepo::new(db.repo.pool().clone());
    let hash = hash_password("a long passphrase").expect("hash");
    let ann = users.add("Ann@Example.com", "Ann", &hash, Role::Admin).await.expect("add");
    assert_eq!(ann.role, Role::Admin);
    let again = users.add("ann@example.COM", "Other", &hash, Role::Member).await;
    assert!(matches!(again, Err(AccountError::EmailTaken(_))), "{again:?}");
    let (found, stored) = users.by_email("ANN@example.com").await.expect("read").expect("found");
    assert_eq!(found.id, ann.id);
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert!(!stored.contains("a long passphrase"));
    db.drop_database().await;
}

#[tokio::test]
async fn disabling_a_user_ends_their_sessions_and_stops_their_tokens() {
    let db = TestDb::new().await;
    let users = UserRepo::new(db.repo.pool().clone());
    let credentials = CredentialRepo::new(db.repo.pool().clone());
    let hash = hash_password("a long passphrase").expect("hash");
    let bob = users.add("bob@example.com", "", &hash, Role::Member).await.expect("add");
    assert_eq!(bob.display_name, "bob");
    let session =
        credentials.start_session(bob.id, Duration::from_secs(60)).await.expect("session");
    let brief = credentials.start_session(bob.id, Duration::ZERO).await.expect("session");
    assert!(credentials.session_user(&brief.secret).await.expect("read").is_none(), "expired");
    assert_eq!(credentials.forget_expired_sessions().await.expect("sweep"), 1);
    let (token, secret) = credentials.create_token(bob.id, "laptop").await.expect("token");
    assert!(secret.starts_with("mnt_") && token.prefix.len() < secret.len());
    assert_eq!(
        credentials.session_user(&session.secret).await.expect("read").map(|u| u.0.id),
        Some(bob.id)
    );
    assert_eq!(credentials.token_user(&secret).await.expect("read").map(|u| u.id), Some(bob.id));
    users.set_disabled("BOB@example.com", true).await.expect("disable");
    assert!(credentials.session_user(&session.secret).await.expect("read").is_none());
    assert!(credentials.token_user(&secret).await.expect("read").is_none());
    users.set_disabled("bob@example.com", false).await.expect("enable");
    assert!(credentials.token_user(&secret).await.expect("read").is_some(), "tokens survive");
    assert!(
        credentials.session_user(&session.secret).await.expect("read").is_none(),
        "sessions do not"
    );
    // Revoking: only the owner can, and only once.
    assert!(!credentials.revoke_token(Uuid::new_v4(), token.id).await.expect("revoke"));
    assert!(credentials.revoke_token(bob.id, token.id).await.expect("revoke"));
    assert!(!credentials.revoke_token(bob.id, token.id).await.expect("revoke"));
    assert!(credentials.token_user(&secret).await.expect("read").is_none());
    db.drop_database().await;
}

#[tokio::test]
async fn the_throttle_blocks_after_the_limit_until_the_window_passes() {
    let db = TestDb::new().await;
    let throttle = LoginThrottle::new(db.repo.pool().clone());
    let key = account_key("Nobody@Example.com");
    let window = Duration::from_secs(2);
    for _ in 0..3 {
        assert_eq!(throttle.blocked_for(&key, 3, window).await.expect("read"), None);
        throttle.failed(std::slice::from_ref(&key)).await.expect("record");
    }
    let wait = throttle.blocked_for(&key, 3, window).await.expect("read");
    assert!(matches!(wait, Some(1..=2)), "{wait:?}");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(throttle.blocked_for(&key, 3, window).await.expect("read"), None);
    // The sweep forgets what is older than asked, and nothing newer.
    throttle.failed(std::slice::from_ref(&key)).await.expect("record");
    assert_eq!(throttle.forget_older_than(Duration::from_secs(2)).await.expect("sweep"), 3);
    assert_eq!(throttle.forget_older_than(Duration::from_secs(2)).await.expect("sweep"), 0);
    db.drop_database().await;
}

#[tokio::test]
async fn an_owner_at_the_running_limit_waits_and_others_go_ahead() {
    let db = TestDb::new().await;
    let users = UserRepo::new(db.repo.pool().clone());
    let hash = hash_password("a long passphrase").expect("hash");
    let ann = users.add("ann@example.com", "Ann", &hash, Role::Member).await.expect("add");
    let bob = users.add("bob@example.com", "Bob", &hash, Role::Member).await.expect("add");
    let mut jobs = Vec::new();
    for owner in [ann.id, ann.id, bob.id] {
        let mut job = new_job(None);
        job.id = Uuid::new_v4();
        job.owner_id = Some(owner);
        jobs.push(db.repo.create(&job).await.expect("create").0);
    }
    let first = db.repo.claim_limited(jobs[0].id, "w1", LEASE, 3, Some(1)).await.expect("claim");
    assert!(matches!(first, Claim::Leased(..)));
    let second = db.repo.claim_limited(jobs[1].id, "w2", LEASE, 3, Some(1)).await.expect("claim");
    assert_eq!(second, Claim::OwnerBusy);
    db.repo.defer(jobs[1].id, Duration::from_secs(60)).await.expect("defer");
    let waiting = db.repo.get(jobs[1].id).await.expect("read").expect("job");
    assert!(waiting.enqueued_at.is_none() && waiting.run_after > chrono::Utc::now());
    let other = db.repo.claim_limited(jobs[2].id, "w2", LEASE, 3, Some(1)).await.expect("claim");
    assert!(matches!(other, Claim::Leased(..)), "another owner's job is not held up");
    // Scopes: each owner sees their own jobs only; all sees all.
    assert!(db.repo.get_in(Scope::Owner(bob.id), jobs[0].id).await.expect("read").is_none());
    assert!(db.repo.get_in(Scope::Owner(ann.id), jobs[0].id).await.expect("read").is_some());
    let filter = minutes_shared::jobs::JobFilter::default();
    assert_eq!(db.repo.list(Scope::Owner(ann.id), &filter, 10, None).await.expect("list").len(), 2);
    assert_eq!(db.repo.list(Scope::All, &filter, 10, None).await.expect("list").len(), 3);
    // Ann has two jobs of 1234 bytes this minute: a rate of two is used up, a third is not.
    let allowance = |per_window, quota_bytes, declared_bytes| UploadAllowance {
        per_window,
        window: Duration::from_secs(60),
        quota_bytes,
        declared_bytes,
        framing_bytes: 0,
    };
    let reserve = |per_window, quota, declared| {
        let repo = db.repo.clone();
        async move {
            repo.reserve_upload(
                Uuid::new_v4(),
                Some(ann.id),
                allowance(per_window, quota, declared),
            )
            .await
            .expect("reserve")
        }
    };
    match reserve(2, 0, None).await {
        Reservation::RateLimited { retry_after } => {
            assert!(retry_after > Duration::from_secs(50), "{retry_after:?}")
        }
        other => panic!("expected the rate to be used up, got {other:?}"),
    }
    // A quota of 3000 leaves 532 bytes: an upload declaring 600 is refused, one declaring
    // none reserves all that is left, after which nothing is left for a third.
    assert_eq!(reserve(0, 3000, Some(600)).await, Reservation::OverQuota { left_bytes: 532 });
    assert_eq!(reserve(3, 3000, None).await, Reservation::Granted { quota_bytes: Some(532) });
    assert_eq!(reserve(0, 3000, Some(1)).await, Reservation::OverQuota { left_bytes: 0 });
    assert_eq!(reserve(4, 0, None).await, Reservation::Granted { quota_bytes: None });
    // Uploads in progress count toward the rate: two jobs and two reservations make four.
    assert!(matches!(reserve(4, 0, None).await, Reservation::RateLimited { .. }));
    db.drop_database().await;
}
