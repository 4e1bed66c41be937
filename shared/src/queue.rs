//! The job queue: Redis, through `apalis` and `apalis-redis` (both pinned to `=1.0.0`).
//!
//! The queue only says "job X is ready": a [`JobTicket`] carries the job id and nothing
//! else; Postgres holds everything about the job. Every setting apalis would otherwise
//! default is chosen here: the queue name (apalis defaults to the Rust type name, so a
//! rename would silently move the queue), the heartbeat and how many beats a worker may
//! miss before its tasks are re-queued, and one task fetched at a time (a worker must not
//! hoard recordings it cannot start yet). Pushing the same job twice is harmless: only one
//! worker can claim it in Postgres.

use std::time::Duration;

use apalis::prelude::TaskSink;
use apalis_redis::{Config, ConnectionManager, RedisStorage};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::jobs::{JobRepo, PushPolicy, RepoError};

/// How long a Redis command may take before it counts as failed.
const REDIS_RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// What travels on the queue: the id of a job that is ready to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobTicket {
    /// The job to run; its row says what to do.
    pub job_id: Uuid,
}

/// Where the queue is and how its workers are watched.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSettings {
    /// `redis://host:port/db`.
    pub redis_url: String,
    /// The queue's name (its Redis keys start with it).
    pub name: String,
    /// How often a worker tells Redis it is alive.
    pub heartbeat: Duration,
    /// Beats a worker may miss before its tasks are handed to others.
    pub missed_heartbeats: usize,
}

impl QueueSettings {
    /// The queue `name` at `redis_url` with the service's defaults: a heartbeat every 10 s,
    /// orphaned after 3 missed beats (30 s).
    pub fn new(redis_url: impl Into<String>, name: impl Into<String>) -> Self {
        QueueSettings {
            redis_url: redis_url.into(),
            name: name.into(),
            heartbeat: Duration::from_secs(10),
            missed_heartbeats: 3,
        }
    }

    fn apalis_config(&self) -> Config {
        Config::default()
            .queue(&self.name)
            .heartbeat_interval(self.heartbeat)
            .missed_heartbeats(self.missed_heartbeats)
            .batch_size(1)
            // Results live in Postgres; apalis need not keep them.
            .persist_results(false)
            .emit_events(false)
    }
}

/// Why a queue call failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The settings cannot be used.
    #[error("queue settings: {0}")]
    Settings(String),
    /// Redis could not be reached or refused.
    #[error("redis: {0}")]
    Redis(String),
    /// Postgres could not say which jobs are due.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// The storage apalis workers consume.
pub type QueueBackend = RedisStorage<JobTicket>;

/// A connection to the job queue.
#[derive(Clone)]
pub struct JobQueue {
    storage: QueueBackend,
    connection: ConnectionManager,
    settings: QueueSettings,
}

impl std::fmt::Debug for JobQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobQueue").field("name", &self.settings.name).finish()
    }
}

impl JobQueue {
    /// Connects to Redis (the connection reconnects by itself after an outage).
    pub async fn connect(settings: &QueueSettings) -> Result<Self, QueueError> {
        if settings.name.trim().is_empty() {
            return Err(QueueError::Settings("the queue name is empty".into()));
        }
        if settings.heartbeat.is_zero() || settings.missed_heartbeats == 0 {
            return Err(QueueError::Settings(
                "the heartbeat and missed heartbeats must be above zero".into(),
            ));
        }
        let redis_error = |e: redis::RedisError| {
            QueueError::Redis(format!("{}: {e}", redact(&settings.redis_url)))
        };
        let client = redis::Client::open(settings.redis_url.as_str()).map_err(redis_error)?;
        // redis-rs answers "timed out" after 500 ms by default: on a busy machine that drops
        // pushes and fetches that would have succeeded. Allow a busy server some seconds.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(REDIS_RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(Duration::from_secs(5)));
        let connection =
            client.get_connection_manager_with_config(config).await.map_err(redis_error)?;
        let storage = RedisStorage::new(connection.clone()).with_config(settings.apalis_config());
        Ok(JobQueue { storage, connection, settings: settings.clone() })
    }

    /// Says job `job_id` is ready to run.
    pub async fn push(&self, job_id: Uuid) -> Result<(), QueueError> {
        let mut storage = self.storage.clone();
        storage.push(JobTicket { job_id }).await.map_err(|e| QueueError::Redis(e.to_string()))
    }

    /// Tickets waiting for a worker. apalis files every push under its run time in the
    /// `scheduled` set and moves due ones to the `active` list when a worker fetches, so
    /// both count.
    pub async fn depth(&self) -> Result<u64, QueueError> {
        let mut connection = self.connection.clone();
        let config = self.storage.get_config();
        let (active, scheduled): (u64, u64) = redis::pipe()
            .cmd("LLEN")
            .arg(config.active_jobs_list())
            .cmd("ZCARD")
            .arg(config.scheduled_jobs_set())
            .query_async(&mut connection)
            .await
            .map_err(|e| QueueError::Redis(e.to_string()))?;
        Ok(active + scheduled)
    }

    /// Whether Redis answers (readiness checks).
    pub async fn ping(&self) -> Result<(), QueueError> {
        let mut connection = self.connection.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .map(|_| ())
            .map_err(|e| QueueError::Redis(e.to_string()))
    }

    /// The backend a worker consumes, with the same settings.
    pub fn backend(&self) -> QueueBackend {
        self.storage.clone()
    }

    /// The settings this queue was opened with.
    pub fn settings(&self) -> &QueueSettings {
        &self.settings
    }
}

/// The reconciler's pass, run every few seconds by every API and worker process: pushes
/// the jobs Postgres says should be on the queue (see [`JobRepo::due_for_push`]) and
/// records that they are. Returns how many were pushed.
pub async fn push_due(
    repo: &JobRepo,
    queue: &JobQueue,
    policy: PushPolicy,
) -> Result<usize, QueueError> {
    let due = repo.due_for_push(policy).await?;
    for id in &due {
        queue.push(*id).await?;
        repo.mark_enqueued(*id).await?;
    }
    Ok(due.len())
}

/// `url` without its password, for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden_in_messages() {
        assert_eq!(redact("redis://:secret@host:6379/0"), "redis://:***@host:6379/0");
        assert_eq!(redact("redis://host:6379"), "redis://host:6379");
    }

    #[test]
    fn the_queue_settings_are_explicit() {
        let config = QueueSettings::new("redis://x", "minutes:jobs").apalis_config();
        assert_eq!(config.queue.as_ref(), "minutes:jobs");
        assert_eq!(config.orphaned_duration(), Duration::from_secs(30));
        assert_eq!(config.batch_size, 1);
    }
}
