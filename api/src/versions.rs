//! The versions of a job's results: the history (`GET /api/v1/jobs/{id}/versions`) with
//! each version's downloads, and making an earlier version current again
//! (`POST /api/v1/jobs/{id}/versions/{number}/restore`).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use minutes_shared::jobs::{Job, JobVersion, Restore};
use uuid::Uuid;

use crate::auth::{ApiUser, Principal};
use crate::downloads::{link_resource, no_such_version, FILES};
use crate::error::ApiError;
use crate::jobs::{find, JobView};
use crate::AppState;
pub use minutes_shared::api::{ErrorBody, VersionList, VersionView};

/// A signed download link of `file` of version `number` of job `id`.
pub fn version_link(
    state: &AppState,
    viewer: &Principal,
    id: Uuid,
    number: i32,
    file: &str,
) -> String {
    let resource = link_resource(id, Some(number), file);
    let query = state.signer.sign(viewer.user.id, &resource, Utc::now().timestamp());
    format!("/api/v1/jobs/{id}/versions/{number}/files/{file}?{query}")
}

/// The view of `version` of `job` for `viewer`; `who` names the user who asked for it.
pub fn view(
    state: &AppState,
    viewer: &Principal,
    job: &Job,
    version: &JobVersion,
    who: Option<String>,
) -> VersionView {
    let files = FILES
        .iter()
        .filter(|file| version.artifact(file.name).is_some())
        .map(|file| {
            (file.name.to_string(), version_link(state, viewer, job.id, version.number, file.name))
        })
        .collect();
    VersionView {
        number: version.number,
        current: job.current_version == Some(version.number),
        outcome: version.outcome,
        from_stage: version.from_stage.clone(),
        options: version.options.clone(),
        requested_by: who,
        failure: version.failure_reason.clone(),
        created_at: version.created_at,
        finished_at: version.finished_at,
        files,
    }
}

/// Every version of `job` as views, newest first, with who asked for each.
pub async fn views(
    state: &AppState,
    viewer: &Principal,
    job: &Job,
) -> Result<Vec<VersionView>, ApiError> {
    let versions = state.repo.versions(job.id).await?;
    let mut names: BTreeMap<Uuid, Option<String>> = BTreeMap::new();
    let mut out = Vec::with_capacity(versions.len());
    for version in &versions {
        let who = match version.requested_by {
            Some(user) => match names.get(&user) {
                Some(name) => name.clone(),
                None => {
                    let name = state.users.get(user).await?.map(|u| u.email);
                    names.insert(user, name.clone());
                    name
                }
            },
            None => None,
        };
        out.push(view(state, viewer, job, version, who));
    }
    Ok(out)
}

/// Lists the versions of a job's results, newest first, with their downloads.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/versions", operation_id = "list_versions", params(("id" = Uuid, Path, description = "job id")),
    responses((status = 200, body = VersionList), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    ApiUser(viewer): ApiUser,
    Path(id): Path<String>,
) -> Result<Json<VersionList>, ApiError> {
    let job = find(&state, &viewer, &id).await?;
    let versions = views(&state, &viewer, &job).await?;
    Ok(Json(VersionList { current_version: job.current_version, versions }))
}

/// Makes version `number` current again (the job's downloads, page and email links serve
/// it); refused while a run is queued or running, and for a version without a result.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/versions/{number}/restore", operation_id = "restore_version",
    params(("id" = Uuid, Path, description = "job id"), ("number" = i32, Path, description = "version number")),
    responses((status = 200, body = JobView), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "the job is running, or the version has no result")))]
pub async fn restore(
    State(state): State<AppState>,
    ApiUser(viewer): ApiUser,
    Path((id, number)): Path<(String, String)>,
) -> Result<Json<JobView>, ApiError> {
    let job = find(&state, &viewer, &id).await?;
    let job = restore_version(&state, &job, &number).await?;
    Ok(Json(crate::jobs::job_view(&state, &viewer, &job)))
}

/// Restores version `number` (as typed in the path) of `job`; returns the job as it now is.
pub async fn restore_version(state: &AppState, job: &Job, number: &str) -> Result<Job, ApiError> {
    let number: i32 = number.parse().map_err(|_| no_such_version())?;
    match state.repo.restore(job.id, number).await? {
        Restore::Restored => {}
        Restore::NotFound => return Err(no_such_version()),
        Restore::Busy(job_state) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "not_finished",
                format!("the job is {job_state}; restore a version once its run ended"),
            ))
        }
        Restore::NotReady(outcome) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "version_not_ready",
                format!("version {number} has no result (it is {})", outcome.as_str()),
            ))
        }
    }
    state.repo.get(job.id).await?.ok_or_else(crate::error::ApiError::job_not_found)
}
