//! `POST /api/v1/jobs`: a multipart upload becomes a stored recording, a job row and a
//! ticket on the queue.
//!
//! The file streams into the object store as a multipart upload (memory stays at a few
//! parts whatever its size); its first bytes must be a supported container (415
//! otherwise), its size must stay under the maximum (413, the partial upload aborted).
//! Before any byte is read the owner's upload rate and storage quota are taken together with
//! a `pending_uploads` row (see `limits`); the row is removed in the same
//! transaction that creates the job, so an API that dies mid-upload leaves a row the
//! reconciler cleans up, never a stored file without a job. The queue push comes after the
//! commit; when it is lost the reconciler pushes the job within seconds. An
//! `Idempotency-Key` header makes a repeated request return the first job.

use std::sync::atomic::Ordering;

use axum::extract::multipart::{Field, Multipart, MultipartError};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use minutes_shared::jobs::NewJob;
use minutes_shared::options::{check_language, JobOptions, Speakers, SummarizerKind};
use minutes_shared::storage::{job_prefix, upload_key, Upload};
use uuid::Uuid;

use crate::auth::{csrf_refused, ApiUser, Principal};
use crate::error::{ApiError, ErrorBody};
use crate::filename;
use crate::form::{BoundedMultipart, FormLimitExceeded};
use crate::jobs::JobView;
use crate::limits::{over_quota, reserve};
use crate::sniff::{sniff, MediaType, SNIFF_LEN, SUPPORTED};
use crate::AppState;

/// Longest text field accepted (title, email, ...), in bytes.
const MAX_TEXT: usize = 1024;
/// Longest Idempotency-Key accepted.
const MAX_KEY: usize = 255;
/// Room for the multipart framing around the file when checking Content-Length.
const FORM_OVERHEAD: u64 = 64 * 1024;

/// The form of an upload (documentation; the body is read as a stream). `Deserialize` is
/// derived only so that utoipa reads `deny_unknown_fields` and documents that no other
/// field is taken.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The recording (audio or video), not empty.
    #[schema(format = Binary, value_type = String, min_length = 1)]
    file: Vec<u8>,
    /// Meeting title; by default made from the file name.
    #[schema(nullable = false)]
    title: Option<String>,
    /// Where the minutes are emailed.
    #[schema(nullable = false, format = Email)]
    email: Option<String>,
    /// Spoken language (ISO 639-1, or 639-3 for a language without a two-letter code);
    /// detected when omitted.
    #[schema(nullable = false, pattern = r"^\s*[A-Za-z]{2,3}\s*$")]
    language: Option<String>,
    /// `extractive` or `openai`; the worker's default when omitted.
    #[schema(nullable = false, value_type = Option<SummarizerKind>)]
    summarizer: Option<String>,
    /// A Whisper model this installation offers (`MINUTES_MODELS`), by name.
    #[schema(nullable = false)]
    model: Option<String>,
    /// Names and jargon to expect, e.g. "Kubernetes, Sarah Chen": no control characters
    /// but white space.
    #[schema(
        nullable = false,
        max_length = 500,
        pattern = r"^[^\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f]*$"
    )]
    vocabulary: Option<String>,
    /// Who speaks when: `auto` (the worker's default when omitted), a number from 1 to 20,
    /// or `off`.
    #[schema(nullable = false, pattern = r"^\s*(auto|off|[1-9]|1[0-9]|20)\s*$")]
    speakers: Option<String>,
}

/// The fields besides the file.
#[derive(Debug, Default)]
struct Options {
    title: Option<String>,
    email: Option<String>,
    language: Option<String>,
    job: JobOptions,
}

/// The stored file.
struct Stored {
    filename: String,
    media: MediaType,
    size: u64,
}

