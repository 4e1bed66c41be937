//! The job repository against a real Postgres: each test makes its own database from
//! `MINUTES_TEST_DATABASE_URL` (default: the local server as `postgres`), applies the
//! migrations, and drops the database at the end.

use std::time::Duration;

use minutes_shared::failure::{FailureCode, FailureReason};
use minutes_shared::jobs::ReprocessRequest;
use minutes_shared::jobs::{
    Claim, EmailKind, JobFilter, JobRepo, JobState, NewJob, PushPolicy, RepoError, Reprocess,
    Scope, UploadAllowance, EVENTS_CHANNEL,
};
use minutes_shared::options::{JobOptions, SummarizerKind};
use minutes_shared::stage::Stage;
use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

pub(crate) struct TestDb {
    admin: String,
    name: String,
    url: String,
    pub(crate) repo: JobRepo,
}

impl TestDb {
    pub(crate) async fn new() -> TestDb {
        let db = TestDb::unmigrated().await;
        db.repo.migrate().await.expect("migrations apply");
        db
    }

    /// A new database with no schema (for testing the migrations themselves).
    pub(crate) async fn unmigrated() -> TestDb {
        let admin = std::env::var("MINUTES_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("minutes_test_{}", Uuid::new_v4().simple());
        let mut connection = PgConnection::connect(&admin)
            .await
            .expect("Postgres (the README's test command starts it)");
        connection.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("create db");
        let url = format!("{}/{name}", admin.rsplit_once('/').expect("a database URL").0);
        let pool = PgPoolOptions::new().max_connections(4).connect(&url).await.expect("connect");
        TestDb { admin, name, url, repo: JobRepo::new(pool) }
    }

    pub(crate) async fn drop_database(self) {
        self.repo.pool().close().await;
        let mut connection = PgConnection::connect(&self.admin).await.expect("connect");
        connection
            .execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str())
            .await
            .expect("drop db");
    }
}

pub(crate) fn new_job(key: Option<&str>) -> NewJob {
    let id = Uuid::new_v4();
    NewJob {
        id,
        source_key: format!("uploads/{id}"),
        original_filename: "weekly sync.m4a".into(),
        content_type: "audio/mp4".into(),
        size_bytes: 1234,
        title: Some("Weekly sync".into()),
        language: None,
        notify_email: Some("team@example.com".into()),
        options: JobOptions {
            summarizer: Some(SummarizerKind::Extractive),
            ..JobOptions::default()
        },
        idempotency_key: key.map(String::from),
        request_id: None,
        owner_id: None,
    }
}

const LEASE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn one_idempotency_key_gives_one_job() {
    let db = TestDb::new().await;
    let (first, created) = db.repo.create(&new_job(Some("key-1"))).await.expect("create");
    assert!(created);
    let (second, created_again) = db.repo.create(&new_job(Some("key-1"))).await.expect("create");
    assert!(!created_again);
    assert_eq!(second.id, first.id, "the same key returns the first job");
    let (other, _) = db.repo.create(&new_job(None)).await.expect("create");
    assert_ne!(other.id, first.id);
    assert_eq!(first.state, JobState::Queued);
    assert_eq!(first.stage, minutes_shared::stage::JobStage::Upload);
    db.drop_database().await;
}

#[tokio::test]
async fn a_stale_worker_changes_nothing_once_another_holds_the_lease() {
    let db = TestDb::new().await;
    let (job, _) = db.repo.create(&new_job(None)).await.expect("create");
    let short = Duration::from_millis(400);
    let Claim::Leased(stale, _) = db.repo.claim(job.id, "worker-a", short, 3).await.expect("claim")
    else {
        panic!("a queued job is claimable")
    };
    let busy = db.repo.claim(job.id, "worker-b", LEASE, 3).await.expect("claim");
    assert_eq!(busy, Claim::NotClaimable, "a live lease keeps other workers out");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let Claim::Leased(fresh, taken) =
        db.repo.claim(job.id, "worker-b", LEASE, 3).await.expect("claim")
    else {
        panic!("a lapsed lease can be taken over")
    };
    assert_eq!((taken.attempts, taken.crash_count), (2, 1));
    assert_eq!(taken.worker_name.as_deref(), Some("worker-b"));

    let stale_write = db.repo.progress(stale, Stage::Transcribe, 40.0, "stale").await;
    assert!(matches!(stale_write, Err(RepoError::LeaseLost(id)) if id == job.id));
    db.repo.progress(fresh, Stage::Transcribe, 50.0, "half way").await.expect("fresh lease writes");
    db.repo.finish(fresh, None).await.expect("finish");
    let late = FailureReason::new(FailureCode::InternalError, "late");
    assert!(matches!(db.repo.finish(stale, Some(&late)).await, Err(RepoError::LeaseLost(_))));
    let done = db.repo.get(job.id).await.expect("get").expect("exists");
    assert_eq!(done.state, JobState::Done, "a stale worker never moves a job back");
    assert_eq!(done.percent, 100.0);
    assert_eq!(done.message, "the minutes are ready");
    assert_eq!(
        db.repo.claim(job.id, "worker-c", LEASE, 3).await.expect("claim"),
        Claim::NotClaimable
    );
    db.drop_database().await;
}

