//! `/healthz` (the process answers), `/readyz` (Postgres, Redis and the object store
//! answer) and `/metrics` (Prometheus text: jobs by state, queue depth, oldest queued age,
//! stage durations, failures, uploads).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use minutes_shared::jobs::JobState;
use minutes_shared::readiness::{self, Readiness};

use crate::AppState;

/// Liveness.
#[utoipa::path(get, path = "/healthz", security(()), responses((status = 200, description = "ok")))]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: 200 when Postgres, Redis and the object store all answer, else 503.
#[utoipa::path(get, path = "/readyz", security(()),
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let readiness = readiness::check(&state.repo, &state.queue, &state.storage).await;
    let status =
        if readiness.is_ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(readiness))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", security(()), responses((status = 200, description = "Prometheus text")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut out = String::new();
    let _ = writeln!(out, "# HELP minutes_jobs Jobs by state.\n# TYPE minutes_jobs gauge");
    match state.repo.count_by_state().await {
        Ok(counts) => {
            for job_state in JobState::ALL {
                let count = counts.iter().find(|(s, _)| *s == job_state).map_or(0, |(_, c)| *c);
                let _ = writeln!(out, "minutes_jobs{{state=\"{job_state}\"}} {count}");
            }
            let failed = counts.iter().find(|(s, _)| *s == JobState::Failed).map_or(0, |(_, c)| *c);
            let _ = writeln!(out, "# HELP minutes_jobs_failed Jobs that ended failed.\n# TYPE minutes_jobs_failed gauge");
            let _ = writeln!(out, "minutes_jobs_failed {failed}");
        }
        Err(error) => tracing::warn!(%error, "job counts not read for /metrics"),
    }
    if let Ok(depth) = state.queue.depth().await {
        let _ = writeln!(out, "# HELP minutes_queue_depth Tickets waiting in Redis.\n# TYPE minutes_queue_depth gauge");
        let _ = writeln!(out, "minutes_queue_depth {depth}");
    }
    if let Ok(age) = state.repo.oldest_queued_age().await {
        let _ = writeln!(out, "# HELP minutes_oldest_queued_seconds Age of the oldest queued job.\n# TYPE minutes_oldest_queued_seconds gauge");
        let _ = writeln!(out, "minutes_oldest_queued_seconds {age:.1}");
    }
    if let Ok(stages) = state.repo.stage_durations().await {
        let _ = writeln!(out, "# HELP minutes_stage_seconds Time jobs spent per stage over the last day.\n# TYPE minutes_stage_seconds summary");
        for (stage, count, seconds) in stages {
            let _ = writeln!(out, "minutes_stage_seconds_sum{{stage=\"{stage}\"}} {seconds:.3}");
            let _ = writeln!(out, "minutes_stage_seconds_count{{stage=\"{stage}\"}} {count}");
        }
    }
    let counters = &state.counters;
    let _ = writeln!(
        out,
        "# HELP minutes_uploads_total Uploads by outcome.\n# TYPE minutes_uploads_total counter"
    );
    let _ = writeln!(
        out,
        "minutes_uploads_total{{outcome=\"accepted\"}} {}",
        counters.uploads.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "minutes_uploads_total{{outcome=\"rejected\"}} {}",
        counters.uploads_rejected.load(Ordering::Relaxed)
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