/// Uploads a recording and queues a job for it.
#[utoipa::path(post, path = "/api/v1/jobs", operation_id = "create_job",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    params(("Idempotency-Key" = Option<String>, Header, description = "the same key returns the same job: 1 to 255 visible ASCII characters", min_length = 1, max_length = 255, pattern = r"^[!-~]+$")),
    responses((status = 202, body = JobView, description = "queued; with an Idempotency-Key seen before, the job that key made",
                  headers(("Location" = String, description = "the job: /api/v1/jobs/{id}"),
                          ("Idempotent-Replayed" = String, description = "`true` when the key was seen before and this is its job"))),
              (status = 400, body = ErrorBody), (status = 413, body = ErrorBody),
              (status = 415, body = ErrorBody),
              (status = 429, body = ErrorBody, description = "over the upload rate or the storage quota",
                  headers(("Retry-After" = u64, description = "seconds to wait"))),
              (status = 503, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    headers: HeaderMap,
    BoundedMultipart(multipart): BoundedMultipart,
) -> Response {
    // The extractor checked a session's X-CSRF-Token already.
    match accept(&state, &principal, false, &headers, multipart).await {
        Ok((job, replayed)) => {
            state.counters.uploads.fetch_add(u64::from(!replayed), Ordering::Relaxed);
            let location = HeaderValue::from_str(&job.links.this).ok();
            let mut response = (StatusCode::ACCEPTED, Json(job)).into_response();
            if let Some(location) = location {
                response.headers_mut().insert(header::LOCATION, location);
            }
            if replayed {
                response
                    .headers_mut()
                    .insert("idempotent-replayed", HeaderValue::from_static("true"));
            }
            response
        }
        Err(error) => {
            state.counters.uploads_rejected.fetch_add(1, Ordering::Relaxed);
            error.into_response()
        }
    }
}

/// Takes an upload for `principal`. With `csrf_pending` (a session's form post) the form's
/// `csrf` field must come, and match, before the file.
pub(crate) async fn accept(
    state: &AppState,
    principal: &Principal,
    csrf_pending: bool,
    headers: &HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<(JobView, bool), ApiError> {
    let owner = principal.user.id;
    // Keys are the owner's own: another user's identical key is another job.
    let key = idempotency_key(headers)?.map(|key| format!("{owner}:{key}"));
    if let Some(key) = &key {
        if let Some(job) = state.repo.by_idempotency_key(key).await? {
            return Ok((crate::jobs::job_view(state, principal, &job), true));
        }
    }
    let max = state.settings.max_upload_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max.saturating_add(FORM_OVERHEAD)) {
        return Err(too_large(max));
    }
    let id = Uuid::new_v4();
    // The rate and the quota are taken here, with the pending row, in one step.
    let quota_left = reserve(state, id, owner, declared, FORM_OVERHEAD).await?;
    let limit = match quota_left {
        Some(left) if left < max => Limit::Quota(left),
        _ => Limit::MaxSize(max),
    };
    let mut multipart = match multipart {
        Ok(multipart) => multipart,
        Err(e) => {
            discard(state, id, false).await;
            return Err(ApiError::bad_request(format!(
                "expected a multipart/form-data body: {}",
                e.body_text()
            )));
        }
    };
    let mut stored: Option<Stored> = None;
    let upload = UploadContext { state, principal, id, limit, csrf_pending };
    let result = read_form(&upload, &mut multipart, &mut stored).await;
    let options = match result {
        Ok(options) => options,
        Err(error) => {
            discard(state, id, stored.is_some()).await;
            return Err(error);
        }
    };
    let Some(file) = stored else {
        discard(state, id, false).await;
        return Err(ApiError::bad_request("the form has no `file` field"));
    };
    if let Some(recipient) = &options.email {
        if !state.settings.access.mail_allowed_recipients.permits(&principal.user.email, recipient)
        {
            discard(state, id, true).await;
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "recipient_not_allowed",
                format!(
                    "email: minutes can be sent to your own address ({}) or to addresses \
                     this service's operator allows, not to {recipient}",
                    principal.user.email
                ),
            ));
        }
    }
    let new = NewJob {
        id,
        source_key: upload_key(id),
        original_filename: file.filename,
        content_type: file.media.content_type().to_string(),
        size_bytes: i64::try_from(file.size).unwrap_or(i64::MAX),
        title: options.title,
        language: options.language,
        // The owner's address unless the form names another.
        notify_email: options.email.or_else(|| Some(principal.user.email.clone())),
        options: options.job,
        idempotency_key: key,
        owner_id: Some(owner),
        request_id: crate::request_id::of(headers).map(str::to_owned),
    };
    let (job, created) = match state.repo.create(&new).await {
        Ok(created) => created,
        Err(error) => {
            discard(state, id, true).await;
            return Err(error.into());
        }
    };
    if !created {
        // Another request with the same key won the race: keep its job, drop our copy.
        discard(state, id, true).await;
        return Ok((crate::jobs::job_view(state, principal, &job), true));
    }
    state.enqueue(id).await?;
    tracing::info!(job_id = %id, size_bytes = new.size_bytes, "upload queued");
    let job = state.repo.get(id).await?.unwrap_or(job);
    Ok((crate::jobs::job_view(state, principal, &job), false))
}

