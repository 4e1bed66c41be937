//! A worker's writes while it holds a job: every one names the [`Lease`] and changes
//! nothing once the lease is lost (another worker took the job, or it was cancelled).

use std::time::Duration;

use uuid::Uuid;

use super::{append_event, fenced, notify, seconds, JobRepo, JobState, RepoError};
use crate::failure::{FailureCode, FailureReason};

/// The right to write a job's state, held by one worker until it lapses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The job.
    pub job_id: Uuid,
    /// Fences every write: a newer lease has a different token.
    pub token: Uuid,
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
}