#[tokio::test]
async fn a_job_that_keeps_losing_its_worker_fails_after_the_crash_budget() {
    let db = TestDb::new().await;
    let (job, _) = db.repo.create(&new_job(None)).await.expect("create");
    let short = Duration::from_millis(100);
    let mut claims = Vec::new();
    for _ in 0..4 {
        claims.push(db.repo.claim(job.id, "worker", short, 3).await.expect("claim"));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let leased = claims.iter().filter(|c| matches!(c, Claim::Leased(..))).count();
    assert_eq!(leased, 3, "three workers took it and vanished: {claims:?}");
    assert_eq!(claims[3], Claim::CrashBudgetSpent);
    let failed = db.repo.get(job.id).await.expect("get").expect("exists");
    assert_eq!(failed.state, JobState::Failed);
    assert!(
        failed.failure_reason.as_ref().map(|r| r.code) == Some(FailureCode::WorkerLost),
        "{failed:?}"
    );
    assert_eq!(failed.crash_count, 3);

    assert!(db.repo.retry(job.id).await.expect("retry"), "a failed job can be retried");
    let again = db.repo.get(job.id).await.expect("get").expect("exists");
    assert_eq!((again.state, again.crash_count, again.failure_reason), (JobState::Queued, 0, None));
    db.drop_database().await;
}

#[tokio::test]
async fn progress_is_logged_and_notified() {
    let db = TestDb::new().await;
    let mut listener = PgListener::connect(&db.url).await.expect("listen");
    listener.listen(EVENTS_CHANNEL).await.expect("listen");
    let (job, _) = db.repo.create(&new_job(None)).await.expect("create");
    let Claim::Leased(lease, _) = db.repo.claim(job.id, "w", LEASE, 3).await.expect("claim") else {
        panic!("claimable")
    };
    db.repo.progress(lease, Stage::Decode, 5.0, "decoding").await.expect("progress");
    db.repo.progress(lease, Stage::Transcribe, 250.0, "too much").await.expect("progress");
    let note = tokio::time::timeout(Duration::from_secs(5), listener.recv())
        .await
        .expect("a notification within 5 s")
        .expect("notification");
    assert_eq!(note.payload(), job.id.to_string());
    let events = db.repo.events(job.id, 0).await.expect("events");
    let seen: Vec<(&str, f32)> = events.iter().map(|e| (e.stage.as_str(), e.percent)).collect();
    assert_eq!(seen, [("decode", 5.0), ("transcribe", 100.0)], "percent is clamped");
    let later = db.repo.events(job.id, events[0].id).await.expect("events");
    assert_eq!(later.len(), 1, "events resume after the last one seen");
    db.repo
        .store_artifact(lease, "transcript.json", "jobs/x/transcript.json")
        .await
        .expect("artifact");
    let working = db.repo.working_artifacts(lease).await.expect("artifacts");
    assert_eq!(working["transcript.json"], "jobs/x/transcript.json");
    let stored = db.repo.get(job.id).await.expect("get").expect("exists");
    assert_eq!(stored.artifacts, serde_json::json!({}), "nothing is current before the run ends");
    db.drop_database().await;
}

#[tokio::test]
async fn the_reconciler_finds_jobs_that_never_reached_the_queue() {
    let db = TestDb::new().await;
    let (pushed, _) = db.repo.create(&new_job(None)).await.expect("create");
    let (lost, _) = db.repo.create(&new_job(None)).await.expect("create");
    db.repo.mark_enqueued(pushed.id).await.expect("mark");
    let waiting = db.repo.due_for_push(pushing(Duration::ZERO)).await.expect("query");
    assert_eq!(waiting, [lost.id]);
    assert!(
        db.repo.due_for_push(pushing(Duration::from_secs(60))).await.expect("query").is_empty(),
        "grace"
    );

    // A worker that stops hands its job back: queued again and found by the reconciler.
    let Claim::Leased(lease, _) = db.repo.claim(pushed.id, "w", LEASE, 3).await.expect("claim")
    else {
        panic!("claimable")
    };
    db.repo.release(lease).await.expect("release");
    let mut waiting = db.repo.due_for_push(pushing(Duration::ZERO)).await.expect("query");
    waiting.sort();
    let mut expected = vec![pushed.id, lost.id];
    expected.sort();
    assert_eq!(waiting, expected);
    db.drop_database().await;
}

/// The reconciler's policy with `grace`, and pushed jobs never counted as stranded.
fn pushing(grace: Duration) -> PushPolicy {
    PushPolicy { grace, stranded_after: Duration::from_secs(3600) }
}

#[tokio::test]
async fn stranded_job_a_queued_job_whose_ticket_was_lost_is_pushed_again() {
    let db = TestDb::new().await;
    let (job, _) = db.repo.create(&new_job(None)).await.expect("create");
    db.repo.mark_enqueued(job.id).await.expect("mark");
    assert!(db.repo.due_for_push(pushing(Duration::ZERO)).await.expect("query").is_empty());
    // An hour later nobody has claimed it: its ticket is gone, whatever enqueued_at says.
    sqlx::query("UPDATE jobs SET enqueued_at = now() - interval '1 hour' WHERE id = $1")
        .bind(job.id)
        .execute(db.repo.pool())
        .await
        .expect("age the push");
    let stranded = PushPolicy { grace: Duration::ZERO, stranded_after: Duration::from_secs(120) };
    assert_eq!(db.repo.due_for_push(stranded).await.expect("query"), [job.id]);
    db.repo.mark_enqueued(job.id).await.expect("mark");
    assert!(
        db.repo.due_for_push(stranded).await.expect("query").is_empty(),
        "pushed again once per bound, not on every pass"
    );
    // A job in its retry backoff is not pushed early, stranded or not.
    sqlx::query(
        "UPDATE jobs SET enqueued_at = now() - interval '1 hour', \
         run_after = now() + interval '1 hour' WHERE id = $1",
    )
    .bind(job.id)
    .execute(db.repo.pool())
    .await
    .expect("back off");
    assert!(db.repo.due_for_push(stranded).await.expect("query").is_empty());
    db.drop_database().await;
}

#[tokio::test]
async fn a_lapsed_lease_is_pushed_once_and_a_transient_error_backs_off_then_fails() {
    let db = TestDb::new().await;
    let (job, _) = db.repo.create(&new_job(None)).await.expect("create");
    db.repo.mark_enqueued(job.id).await.expect("mark");
    // A worker takes it and vanishes: its lease lapses at once.
    let Claim::Leased(..) = db.repo.claim(job.id, "gone", Duration::ZERO, 3).await.expect("claim")
    else {
        panic!("claimable")
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(db.repo.due_for_push(pushing(Duration::ZERO)).await.expect("query"), [job.id]);
    db.repo.mark_enqueued(job.id).await.expect("mark");
    assert!(
        db.repo.due_for_push(pushing(Duration::ZERO)).await.expect("query").is_empty(),
        "pushed once per lapse, not on every scan"
    );

    // The next worker takes it over (a crash counted) and meets a transient error twice.
    let Claim::Leased(lease, taken) = db.repo.claim(job.id, "next", LEASE, 3).await.expect("claim")
    else {
        panic!("a lapsed lease can be taken over")
    };
    assert_eq!(taken.crash_count, 1);
    let state = db
        .repo
        .retry_later(lease, "storage: timeout", Duration::from_secs(60), 2)
        .await
        .expect("retry");
    assert_eq!(state, JobState::Queued);
    assert!(
        db.repo.due_for_push(pushing(Duration::ZERO)).await.expect("query").is_empty(),
        "not pushed before the backoff ends"
    );
    sqlx::query("UPDATE jobs SET run_after = now() - interval '1 second'")
        .execute(db.repo.pool())
        .await
        .expect("end the backoff");
    assert_eq!(db.repo.due_for_push(pushing(Duration::ZERO)).await.expect("query"), [job.id]);
    let Claim::Leased(lease, _) = db.repo.claim(job.id, "next", LEASE, 3).await.expect("claim")
    else {
        panic!("claimable after the backoff")
    };
    assert!(matches!(
        db.repo.retry_later(lease, "x", Duration::ZERO, 2).await,
        Ok(JobState::Failed)
    ));
    let failed = db.repo.get(job.id).await.expect("get").expect("exists");
    assert_eq!(failed.state, JobState::Failed);
    // The transient error that used up the budget is the detail.
    assert_eq!(failed.failure_reason, Some(FailureReason::new(FailureCode::RetriesExhausted, "x")));
    assert_eq!(failed.error_retries, 2);
    assert!(db.repo.retry(job.id).await.expect("retry"), "a person can queue it again");
    assert_eq!(db.repo.get(job.id).await.expect("get").expect("exists").error_retries, 0);
    db.drop_database().await;
}

#[tokio::test]
async fn an_upload_without_a_job_is_found_and_one_with_a_job_is_not() {
    let db = TestDb::new().await;
    let orphan = Uuid::new_v4();
    let unlimited = UploadAllowance {
        per_window: 0,
        window: Duration::from_secs(60),
        quota_bytes: 0,
        declared_bytes: None,
        framing_bytes: 0,
    };
    db.repo.reserve_upload(orphan, None, unlimited).await.expect("pending");
    let job = new_job(Some("k"));
    db.repo.reserve_upload(job.id, None, unlimited).await.expect("pending");
    db.repo.create(&job).await.expect("create");
    assert_eq!(db.repo.stale_uploads(Duration::ZERO).await.expect("query"), [orphan]);
    assert!(db.repo.stale_uploads(Duration::from_secs(3600)).await.expect("query").is_empty());
    db.repo.upload_abandoned(orphan).await.expect("forget");
    assert!(db.repo.stale_uploads(Duration::ZERO).await.expect("query").is_empty());
    assert_eq!(db.repo.by_idempotency_key("k").await.expect("query").map(|j| j.id), Some(job.id));
    db.drop_database().await;
}

#[tokio::test]
async fn an_email_intent_keeps_its_first_message_id() {
    let db = TestDb::new().await;
    let (job, _) = db.repo.create(&new_job(None)).await.expect("create");
    let intent = |message_id: &'static str, version: i32| {
        let repo = db.repo.clone();
        async move {
            repo.email_intent(job.id, version, EmailKind::Minutes, message_id, "x@y")
                .await
                .expect("intent")
        }
    };
    let first = intent("<a@m>", 1).await;
    assert_eq!(first.message_id, "<a@m>");
    assert!(!first.is_sent());
    let again = intent("<b@m>", 1).await;
    assert_eq!(again.message_id, "<a@m>", "a resend reuses the Message-ID");
    db.repo.email_outcome(job.id, 1, EmailKind::Minutes, 2, None).await.expect("outcome");
    let sent = intent("<c@m>", 1).await;
    assert!(sent.is_sent());
    assert_eq!(sent.attempts, 2);
    let second_version = intent("<d@m>", 2).await;
    assert_eq!(second_version.message_id, "<d@m>", "each version has its own email");
    assert!(!second_version.is_sent());
    db.repo
        .email_outcome(job.id, 1, EmailKind::Failure, 1, Some("550 no such user"))
        .await
        .expect("an outcome without an intent changes nothing");
    db.drop_database().await;
}

#[tokio::test]
async fn jobs_list_newest_first_by_page_and_state_and_can_be_cancelled_or_deleted() {
    let db = TestDb::new().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(db.repo.create(&new_job(None)).await.expect("create").0.id);
    }
    assert!(db.repo.cancel(ids[0]).await.expect("cancel"));
    assert!(!db.repo.cancel(ids[0]).await.expect("cancel"), "cancelling twice changes nothing");
    let first_page = db.repo.list(Scope::All, &JobFilter::default(), 2, None).await.expect("list");
    assert_eq!(first_page.len(), 2);
    let last = first_page.last().expect("a job");
    let second_page = db
        .repo
        .list(Scope::All, &JobFilter::default(), 10, Some((last.created_at, last.id)))
        .await
        .expect("list");
    assert_eq!(second_page.len(), 3);
    let all: Vec<_> = first_page.iter().chain(&second_page).map(|j| j.id).collect();
    let mut sorted = all.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 5, "pages do not overlap");
    let cancelled = db
        .repo
        .list(
            Scope::All,
            &JobFilter { state: Some(JobState::Cancelled), ..JobFilter::default() },
            10,
            None,
        )
        .await
        .expect("list");
    assert_eq!(cancelled.iter().map(|j| j.id).collect::<Vec<_>>(), [ids[0]]);
    let counts = db.repo.count_by_state().await.expect("counts");
    assert!(counts.contains(&(JobState::Queued, 4)) && counts.contains(&(JobState::Cancelled, 1)));

    assert!(db.repo.delete(ids[1]).await.expect("delete"));
    assert_eq!(db.repo.get(ids[1]).await.expect("get"), None);
    assert!(!db.repo.delete(ids[1]).await.expect("delete"), "a second delete finds nothing");
    db.drop_database().await;
}

