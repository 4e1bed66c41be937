//! Per-user limits on uploads: how many a user may start per minute (429 with
//! `Retry-After`) and how many bytes of recordings they may keep (413, nothing written).
//! Both count in Postgres, so every API process enforces the same figures. The limit on
//! concurrently running jobs is the workers' (see `JobRepo::claim_limited`).

use std::time::Duration;

use axum::http::StatusCode;
use uuid::Uuid;

use crate::error::ApiError;
use crate::AppState;

/// The window of the upload rate.
const RATE_WINDOW: Duration = Duration::from_secs(60);

/// 429 when `owner` has started as many uploads in the last minute as allowed.
pub async fn check_upload_rate(state: &AppState, owner: Uuid) -> Result<(), ApiError> {
    let limit = state.settings.access.uploads_per_minute;
    if limit == 0 {
        return Ok(());
    }
    let (count, wait) = state.repo.uploads_within(owner, RATE_WINDOW).await?;
    if count < i64::from(limit) {
        return Ok(());
    }
    let wait = wait.ceil().max(1.0) as u64;
    Err(ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("at most {limit} uploads a minute; try again in {wait} s"),
    )
    .retry_after(wait))
}

/// What `owner` may still store, in bytes (`None`: no quota).
pub async fn remaining_quota(state: &AppState, owner: Uuid) -> Result<Option<u64>, ApiError> {
    let quota = state.settings.access.user_quota_bytes;
    if quota == 0 {
        return Ok(None);
    }
    let used = u64::try_from(state.repo.stored_bytes(owner).await?).unwrap_or(0);
    Ok(Some(quota.saturating_sub(used)))
}

/// 413 for an upload that does not fit in the quota.
pub fn over_quota(state: &AppState, remaining: u64) -> ApiError {
    let mib = |bytes: u64| bytes / (1024 * 1024);
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "quota_exceeded",
        format!(
            "your storage quota of {} MiB is used up ({} MiB left); delete old jobs to make room",
            mib(state.settings.access.user_quota_bytes),
            mib(remaining)
        ),
    )
}
