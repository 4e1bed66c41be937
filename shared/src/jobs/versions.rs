//! The versions of a job's results (`job_versions`): how a run that ends without a result
//! settles its version, a job's history, restoring an earlier version, and pruning old
//! ones.
//!
//! A run builds one version and writes only into it (its artifacts row and its own object
//! keys, see [`crate::storage::artifact_key`]). The version becomes current in the
//! transaction that marks the job done ([`JobRepo::finish`]); a run that fails or is
//! cancelled while an earlier version is current leaves that one in place and the job
//! `done`, with [`super::Job::reprocess_failure`] saying what went wrong.

use std::collections::HashSet;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::{append_event, notify, JobRepo, JobState, Lease, RepoError};
use crate::failure::FailureReason;
use crate::options::JobOptions;

/// Where a version is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum VersionOutcome {
    /// A run is making it.
    Building,
    /// Complete: it can be current.
    Ready,
    /// Its run failed; `failure_reason` says why.
    Failed,
    /// Its run was cancelled.
    Cancelled,
}

impl VersionOutcome {
    /// The name stored in the database and served.
    pub fn as_str(self) -> &'static str {
        match self {
            VersionOutcome::Building => "building",
            VersionOutcome::Ready => "ready",
            VersionOutcome::Failed => "failed",
            VersionOutcome::Cancelled => "cancelled",
        }
    }
}

impl std::fmt::Display for VersionOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, so widths in format strings (tables) apply.
        f.pad(self.as_str())
    }
}

impl FromStr for VersionOutcome {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        [Self::Building, Self::Ready, Self::Failed, Self::Cancelled]
            .into_iter()
            .find(|outcome| outcome.as_str() == text)
            .ok_or_else(|| format!("unknown version outcome {text:?}"))
    }
}

/// One version of a job's results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobVersion {
    /// 1 for the first run, then one more per reprocess that produced (or is producing)
    /// a result.
    pub number: i32,
    /// The first stage its run made anew.
    pub from_stage: String,
    /// The options its run was asked with.
    pub options: JobOptions,
    /// Who asked for it.
    pub requested_by: Option<Uuid>,
    /// Where it is in its life.
    pub outcome: VersionOutcome,
    /// Why its run ended without a result.
    pub failure_reason: Option<FailureReason>,
    /// Artifact name -> object key (shared with the version it started from for what it
    /// did not rebuild).
    pub artifacts: Value,
    /// When its run was asked for.
    pub created_at: DateTime<Utc>,
    /// When its run ended.
    pub finished_at: Option<DateTime<Utc>>,
}

impl JobVersion {
    /// The object key of artifact `name`, when this version has it.
    pub fn artifact(&self, name: &str) -> Option<&str> {
        self.artifacts.get(name).and_then(Value::as_str)
    }
}

/// The outcome of asking to make a version current again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restore {
    /// It is current now.
    Restored,
    /// The version exists but has no complete result.
    NotReady(VersionOutcome),
    /// The job is queued or running: restore once its run ended.
    Busy(JobState),
    /// No such job or version.
    NotFound,
}

/// What pruning removed, for the caller to delete the objects no version refers to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    /// The versions deleted.
    pub numbers: Vec<i32>,
    /// Every object key a remaining version (or the job's current artifacts) refers to.
    pub referenced: HashSet<String>,
}

struct VersionRow {
    number: i32,
    from_stage: String,
    options: JobOptions,
    requested_by: Option<Uuid>,
    outcome: String,
    failure_reason: Option<FailureReason>,
    artifacts: Value,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl From<VersionRow> for JobVersion {
    fn from(row: VersionRow) -> Self {
        JobVersion {
            number: row.number,
            from_stage: row.from_stage,
            options: row.options,
            requested_by: row.requested_by,
            // The CHECK constraint admits only the four names.
            outcome: row.outcome.parse().unwrap_or(VersionOutcome::Failed),
            failure_reason: row.failure_reason,
            artifacts: row.artifacts,
            created_at: row.created_at,
            finished_at: row.finished_at,
        }
    }
}

/// Every string value of an artifacts map.
fn keys_of(artifacts: &Value) -> impl Iterator<Item = String> + '_ {
    artifacts
        .as_object()
        .into_iter()
        .flat_map(|map| map.values())
        .filter_map(|v| v.as_str().map(String::from))
}

impl JobRepo {
    /// The job's versions, newest first.
    pub async fn versions(&self, id: Uuid) -> Result<Vec<JobVersion>, RepoError> {
        let rows = sqlx::query_as!(
            VersionRow,
            r#"SELECT number, from_stage, options AS "options: JobOptions", requested_by,
                      outcome, failure_reason AS "failure_reason: FailureReason", artifacts,
                      created_at, finished_at
               FROM job_versions WHERE job_id = $1 ORDER BY number DESC"#,
            id
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(JobVersion::from).collect())
    }

    /// Version `number` of the job, if it exists.
    pub async fn version(&self, id: Uuid, number: i32) -> Result<Option<JobVersion>, RepoError> {
        let row = sqlx::query_as!(
            VersionRow,
            r#"SELECT number, from_stage, options AS "options: JobOptions", requested_by,
                      outcome, failure_reason AS "failure_reason: FailureReason", artifacts,
                      created_at, finished_at
               FROM job_versions WHERE job_id = $1 AND number = $2"#,
            id,
            number
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(JobVersion::from))
    }

