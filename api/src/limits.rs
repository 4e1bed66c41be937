//! Per-user limits on uploads: how many a user may start per minute (429 with
//! `Retry-After`) and how many bytes of recordings they may keep (413, nothing written).
//! Both are counted and taken in one Postgres transaction ([`JobRepo::reserve_upload`]),
//! so every API process enforces the same figures and parallel uploads cannot together
//! pass them. The limit on concurrently running jobs is the workers' (see
//! `JobRepo::claim_limited`).
//!
//! [`JobRepo::reserve_upload`]: minutes_shared::jobs::JobRepo::reserve_upload

use std::time::Duration;

use axum::http::StatusCode;
use minutes_shared::jobs::{Reservation, UploadAllowance};
use uuid::Uuid;

use crate::error::ApiError;
use crate::AppState;

/// The window of the upload rate.
const RATE_WINDOW: Duration = Duration::from_secs(60);

/// Takes room for upload `id` of `owner` that declares `declared_bytes` (its
/// Content-Length, which may hold `framing_bytes` of form around the file). Returns what
/// the quota leaves the file (none: no quota), or the 429 or 413 to answer.
pub async fn reserve(
    state: &AppState,
    id: Uuid,
    owner: Uuid,
    declared_bytes: Option<u64>,
    framing_bytes: u64,
) -> Result<Option<u64>, ApiError> {
    let access = &state.settings.access;
    let allowance = UploadAllowance {
        per_window: access.uploads_per_minute,
        window: RATE_WINDOW,
        quota_bytes: access.user_quota_bytes,
        declared_bytes,
        framing_bytes,
    };
    match state.repo.reserve_upload(id, Some(owner), allowance).await? {
        Reservation::Granted { quota_bytes } => Ok(quota_bytes),
        Reservation::RateLimited { retry_after } => {
            let wait = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "at most {} uploads a minute; try again in {wait} s",
                    access.uploads_per_minute
                ),
            )
            .retry_after(wait))
        }
        Reservation::OverQuota { left_bytes } => Err(over_quota(state, left_bytes)),
    }
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