/// Removes what an upload stored (when `stored` says bytes may be in the store) and its
/// pending row, which gives back its share of the rate and the quota. When the store
/// cannot delete yet, the row stays for the reconciler's sweep of stale uploads.
async fn discard(state: &AppState, id: Uuid, stored: bool) {
    if stored {
        if let Err(error) = state.storage.delete_prefix(&job_prefix(id)).await {
            tracing::warn!(upload = %id, %error, "cannot delete the partial upload yet");
            return;
        }
    }
    if let Err(error) = state.repo.upload_abandoned(id).await {
        tracing::warn!(upload = %id, %error, "cannot forget the abandoned upload yet");
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= MAX_KEY)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "Idempotency-Key: 1 to {MAX_KEY} visible ASCII characters"
            ))
        })?;
    Ok(Some(key.to_string()))
}

/// What bounds the file's size: the installation's maximum, or the owner's quota when
/// less is left of it.
#[derive(Debug, Clone, Copy)]
enum Limit {
    MaxSize(u64),
    Quota(u64),
}

impl Limit {
    fn bytes(self) -> u64 {
        match self {
            Limit::MaxSize(bytes) | Limit::Quota(bytes) => bytes,
        }
    }

    fn exceeded(self, state: &AppState) -> ApiError {
        match self {
            Limit::MaxSize(max) => too_large(max),
            Limit::Quota(remaining) => over_quota(state, remaining),
        }
    }
}

/// One upload's request-wide facts.
struct UploadContext<'a> {
    state: &'a AppState,
    principal: &'a Principal,
    id: Uuid,
    limit: Limit,
    csrf_pending: bool,
}

fn too_large(max: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("the recording is larger than the maximum of {} MiB", max / (1024 * 1024)),
    )
}

fn form_error(error: MultipartError) -> ApiError {
    if let Some(limit) = FormLimitExceeded::behind(&error) {
        return ApiError::new(StatusCode::BAD_REQUEST, "form_limit_exceeded", limit.to_string());
    }
    ApiError::bad_request(format!("the upload was cut off or malformed: {}", error.body_text()))
}

/// Reads every field; the file is stored as it arrives. `stored` is set as soon as bytes
/// may be in the store, so the caller can clean up after an error.
async fn read_form(
    upload: &UploadContext<'_>,
    multipart: &mut Multipart,
    stored: &mut Option<Stored>,
) -> Result<Options, ApiError> {
    let mut options = Options::default();
    let mut csrf_pending = upload.csrf_pending;
    while let Some(field) = multipart.next_field().await.map_err(form_error)? {
        let name = field.name().unwrap_or("").to_string();
        match name.as_str() {
            "csrf" => {
                let given = text(field).await?;
                if upload.principal.needs_csrf() {
                    upload.principal.check_csrf(Some(&given))?;
                }
                csrf_pending = false;
            }
            "file" => {
                if csrf_pending {
                    return Err(csrf_refused());
                }
                if stored.is_some() {
                    return Err(ApiError::bad_request("one `file` per upload"));
                }
                store_file(upload, field, stored).await?;
            }
            "title" => options.title = nonempty(text(field).await?).map(|t| single_line(&t)),
            "email" => options.email = nonempty(text(field).await?).map(check_email).transpose()?,
            "language" => {
                options.language =
                    nonempty(text(field).await?).map(|l| check_language(&l)).transpose()?
            }
            "summarizer" => {
                options.job.summarizer =
                    nonempty(text(field).await?).map(|s| s.parse()).transpose()?
            }
            "model" => options.job.model = nonempty(text(field).await?),
            "vocabulary" => options.job.vocabulary = nonempty(text(field).await?),
            "speakers" => {
                options.job.speakers = nonempty(text(field).await?)
                    .map(|s| s.parse::<Speakers>())
                    .transpose()
                    .map_err(|e| ApiError::bad_request(e.to_string()))?
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown field {:?}: expected file, title, email, language, summarizer, \
                     model, vocabulary, speakers, csrf",
                    other.chars().take(40).collect::<String>()
                )))
            }
        }
    }
    if csrf_pending {
        return Err(csrf_refused());
    }
    let service = &upload.state.settings.service;
    options.job = options.job.check(&service.models, &service.summarizers)?;
    Ok(options)
}