    /// The artifacts of the version the lease is building: what a run resumes from.
    pub async fn working_artifacts(&self, lease: Lease) -> Result<Value, RepoError> {
        sqlx::query_scalar!(
            r#"SELECT v.artifacts FROM job_versions v JOIN jobs j ON j.id = v.job_id
               WHERE j.id = $1 AND j.lease_token = $2 AND j.state = 'running'
                 AND v.number = $3"#,
            lease.job_id,
            lease.token,
            lease.version
        )
        .fetch_optional(&self.pool)
        .await?
        .ok_or(RepoError::LeaseLost(lease.job_id))
    }

    /// Makes version `number` current again: downloads, the page and the API serve it.
    pub async fn restore(&self, id: Uuid, number: i32) -> Result<Restore, RepoError> {
        let mut tx = self.pool.begin().await?;
        let job = sqlx::query!(
            r#"SELECT state AS "state: JobState" FROM jobs WHERE id = $1 FOR UPDATE"#,
            id
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(job) = job else { return Ok(Restore::NotFound) };
        if !job.state.is_final() {
            return Ok(Restore::Busy(job.state));
        }
        let outcome = sqlx::query_scalar!(
            "SELECT outcome FROM job_versions WHERE job_id = $1 AND number = $2",
            id,
            number
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(outcome) = outcome else { return Ok(Restore::NotFound) };
        let outcome: VersionOutcome = outcome.parse().unwrap_or(VersionOutcome::Failed);
        if outcome != VersionOutcome::Ready {
            return Ok(Restore::NotReady(outcome));
        }
        sqlx::query!(
            r#"UPDATE jobs j SET current_version = v.number, artifacts = v.artifacts,
                                 state = 'done', failure_reason = NULL,
                                 reprocess_failure = NULL, building_version = NULL,
                                 updated_at = now()
               FROM job_versions v
               WHERE j.id = $1 AND v.job_id = j.id AND v.number = $2"#,
            id,
            number
        )
        .execute(&mut *tx)
        .await?;
        append_event(&mut tx, id, "restore", &format!("version {number} is current")).await?;
        tx.commit().await?;
        Ok(Restore::Restored)
    }

    /// Deletes the job's versions beyond the newest `keep` ones, never the current one nor
    /// one being built. Returns what was deleted and every key still referred to: the
    /// caller deletes the deleted versions' objects that no remaining version shares.
    pub async fn prune_versions(&self, id: Uuid, keep: u32) -> Result<Pruned, RepoError> {
        let mut tx = self.pool.begin().await?;
        let numbers = sqlx::query_scalar!(
            r#"DELETE FROM job_versions v USING jobs j
               WHERE v.job_id = $1 AND j.id = v.job_id
                 AND v.number IS DISTINCT FROM j.current_version
                 AND v.number IS DISTINCT FROM j.building_version
                 AND v.number NOT IN (SELECT number FROM job_versions WHERE job_id = $1
                                      ORDER BY number DESC LIMIT $2)
               RETURNING v.number"#,
            id,
            i64::from(keep.max(1))
        )
        .fetch_all(&mut *tx)
        .await?;
        let maps = sqlx::query_scalar!(
            r#"SELECT artifacts AS "artifacts!" FROM job_versions WHERE job_id = $1
               UNION ALL SELECT artifacts FROM jobs WHERE id = $1"#,
            id
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let referenced = maps.iter().flat_map(keys_of).collect();
        Ok(Pruned { numbers, referenced })
    }
}

/// Ends the run of job `id` without a result, inside the caller's transaction: its version
/// is marked `outcome` with `reason`; the job becomes `failed` (or `cancelled`) when it has
/// no current version, or stays `done` with `reprocess_failure` when it has one (the
/// minutes a person has are not taken away). Returns the job's new state.
pub(super) async fn end_without_result(
    tx: &mut sqlx::PgConnection,
    id: Uuid,
    reason: &FailureReason,
    outcome: VersionOutcome,
) -> Result<JobState, RepoError> {
    let reason = reason.to_string();
    sqlx::query!(
        r#"UPDATE job_versions v SET outcome = $2, failure_reason = $3, finished_at = now()
           FROM jobs j
           WHERE j.id = $1 AND v.job_id = j.id AND v.number = j.building_version"#,
        id,
        outcome.as_str(),
        reason
    )
    .execute(&mut *tx)
    .await?;
    let first_run_state =
        if outcome == VersionOutcome::Cancelled { JobState::Cancelled } else { JobState::Failed };
    let state = sqlx::query_scalar!(
        r#"UPDATE jobs SET
             state = CASE WHEN current_version IS NULL THEN $2 ELSE 'done' END,
             failure_reason = CASE WHEN current_version IS NULL THEN $3 END,
             reprocess_failure = CASE WHEN current_version IS NULL THEN NULL ELSE $3 END,
             building_version = CASE WHEN current_version IS NULL THEN building_version END,
             percent = CASE WHEN current_version IS NULL THEN percent ELSE 100 END,
             message = CASE WHEN current_version IS NULL THEN message
                            ELSE 'the reprocess ended without a result; version '
                                 || current_version || ' is still current' END,
             lease_token = NULL, lease_expires_at = NULL,
             finished_at = now(), updated_at = now()
           WHERE id = $1
           RETURNING state AS "state: JobState""#,
        id,
        first_run_state.as_str(),
        reason
    )
    .fetch_one(&mut *tx)
    .await?;
    notify(&mut *tx, id).await?;
    Ok(state)
}
