//! Request ids: every request gets one (the caller's `X-Request-Id` when it is a short
//! token, else a new UUID), set on the request for the handlers, returned in the
//! response's `X-Request-Id`, and carried by the request's span, so each log line of a
//! request names it. An upload records it on its job, and the worker's log lines for
//! that job carry it too.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Span;

/// The header, in requests and responses.
pub static HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest caller-chosen id kept; a longer or odd one is replaced.
const MAX_LENGTH: usize = 64;

/// Middleware: gives the request its id and returns it on the response.
pub async fn assign(mut request: Request, next: Next) -> Response {
    let id = of(request.headers())
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let value = HeaderValue::from_str(&id).ok();
    if let Some(value) = &value {
        request.headers_mut().insert(HEADER.clone(), value.clone());
    }
    let mut response = next.run(request).await;
    if let Some(value) = value {
        response.headers_mut().insert(HEADER.clone(), value);
    }
    response
}

/// The request's id, once [`assign`] ran (or the caller's, when it is usable).
pub fn of(headers: &HeaderMap) -> Option<&str> {
    headers.get(&HEADER).and_then(|value| value.to_str().ok()).filter(|id| usable(id))
}

/// A caller's id is kept only when it is 1 to 64 letters, digits, `-`, `_`, `.` or `:`:
/// it goes into logs and the database, so nothing that could forge a log line.
fn usable(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LENGTH
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The span of one request (for tower-http's `TraceLayer`).
pub fn span(request: &Request) -> Span {
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = request.uri().path(),
        request_id = of(request.headers()).unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_ids_from_callers_are_kept() {
        assert!(usable("3f1c-req_42.a:b"));
        assert!(!usable(""));
        assert!(!usable(&"a".repeat(65)));
        assert!(!usable("evil\" level=ERROR"));
        assert!(!usable("line\nbreak"));
    }
}
