//! A user's upload allowance, checked and taken in one step: the upload rate (uploads
//! started per window) and the storage quota (bytes of recordings kept). Checking first and
//! recording later let parallel uploads all pass; here one transaction, serialised per
//! owner by an advisory lock, counts the owner's jobs and uploads in progress and writes
//! the new upload's pending row with the bytes it reserves.

use std::time::Duration;

use uuid::Uuid;

use super::{seconds, JobRepo, RepoError};

/// Salt of the advisory lock that serialises one owner's reservations (the claim of an
/// owner's jobs uses another).
const RESERVATION_LOCK: i64 = 11;

/// What an upload asks of its owner's allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadAllowance {
    /// Uploads an owner may start per `window` (0: no limit).
    pub per_window: u32,
    /// The window of the rate.
    pub window: Duration,
    /// Bytes of recordings an owner may keep (0: no quota).
    pub quota_bytes: u64,
    /// The size the request declares (its Content-Length), when it declares one.
    pub declared_bytes: Option<u64>,
    /// How much of the declared size may be form framing rather than file.
    pub framing_bytes: u64,
}

/// The answer to an upload's request for room.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reservation {
    /// The pending row is written; the file may have up to `quota_bytes` bytes (none: no
    /// quota bounds it).
    Granted {
        /// What the quota leaves this upload.
        quota_bytes: Option<u64>,
    },
    /// The owner started as many uploads as the rate allows; the oldest leaves the window
    /// after this.
    RateLimited {
        /// Until a new upload is allowed.
        retry_after: Duration,
    },
    /// The declared size does not fit in what is left of the quota.
    OverQuota {
        /// Bytes left of the quota.
        left_bytes: u64,
    },
}

impl JobRepo {
    /// Reserves room for upload `id` of `owner` under `allowance` and writes its pending
    /// row (an upload without an owner is only recorded). The caller streams the file
    /// within the granted bytes, then creates the job (which removes the pending row) or
    /// calls [`Self::upload_abandoned`].
    pub async fn reserve_upload(
        &self,
        id: Uuid,
        owner: Option<Uuid>,
        allowance: UploadAllowance,
    ) -> Result<Reservation, RepoError> {
        let mut tx = self.pool.begin().await?;
        let mut reserved = 0_u64;
        let mut granted = None;
        if let Some(owner) = owner {
            sqlx::query!(
                "SELECT pg_advisory_xact_lock(hashtextextended($1::text, $2))",
                owner.to_string(),
                RESERVATION_LOCK
            )
            .execute(&mut *tx)
            .await?;
            if allowance.per_window > 0 {
                let recent = sqlx::query!(
                    r#"SELECT count(*) AS "count!",
                              coalesce(extract(epoch FROM
                                  (min(at) + make_interval(secs => $2) - now())), 0)::float8
                                  AS "wait!"
                       FROM (SELECT created_at AS at FROM jobs
                             WHERE owner_id = $1
                               AND created_at > now() - make_interval(secs => $2)
                             UNION ALL
                             SELECT started_at FROM pending_uploads p
                             WHERE owner_id = $1
                               AND started_at > now() - make_interval(secs => $2)
                               AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = p.job_id))
                            recent"#,
                    owner,
                    seconds(allowance.window)
                )
                .fetch_one(&mut *tx)
                .await?;
                if recent.count >= i64::from(allowance.per_window) {
                    let retry_after = Duration::from_secs_f64(recent.wait.clamp(0.0, 3600.0));
                    return Ok(Reservation::RateLimited { retry_after });
                }
            }
            if allowance.quota_bytes > 0 {
                let used = sqlx::query_scalar!(
                    r#"SELECT ((SELECT coalesce(sum(size_bytes), 0) FROM jobs
                                WHERE owner_id = $1)
                             + (SELECT coalesce(sum(reserved_bytes), 0) FROM pending_uploads p
                                WHERE owner_id = $1
                                  AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = p.job_id))
                            )::bigint AS "used!""#,
                    owner
                )
                .fetch_one(&mut *tx)
                .await?;
                let left = allowance.quota_bytes.saturating_sub(u64::try_from(used).unwrap_or(0));
                let fits = allowance.declared_bytes.is_none_or(|declared| {
                    declared <= left.saturating_add(allowance.framing_bytes)
                });
                if left == 0 || !fits {
                    return Ok(Reservation::OverQuota { left_bytes: left });
                }
                reserved = allowance.declared_bytes.map_or(left, |declared| declared.min(left));
                granted = Some(reserved);
            }
        }
        sqlx::query!(
            r#"INSERT INTO pending_uploads (job_id, owner_id, reserved_bytes) VALUES ($1, $2, $3)
               ON CONFLICT (job_id) DO NOTHING"#,
            id,
            owner,
            i64::try_from(reserved).unwrap_or(i64::MAX)
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Reservation::Granted { quota_bytes: granted })
    }
}
