//! The `minutes-worker` settings: the shared service settings plus what only a worker needs
//! (recognition, summarizer, mail, concurrency, retry and crash budgets, shutdown grace).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use minutes_shared::settings::ServiceSettings;

use crate::mail::MailSettings;
use crate::settings::{DeliveryArgs, RecognitionArgs, SummarizerArgs};

/// Every setting of a worker process; each flag also reads a `MINUTES_*` variable.
#[derive(Debug, clap::Args)]
pub struct WorkerSettings {
    #[command(flatten)]
    /// Postgres, Redis and object store.
    pub service: ServiceSettings,
    #[command(flatten)]
    /// How the worker logs.
    pub log: minutes_shared::logging::LogSettings,
    #[command(flatten)]
    /// Speech recognition.
    pub recognition: RecognitionArgs,
    #[command(flatten)]
    /// The provider used when a job does not name one.
    pub summarizer: SummarizerArgs,
    /// This process's name on the queue; must differ between processes (by default host,
    /// process id and a random suffix).
    #[arg(long, env = "MINUTES_WORKER_NAME")]
    pub name: Option<String>,
    /// Jobs this process runs at once (each transcription uses every thread it is given).
    #[arg(long, env = "MINUTES_WORKER_CONCURRENCY", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Address of the worker's /healthz and /metrics (port 0 picks a free one).
    #[arg(long, env = "MINUTES_WORKER_HTTP_ADDR", default_value = "127.0.0.1:9464")]
    pub http_addr: SocketAddr,
    /// Workers holding a job may vanish this many times before it fails with `worker_lost`.
    #[arg(long, env = "MINUTES_CRASH_BUDGET", default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=100))]
    pub crash_budget: i32,
    /// Jobs one user may have running at once (0: no limit); their other jobs wait while
    /// other users' jobs go ahead.
    #[arg(long, env = "MINUTES_MAX_RUNNING_PER_USER", default_value_t = 2)]
    pub max_running_per_user: u32,
    /// Transient errors (storage, network) a job may meet before it fails.
    #[arg(long, env = "MINUTES_RETRY_BUDGET", default_value_t = 8, value_parser = clap::value_parser!(i32).range(1..=100))]
    pub retry_budget: i32,
    /// Wait before the first retry after a transient error, in seconds; doubles each time.
    #[arg(long, env = "MINUTES_RETRY_BACKOFF_SECS", default_value_t = 15.0)]
    pub retry_backoff_secs: f64,
    /// Longest wait between retries, in seconds.
    #[arg(long, env = "MINUTES_RETRY_BACKOFF_CAP_SECS", default_value_t = 3600.0)]
    pub retry_backoff_cap_secs: f64,
    /// On SIGTERM or SIGINT, running jobs get this many seconds to finish before they are
    /// handed back to the queue.
    #[arg(long, env = "MINUTES_SHUTDOWN_GRACE_SECS", default_value_t = 120)]
    pub shutdown_grace_secs: u64,
    /// How often queued jobs missing from the queue are pushed again, in seconds.
    #[arg(long, env = "MINUTES_RECONCILE_SECS", default_value_t = 5)]
    pub reconcile_secs: u64,
    /// Folder for recordings being processed (deleted after each job).
    #[arg(long, env = "MINUTES_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
    #[command(flatten)]
    /// The PDFs' paper and the notification emails.
    pub delivery: DeliveryArgs,
    /// Versions of a job's results kept; older ones are deleted after a run succeeds,
    /// never the current one.
    #[arg(long, env = "MINUTES_KEEP_VERSIONS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub keep_versions: u32,
}

impl WorkerSettings {
    /// The outbox settings (by default `file://./data/outbox`, made absolute).
    pub fn mail(&self) -> MailSettings {
        self.delivery.mail("file://./data/outbox")
    }

    /// The folder for recordings in progress.
    pub fn work_dir(&self) -> PathBuf {
        self.work_dir.clone().unwrap_or_else(|| std::env::temp_dir().join("minutes-worker"))
    }

    /// A name unique to this process unless one was given.
    pub fn worker_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "worker".into());
            let suffix = uuid::Uuid::new_v4().simple().to_string();
            format!("{host}-{}-{}", std::process::id(), &suffix[..8])
        })
    }

    /// The wait before retry number `retries + 1`: doubling from the base up to the cap,
    /// with up to a fifth of jitter so retries of many jobs spread out.
    pub fn retry_backoff(&self, retries: i32) -> Duration {
        let base = self.retry_backoff_secs.max(0.0);
        let exponential = base * 2f64.powi(retries.clamp(0, 30));
        let capped = exponential.min(self.retry_backoff_cap_secs.max(base));
        let jitter = f64::from(uuid::Uuid::new_v4().as_bytes()[0]) / 255.0 * 0.2;
        Duration::from_secs_f64(capped * (1.0 + jitter))
    }
}
