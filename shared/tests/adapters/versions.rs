//! Versions of a job's results against a real Postgres: a reprocess never takes away the
//! current version, a stale lease cannot write into a version, old versions are pruned,
//! and jobs made before versions existed become version 1 with nothing lost.

use std::borrow::Cow;
use std::time::Duration;

use minutes_shared::failure::{FailureCode, FailureReason};
use minutes_shared::jobs::{Claim, JobRepo, JobState, Lease, Restore, VersionOutcome};
use minutes_shared::options::JobOptions;
use minutes_shared::stage::Stage;
use serde_json::json;
use uuid::Uuid;

use crate::jobs::{new_job, request, TestDb};

const LEASE: Duration = Duration::from_secs(30);

async fn claim(repo: &JobRepo, id: Uuid) -> Lease {
    match repo.claim(id, "w", LEASE, 3).await.expect("claim") {
        Claim::Leased(lease, _) => lease,
        other => panic!("claimable, got {other:?}"),
    }
}

/// Runs the claimed job to its end, storing `names` under keys made of the version.
async fn run(repo: &JobRepo, id: Uuid, names: &[&str], failure: Option<&FailureReason>) -> Lease {
    let lease = claim(repo, id).await;
    for name in names {
        let key = format!("jobs/{id}/v{}/a{}/{name}", lease.version, lease.attempt);
        repo.store_artifact(lease, name, &key).await.expect("artifact");
    }
    repo.finish(lease, failure).await.expect("finish");
    lease
}

#[tokio::test]
async fn a_failed_reprocess_keeps_the_current_version_and_the_next_one_takes_its_number() {
    let db = TestDb::new().await;
    let (job, _) = db.repo.create(&new_job(None)).await.expect("create");
    let all = ["transcript.json", "transcript.txt", "minutes.json", "minutes.pdf"];
    let first = run(&db.repo, job.id, &all, None).await;
    assert_eq!(first.version, 1);
    let done = db.repo.get(job.id).await.expect("get").expect("exists");
    assert_eq!(
        (done.state, done.current_version, done.building_version),
        (JobState::Done, Some(1), None)
    );
    let original = done.artifacts.clone();

    let from_summarize = request(Stage::Summarize, JobOptions::default(), None);
    db.repo.reprocess(job.id, &from_summarize).await.expect("reprocess");
    let during = db.repo.get(job.id).await.expect("get").expect("exists");
    assert_eq!(during.artifacts, original, "the current version is served while it runs");
    let broken = FailureReason::new(FailureCode::SummaryFailed, "openai: it could not be reached");
    let second = run(&db.repo, job.id, &["minutes.json"], Some(&broken)).await;
    assert_eq!(second.version, 2);
    let after = db.repo.get(job.id).await.expect("get").expect("exists");
    assert_eq!(after.state, JobState::Done, "a failed reprocess is not a failed meeting");
    assert_eq!((after.current_version, after.failure_reason.clone()), (Some(1), None));
    assert_eq!(after.reprocess_failure, Some(broken.clone()));
    assert_eq!(after.artifacts, original, "nothing of version 1 was taken away");
    let versions = db.repo.versions(job.id).await.expect("versions");
    let outcomes: Vec<_> = versions.iter().map(|v| (v.number, v.outcome)).collect();
    assert_eq!(outcomes, [(2, VersionOutcome::Failed), (1, VersionOutcome::Ready)]);
    assert_eq!(versions[0].failure_reason, Some(broken));

    // The next reprocess builds version 2 again and succeeds.
    db.repo.reprocess(job.id, &from_summarize).await.expect("reprocess");
    let third = run(&db.repo, job.id, &["minutes.json", "minutes.pdf"], None).await;
    assert_eq!(third.version, 2, "a failed attempt is not a version people keep");
    let now = db.repo.get(job.id).await.expect("get").expect("exists");
    assert_eq!((now.current_version, now.reprocess_failure.clone()), (Some(2), None));
    assert_eq!(now.artifacts["transcript.json"], original["transcript.json"], "shared");
    assert_ne!(now.artifacts["minutes.pdf"], original["minutes.pdf"], "made anew");

    // Restoring version 1, then refusals.
    assert_eq!(db.repo.restore(job.id, 1).await.expect("restore"), Restore::Restored);
    let restored = db.repo.get(job.id).await.expect("get").expect("exists");
    assert_eq!((restored.current_version, restored.artifacts.clone()), (Some(1), original.clone()));
    assert_eq!(db.repo.restore(job.id, 9).await.expect("restore"), Restore::NotFound);
    assert_eq!(db.repo.restore(Uuid::new_v4(), 1).await.expect("restore"), Restore::NotFound);

    // A cancelled reprocess leaves the job done on its current version.
    db.repo.reprocess(job.id, &from_summarize).await.expect("reprocess");
    assert_eq!(
        db.repo.restore(job.id, 2).await.expect("restore"),
        Restore::Busy(JobState::Queued),
        "no restore while a run is queued"
    );
    assert!(db.repo.cancel(job.id).await.expect("cancel"));
    let cancelled = db.repo.get(job.id).await.expect("get").expect("exists");
    assert_eq!((cancelled.state, cancelled.current_version), (JobState::Done, Some(1)));
    assert_eq!(cancelled.reprocess_failure.map(|r| r.code), Some(FailureCode::Cancelled));
    let latest = &db.repo.versions(job.id).await.expect("versions")[0];
    assert_eq!((latest.number, latest.outcome), (3, VersionOutcome::Cancelled));
    assert_eq!(
        db.repo.restore(job.id, 3).await.expect("restore"),
        Restore::NotReady(VersionOutcome::Cancelled)
    );
    db.drop_database().await;
}

