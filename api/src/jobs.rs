//! Job routes: list, show, retry, cancel, delete, and the JSON view of a job.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, TimeZone, Utc};
use minutes_shared::jobs::{Job, JobFilter, JobState, Reprocess, ReprocessRequest};
use minutes_shared::options::{check_language, JobOptions};
use minutes_shared::stage::Stage;
use minutes_shared::storage::job_prefix;
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::{ApiUser, Principal};
use crate::downloads::{link_resource, FILES};
use crate::error::ApiError;
use crate::query::ApiQuery;
use crate::AppState;
pub use minutes_shared::api::{ErrorBody, JobPage, JobView, Links, ReprocessBody};

/// The view of `job` for `viewer`, with download links signed for them.
pub fn job_view(state: &AppState, viewer: &Principal, job: &Job) -> JobView {
    let this = format!("/api/v1/jobs/{}", job.id);
    let files = FILES
        .iter()
        .filter(|file| job.artifacts.get(file.name).is_some())
        .map(|file| (file.name.to_string(), signed_link(state, viewer, job.id, file.name)))
        .collect();
    JobView {
        id: job.id,
        state: job.state,
        stage: job.stage,
        percent: job.percent,
        message: job.message.clone(),
        failure_reason: job.failure_reason.as_ref().map(ToString::to_string),
        failure: job.failure_reason.clone(),
        current_version: job.current_version,
        reprocess_failure: job.reprocess_failure.clone(),
        attempts: job.attempts,
        filename: job.original_filename.clone(),
        content_type: job.content_type.clone(),
        size_bytes: job.size_bytes,
        duration_seconds: job.media_duration,
        language: job.language.clone(),
        title: job.title.clone(),
        email: job.notify_email.clone(),
        created_at: job.created_at,
        started_at: job.started_at,
        finished_at: job.finished_at,
        updated_at: job.updated_at,
        links: Links {
            events: format!("{this}/events"),
            versions: format!("{this}/versions"),
            this,
            files,
        },
    }
}

/// Query of `GET /api/v1/jobs`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only jobs in this state.
    #[param(value_type = Option<JobState>)]
    pub state: Option<String>,
    /// Only jobs created at or after this time (RFC 3339; a date, 2026-11-01, is also
    /// taken: its start, UTC).
    #[param(value_type = Option<String>, format = DateTime)]
    pub since: Option<String>,
    /// Only jobs created before this time (RFC 3339, or a date as for `since`).
    #[param(value_type = Option<String>, format = DateTime)]
    pub until: Option<String>,
    /// Only jobs whose uploaded file name matches this glob (`*`, `?`); no control
    /// characters.
    #[param(pattern = r"^[^\x00-\x1f\x7f-\x9f]*$", max_length = 1024)]
    pub filename: Option<String>,
    /// Jobs per page (1 to 500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The `next` cursor of the previous page.
    #[param(
        pattern = r"^[0-9]{1,16}\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    )]
    pub cursor: Option<String>,
}

/// A job id from the path; anything else is a 404, like an id that does not exist.
pub fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::job_not_found())
}

/// The job `raw` names if `viewer` may see it; 404 otherwise, exactly as for a job that
/// does not exist.
pub async fn find(state: &AppState, viewer: &Principal, raw: &str) -> Result<Job, ApiError> {
    state.repo.get_in(viewer.scope(), parse_id(raw)?).await?.ok_or_else(ApiError::job_not_found)
}

/// A download link for `file` of the current version of job `id` signed for `viewer`,
/// valid for the configured lifetime.
pub fn signed_link(state: &AppState, viewer: &Principal, id: Uuid, file: &str) -> String {
    let resource = link_resource(id, None, file);
    let query = state.signer.sign(viewer.user.id, &resource, Utc::now().timestamp());
    format!("/api/v1/jobs/{id}/files/{file}?{query}")
}

fn cursor_of(job: &Job) -> String {
    format!("{}.{}", job.created_at.timestamp_micros(), job.id)
}

fn parse_cursor(raw: &str) -> Result<(DateTime<Utc>, Uuid), ApiError> {
    let bad = || ApiError::bad_request("cursor: use the `next` value of the previous page");
    let (micros, id) = raw.split_once('.').ok_or_else(bad)?;
    let micros: i64 = micros.parse().map_err(|_| bad())?;
    let at = Utc.timestamp_micros(micros).single().ok_or_else(bad)?;
    Ok((at, Uuid::parse_str(id).map_err(|_| bad())?))
}

/// `2026-11-01T09:00:00Z` or `2026-11-01` (midnight UTC).
pub fn parse_time(name: &str, text: &str) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|naive| naive.and_utc())
        .ok_or_else(|| {
            ApiError::bad_request(format!("{name}: a date (2026-11-01) or an RFC 3339 time"))
        })
}

