//! What people ask of a job once it exists: reprocess it, cancel it, retry it, delete it.
//! Each change and its event commit together.

use uuid::Uuid;

use super::{append_event, notify, JobRepo, JobState, RepoError};
use crate::options::JobOptions;
use crate::stage::Stage;

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

impl JobRepo {
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
    /// Listeners are notified, so a stream watching the job ends at once.
    pub async fn delete(&self, id: Uuid) -> Result<bool, RepoError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query!("DELETE FROM jobs WHERE id = $1", id).execute(&mut *tx).await?;
        notify(&mut *tx, id).await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }
}
