//! API errors: every failure answers JSON `{"error": code, "message": text}` with the status
//! that fits, and internal details stay in the log.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use minutes_shared::accounts::AccountError;
pub use minutes_shared::api::ErrorBody;
use minutes_shared::jobs::RepoError;
use minutes_shared::queue::QueueError;
use minutes_shared::storage::StorageError;

/// An error as the client sees it.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
    /// Seconds to wait before trying again (`Retry-After`), for 429 and 503.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), retry_after: None }
    }

    /// The same error with a `Retry-After` of `seconds`.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// 404 for a job that does not exist.
    pub fn job_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such job")
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 503 for a backing service that is down; the detail goes to the log.
    fn unavailable(what: &str, detail: impl std::fmt::Display) -> Self {
        tracing::error!(service = what, %detail, "backing service unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("the {what} is not available; try again shortly"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: self.code.to_string(), message: self.message };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"minutes\""),
            );
        }
        response
    }
}

/// Options that cannot be used are the caller's mistake.
impl From<minutes_shared::options::OptionsError> for ApiError {
    fn from(error: minutes_shared::options::OptionsError) -> Self {
        ApiError::bad_request(error.to_string())
    }
}

impl From<RepoError> for ApiError {
    fn from(error: RepoError) -> Self {
        Self::unavailable("database", error)
    }
}

impl From<StorageError> for ApiError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::NotFound(_) => {
                Self::new(StatusCode::NOT_FOUND, "not_found", "that file is not stored")
            }
            other => Self::unavailable("object store", other),
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(error: QueueError) -> Self {
        Self::unavailable("queue", error)
    }
}

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::Invalid(message) => Self::bad_request(message),
            AccountError::EmailTaken(_) | AccountError::NoSuchUser(_) => {
                Self::new(StatusCode::CONFLICT, "conflict", error.to_string())
            }
            AccountError::Repo(error) => error.into(),
            AccountError::Crypto(detail) => Self::unavailable("account store", detail),
        }
    }
}