/// Lists jobs, newest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/jobs", operation_id = "list_jobs", params(ListQuery),
    responses((status = 200, body = JobPage), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    ApiUser(viewer): ApiUser,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<JobPage>, ApiError> {
    let filter = match query.state.as_deref().filter(|s| !s.is_empty()) {
        Some(name) => {
            Some(name.parse::<JobState>().map_err(|e| ApiError::bad_request(e.to_string()))?)
        }
        None => None,
    };
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("limit: between 1 and 500"));
    }
    let before = query.cursor.as_deref().map(parse_cursor).transpose()?;
    let filter = JobFilter {
        state: filter,
        since: query.since.as_deref().map(|t| parse_time("since", t)).transpose()?,
        until: query.until.as_deref().map(|t| parse_time("until", t)).transpose()?,
        filename: query.filename.clone().filter(|f| !f.is_empty()),
    };
    // Bug fixed: a NUL in the glob reached Postgres, which refused the text, and the
    // answer was 503 "database not available".
    if filter.filename.as_deref().is_some_and(|f| f.chars().any(char::is_control) || f.len() > 1024)
    {
        return Err(ApiError::bad_request("filename: at most 1024 bytes, no control characters"));
    }
    let jobs = state.repo.list(viewer.scope(), &filter, limit, before).await?;
    let next = (jobs.len() as i64 == limit).then(|| jobs.last().map(cursor_of)).flatten();
    let jobs = jobs.iter().map(|job| crate::jobs::job_view(&state, &viewer, job)).collect();
    Ok(Json(JobPage { jobs, next }))
}

/// Shows one job.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", operation_id = "show_job", params(("id" = Uuid, Path, description = "job id")),
    responses((status = 200, body = JobView), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    ApiUser(viewer): ApiUser,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    Ok(Json(crate::jobs::job_view(&state, &viewer, &find(&state, &viewer, &id).await?)))
}

/// Queues a failed or cancelled job again; it resumes at the first missing artifact.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/retry", operation_id = "retry_job", params(("id" = Uuid, Path, description = "job id")),
    responses((status = 202, body = JobView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn retry(
    State(state): State<AppState>,
    ApiUser(viewer): ApiUser,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    let job = find(&state, &viewer, &id).await?;
    if !state.repo.retry(job.id).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_retryable",
            format!("the job is {}; only failed or cancelled jobs can be retried", job.state),
        ));
    }
    state.enqueue(job.id).await?;
    let job = find(&state, &viewer, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(crate::jobs::job_view(&state, &viewer, &job))))
}

/// Cancels a queued or running job (a running one stops at its next chunk).
#[utoipa::path(post, path = "/api/v1/jobs/{id}/cancel", operation_id = "cancel_job", params(("id" = Uuid, Path, description = "job id")),
    responses((status = 200, body = JobView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    ApiUser(viewer): ApiUser,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    let job = find(&state, &viewer, &id).await?;
    if !state.repo.cancel(job.id).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_cancellable",
            format!("the job is already {}", job.state),
        ));
    }
    Ok(Json(crate::jobs::job_view(&state, &viewer, &find(&state, &viewer, &id).await?)))
}

/// Deletes a job: its row, history and every stored file (a running job is cancelled
/// first).
#[utoipa::path(delete, path = "/api/v1/jobs/{id}", operation_id = "delete_job", params(("id" = Uuid, Path, description = "job id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    ApiUser(viewer): ApiUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let job = find(&state, &viewer, &id).await?;
    if !job.state.is_final() {
        state.repo.cancel(job.id).await?;
    }
    // Objects first: if this fails the row is still there to retry the delete with.
    state.storage.delete_prefix(&job_prefix(job.id)).await?;
    state.repo.delete(job.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Runs a finished job again from a stage, building a new version of its results: earlier
/// artifacts are shared, that stage's and later ones made anew; the current version stays
/// current (and downloadable) until the new one succeeds, and stays so if it fails
/// (`reprocess_failure` says why). The job's event log records it with the options used.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/reprocess", operation_id = "reprocess_job", params(("id" = Uuid, Path, description = "job id")),
    request_body = ReprocessBody,
    responses((status = 202, body = JobView), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn reprocess(
    State(state): State<AppState>,
    ApiUser(viewer): ApiUser,
    Path(id): Path<String>,
    body: Result<Json<ReprocessBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    let id = find(&state, &viewer, &id).await?.id;
    let Json(body) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let from: Stage = body
        .from
        .parse()
        .map_err(|e: minutes_shared::stage::UnknownStage| ApiError::bad_request(e.to_string()))?;
    if from == Stage::Notify && !body.notify {
        return Err(ApiError::bad_request("from notify only sends the email again: add notify"));
    }
    let nonempty = |text: Option<String>| text.filter(|t| !t.trim().is_empty());
    let patch = JobOptions {
        model: nonempty(body.model),
        summarizer: body.summarizer,
        vocabulary: nonempty(body.vocabulary),
        notify: None,
        speakers: body.speakers,
    }
    .check(&state.settings.service.models, &state.settings.service.summarizers)?;
    let language = nonempty(body.language).map(|l| check_language(&l)).transpose()?;
    let title = nonempty(body.title).map(|title| {
        let title: String =
            title.chars().map(|c| if c.is_control() { ' ' } else { c }).take(300).collect();
        title.trim().to_string()
    });
    let request = ReprocessRequest {
        from,
        patch,
        title,
        language,
        notify: body.notify,
        requested_by: Some(viewer.user.id),
    };
    match state.repo.reprocess(id, &request).await? {
        Reprocess::Queued => {}
        Reprocess::NotFound => return Err(ApiError::job_not_found()),
        Reprocess::NotFinished(job_state) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "not_finished",
                format!(
                    "the job is {job_state}; only done, failed or cancelled jobs are reprocessed"
                ),
            ))
        }
    }
    state.enqueue(id).await?;
    let job = state.repo.get(id).await?.ok_or_else(ApiError::job_not_found)?;
    Ok((StatusCode::ACCEPTED, Json(crate::jobs::job_view(&state, &viewer, &job))))
}
