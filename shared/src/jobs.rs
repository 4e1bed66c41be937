//! The job repository: every read and write of the `jobs`, `job_events` and
//! `email_intents` tables (schema in `migrations/`).
//!
//! Postgres is the source of truth for job state. A worker takes a job with [`JobRepo::claim`],
//! which gives it a [`Lease`]; every later write names that lease (`WHERE id = $1 AND
//! lease_token = $2`), so a worker whose lease lapsed (paused, partitioned, presumed dead)
//! changes nothing once another worker has the job. Progress writes append to `job_events`
//! and `NOTIFY` the `job_events` channel with the job id, which feeds the API's event streams.
//! Queries are checked against the schema at compile time (offline data in `shared/.sqlx`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::postgres::{PgPool, PgTypeInfo, PgValueRef, Postgres};
use uuid::Uuid;

use crate::failure::{FailureCode, FailureReason};
use crate::options::JobOptions;
use crate::stage::Stage;

/// The channel progress notifications go to; the payload is the job id.
pub const EVENTS_CHANNEL: &str = "job_events";

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for a worker.
    Queued,
    /// Leased by a worker.
    Running,
    /// Finished: the minutes exist.
    Done,
    /// Ended without minutes; `failure_reason` says why.
    Failed,
    /// Stopped by a person.
    Cancelled,
}

impl JobState {
    /// Every state, in life order.
    pub const ALL: [JobState; 5] = [
        JobState::Queued,
        JobState::Running,
        JobState::Done,
        JobState::Failed,
        JobState::Cancelled,
    ];

