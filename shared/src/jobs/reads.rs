//! Reading jobs for people and for metrics: one job, a filtered page of jobs, a job's
//! history, and the counts `/metrics` serves.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{Job, JobRepo, JobState, RepoError, Scope};
use crate::failure::FailureReason;
use crate::options::JobOptions;
use crate::stage::JobStage;

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

impl JobRepo {
    /// The job, if it exists and `scope` sees it.
    pub async fn get_in(&self, scope: Scope, id: Uuid) -> Result<Option<Job>, RepoError> {
        Ok(self.get(id).await?.filter(|job| scope.sees(job)))
    }

    /// The job, if it exists (workers and internal bookkeeping; requests use
    /// [`Self::get_in`]).
    pub async fn get(&self, id: Uuid) -> Result<Option<Job>, RepoError> {
        Ok(sqlx::query_as!(
            Job,
            r#"SELECT id, state AS "state: JobState", stage AS "stage: JobStage", percent, message,
                      failure_reason AS "failure_reason: FailureReason",
                      attempts, crash_count, error_retries, worker_name, lease_expires_at,
                      source_key, original_filename, content_type, size_bytes, media_duration,
                      language, title, notify_email, options AS "options: JobOptions", artifacts,
                      enqueued_at, run_after,
                      created_at, started_at, updated_at, finished_at, owner_id, request_id,
                      current_version, building_version,
                      reprocess_failure AS "reprocess_failure: FailureReason"
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
            r#"SELECT id, state AS "state: JobState", stage AS "stage: JobStage", percent, message,
                      failure_reason AS "failure_reason: FailureReason",
                      attempts, crash_count, error_retries, worker_name, lease_expires_at,
                      source_key, original_filename, content_type, size_bytes, media_duration,
                      language, title, notify_email, options AS "options: JobOptions", artifacts,
                      enqueued_at, run_after,
                      created_at, started_at, updated_at, finished_at, owner_id, request_id,
                      current_version, building_version,
                      reprocess_failure AS "reprocess_failure: FailureReason"
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_become_like_patterns_with_the_rest_escaped() {
        assert_eq!(glob_to_like("*.m4a"), "%.m4a");
        assert_eq!(glob_to_like("team_?_100%"), "team\\__\\_100\\%");
    }
}
