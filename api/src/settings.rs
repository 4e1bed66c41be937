//! The `minutes-api` settings: the shared service settings plus what only the API needs.

use std::net::SocketAddr;

use minutes_shared::settings::ServiceSettings;

/// Every setting of an API process; each flag also reads a `MINUTES_*` variable.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiSettings {
    #[command(flatten)]
    /// Postgres, Redis and object store.
    pub service: ServiceSettings,
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, env = "MINUTES_API_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Largest upload accepted, in bytes (4 GiB by default).
    #[arg(long, env = "MINUTES_MAX_UPLOAD_BYTES", default_value_t = 4 * 1024 * 1024 * 1024)]
    pub max_upload_bytes: u64,
    /// How often queued jobs missing from the queue are pushed again, in seconds.
    #[arg(long, env = "MINUTES_RECONCILE_SECS", default_value_t = 5)]
    pub reconcile_secs: u64,
}