async fn store_file(
    upload_context: &UploadContext<'_>,
    mut field: Field<'_>,
    stored: &mut Option<Stored>,
) -> Result<(), ApiError> {
    let UploadContext { state, id, limit, .. } = *upload_context;
    let filename = filename::sanitize(field.file_name().unwrap_or(""));
    // The first bytes decide whether anything is stored at all.
    let mut head = Vec::with_capacity(SNIFF_LEN);
    let mut pending = Vec::new();
    while head.len() < SNIFF_LEN {
        match field.chunk().await.map_err(form_error)? {
            Some(chunk) => {
                let take = (SNIFF_LEN - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
                pending.push(chunk);
            }
            None => break,
        }
    }
    if head.is_empty() {
        return Err(ApiError::bad_request("the file is empty"));
    }
    let media = sniff(&head).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("{filename:?} is not a supported recording ({SUPPORTED})"),
        )
    })?;
    *stored = Some(Stored { filename, media, size: 0 });
    let mut upload = state.storage.start_upload(&upload_key(id)).await?;
    match stream_rest(state, &mut upload, &mut field, pending, limit).await {
        Ok(()) => {
            let size = upload.finish().await?;
            if let Some(stored) = stored.as_mut() {
                stored.size = size;
            }
            Ok(())
        }
        Err(error) => {
            let _ = upload.abort().await;
            Err(error)
        }
    }
}

async fn stream_rest(
    state: &AppState,
    upload: &mut Upload,
    field: &mut Field<'_>,
    pending: Vec<bytes::Bytes>,
    limit: Limit,
) -> Result<(), ApiError> {
    for chunk in pending {
        write(state, upload, &chunk, limit).await?;
    }
    while let Some(chunk) = field.chunk().await.map_err(form_error)? {
        write(state, upload, &chunk, limit).await?;
    }
    Ok(())
}

async fn write(
    state: &AppState,
    upload: &mut Upload,
    chunk: &[u8],
    limit: Limit,
) -> Result<(), ApiError> {
    if upload.written() + chunk.len() as u64 > limit.bytes() {
        return Err(limit.exceeded(state));
    }
    upload.write(chunk).await?;
    Ok(())
}

/// A text field, at most [`MAX_TEXT`] bytes of UTF-8.
async fn text(mut field: Field<'_>) -> Result<String, ApiError> {
    let name = field.name().unwrap_or("").to_string();
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(form_error)? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_TEXT {
            return Err(ApiError::bad_request(format!("{name}: at most {MAX_TEXT} bytes")));
        }
    }
    String::from_utf8(bytes).map_err(|_| ApiError::bad_request(format!("{name}: not UTF-8")))
}

fn nonempty(text: String) -> Option<String> {
    let trimmed = text.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// Control characters (CR, LF, NUL) become spaces: a title is one line everywhere.
fn single_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// The same rules as account emails: one line, one `@`, a dotted domain.
fn check_email(address: String) -> Result<String, ApiError> {
    minutes_shared::accounts::check_email(&address)
        .map_err(|error| ApiError::bad_request(format!("email: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_are_checked() {
        assert!(check_email("a@example.com".into()).is_ok());
        assert!(check_email("a@b".into()).is_err());
        assert!(check_email("x@y.z\r\nBcc: v@w.x".into()).is_err());
        assert_eq!(check_language("EN").ok().as_deref(), Some("en"));
        assert!(check_language("english").is_err());
        assert_eq!(single_line("Plan\r\nBcc: x@y"), "Plan  Bcc: x@y");
    }
}
