//! The worker's small HTTP server: `/healthz` (the process answers) and `/metrics`
//! (Prometheus text).

use std::sync::Arc;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use super::metrics::Metrics;

/// Serves until the process ends.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    let app =
        Router::new().route("/healthz", get(|| async { "ok\n" })).route(
            "/metrics",
            get(move || {
                let text = metrics.render();
                async move {
                    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
                }
            }),
        );
    if let Err(error) = axum::serve(listener, app).await {
        tracing::error!(%error, "the health and metrics server stopped");
    }
}