#[tokio::test]
async fn a_failed_first_run_is_a_failed_job_and_its_retry_resumes_its_version() {
    let db = TestDb::new().await;
    let (job, _) = db.repo.create(&new_job(None)).await.expect("create");
    let bad = FailureReason::new(FailureCode::NotMedia, "not a recording");
    run(&db.repo, job.id, &["transcript.json"], Some(&bad)).await;
    let failed = db.repo.get(job.id).await.expect("get").expect("exists");
    assert_eq!((failed.state, failed.failure_reason.clone()), (JobState::Failed, Some(bad)));
    assert_eq!((failed.current_version, failed.building_version), (None, Some(1)));
    assert!(db.repo.retry(job.id).await.expect("retry"));
    let lease = claim(&db.repo, job.id).await;
    assert_eq!(lease.version, 1);
    let working = db.repo.working_artifacts(lease).await.expect("artifacts");
    assert!(working.get("transcript.json").is_some(), "the retry resumes what was stored");
    assert_eq!(
        db.repo.version(job.id, 1).await.expect("q").expect("v1").outcome,
        VersionOutcome::Building
    );
    db.drop_database().await;
}

#[tokio::test]
async fn a_stale_lease_cannot_write_into_the_version_another_worker_holds() {
    let db = TestDb::new().await;
    let (job, _) = db.repo.create(&new_job(None)).await.expect("create");
    let Claim::Leased(stale, _) =
        db.repo.claim(job.id, "a", Duration::ZERO, 3).await.expect("claim")
    else {
        panic!("claimable")
    };
    let fresh = claim(&db.repo, job.id).await;
    assert_eq!(stale.version, fresh.version);
    assert_ne!(stale.attempt, fresh.attempt, "each attempt has object keys of its own");
    let late = db.repo.store_artifact(stale, "minutes.pdf", "jobs/x/v1/a1/minutes.pdf").await;
    assert!(late.is_err(), "the stale worker's artifact is refused");
    assert!(db.repo.working_artifacts(stale).await.is_err());
    db.repo
        .store_artifact(fresh, "minutes.pdf", "jobs/x/v1/a2/minutes.pdf")
        .await
        .expect("artifact");
    db.repo.finish(fresh, None).await.expect("finish");
    assert!(db.repo.finish(stale, None).await.is_err());
    let done = db.repo.get(job.id).await.expect("get").expect("exists");
    assert_eq!(done.artifacts, json!({"minutes.pdf": "jobs/x/v1/a2/minutes.pdf"}));
    db.drop_database().await;
}

