//! Settings both service binaries read: where Postgres, Redis and the object store are.
//!
//! Each is a flag with an environment variable (`MINUTES_*`), so the same binary runs from a
//! shell, a systemd unit or a compose file. The compose file's `.env.example` lists every
//! variable; a test keeps the two in step.

use std::path::Path;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;

use crate::jobs::{JobRepo, PushPolicy};
use crate::queue::{JobQueue, QueueSettings};
use crate::storage::{Storage, StorageSettings};

/// The longest the reconciler leaves a job that was never pushed (see
/// [`ServiceSettings::push_policy`]).
pub const PUSH_GRACE: Duration = Duration::from_secs(2);

/// Postgres, Redis and object-store settings of a service process.
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceSettings {
    /// Postgres URL (the source of truth for jobs).
    #[arg(
        long,
        env = "MINUTES_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/minutes",
        hide_env_values = true
    )]
    pub database_url: String,
    /// Connections this process keeps open to Postgres at most.
    #[arg(long, env = "MINUTES_DATABASE_MAX_CONNECTIONS", default_value_t = 10)]
    pub database_max_connections: u32,
    /// Redis URL (the job queue).
    #[arg(
        long,
        env = "MINUTES_REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        hide_env_values = true
    )]
    pub redis_url: String,
    /// Name of the job queue in Redis; every API and worker of one installation uses the same.
    #[arg(long, env = "MINUTES_QUEUE", default_value = "minutes:jobs")]
    pub queue: String,
    /// Seconds between a worker's heartbeats to the queue and to its job's lease.
    #[arg(long, env = "MINUTES_HEARTBEAT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub heartbeat_secs: u64,
    /// Heartbeats a worker may miss before its job is given to another worker.
    #[arg(long, env = "MINUTES_MISSED_HEARTBEATS", default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub missed_heartbeats: u64,
    /// A queued job that no worker has claimed this many seconds after it was pushed is
    /// pushed again: its ticket may be gone (Redis lost its last second of writes, was
    /// flushed, or dropped a delivery the handler could not finish).
    #[arg(long, env = "MINUTES_STRANDED_SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub stranded_secs: u64,
    /// Object store: a folder (`./data`, `file:///srv/minutes`) or `s3://bucket`.
    #[arg(long, env = "MINUTES_STORAGE_URL", default_value = "./data/objects")]
    pub storage_url: String,
    /// S3 endpoint for stores other than AWS (MinIO, Garage, Ceph), e.g. http://minio:9000.
    #[arg(long, env = "MINUTES_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// S3 region.
    #[arg(long, env = "MINUTES_S3_REGION")]
    pub s3_region: Option<String>,
    /// S3 access key id.
    #[arg(long, env = "MINUTES_S3_ACCESS_KEY_ID", hide_env_values = true)]
    pub s3_access_key_id: Option<String>,
    /// S3 secret access key.
    #[arg(long, env = "MINUTES_S3_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_access_key: Option<String>,
    /// The address people reach the web pages at (links in emails), e.g.
    /// https://minutes.example.com.
    #[arg(long, env = "MINUTES_PUBLIC_URL")]
    pub public_url: Option<url::Url>,
    /// The Whisper models a job may ask for, by name (`minutes models list`), each
    /// optionally with its folder: `tiny.en,base,large=/models/whisper-large-v3`.
    #[arg(long, env = "MINUTES_MODELS", default_value = "tiny.en")]
    pub models: crate::models::ModelList,
    /// The summarizers a job may ask for (`extractive`, `openai`); a job that asks for none
    /// gets the workers' `MINUTES_SUMMARIZER`.
    #[arg(long, env = "MINUTES_SUMMARIZERS", default_value = "extractive")]
    pub summarizers: crate::options::SummarizerList,
}

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

/// The three services a process of the installation talks to.
#[derive(Debug, Clone)]
pub struct Services {
    /// Postgres, migrated.
    pub repo: JobRepo,
    /// The object store.
    pub storage: Storage,
    /// Redis.
    pub queue: JobQueue,
}

/// Why the services could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// A setting cannot be used.
    #[error("{0}")]
    Settings(String),
    /// Postgres could not be reached or migrated.
    #[error("database: {0}")]
    Database(String),
    /// Redis could not be reached.
    #[error("queue: {0}")]
    Queue(String),
}

impl ServiceSettings {
    /// The queue settings.
    pub fn queue(&self) -> QueueSettings {
        QueueSettings {
            heartbeat: self.heartbeat(),
            missed_heartbeats: self.missed_heartbeats as usize,
            ..QueueSettings::new(self.redis_url.clone(), self.queue.clone())
        }
    }

    /// How often workers beat.
    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.heartbeat_secs)
    }

    /// How long a job's lease lasts without a heartbeat: the orphan time.
    pub fn lease(&self) -> Duration {
        self.heartbeat() * self.missed_heartbeats as u32
    }

    /// What the reconciler pushes again, when it runs every `every`. A job never pushed is
    /// left alone for at most [`PUSH_GRACE`] (its API pushes it within milliseconds when
    /// alive), so one whose API died is on the queue within that plus one interval (7 s
    /// with the default 5 s; the grace used to be a whole interval, 10 s in the worst case,
    /// at R10's bound).
    pub fn push_policy(&self, every: Duration) -> PushPolicy {
        PushPolicy {
            grace: every.min(PUSH_GRACE),
            stranded_after: Duration::from_secs(self.stranded_secs),
        }
    }

    /// Connects to Postgres (applying the migrations), the object store and Redis.
    pub async fn connect(&self) -> Result<Services, ConnectError> {
        let pool = PgPoolOptions::new()
            .max_connections(self.database_max_connections.max(2))
            .acquire_timeout(Duration::from_secs(10))
            .connect(&self.database_url)
            .await
            .map_err(|e| ConnectError::Database(e.to_string()))?;
        let repo = JobRepo::new(pool);
        repo.migrate().await.map_err(|e| ConnectError::Database(e.to_string()))?;
        let storage_settings = self.storage().map_err(|e| ConnectError::Settings(e.to_string()))?;
        let storage =
            Storage::new(&storage_settings).map_err(|e| ConnectError::Settings(e.to_string()))?;
        let queue = JobQueue::connect(&self.queue())
            .await
            .map_err(|e| ConnectError::Queue(e.to_string()))?;
        Ok(Services { repo, storage, queue })
    }

    /// The object-store settings; a plain folder path becomes a `file://` URL.
    pub fn storage(&self) -> Result<StorageSettings, SettingsError> {
        Ok(StorageSettings {
            url: storage_url(&self.storage_url)?,
            endpoint: self.s3_endpoint.clone(),
            region: self.s3_region.clone(),
            access_key_id: self.s3_access_key_id.clone(),
            secret_access_key: self.s3_secret_access_key.clone(),
        })
    }
}

/// `file://` and `s3://` URLs as they are; anything else is a folder, made absolute.
fn storage_url(text: &str) -> Result<String, SettingsError> {
    if text.contains("://") {
        return Ok(text.to_string());
    }
    let absolute = std::path::absolute(Path::new(text))
        .map_err(|e| SettingsError(format!("storage folder {text:?}: {e}")))?;
    url::Url::from_directory_path(&absolute)
        .map(|url| url.to_string())
        .map_err(|()| SettingsError(format!("storage folder {text:?} is not a usable path")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_becomes_a_file_url_and_urls_stay() {
        let url = storage_url("data/objects").expect("a folder");
        assert!(url.starts_with("file:///") && url.ends_with("/data/objects/"), "{url}");
        assert_eq!(storage_url("s3://bucket").expect("url"), "s3://bucket");
    }
}
