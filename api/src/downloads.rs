//! Downloads of a job's artifacts, of its current version or of any kept version, streamed
//! from the object store with the right content type and a safe `Content-Disposition` made
//! from the uploaded file's name.
//!
//! A download is allowed by a signed link (`?user=..&expires=..&sig=..`, see
//! [`crate::signing`]: 403 when altered or expired) or by the caller's own credentials;
//! either way the job must be one its user may see (404 otherwise).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use chrono::Utc;
use minutes_shared::jobs::Job;
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::{api_principal, Principal, Via};
use crate::query::ApiQuery;
use crate::signing::LinkError;

use crate::error::{ApiError, ErrorBody};
use crate::filename;
use crate::jobs::find;
use crate::AppState;

/// A downloadable artifact.
#[derive(Debug, Clone, Copy)]
pub struct File {
    /// Its name in the URL and in the job's artifacts.
    pub name: &'static str,
    /// What the download is called after the recording's stem.
    pub suffix: &'static str,
    /// Media type.
    pub content_type: &'static str,
}

/// Every downloadable artifact.
pub const FILES: [File; 6] = [
    File { name: "minutes.pdf", suffix: ".pdf", content_type: "application/pdf" },
    File { name: "minutes.json", suffix: ".minutes.json", content_type: "application/json" },
    File {
        name: "transcript.txt",
        suffix: ".transcript.txt",
        content_type: "text/plain; charset=utf-8",
    },
    File {
        name: "transcript.srt",
        suffix: ".transcript.srt",
        content_type: "application/x-subrip; charset=utf-8",
    },
    File {
        name: "transcript.vtt",
        suffix: ".transcript.vtt",
        content_type: "text/vtt; charset=utf-8",
    },
    File { name: "transcript.json", suffix: ".transcript.json", content_type: "application/json" },
];

/// Downloads one artifact of a job's current version.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/files/{file}", operation_id = "download_file",
    params(("id" = Uuid, Path, description = "job id"),
           ("file" = String, Path, description = "minutes.pdf, minutes.json, transcript.txt, transcript.srt, transcript.vtt or transcript.json"),
           ("user" = Option<String>, Query, description = "signed link: the user it was made for"),
           ("expires" = Option<i64>, Query, description = "signed link: its expiry (Unix time)"),
           ("sig" = Option<String>, Query, description = "signed link: the signature")),
    responses((status = 200, description = "the file"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody, description = "a signed link that was altered or has expired"),
              (status = 404, body = ErrorBody)))]
pub async fn download(
    State(state): State<AppState>,
    Path((id, file)): Path<(String, String)>,
    ApiQuery(link): ApiQuery<LinkQuery>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (job, file) = requested(&state, &id, None, &file, &link, &method, &headers).await?;
    let Some(key) = job.artifacts.get(file.name).and_then(|key| key.as_str()) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_ready",
            format!("{} is not made yet (the job is {} at {})", file.name, job.state, job.stage),
        ));
    };
    serve(&state, &job, file, key).await
}

/// Downloads one artifact of a version of a job's results.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/versions/{number}/files/{file}", operation_id = "download_version_file",
    params(("id" = Uuid, Path, description = "job id"),
           ("number" = i32, Path, description = "version number"),
           ("file" = String, Path, description = "minutes.pdf, minutes.json, transcript.txt, transcript.srt, transcript.vtt or transcript.json"),
           ("user" = Option<String>, Query, description = "signed link: the user it was made for"),
           ("expires" = Option<i64>, Query, description = "signed link: its expiry (Unix time)"),
           ("sig" = Option<String>, Query, description = "signed link: the signature")),
    responses((status = 200, description = "the file"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody, description = "a signed link that was altered or has expired"),
              (status = 404, body = ErrorBody)))]
pub async fn download_version(
    State(state): State<AppState>,
    Path((id, number, file)): Path<(String, String, String)>,
    ApiQuery(link): ApiQuery<LinkQuery>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let number: i32 = number.parse().map_err(|_| no_such_version())?;
    let (job, file) = requested(&state, &id, Some(number), &file, &link, &method, &headers).await?;
    let version = state.repo.version(job.id, number).await?.ok_or_else(no_such_version)?;
    let Some(key) = version.artifact(file.name) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_ready",
            format!("version {number} has no {} (it is {})", file.name, version.outcome.as_str()),
        ));
    };
    serve(&state, &job, file, key).await
}

/// The job and file a download names, once its caller is known (by a signed link for that
/// version and file, or by their own credentials) and may see the job.
async fn requested(
    state: &AppState,
    id: &str,
    version: Option<i32>,
    file: &str,
    link: &LinkQuery,
    method: &Method,
    headers: &HeaderMap,
) -> Result<(Job, &'static File), ApiError> {
    let viewer = match link.sig.as_deref() {
        Some(sig) => signed_viewer(state, id, version, file, link, sig).await?,
        None => api_principal(state, method, headers).await?,
    };
    let job = find(state, &viewer, id).await?;
    Ok((job, known_file(file)?))
}

/// 404 for a version that does not exist.
pub fn no_such_version() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such version")
}

fn known_file(name: &str) -> Result<&'static File, ApiError> {
    FILES
        .iter()
        .find(|f| f.name == name)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such file"))
}

/// Streams the object at `key` as `file` of `job`.
async fn serve(state: &AppState, job: &Job, file: &File, key: &str) -> Result<Response, ApiError> {
    let (size, stream) = state.storage.get_stream(key).await?;
    let name = format!("{}{}", filename::stem(&job.original_filename), file.suffix);
    let disposition = HeaderValue::from_str(&filename::attachment(&name))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(file.content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    headers.insert(header::CONTENT_DISPOSITION, disposition);
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Minutes are confidential: no shared cache keeps a copy.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    Ok(response)
}

/// What a signed link signs: the download route of `file` of job `id`, of `version` or of
/// the current version.
pub fn link_resource(id: Uuid, version: Option<i32>, file: &str) -> String {
    match version {
        Some(number) => format!("jobs/{id}/versions/{number}/files/{file}"),
        None => format!("jobs/{id}/files/{file}"),
    }
}

/// The query of a signed link.
#[derive(Debug, Default, Deserialize)]
pub struct LinkQuery {
    /// The user the link was made for.
    pub user: Option<String>,
    /// Unix time after which it no longer works.
    pub expires: Option<String>,
    /// The HMAC.
    pub sig: Option<String>,
}

/// The user a signed link speaks for: 403 when it was altered or has expired, or when that
/// user can no longer sign in.
async fn signed_viewer(
    state: &AppState,
    id: &str,
    version: Option<i32>,
    file: &str,
    link: &LinkQuery,
    sig: &str,
) -> Result<Principal, ApiError> {
    let refused =
        |error: LinkError| ApiError::new(StatusCode::FORBIDDEN, "bad_link", error.to_string());
    let user = link.user.as_deref().and_then(|u| Uuid::parse_str(u).ok());
    let expires = link.expires.as_deref().and_then(|e| e.parse::<i64>().ok());
    let (Some(user), Some(expires), Ok(job)) = (user, expires, Uuid::parse_str(id)) else {
        return Err(refused(LinkError::Tampered));
    };
    state
        .signer
        .verify(user, &link_resource(job, version, file), expires, sig, Utc::now().timestamp())
        .map_err(refused)?;
    match state.users.get(user).await? {
        Some(user) if user.disabled_at.is_none() => Ok(Principal { user, via: Via::Token }),
        _ => Err(refused(LinkError::Tampered)),
    }
}
