//! What people ask of a job once it exists: reprocess it (a new version of its results),
//! cancel it, retry it, delete it.
//! Each change and its event commit together.

use uuid::Uuid;

use super::versions::{end_without_result, VersionOutcome};
use super::{append_event, notify, JobRepo, JobState, RepoError};
use crate::failure::{FailureCode, FailureReason};
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
    /// Whether to email the new version's minutes.
    pub notify: bool,
    /// Who asks (recorded on the new version).
    pub requested_by: Option<Uuid>,
}

impl JobRepo {
    /// Queues a finished job (done, failed or cancelled) to run again from `from`, building
    /// a new version of its results: the current version stays current (and downloadable)
    /// until the new one succeeds. The new version starts with the artifacts of the
    /// stages before `from` (shared, not copied); the options `patch` sets replace the
    /// job's; the event log records the reprocessing with its options. With `notify` the
    /// new version's minutes are emailed, without it no email is sent. A version whose
    /// run failed or was cancelled, and that is not current, is built again under its
    /// number (a failed attempt is not a version people keep).
    pub async fn reprocess(
        &self,
        id: Uuid,
        request: &ReprocessRequest,
    ) -> Result<Reprocess, RepoError> {
        let ReprocessRequest { from, patch, title, language, notify, requested_by } = request;
        let (from, notify) = (*from, *notify);
        let mut tx = self.pool.begin().await?;
        let job = sqlx::query!(
            r#"SELECT state AS "state: JobState", current_version, building_version
               FROM jobs WHERE id = $1 FOR UPDATE"#,
            id
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(job) = job else { return Ok(Reprocess::NotFound) };
        if !job.state.is_final() {
            return Ok(Reprocess::NotFinished(job.state));
        }
        let latest = sqlx::query!(
            r#"SELECT number, outcome FROM job_versions WHERE job_id = $1
               ORDER BY number DESC LIMIT 1"#,
            id
        )
        .fetch_optional(&mut *tx)
        .await?;
        let number = match latest {
            Some(latest)
                if Some(latest.number) != job.current_version && latest.outcome != "ready" =>
            {
                latest.number
            }
            Some(latest) => latest.number + 1,
            None => 1,
        };
        let dropped: Vec<String> = from.artifacts_from().into_iter().map(String::from).collect();
        let patch = JobOptions { notify: Some(notify), ..patch.clone() };
        // Serialising a struct of strings and flags cannot fail.
        let patch_json = serde_json::to_value(&patch).unwrap_or_default();
        let (title, language) = (title.as_deref(), language.as_deref());
        sqlx::query!(
            r#"UPDATE jobs SET state = 'queued', stage = $2, percent = 0,
                               message = 'reprocessing from ' || $2, failure_reason = NULL,
                               reprocess_failure = NULL, building_version = $3,
                               crash_count = 0, error_retries = 0, enqueued_at = NULL,
                               run_after = now(), finished_at = NULL, updated_at = now(),
                               options = options || $4::jsonb,
                               title = coalesce($5, title), language = coalesce($6, language)
               WHERE id = $1"#,
            id,
            from.as_str(),
            number,
            patch_json,
            title,
            language
        )
        .execute(&mut *tx)
        .await?;
        // The base: the current version, or the failed first run's own partial work.
        let base_version = job.current_version.or(job.building_version);
        sqlx::query!(
            r#"INSERT INTO job_versions (job_id, number, from_stage, options, requested_by,
                                         artifacts)
               SELECT j.id, $2, $3, j.options, $4,
                      coalesce((SELECT artifacts FROM job_versions
                                WHERE job_id = j.id AND number = $5), '{}'::jsonb)
                      - $6::text[]
               FROM jobs j WHERE j.id = $1
               ON CONFLICT (job_id, number) DO UPDATE
               SET from_stage = EXCLUDED.from_stage, options = EXCLUDED.options,
                   requested_by = EXCLUDED.requested_by, outcome = 'building',
                   failure_reason = NULL, artifacts = EXCLUDED.artifacts,
                   created_at = now(), finished_at = NULL"#,
            id,
            number,
            from.as_str(),
            *requested_by,
            base_version,
            &dropped
        )
        .execute(&mut *tx)
        .await?;
        let record = serde_json::json!({
            "from": from.as_str(), "options": patch, "title": title, "language": language,
            "notify": notify, "version": number
        });
        append_event(&mut tx, id, "reprocess", &record.to_string()).await?;
        tx.commit().await?;
        Ok(Reprocess::Queued)
    }

    /// Cancels a job that is not final yet; a running one stops at its next fenced write.
    /// A cancelled reprocess leaves the job done on its current version. Returns whether
    /// it was cancelled.
    pub async fn cancel(&self, id: Uuid) -> Result<bool, RepoError> {
        let mut tx = self.pool.begin().await?;
        let running = sqlx::query_scalar!(
            "SELECT id FROM jobs WHERE id = $1 AND state IN ('queued', 'running') FOR UPDATE",
            id
        )
        .fetch_optional(&mut *tx)
        .await?;
        if running.is_some() {
            let reason = FailureReason::new(FailureCode::Cancelled, "stopped by a person");
            end_without_result(&mut tx, id, &reason, VersionOutcome::Cancelled).await?;
            append_event(&mut tx, id, "cancelled", "").await?;
        }
        tx.commit().await?;
        Ok(running.is_some())
    }

    /// Queues a failed or cancelled job again (its version's stored artifacts are kept, so
    /// it resumes at the first missing one). Returns whether it was requeued.
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
            sqlx::query!(
                r#"UPDATE job_versions v SET outcome = 'building', failure_reason = NULL,
                                            finished_at = NULL
                   FROM jobs j
                   WHERE j.id = $1 AND v.job_id = j.id AND v.number = j.building_version"#,
                id
            )
            .execute(&mut *tx)
            .await?;
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