#[tokio::test]
async fn reprocessing_builds_a_version_without_the_later_artifacts_merges_options_and_is_logged() {
    let db = TestDb::new().await;
    let mut new = new_job(None);
    new.original_filename = "team_sync 100%.m4a".into();
    let (job, _) = db.repo.create(&new).await.expect("create");
    let (other, _) = db.repo.create(&new_job(None)).await.expect("create");
    let filter = |glob: &str| JobFilter { filename: Some(glob.into()), ..JobFilter::default() };
    let found = db.repo.list(Scope::All, &filter("team_sync*"), 10, None).await.expect("list");
    assert_eq!(found.iter().map(|j| j.id).collect::<Vec<_>>(), [job.id]);
    assert!(db
        .repo
        .list(Scope::All, &filter("team?sync 100%"), 10, None)
        .await
        .expect("list")
        .is_empty());
    assert_eq!(
        db.repo.list(Scope::All, &filter("*100%.m4a"), 10, None).await.expect("list").len(),
        1
    );
    let later = JobFilter {
        since: Some(chrono::Utc::now() + chrono::Duration::hours(1)),
        ..JobFilter::default()
    };
    assert!(db.repo.list(Scope::All, &later, 10, None).await.expect("list").is_empty());

    assert_eq!(
        db.repo
            .reprocess(job.id, &request(Stage::Summarize, JobOptions::default(), None))
            .await
            .expect("call"),
        Reprocess::NotFinished(JobState::Queued),
        "a queued job is not reprocessed"
    );
    let Claim::Leased(lease, _) = db.repo.claim(job.id, "w", LEASE, 3).await.expect("claim") else {
        panic!("claimable")
    };
    for name in ["transcript.json", "transcript.txt", "minutes.json", "minutes.pdf"] {
        db.repo.store_artifact(lease, name, &format!("jobs/x/{name}")).await.expect("artifact");
    }
    db.repo.finish(lease, None).await.expect("finish");
    let patch = JobOptions { summarizer: Some(SummarizerKind::Openai), ..JobOptions::default() };
    let options = request(Stage::Summarize, patch, Some("Renamed"));
    let outcome = db.repo.reprocess(job.id, &options).await.expect("call");
    assert_eq!(outcome, Reprocess::Queued);
    let queued = db.repo.get(job.id).await.expect("get").expect("exists");
    assert_eq!(queued.state, JobState::Queued);
    assert_eq!((queued.current_version, queued.building_version), (Some(1), Some(2)));
    assert_eq!(queued.artifacts.as_object().expect("object").len(), 4, "version 1 stays whole");
    let building = db.repo.version(job.id, 2).await.expect("query").expect("version 2");
    let artifacts = building.artifacts.as_object().expect("object");
    assert_eq!(artifacts["transcript.json"], "jobs/x/transcript.json", "shared, not copied");
    assert!(artifacts.contains_key("transcript.txt"));
    assert!(!artifacts.contains_key("minutes.json") && !artifacts.contains_key("minutes.pdf"));
    assert_eq!(queued.options.summarizer, Some(SummarizerKind::Openai));
    assert_eq!(queued.options.notify, Some(false));
    assert_eq!(queued.title.as_deref(), Some("Renamed"));
    let events = db.repo.events(job.id, 0).await.expect("events");
    let logged = events.iter().find(|e| e.stage == "reprocess").expect("logged");
    assert!(
        logged.message.contains("\"summarizer\":\"openai\"")
            && logged.message.contains("summarize")
    );
    assert_eq!(
        db.repo.reprocess(Uuid::new_v4(), &options).await.expect("call"),
        Reprocess::NotFound
    );
    assert_eq!(db.repo.get(other.id).await.expect("get").expect("exists").state, JobState::Queued);
    db.drop_database().await;
}

pub(crate) fn request(from: Stage, patch: JobOptions, title: Option<&str>) -> ReprocessRequest {
    ReprocessRequest {
        from,
        patch,
        title: title.map(String::from),
        language: None,
        notify: false,
        requested_by: None,
    }
}