#[tokio::test]
async fn pruning_keeps_the_newest_versions_and_every_object_they_share() {
    let db = TestDb::new().await;
    let (job, _) = db.repo.create(&new_job(None)).await.expect("create");
    run(&db.repo, job.id, &["transcript.json", "minutes.pdf"], None).await;
    for _ in 0..3 {
        db.repo
            .reprocess(job.id, &request(Stage::Render, JobOptions::default(), None))
            .await
            .expect("reprocess");
        run(&db.repo, job.id, &["minutes.pdf"], None).await;
    }
    assert_eq!(db.repo.restore(job.id, 2).await.expect("restore"), Restore::Restored);
    let pruned = db.repo.prune_versions(job.id, 1).await.expect("prune");
    assert_eq!(
        pruned.numbers.iter().copied().collect::<std::collections::BTreeSet<_>>(),
        [1, 3].into()
    );
    let left: Vec<i32> =
        db.repo.versions(job.id).await.expect("versions").iter().map(|v| v.number).collect();
    assert_eq!(left, [4, 2], "the newest and the current one stay");
    let shared = format!("jobs/{}/v1/a1/transcript.json", job.id);
    assert!(pruned.referenced.contains(&shared), "version 1's transcript is still used");
    assert!(!pruned.referenced.contains(&format!("jobs/{}/v1/a1/minutes.pdf", job.id)));
    db.drop_database().await;
}

/// The migration that added versions, and a database as the code before it left it.
#[tokio::test]
async fn jobs_made_before_versions_become_version_one_with_nothing_lost() {
    let db = TestDb::unmigrated().await;
    let pool = db.repo.pool();
    let mut before = sqlx::migrate!("../migrations");
    const VERSIONS: i64 = 20261203000002;
    before.migrations =
        Cow::Owned(before.migrations.iter().filter(|m| m.version < VERSIONS).cloned().collect());
    before.run(pool).await.expect("the earlier migrations apply");
    let (done, failed, queued) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let artifacts = json!({"transcript.json": format!("jobs/{done}/transcript.json"),
                           "minutes.pdf": format!("jobs/{done}/minutes.pdf")});
    for (id, state, artifacts, reason) in [
        (done, "done", artifacts.clone(), None),
        (
            failed,
            "failed",
            json!({"transcript.json": format!("jobs/{failed}/transcript.json")}),
            Some("render_failed: x"),
        ),
        (queued, "queued", json!({}), None),
    ] {
        sqlx::query(
            "INSERT INTO jobs (id, state, source_key, original_filename, content_type, size_bytes, artifacts, failure_reason)
             VALUES ($1, $2, $3, 'a.wav', 'audio/wav', 10, $4, $5)",
        )
        .bind(id)
        .bind(state)
        .bind(format!("jobs/{id}/upload"))
        .bind(&artifacts)
        .bind(reason)
        .execute(pool)
        .await
        .expect("a job as the earlier code made it");
    }
    sqlx::query("INSERT INTO email_intents (job_id, kind, message_id, recipient, state) VALUES ($1, 'minutes', 'minutes-x@minutes', 'a@b', 'sent')")
        .bind(done)
        .execute(pool)
        .await
        .expect("an email intent");
    let repo = db.repo.clone();
    repo.migrate().await.expect("the versions migration applies");
    let job = repo.get(done).await.expect("get").expect("kept");
    assert_eq!(
        (job.state, job.current_version, job.building_version),
        (JobState::Done, Some(1), None)
    );
    assert_eq!(job.artifacts, artifacts, "downloads still find every file");
    let version = repo.version(done, 1).await.expect("q").expect("version 1");
    assert_eq!((version.outcome, version.artifacts.clone()), (VersionOutcome::Ready, artifacts));
    let sent = repo
        .email_intent(done, 1, minutes_shared::jobs::EmailKind::Minutes, "other", "a@b")
        .await
        .expect("intent");
    assert!(sent.is_sent() && sent.message_id == "minutes-x@minutes", "the sent email stays sent");

    let job = repo.get(failed).await.expect("get").expect("kept");
    assert_eq!(
        (job.state, job.current_version, job.building_version),
        (JobState::Failed, None, Some(1))
    );
    assert!(repo.retry(failed).await.expect("retry"));
    let lease = claim(&repo, failed).await;
    let working = repo.working_artifacts(lease).await.expect("artifacts");
    assert_eq!(working["transcript.json"], format!("jobs/{failed}/transcript.json"));

    let lease = claim(&repo, queued).await;
    assert_eq!(lease.version, 1, "a queued job runs as version 1");
    db.drop_database().await;
}
