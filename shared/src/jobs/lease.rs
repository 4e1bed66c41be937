//! A worker's writes while it holds a job: every one names the [`Lease`] and changes
//! nothing once the lease is lost (another worker took the job, or it was cancelled).

use std::time::Duration;

use uuid::Uuid;

use super::versions::{end_without_result, VersionOutcome};
use super::{append_event, fenced, notify, seconds, JobRepo, JobState, RepoError};
use crate::failure::{FailureCode, FailureReason};
use crate::stage::Stage;

/// The right to write a job's state, held by one worker until it lapses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The job.
    pub job_id: Uuid,
    /// Fences every write: a newer lease has a different token.
    pub token: Uuid,
    /// The version of the job's results this run builds (the only one it writes into).
    pub version: i32,
    /// The job's attempt number under this lease: with the version, it makes the run's
    /// object keys its own, so a stale worker never overwrites what another one stored.
    pub attempt: i32,
}

impl JobRepo {
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
        stage: Stage,
        percent: f32,
        message: &str,
    ) -> Result<(), RepoError> {
        let percent = percent.clamp(0.0, 100.0);
        let stage = stage.as_str();
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

    /// Records that artifact `name` of the lease's version is stored at `key`.
    pub async fn store_artifact(
        &self,
        lease: Lease,
        name: &str,
        key: &str,
    ) -> Result<(), RepoError> {
        let done = sqlx::query!(
            r#"UPDATE job_versions v
               SET artifacts = v.artifacts || jsonb_build_object($4::text, $5::text)
               FROM jobs j
               WHERE j.id = $1 AND j.lease_token = $2 AND j.state = 'running'
                 AND j.building_version = $3 AND v.job_id = j.id AND v.number = $3"#,
            lease.job_id,
            lease.token,
            lease.version,
            name,
            key
        )
        .execute(&self.pool)
        .await?;
        fenced(done.rows_affected(), lease)
    }

    /// Ends the run under the lease. Without `failure` the lease's version becomes current
    /// and the job `done`, in one transaction; with one, the run ended without a result
    /// (see [`end_without_result`]: `failed`, or still `done` on the earlier version when
    /// this was a reprocess). Returns the job's new state.
    pub async fn finish(
        &self,
        lease: Lease,
        failure: Option<&FailureReason>,
    ) -> Result<JobState, RepoError> {
        let mut tx = self.pool.begin().await?;
        let held = sqlx::query_scalar!(
            r#"SELECT id FROM jobs
               WHERE id = $1 AND lease_token = $2 AND state = 'running'
                 AND building_version = $3
               FOR UPDATE"#,
            lease.job_id,
            lease.token,
            lease.version
        )
        .fetch_optional(&mut *tx)
        .await?;
        fenced(u64::from(held.is_some()), lease)?;
        let state = match failure {
            Some(reason) => {
                end_without_result(&mut tx, lease.job_id, reason, VersionOutcome::Failed).await?
            }
            None => {
                sqlx::query!(
                    r#"UPDATE job_versions SET outcome = 'ready', failure_reason = NULL,
                                              finished_at = now()
                       WHERE job_id = $1 AND number = $2"#,
                    lease.job_id,
                    lease.version
                )
                .execute(&mut *tx)
                .await?;
                sqlx::query!(
                    r#"UPDATE jobs j SET state = 'done', failure_reason = NULL,
                                         reprocess_failure = NULL,
                                         current_version = v.number, building_version = NULL,
                                         artifacts = v.artifacts,
                                         percent = 100, message = 'the minutes are ready',
                                         lease_token = NULL, lease_expires_at = NULL,
                                         finished_at = now(), updated_at = now()
                       FROM job_versions v
                       WHERE j.id = $1 AND v.job_id = j.id AND v.number = $2"#,
                    lease.job_id,
                    lease.version
                )
                .execute(&mut *tx)
                .await?;
                JobState::Done
            }
        };
        let what = failure.map(ToString::to_string);
        let stage = match (state, failure) {
            (JobState::Done, Some(_)) => "reprocess failed",
            (state, _) => state.as_str(),
        };
        // In the same transaction: whoever sees the final state sees its event too.
        append_event(&mut tx, lease.job_id, stage, what.as_deref().unwrap_or("")).await?;
        tx.commit().await?;
        Ok(state)
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

    /// Ends the attempt after a transient error: queued again to run after `delay`, or,
    /// when this was error number `budget`, ended without a result as `retries_exhausted`
    /// with `reason` as the detail (see [`JobRepo::finish`]). Returns the new state.
    pub async fn retry_later(
        &self,
        lease: Lease,
        reason: &str,
        delay: Duration,
        budget: i32,
    ) -> Result<JobState, RepoError> {
        let mut tx = self.pool.begin().await?;
        let errors = sqlx::query_scalar!(
            r#"UPDATE jobs SET error_retries = error_retries + 1, message = $3,
                               updated_at = now()
               WHERE id = $1 AND lease_token = $2 AND state = 'running'
               RETURNING error_retries"#,
            lease.job_id,
            lease.token,
            reason
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(RepoError::LeaseLost(lease.job_id))?;
        let state = if errors >= budget {
            let failure = FailureReason::new(FailureCode::RetriesExhausted, reason);
            end_without_result(&mut tx, lease.job_id, &failure, VersionOutcome::Failed).await?
        } else {
            sqlx::query!(
                r#"UPDATE jobs SET state = 'queued', lease_token = NULL, lease_expires_at = NULL,
                                   enqueued_at = NULL,
                                   run_after = now() + make_interval(secs => $2)
                   WHERE id = $1"#,
                lease.job_id,
                seconds(delay)
            )
            .execute(&mut *tx)
            .await?;
            JobState::Queued
        };
        let what = match state {
            JobState::Queued => "retry scheduled",
            JobState::Done => "reprocess failed",
            _ => "failed",
        };
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
}
