//! Getting jobs to workers: what the reconciler pushes to the queue again, and a worker's
//! claim of a job (the lease, the crash budget, the per-owner limit on running jobs).

use std::time::Duration;

use uuid::Uuid;

use super::versions::{end_without_result, VersionOutcome};
use super::{append_event, seconds, Job, JobRepo, JobState, Lease, RepoError};
use crate::failure::{FailureCode, FailureReason};

/// When the reconciler pushes a queued job again (see [`JobRepo::due_for_push`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushPolicy {
    /// A job never pushed is left this long after its time comes (its pusher may be about
    /// to push it).
    pub grace: Duration,
    /// A pushed job no worker claimed within this is pushed again.
    pub stranded_after: Duration,
}

/// The outcome of trying to take a job.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// Ours until the lease lapses.
    Leased(Lease, Box<Job>),
    /// Finished, cancelled, deleted, or leased by a live worker: nothing to do.
    NotClaimable,
    /// Workers holding it vanished too often; its run ended with `worker_lost` (the job is
    /// failed, or still done on its current version when this was a reprocess).
    CrashBudgetSpent,
    /// Its owner has as many jobs running as they may: it waits (see [`JobRepo::defer`]).
    OwnerBusy,
}

impl JobRepo {
    /// Records that the job is on the queue.
    pub async fn mark_enqueued(&self, id: Uuid) -> Result<(), RepoError> {
        sqlx::query!("UPDATE jobs SET enqueued_at = now() WHERE id = $1", id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Jobs the queue should hold but may not: queued ones not pushed yet whose time came
    /// more than `policy.grace` ago (the API died between commit and push, a retry's
    /// backoff ended, a stopping worker handed one back); queued ones pushed more than
    /// `policy.stranded_after` ago that no worker claimed (their ticket was lost in Redis,
    /// or dropped after the handler failed on a database outage); and running ones whose
    /// lease lapsed and that were not pushed since (their worker vanished). The reconciler
    /// pushes them; a duplicate delivery is harmless because only one worker can claim a
    /// job.
    pub async fn due_for_push(&self, policy: PushPolicy) -> Result<Vec<Uuid>, RepoError> {
        Ok(sqlx::query_scalar!(
            r#"(SELECT id FROM jobs
                WHERE state = 'queued' AND enqueued_at IS NULL
                  AND run_after < now() - make_interval(secs => $1)
                ORDER BY run_after LIMIT 1000)
               UNION ALL
               (SELECT id FROM jobs
                WHERE state = 'queued'
                  AND enqueued_at < now() - make_interval(secs => $2)
                  AND run_after < now() - make_interval(secs => $1)
                ORDER BY enqueued_at LIMIT 1000)
               UNION ALL
               (SELECT id FROM jobs
                WHERE state = 'running' AND lease_expires_at < now()
                  AND (enqueued_at IS NULL OR enqueued_at < lease_expires_at)
                ORDER BY lease_expires_at LIMIT 1000)"#,
            seconds(policy.grace),
            seconds(policy.stranded_after)
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .flatten()
        .collect())
    }

    /// Takes the job for `worker` for `lease` when it is queued, or running under a lease
    /// that lapsed (its worker vanished: that counts against the crash budget; at `budget`
    /// crashes the job fails with `worker_lost` instead).
    pub async fn claim(
        &self,
        id: Uuid,
        worker: &str,
        lease: Duration,
        crash_budget: i32,
    ) -> Result<Claim, RepoError> {
        self.claim_limited(id, worker, lease, crash_budget, None).await
    }

    /// [`Self::claim`], but refused ([`Claim::OwnerBusy`]) while the job's owner already has
    /// `running_per_owner` jobs running under live leases. Claims of one owner's jobs are
    /// serialised by an advisory lock, so two workers cannot both take the last slot.
    pub async fn claim_limited(
        &self,
        id: Uuid,
        worker: &str,
        lease: Duration,
        crash_budget: i32,
        running_per_owner: Option<u32>,
    ) -> Result<Claim, RepoError> {
        let mut tx = self.pool.begin().await?;
        let lost = sqlx::query_scalar!(
            r#"UPDATE jobs SET crash_count = crash_count + 1
               WHERE id = $1 AND state = 'running' AND lease_expires_at < now()
                 AND crash_count + 1 >= $2
               RETURNING crash_count"#,
            id,
            crash_budget
        )
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(crashes) = lost {
            let reason = FailureReason::new(
                FailureCode::WorkerLost,
                format!(
                    "the workers processing this recording stopped {crashes} times; \
                     it may crash the decoder"
                ),
            );
            let state = end_without_result(&mut tx, id, &reason, VersionOutcome::Failed).await?;
            let what = if state.is_final() && state != JobState::Failed {
                "reprocess failed"
            } else {
                "failed"
            };
            append_event(&mut tx, id, what, "worker_lost").await?;
            tx.commit().await?;
            return Ok(Claim::CrashBudgetSpent);
        }
        tx.commit().await?;
        let mut tx = self.pool.begin().await?;
        if let Some(limit) = running_per_owner {
            let owner = sqlx::query_scalar!(
                "SELECT owner_id FROM jobs WHERE id = $1 AND state = 'queued'",
                id
            )
            .fetch_optional(&mut *tx)
            .await?
            .flatten();
            if let Some(owner) = owner {
                sqlx::query!(
                    "SELECT pg_advisory_xact_lock(hashtextextended($1::text, 7))",
                    owner.to_string()
                )
                .execute(&mut *tx)
                .await?;
                let running = sqlx::query_scalar!(
                    r#"SELECT count(*) AS "count!" FROM jobs
                       WHERE owner_id = $1 AND state = 'running' AND lease_expires_at >= now()
                         AND id <> $2"#,
                    owner,
                    id
                )
                .fetch_one(&mut *tx)
                .await?;
                if running >= i64::from(limit) {
                    return Ok(Claim::OwnerBusy);
                }
            }
        }
        let token = Uuid::new_v4();
        let claimed = sqlx::query!(
            r#"UPDATE jobs
               SET state = 'running', lease_token = $2,
                   lease_expires_at = now() + make_interval(secs => $3),
                   worker_name = $4, attempts = attempts + 1,
                   crash_count = crash_count + CASE WHEN state = 'running' THEN 1 ELSE 0 END,
                   started_at = coalesce(started_at, now()), updated_at = now()
               WHERE id = $1 AND building_version IS NOT NULL
                 AND (state = 'queued' OR (state = 'running' AND lease_expires_at < now()))
               RETURNING attempts, building_version AS "version!""#,
            id,
            token,
            seconds(lease),
            worker
        )
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let Some(claimed) = claimed else { return Ok(Claim::NotClaimable) };
        let job = self.get(id).await?.ok_or(RepoError::LeaseLost(id))?;
        let lease =
            Lease { job_id: id, token, version: claimed.version, attempt: claimed.attempts };
        Ok(Claim::Leased(lease, Box::new(job)))
    }

    /// Puts a queued job back to wait: off the queue, pushed again by the reconciler after
    /// `delay` (its owner's other jobs are running; other owners' jobs go first meanwhile).
    pub async fn defer(&self, id: Uuid, delay: Duration) -> Result<(), RepoError> {
        sqlx::query!(
            r#"UPDATE jobs SET enqueued_at = NULL, run_after = now() + make_interval(secs => $2)
               WHERE id = $1 AND state = 'queued'"#,
            id,
            seconds(delay)
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