    /// The name stored in the database and shown in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Whether nothing more will happen to the job by itself.
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Done | JobState::Failed | JobState::Cancelled)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state name that is not one of [`JobState::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown job state {0:?} (expected queued, running, done, failed or cancelled)")]
pub struct UnknownState(pub String);

impl FromStr for JobState {
    type Err = UnknownState;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| UnknownState(text.to_string()))
    }
}

// Stored as text (with a CHECK constraint), so the Rust enum decodes from and encodes to text.
impl sqlx::Type<Postgres> for JobState {
    fn type_info() -> PgTypeInfo {
        <&str as sqlx::Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <&str as sqlx::Type<Postgres>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, Postgres> for JobState {
    fn decode(value: PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let text = <&str as sqlx::Decode<Postgres>>::decode(value)?;
        Ok(text.parse()?)
    }
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    /// Server-generated id.
    pub id: Uuid,
    /// Where it is in its life.
    pub state: JobState,
    /// The stage running or last run.
    pub stage: String,
    /// Progress of the whole job, 0 to 100.
    pub percent: f32,
    /// What it is doing, for people.
    pub message: String,
    /// Why it failed, when it did.
    pub failure_reason: Option<FailureReason>,
    /// Times a worker took it.
    pub attempts: i32,
    /// Times a worker holding it vanished.
    pub crash_count: i32,
    /// Transient errors met so far (the retry budget counts these).
    pub error_retries: i32,
    /// The worker holding or last holding it.
    pub worker_name: Option<String>,
    /// When the current lease lapses.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// Object key of the upload.
    pub source_key: String,
    /// The file name as the person knows it (sanitised).
    pub original_filename: String,
    /// The upload's media type, as detected.
    pub content_type: String,
    /// The upload's size in bytes.
    pub size_bytes: i64,
    /// The recording's duration in seconds, once decoded.
    pub media_duration: Option<f64>,
    /// Spoken language, given or detected.
    pub language: Option<String>,
    /// Meeting title.
    pub title: Option<String>,
    /// Where the notification goes.
    pub notify_email: Option<String>,
    /// Options chosen at upload or reprocessing.
    pub options: JobOptions,
    /// Artifact name -> object key.
    pub artifacts: Value,
    /// When it was pushed to the queue (none: the reconciler will push it).
    pub enqueued_at: Option<DateTime<Utc>>,
    /// When a queued job may next be pushed (later than now while a retry backs off).
    pub run_after: DateTime<Utc>,
    /// Upload time.
    pub created_at: DateTime<Utc>,
    /// First time a worker took it.
    pub started_at: Option<DateTime<Utc>>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// When it reached a final state.
    pub finished_at: Option<DateTime<Utc>>,
    /// The user who uploaded it (none for jobs made before accounts existed).
    pub owner_id: Option<Uuid>,
    /// The id of the HTTP request that made it, for following it through the logs.
    pub request_id: Option<String>,
}

/// Whose jobs a request may see: an admin sees all, a member only their own. Every read
/// that serves a person goes through one of these, so another user's job is simply absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every job (admins).
    All,
    /// The jobs owned by this user.
    Owner(Uuid),
}

impl Scope {
    /// The owner to filter by, if any.
    fn owner(self) -> Option<Uuid> {
        match self {
            Scope::All => None,
            Scope::Owner(id) => Some(id),
        }
    }

    /// Whether `job` is visible in this scope.
    pub fn sees(self, job: &Job) -> bool {
        match self {
            Scope::All => true,
            Scope::Owner(id) => job.owner_id == Some(id),
        }
    }
}

/// Which jobs a listing returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobFilter {
    /// Only this state.
    pub state: Option<JobState>,
    /// Created at or after.
    pub since: Option<DateTime<Utc>>,
    /// Created before.
    pub until: Option<DateTime<Utc>>,
    /// Uploaded file name matching this glob (`*` any run, `?` one character).
    pub filename: Option<String>,
}

/// A glob (`*`, `?`) as a SQL `LIKE` pattern with `\` escaping the rest.
fn glob_to_like(glob: &str) -> String {
    let mut like = String::with_capacity(glob.len() + 4);
    for c in glob.chars() {
        match c {
            '*' => like.push('%'),
            '?' => like.push('_'),
            '%' | '_' | '\\' => {
                like.push('\\');
                like.push(c);
            }
            other => like.push(other),
        }
    }
    like
}

/// The outcome of asking to reprocess a job.
#[derive(Debug, Clone, PartialEq)]
pub enum Reprocess {
    /// Queued to run again.
    Queued,
    /// Still queued or running: only finished jobs are reprocessed.
    NotFinished(JobState),
    /// No such job.
    NotFound,
}

/// What a reprocess asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct ReprocessRequest {
    /// The first stage to run again.
    pub from: Stage,
    /// Options that replace the job's (checked by the caller).
    pub patch: JobOptions,
    /// A new title.
    pub title: Option<String>,
    /// A new spoken language.
    pub language: Option<String>,
    /// Whether to send the minutes email again.
    pub notify: bool,
}

/// What an upload creates.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// Server-generated id.
    pub id: Uuid,
    /// Object key the upload was stored at.
    pub source_key: String,
    /// Sanitised file name.
    pub original_filename: String,
    /// Detected media type.
    pub content_type: String,
    /// Size in bytes.
    pub size_bytes: i64,
    /// Meeting title, when given.
    pub title: Option<String>,
    /// Spoken language, when given.
    pub language: Option<String>,
    /// Notification address, when given.
    pub notify_email: Option<String>,
    /// Processing options, checked.
    pub options: JobOptions,
    /// The request's Idempotency-Key, when it had one (scoped to the owner by the caller).
    pub idempotency_key: Option<String>,
    /// The uploader.
    pub owner_id: Option<Uuid>,
    /// The id of the upload's HTTP request (see [`Job::request_id`]).
    pub request_id: Option<String>,
}

/// The right to write a job's state, held by one worker until it lapses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The job.
    pub job_id: Uuid,
    /// Fences every write: a newer lease has a different token.
    pub token: Uuid,
}

/// When the reconciler pushes a queued job again (see [`JobRepo::due_for_push`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushPolicy {
    /// A job never pushed is left this long after its time comes (its pusher may be about
    /// to push it).
    pub grace: Duration,
    /// A pushed job no worker claimed within this is pushed again.
    pub stranded_after: Duration,
}

/// The outcome of trying to take a job.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// Ours until the lease lapses.
    Leased(Lease, Box<Job>),
    /// Finished, cancelled, deleted, or leased by a live worker: nothing to do.
    NotClaimable,
    /// Workers holding it vanished too often; it is now failed with `worker_lost`.
    CrashBudgetSpent,
    /// Its owner has as many jobs running as they may: it waits (see [`JobRepo::defer`]).
    OwnerBusy,
}

/// Which email a job sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailKind {
    /// The minutes, when the job is done.
    Minutes,
    /// The failure notice, when it failed.
    Failure,
}

impl EmailKind {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            EmailKind::Minutes => "minutes",
            EmailKind::Failure => "failure",
        }
    }
}

/// A job's intent to send one email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailIntent {
    /// Fixed when the intent was made, so a resend is recognisable.
    pub message_id: String,
    /// Where it goes.
    pub recipient: String,
    /// `pending`, `sent` or `failed`.
    pub state: String,
    /// Delivery tries so far.
    pub attempts: i32,
    /// The last failure, when there was one.
    pub last_error: Option<String>,
}

impl EmailIntent {
    /// Whether the server accepted it already.
    pub fn is_sent(&self) -> bool {
        self.state == "sent"
    }
}

/// One line of a job's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobEvent {
    /// Increasing id: resume a stream after the last one seen.
    pub id: i64,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Stage at the time.
    pub stage: String,
    /// Percent at the time.
    pub percent: f32,
    /// What happened.
    pub message: String,
}

/// Why a repository call failed.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The database refused or could not be reached.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the migrations failed.
    #[error("database migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The lease named no longer holds the job: another worker has it, or it was cancelled.
    #[error("the lease on job {0} was lost")]
    LeaseLost(Uuid),
}

/// Reads and writes jobs.
#[derive(Debug, Clone)]
pub struct JobRepo {
    pool: PgPool,
}

fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

impl JobRepo {
    /// A repository over `pool`.
    pub fn new(pool: PgPool) -> Self {
        JobRepo { pool }
    }

    /// The pool, for health checks and `LISTEN`.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies the migrations that are not applied yet.
    pub async fn migrate(&self) -> Result<(), RepoError> {
        sqlx::migrate!("../migrations").run(&self.pool).await?;
        Ok(())
    }

    /// Creates the job, or returns the one created earlier with the same idempotency key.
    /// The flag says whether this call created it.
    pub async fn create(&self, new: &NewJob) -> Result<(Job, bool), RepoError> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query_scalar!(
            r#"INSERT INTO jobs (id, source_key, original_filename, content_type, size_bytes,
                                 title, language, notify_email, options, idempotency_key,
                                 owner_id, request_id)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
               ON CONFLICT (idempotency_key) DO NOTHING
               RETURNING id"#,
            new.id,
            new.source_key,
            new.original_filename,
            new.content_type,
            new.size_bytes,
            new.title,
            new.language,
            new.notify_email,
            serde_json::to_value(&new.options).unwrap_or_default(),
            new.idempotency_key,
            new.owner_id,
            new.request_id,
        )
        .fetch_optional(&mut *tx)
        .await?;
        if inserted.is_some() {
            // The upload now has its job: it is no longer the reconciler's to delete.
            sqlx::query!("DELETE FROM pending_uploads WHERE job_id = $1", new.id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        let id = match (inserted, &new.idempotency_key) {
            (Some(id), _) => id,
            (None, Some(key)) => {
                sqlx::query_scalar!("SELECT id FROM jobs WHERE idempotency_key = $1", key)
                    .fetch_one(&self.pool)
                    .await?
            }
            (None, None) => return Err(RepoError::Database(sqlx::Error::RowNotFound)),
        };
        let job = self.get(id).await?.ok_or(RepoError::Database(sqlx::Error::RowNotFound))?;
        Ok((job, inserted.is_some()))
    }

    /// Notes that `owner`'s upload for job `id` is being streamed (before its row exists).
    pub async fn upload_started(&self, id: Uuid, owner: Option<Uuid>) -> Result<(), RepoError> {
        sqlx::query!(
            "INSERT INTO pending_uploads (job_id, owner_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            id,
            owner
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Uploads `owner` made (jobs) or is making (pending) within `window`, and the seconds
    /// until the oldest of them leaves it.
    pub async fn uploads_within(
        &self,
        owner: Uuid,
        window: Duration,
    ) -> Result<(i64, f64), RepoError> {
        let row = sqlx::query!(
            r#"SELECT count(*) AS "count!",
                      coalesce(extract(epoch FROM (min(at) + make_interval(secs => $2) - now())),
                               0)::float8 AS "wait!"
               FROM (SELECT created_at AS at FROM jobs
                     WHERE owner_id = $1 AND created_at > now() - make_interval(secs => $2)
                     UNION ALL
                     SELECT started_at FROM pending_uploads p
                     WHERE owner_id = $1 AND started_at > now() - make_interval(secs => $2)
                       AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = p.job_id)) recent"#,
            owner,
            seconds(window)
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.count, row.wait))
    }

    /// Bytes of uploads `owner`'s jobs keep in the store (what the storage quota counts).
    pub async fn stored_bytes(&self, owner: Uuid) -> Result<i64, RepoError> {
        Ok(sqlx::query_scalar!(
            r#"SELECT coalesce(sum(size_bytes), 0)::bigint AS "bytes!" FROM jobs
               WHERE owner_id = $1"#,
            owner
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Forgets a pending upload whose objects were removed (a rejected or failed upload).
    pub async fn upload_abandoned(&self, id: Uuid) -> Result<(), RepoError> {
        sqlx::query!("DELETE FROM pending_uploads WHERE job_id = $1", id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Pending uploads started more than `age` ago with no job row: their API died
    /// mid-upload. The caller deletes their objects, then calls [`Self::upload_abandoned`].
    pub async fn stale_uploads(&self, age: Duration) -> Result<Vec<Uuid>, RepoError> {
        Ok(sqlx::query_scalar!(
            r#"SELECT p.job_id FROM pending_uploads p
               WHERE p.started_at < now() - make_interval(secs => $1)
                 AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = p.job_id)
               LIMIT 1000"#,
            seconds(age)
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// The job with `idempotency_key`, if one was created with it.
    pub async fn by_idempotency_key(&self, key: &str) -> Result<Option<Job>, RepoError> {
        let id = sqlx::query_scalar!("SELECT id FROM jobs WHERE idempotency_key = $1", key)
            .fetch_optional(&self.pool)
            .await?;
        match id {
            Some(id) => self.get(id).await,
            None => Ok(None),
        }
    }

    /// The job, if it exists and `scope` sees it.
    pub async fn get_in(&self, scope: Scope, id: Uuid) -> Result<Option<Job>, RepoError> {
        Ok(self.get(id).await?.filter(|job| scope.sees(job)))
    }

    /// The job, if it exists (workers and internal bookkeeping; requests use
    /// [`Self::get_in`]).
    pub async fn get(&self, id: Uuid) -> Result<Option<Job>, RepoError> {
        Ok(sqlx::query_as!(
            Job,
            r#"SELECT id, state AS "state: JobState", stage, percent, message,
                      failure_reason AS "failure_reason: FailureReason",
                      attempts, crash_count, error_retries, worker_name, lease_expires_at,
                      source_key, original_filename, content_type, size_bytes, media_duration,
                      language, title, notify_email, options AS "options: JobOptions", artifacts,
                      enqueued_at, run_after,
                      created_at, started_at, updated_at, finished_at, owner_id, request_id
               FROM jobs WHERE id = $1"#,
            id
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Jobs matching `filter`, newest first, after the `before` cursor (the `created_at`
    /// and id of the last job of the previous page).
    pub async fn list(
        &self,
        scope: Scope,
        filter: &JobFilter,
        limit: i64,
        before: Option<(DateTime<Utc>, Uuid)>,
    ) -> Result<Vec<Job>, RepoError> {
        let (before_at, before_id) = before.unzip();
        Ok(sqlx::query_as!(
            Job,
            r#"SELECT id, state AS "state: JobState", stage, percent, message,
                      failure_reason AS "failure_reason: FailureReason",
                      attempts, crash_count, error_retries, worker_name, lease_expires_at,
                      source_key, original_filename, content_type, size_bytes, media_duration,
                      language, title, notify_email, options AS "options: JobOptions", artifacts,
                      enqueued_at, run_after,
                      created_at, started_at, updated_at, finished_at, owner_id, request_id
               FROM jobs
               WHERE ($1::text IS NULL OR state = $1)
                 AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid))
                 AND ($5::timestamptz IS NULL OR created_at >= $5)
                 AND ($6::timestamptz IS NULL OR created_at < $6)
                 AND ($7::text IS NULL OR original_filename LIKE $7 ESCAPE '\')
                 AND ($8::uuid IS NULL OR owner_id = $8)
               ORDER BY created_at DESC, id DESC
               LIMIT $4"#,
            filter.state.map(JobState::as_str),
            before_at,
            before_id,
            limit.clamp(1, 500),
            filter.since,
            filter.until,
            filter.filename.as_deref().map(glob_to_like),
            scope.owner(),
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Queues a finished job (done, failed or cancelled) to run again from `from`: the
    /// artifacts of that stage and later ones are forgotten (and replaced when it runs),
    /// the earlier ones reused; the options `patch` sets replace the job's; the event log
    /// records the reprocessing with its options. With `notify` the minutes email is sent
    /// again (same Message-ID), without it no email is sent.
    pub async fn reprocess(
        &self,
        id: Uuid,
        request: &ReprocessRequest,
    ) -> Result<Reprocess, RepoError> {
        let ReprocessRequest { from, patch, title, language, notify } = request;
        let (from, notify) = (*from, *notify);
        let mut tx = self.pool.begin().await?;
        let dropped: Vec<String> = from.artifacts_from().into_iter().map(String::from).collect();
        let patch = JobOptions { notify: Some(notify), ..patch.clone() };
        // Serialising a struct of strings and flags cannot fail.
        let patch_json = serde_json::to_value(&patch).unwrap_or_default();
        let (title, language) = (title.as_deref(), language.as_deref());
        let updated = sqlx::query_scalar!(
            r#"UPDATE jobs SET state = 'queued', stage = $2, percent = 0,
                               message = 'reprocessing from ' || $2, failure_reason = NULL,
                               crash_count = 0, error_retries = 0, enqueued_at = NULL,
                               run_after = now(), finished_at = NULL, updated_at = now(),
                               artifacts = artifacts - $3::text[],
                               options = options || $4::jsonb,
                               title = coalesce($5, title), language = coalesce($6, language)
               WHERE id = $1 AND state IN ('done', 'failed', 'cancelled')
               RETURNING id"#,
            id,
            from.as_str(),
            &dropped,
            patch_json,
            title,
            language
        )
        .fetch_optional(&mut *tx)
        .await?;
        if updated.is_none() {
            let state = sqlx::query_scalar!(
                r#"SELECT state AS "state: JobState" FROM jobs WHERE id = $1"#,
                id
            )
            .fetch_optional(&mut *tx)
            .await?;
            return Ok(match state {
                Some(state) => Reprocess::NotFinished(state),
                None => Reprocess::NotFound,
            });
        }
        if notify {
            sqlx::query!("DELETE FROM email_intents WHERE job_id = $1 AND kind = 'minutes'", id)
                .execute(&mut *tx)
                .await?;
        }
        let record = serde_json::json!({
            "from": from.as_str(), "options": patch, "title": title, "language": language,
            "notify": notify
        });
        append_event(&mut tx, id, "reprocess", &record.to_string()).await?;
        tx.commit().await?;
        Ok(Reprocess::Queued)
    }

    /// Records that the job is on the queue.
    pub async fn mark_enqueued(&self, id: Uuid) -> Result<(), RepoError> {
        sqlx::query!("UPDATE jobs SET enqueued_at = now() WHERE id = $1", id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Jobs the queue should hold but may not: queued ones not pushed yet whose time came
    /// more than `policy.grace` ago (the API died between commit and push, a retry's
    /// backoff ended, a stopping worker handed one back); queued ones pushed more than
    /// `policy.stranded_after` ago that no worker claimed (their ticket was lost in Redis,
    /// or dropped after the handler failed on a database outage); and running ones whose
    /// lease lapsed and that were not pushed since (their worker vanished). The reconciler
    /// pushes them; a duplicate delivery is harmless because only one worker can claim a
    /// job.
    pub async fn due_for_push(&self, policy: PushPolicy) -> Result<Vec<Uuid>, RepoError> {
        Ok(sqlx::query_scalar!(
            r#"(SELECT id FROM jobs
                WHERE state = 'queued' AND enqueued_at IS NULL
                  AND run_after < now() - make_interval(secs => $1)
                ORDER BY run_after LIMIT 1000)
               UNION ALL
               (SELECT id FROM jobs
                WHERE state = 'queued'
                  AND enqueued_at < now() - make_interval(secs => $2)
                  AND run_after < now() - make_interval(secs => $1)
                ORDER BY enqueued_at LIMIT 1000)
               UNION ALL
               (SELECT id FROM jobs
                WHERE state = 'running' AND lease_expires_at < now()
                  AND (enqueued_at IS NULL OR enqueued_at < lease_expires_at)
                ORDER BY lease_expires_at LIMIT 1000)"#,
            seconds(policy.grace),
            seconds(policy.stranded_after)
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .flatten()
        .collect())
    }

    /// Takes the job for `worker` for `lease` when it is queued, or running under a lease
    /// that lapsed (its worker vanished: that counts against the crash budget; at `budget`
    /// crashes the job fails with `worker_lost` instead).
    pub async fn claim(
        &self,
        id: Uuid,
        worker: &str,
        lease: Duration,
        crash_budget: i32,
    ) -> Result<Claim, RepoError> {
        self.claim_limited(id, worker, lease, crash_budget, None).await
    }

    /// [`Self::claim`], but refused ([`Claim::OwnerBusy`]) while the job's owner already has
    /// `running_per_owner` jobs running under live leases. Claims of one owner's jobs are
    /// serialised by an advisory lock, so two workers cannot both take the last slot.
    pub async fn claim_limited(
        &self,
        id: Uuid,
        worker: &str,
        lease: Duration,
        crash_budget: i32,
        running_per_owner: Option<u32>,
    ) -> Result<Claim, RepoError> {
        let mut tx = self.pool.begin().await?;
        let lost = sqlx::query_scalar!(
            r#"UPDATE jobs
               SET state = 'failed', finished_at = now(), updated_at = now(),
                   lease_token = NULL, lease_expires_at = NULL,
                   crash_count = crash_count + 1,
                   failure_reason = 'worker_lost: the workers processing this recording stopped '
                       || (crash_count + 1) || ' times; it may crash the decoder'
               WHERE id = $1 AND state = 'running' AND lease_expires_at < now()
                 AND crash_count + 1 >= $2
               RETURNING id"#,
            id,
            crash_budget
        )
        .fetch_optional(&mut *tx)
        .await?;
        if lost.is_some() {
            append_event(&mut tx, id, "failed", "worker_lost").await?;
            tx.commit().await?;
            return Ok(Claim::CrashBudgetSpent);
        }
        tx.commit().await?;
        let mut tx = self.pool.begin().await?;
        if let Some(limit) = running_per_owner {
            let owner = sqlx::query_scalar!(
                "SELECT owner_id FROM jobs WHERE id = $1 AND state = 'queued'",
                id
            )
            .fetch_optional(&mut *tx)
            .await?
            .flatten();
            if let Some(owner) = owner {
                sqlx::query!(
                    "SELECT pg_advisory_xact_lock(hashtextextended($1::text, 7))",
                    owner.to_string()
                )
                .execute(&mut *tx)
                .await?;
                let running = sqlx::query_scalar!(
                    r#"SELECT count(*) AS "count!" FROM jobs
                       WHERE owner_id = $1 AND state = 'running' AND lease_expires_at >= now()
                         AND id <> $2"#,
                    owner,
                    id
                )
                .fetch_one(&mut *tx)
                .await?;
                if running >= i64::from(limit) {
                    return Ok(Claim::OwnerBusy);
                }
            }
        }
        let token = Uuid::new_v4();
        let claimed = sqlx::query_scalar!(
            r#"UPDATE jobs
               SET state = 'running', lease_token = $2,
                   lease_expires_at = now() + make_interval(secs => $3),
                   worker_name = $4, attempts = attempts + 1,
                   crash_count = crash_count + CASE WHEN state = 'running' THEN 1 ELSE 0 END,
                   started_at = coalesce(started_at, now()), updated_at = now()
               WHERE id = $1
                 AND (state = 'queued' OR (state = 'running' AND lease_expires_at < now()))
               RETURNING id"#,
            id,
            token,
            seconds(lease),
            worker
        )
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        if claimed.is_none() {
            return Ok(Claim::NotClaimable);
        }
        let job = self.get(id).await?.ok_or(RepoError::LeaseLost(id))?;
        Ok(Claim::Leased(Lease { job_id: id, token }, Box::new(job)))
    }

    /// Puts a queued job back to wait: off the queue, pushed again by the reconciler after
    /// `delay` (its owner's other jobs are running; other owners' jobs go first meanwhile).
    pub async fn defer(&self, id: Uuid, delay: Duration) -> Result<(), RepoError> {
        sqlx::query!(
            r#"UPDATE jobs SET enqueued_at = NULL, run_after = now() + make_interval(secs => $2)
               WHERE id = $1 AND state = 'queued'"#,
            id,
            seconds(delay)
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Extends the lease; fails when it was lost.
    pub async fn heartbeat(&self, lease: Lease, duration: Duration) -> Result<(), RepoError> {
        let done = sqlx::query!(
            r#"UPDATE jobs SET lease_expires_at = now() + make_interval(secs => $3)
               WHERE id = $1 AND lease_token = $2 AND state = 'running'"#,
            lease.job_id,
            lease.token,
            seconds(duration)
        )
        .execute(&self.pool)
        .await?;
        fenced(done.rows_affected(), lease)
    }

    /// Records progress under the lease, appends it to the event log and notifies
    /// listeners.
    pub async fn progress(
        &self,
        lease: Lease,
        stage: &str,
        percent: f32,
        message: &str,
    ) -> Result<(), RepoError> {
        let percent = percent.clamp(0.0, 100.0);
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query!(
            r#"UPDATE jobs SET stage = $3, percent = $4, message = $5, updated_at = now()
               WHERE id = $1 AND lease_token = $2 AND state = 'running'"#,
            lease.job_id,
            lease.token,
            stage,
            percent,
            message
        )
        .execute(&mut *tx)
        .await?;
        fenced(done.rows_affected(), lease)?;
        sqlx::query!(
            "INSERT INTO job_events (job_id, stage, percent, message) VALUES ($1, $2, $3, $4)",
            lease.job_id,
            stage,
            percent,
            message
        )
        .execute(&mut *tx)
        .await?;
        notify(&mut *tx, lease.job_id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records that artifact `name` is stored at `key`.
    pub async fn store_artifact(
        &self,
        lease: Lease,
        name: &str,
        key: &str,
    ) -> Result<(), RepoError> {
        let done = sqlx::query!(
            r#"UPDATE jobs SET artifacts = artifacts || jsonb_build_object($3::text, $4::text),
                               updated_at = now()
               WHERE id = $1 AND lease_token = $2 AND state = 'running'"#,
            lease.job_id,
            lease.token,
            name,
            key
        )
        .execute(&self.pool)
        .await?;
        fenced(done.rows_affected(), lease)
    }

    /// Ends the job as `done` or `failed` (with `reason`), releasing the lease.
    pub async fn finish(
        &self,
        lease: Lease,
        failure: Option<&FailureReason>,
    ) -> Result<(), RepoError> {
        let state = if failure.is_some() { JobState::Failed } else { JobState::Done };
        let failure = failure.map(ToString::to_string);
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query!(
            r#"UPDATE jobs SET state = $3, failure_reason = $4,
                               percent = CASE WHEN $4::text IS NULL THEN 100 ELSE percent END,
                               message = CASE WHEN $4::text IS NULL THEN 'the minutes are ready'
                                              ELSE message END,
                               lease_token = NULL, lease_expires_at = NULL,
                               finished_at = now(), updated_at = now()
               WHERE id = $1 AND lease_token = $2 AND state = 'running'"#,
            lease.job_id,
            lease.token,
            state.as_str(),
            failure.as_deref()
        )
        .execute(&mut *tx)
        .await?;
        fenced(done.rows_affected(), lease)?;
        // In the same transaction: whoever sees the final state sees its event too.
        append_event(&mut tx, lease.job_id, state.as_str(), failure.as_deref().unwrap_or(""))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Hands the job back to the queue (a worker shutting down): queued again, not yet
    /// enqueued, so the reconciler pushes it.
    pub async fn release(&self, lease: Lease) -> Result<(), RepoError> {
        let done = sqlx::query!(
            r#"UPDATE jobs SET state = 'queued', lease_token = NULL, lease_expires_at = NULL,
                               enqueued_at = NULL, run_after = now(),
                               message = 'handed back by a stopping worker', updated_at = now()
               WHERE id = $1 AND lease_token = $2 AND state = 'running'"#,
            lease.job_id,
            lease.token
        )
        .execute(&self.pool)
        .await?;
        fenced(done.rows_affected(), lease)
    }

    /// Cancels a job that is not final yet; a running one stops at its next fenced write.
    /// Returns whether it was cancelled.
    pub async fn cancel(&self, id: Uuid) -> Result<bool, RepoError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query!(
            r#"UPDATE jobs SET state = 'cancelled', lease_token = NULL, lease_expires_at = NULL,
                               finished_at = now(), updated_at = now()
               WHERE id = $1 AND state IN ('queued', 'running')"#,
            id
        )
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 1 {
            append_event(&mut tx, id, "cancelled", "").await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Queues a failed or cancelled job again (its stored artifacts are kept, so it
    /// resumes at the first missing one). Returns whether it was requeued.
    pub async fn retry(&self, id: Uuid) -> Result<bool, RepoError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query!(
            r#"UPDATE jobs SET state = 'queued', failure_reason = NULL, crash_count = 0,
                               error_retries = 0, enqueued_at = NULL, run_after = now(),
                               finished_at = NULL, updated_at = now(),
                               message = 'queued again'
               WHERE id = $1 AND state IN ('failed', 'cancelled')"#,
            id
        )
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 1 {
            append_event(&mut tx, id, "queued", "retry").await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes the job and its history; returns whether it existed. The caller deletes its
    /// objects first, so a failure in between leaves a row to retry the delete with.
    pub async fn delete(&self, id: Uuid) -> Result<bool, RepoError> {
        let done = sqlx::query!("DELETE FROM jobs WHERE id = $1", id).execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    /// The job's events after event `after` (0 for all), oldest first.
    pub async fn events(&self, id: Uuid, after: i64) -> Result<Vec<JobEvent>, RepoError> {
        Ok(sqlx::query_as!(
            JobEvent,
            r#"SELECT id, at, stage, percent, message FROM job_events
               WHERE job_id = $1 AND id > $2 ORDER BY id"#,
            id,
            after
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Ends the attempt after a transient error: queued again to run after `delay`, or,
    /// when this was error number `budget`, failed as `retries_exhausted` with `reason` as
    /// the detail. Returns the new state.
    pub async fn retry_later(
        &self,
        lease: Lease,
        reason: &str,
        delay: Duration,
        budget: i32,
    ) -> Result<JobState, RepoError> {
        let mut tx = self.pool.begin().await?;
        let state = sqlx::query_scalar!(
            r#"UPDATE jobs SET
                 error_retries = error_retries + 1,
                 state = CASE WHEN error_retries + 1 >= $3 THEN 'failed' ELSE 'queued' END,
                 failure_reason = CASE WHEN error_retries + 1 >= $3 THEN $6 END,
                 finished_at = CASE WHEN error_retries + 1 >= $3 THEN now() END,
                 message = $4, lease_token = NULL, lease_expires_at = NULL, enqueued_at = NULL,
                 run_after = now() + make_interval(secs => $5), updated_at = now()
               WHERE id = $1 AND lease_token = $2 AND state = 'running'
               RETURNING state AS "state: JobState""#,
            lease.job_id,
            lease.token,
            budget,
            reason,
            seconds(delay),
            FailureReason::new(FailureCode::RetriesExhausted, reason).to_string()
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(RepoError::LeaseLost(lease.job_id))?;
        let what = if state == JobState::Failed { "failed" } else { "retry scheduled" };
        append_event(&mut tx, lease.job_id, what, reason).await?;
        tx.commit().await?;
        Ok(state)
    }

    /// Records what decoding found out: the recording's duration and, when known, its
    /// language.
    pub async fn set_media(
        &self,
        lease: Lease,
        duration: f64,
        language: Option<&str>,
    ) -> Result<(), RepoError> {
        let done = sqlx::query!(
            r#"UPDATE jobs SET media_duration = $3, language = coalesce($4, language),
                               updated_at = now()
               WHERE id = $1 AND lease_token = $2 AND state = 'running'"#,
            lease.job_id,
            lease.token,
            duration,
            language
        )
        .execute(&self.pool)
        .await?;
        fenced(done.rows_affected(), lease)
    }

    /// The job's send intent for an email of `kind`, made now with `message_id` unless one
    /// exists (then its fixed Message-ID is kept). Returns the intent as stored.
    pub async fn email_intent(
        &self,
        job_id: Uuid,
        kind: EmailKind,
        message_id: &str,
        recipient: &str,
    ) -> Result<EmailIntent, RepoError> {
        sqlx::query!(
            r#"INSERT INTO email_intents (job_id, kind, message_id, recipient)
               VALUES ($1, $2, $3, $4) ON CONFLICT (job_id, kind) DO NOTHING"#,
            job_id,
            kind.as_str(),
            message_id,
            recipient
        )
        .execute(&self.pool)
        .await?;
        Ok(sqlx::query_as!(
            EmailIntent,
            r#"SELECT message_id, recipient, state, attempts, last_error
               FROM email_intents WHERE job_id = $1 AND kind = $2"#,
            job_id,
            kind.as_str()
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Records the outcome of delivering the job's email of `kind`: sent (`error` none) or
    /// failed for good, after `attempts` tries.
    pub async fn email_outcome(
        &self,
        job_id: Uuid,
        kind: EmailKind,
        attempts: i32,
        error: Option<&str>,
    ) -> Result<(), RepoError> {
        sqlx::query!(
            r#"UPDATE email_intents
               SET state = CASE WHEN $4::text IS NULL THEN 'sent' ELSE 'failed' END,
                   attempts = attempts + $3, last_error = $4,
                   sent_at = CASE WHEN $4::text IS NULL THEN now() END
               WHERE job_id = $1 AND kind = $2"#,
            job_id,
            kind.as_str(),
            attempts,
            error
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Age in seconds of the oldest queued job, for metrics (0 when none waits).
    pub async fn oldest_queued_age(&self) -> Result<f64, RepoError> {
        Ok(sqlx::query_scalar!(
            r#"SELECT coalesce(extract(epoch FROM now() - min(created_at))::float8, 0)
                      AS "age!"
               FROM jobs WHERE state = 'queued'"#
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Per stage, over the last day: how many jobs ran it and the seconds they spent in it
    /// (first to last progress event of the stage).
    pub async fn stage_durations(&self) -> Result<Vec<(String, i64, f64)>, RepoError> {
        let rows = sqlx::query!(
            r#"SELECT stage AS "stage!", count(*) AS "count!",
                      coalesce(sum(seconds), 0)::float8 AS "seconds!"
               FROM (SELECT job_id, stage,
                            extract(epoch FROM max(at) - min(at))::float8 AS seconds
                     FROM job_events
                     WHERE at > now() - interval '1 day'
                       AND stage IN ('decode', 'transcribe', 'summarize', 'render', 'notify')
                     GROUP BY job_id, stage) per_job
               GROUP BY stage ORDER BY stage"#
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|r| (r.stage, r.count, r.seconds)).collect())
    }

    /// Jobs per state, for metrics.
    pub async fn count_by_state(&self) -> Result<Vec<(JobState, i64)>, RepoError> {
        let rows = sqlx::query!(
            r#"SELECT state AS "state: JobState", count(*) AS "count!" FROM jobs GROUP BY state"#
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|r| (r.state, r.count)).collect())
    }
}

/// Appends an event with the job's current percent and notifies listeners, inside the
/// caller's transaction, so the event and the change it reports commit together.
async fn append_event(
    tx: &mut sqlx::PgConnection,
    id: Uuid,
    stage: &str,
    message: &str,
) -> Result<(), RepoError> {
    sqlx::query!(
        r#"INSERT INTO job_events (job_id, stage, percent, message)
           SELECT id, $2, percent, $3 FROM jobs WHERE id = $1"#,
        id,
        stage,
        message
    )
    .execute(&mut *tx)
    .await?;
    notify(&mut *tx, id).await
}

/// Tells listeners of [`EVENTS_CHANNEL`] that job `id` changed (on commit, inside a
/// transaction). Not a checked macro: `pg_notify` returns `void`, which has no Rust type.
async fn notify<'c>(
    executor: impl sqlx::Executor<'c, Database = Postgres>,
    id: Uuid,
) -> Result<(), RepoError> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(EVENTS_CHANNEL)
        .bind(id.to_string())
        .execute(executor)
        .await?;
    Ok(())
}

/// One row changed, or the lease was lost.
fn fenced(rows: u64, lease: Lease) -> Result<(), RepoError> {
    if rows == 1 {
        Ok(())
    } else {
        Err(RepoError::LeaseLost(lease.job_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_become_like_patterns_with_the_rest_escaped() {
        assert_eq!(glob_to_like("*.m4a"), "%.m4a");
        assert_eq!(glob_to_like("team_?_100%"), "team\\__\\_100\\%");
    }

    #[test]
    fn states_round_trip_through_their_names() {
        for state in JobState::ALL {
            assert_eq!(state.as_str().parse::<JobState>(), Ok(state));
        }
        assert!("paused".parse::<JobState>().is_err());
        assert!(JobState::Done.is_final() && !JobState::Running.is_final());
    }
}
