//! The job repository: every read and write of the `jobs`, `job_events` and
//! `email_intents` tables (schema in `migrations/`).
//!
//! Postgres is the source of truth for job state. A worker takes a job with [`JobRepo::claim`],
//! which gives it a [`Lease`]; every later write names that lease (`WHERE id = $1 AND
//! lease_token = $2`), so a worker whose lease lapsed (paused, partitioned, presumed dead)
//! changes nothing once another worker has the job. Progress writes append to `job_events`
//! and `NOTIFY` the `job_events` channel with the job id, which feeds the API's event streams.
//! Queries are checked against the schema at compile time (offline data in `shared/.sqlx`).
//!
//! The repository's methods are grouped by who calls them: `allowance` and `uploads` (the
//! API taking a recording), `reads` (pages, listings, metrics), `requests` (reprocess, cancel, retry,
//! delete), `scheduling` (the reconciler and a worker's claim), `lease` (a worker's
//! writes under its lease), `versions` (the versions of a job's results: how a run ends,
//! history, restore, pruning) and `email` (send intents).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::postgres::{PgPool, PgTypeInfo, PgValueRef, Postgres};
use uuid::Uuid;

use crate::failure::FailureReason;
use crate::options::JobOptions;
use crate::stage::JobStage;

mod allowance;
mod email;
mod lease;
mod reads;
mod requests;
mod scheduling;
mod uploads;
mod versions;

pub use allowance::{Reservation, UploadAllowance};
pub use email::{EmailIntent, EmailKind};
pub use lease::Lease;
pub use reads::{JobEvent, JobFilter};
pub use requests::{Reprocess, ReprocessRequest};
pub use scheduling::{Claim, PushPolicy};
pub use uploads::NewJob;
pub use versions::{JobVersion, Restore, VersionOutcome};

/// The channel progress notifications go to; the payload is the job id.
pub const EVENTS_CHANNEL: &str = "job_events";

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
        // `pad`, so widths in format strings (tables) apply.
        f.pad(self.as_str())
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
    /// The upload, or the stage running or last run.
    pub stage: JobStage,
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
    /// Artifact name -> object key, of the current version (what people download; a run
    /// writes into its building version, see [`JobRepo::working_artifacts`]).
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
    /// The version people see and download (none until a first run succeeds).
    pub current_version: Option<i32>,
    /// The version a queued or running run is building (kept on a failed first run, so a
    /// retry resumes it).
    pub building_version: Option<i32>,
    /// Why the last reprocess ended without a result, while an earlier version stays
    /// current (the job is still done).
    pub reprocess_failure: Option<FailureReason>,
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
    fn states_round_trip_through_their_names() {
        for state in JobState::ALL {
            assert_eq!(state.as_str().parse::<JobState>(), Ok(state));
        }
        assert!("paused".parse::<JobState>().is_err());
        assert!(JobState::Done.is_final() && !JobState::Running.is_final());
    }
}
