//! The `minutes` HTTP API. For now it only answers health checks; the upload, job and
//! download routes arrive with the service (see ARCHITECTURE.md). It links no audio or
//! machine-learning code: the API only moves files and rows.

use axum::routing::get;
use axum::Router;

/// The application's routes.
pub fn router() -> Router {
    Router::new().route("/healthz", get(healthz))
}

/// Liveness: the process is up and serving.
async fn healthz() -> &'static str {
    "ok\n"
}
