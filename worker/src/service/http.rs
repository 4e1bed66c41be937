//! The worker's small HTTP server: `/healthz` (the process answers), `/readyz` (the
//! Postgres, Redis and object store it works with answer: 200, else 503, see
//! `minutes_shared::readiness`) and `/metrics` (Prometheus text).

use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use minutes_shared::jobs::JobRepo;
use minutes_shared::queue::JobQueue;
use minutes_shared::readiness;
use minutes_shared::storage::Storage;
use tokio::net::TcpListener;

use super::metrics::Metrics;

/// What `/readyz` checks.
pub struct Dependencies {
    /// Postgres.
    pub repo: JobRepo,
    /// Redis.
    pub queue: JobQueue,
    /// The object store.
    pub storage: Storage,
}

/// Serves until the process ends.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, dependencies: Dependencies) {
    let dependencies = Arc::new(dependencies);
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let dependencies = Arc::clone(&dependencies);
                async move {
                    let found = readiness::check(
                        &dependencies.repo,
                        &dependencies.queue,
                        &dependencies.storage,
                    )
                    .await;
                    let status = if found.is_ready() {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    };
                    (status, Json(found))
                }
            }),
        )
        .route(
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
