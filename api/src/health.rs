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
use serde::Serialize;

use crate::AppState;

/// Liveness.
#[utoipa::path(get, path = "/healthz", security(()), responses((status = 200, description = "ok")))]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// What `/readyz` found.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// "ok", "unavailable" or "timeout" (the error itself goes to the log).
    pub postgres: String,
    /// "ok", "unavailable" or "timeout".
    pub redis: String,
    /// The object store: "ok", "unavailable" or "timeout".
    pub storage: String,
}

/// `/readyz` is public: it says whether a dependency answers, never its error text (which
/// can name hosts, users or buckets); that goes to the log.
fn status<E: std::fmt::Display>(service: &str, result: Result<(), E>) -> String {
    match result {
        Ok(()) => "ok".into(),
        Err(error) => {
            tracing::warn!(service, %error, "not ready");
            "unavailable".into()
        }
    }
}

/// Readiness: 200 when Postgres, Redis and the object store all answer, else 503.
#[utoipa::path(get, path = "/readyz", security(()),
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let check = async { sqlx::query("SELECT 1").execute(state.repo.pool()).await.map(|_| ()) };
    let timeout = std::time::Duration::from_secs(3);
    let bounded = |service: &str| {
        tracing::warn!(service, "not ready: no answer within 3 s");
        "timeout".to_string()
    };
    let (postgres, redis, storage) = tokio::join!(
        tokio::time::timeout(timeout, check),
        tokio::time::timeout(timeout, state.queue.ping()),
        tokio::time::timeout(timeout, state.storage.check()),
    );
    let readiness = Readiness {
        postgres: postgres.map(|r| status("postgres", r)).unwrap_or_else(|_| bounded("postgres")),
        redis: redis.map(|r| status("redis", r)).unwrap_or_else(|_| bounded("redis")),
        storage: storage.map(|r| status("storage", r)).unwrap_or_else(|_| bounded("storage")),
    };
    let ready =
        [&readiness.postgres, &readiness.redis, &readiness.storage].iter().all(|s| *s == "ok");
    (if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, Json(readiness))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `/readyz` returned raw error text (a Redis URL with its user, a bucket name).
    #[test]
    fn readyz_says_unavailable_without_the_error_text() {
        let failed: Result<(), &str> = Err("redis://admin:hunter2@cache.internal: refused");
        assert_eq!(status("redis", failed), "unavailable");
        assert_eq!(status("redis", Ok::<(), &str>(())), "ok");
    }
}
