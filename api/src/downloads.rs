//! Downloads of a job's artifacts, streamed from the object store with the right content
//! type and a safe `Content-Disposition` made from the uploaded file's name.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use minutes_shared::storage::artifact_key;

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

/// Downloads one artifact of a job.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/files/{file}",
    params(("id" = Uuid, Path, description = "job id"),
           ("file" = String, Path, description = "minutes.pdf, minutes.json, transcript.txt, transcript.srt, transcript.vtt or transcript.json")),
    responses((status = 200, description = "the file"), (status = 404, body = ErrorBody)))]
pub async fn download(
    State(state): State<AppState>,
    Path((id, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let job = find(&state, &id).await?;
    let file = FILES.iter().find(|f| f.name == file).ok_or_else(|| {
        ApiError::new(axum::http::StatusCode::NOT_FOUND, "not_found", "no such file")
    })?;
    if job.artifacts.get(file.name).is_none() {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "not_ready",
            format!("{} is not made yet (the job is {} at {})", file.name, job.state, job.stage),
        ));
    }
    let (size, stream) = state.storage.get_stream(&artifact_key(job.id, file.name)).await?;
    let name = format!("{}{}", filename::stem(&job.original_filename), file.suffix);
    let disposition = HeaderValue::from_str(&filename::attachment(&name))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(file.content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    headers.insert(header::CONTENT_DISPOSITION, disposition);
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    Ok(response)
}
