//! The `minutes-api` settings: the shared service settings plus what only the API needs.

use std::net::SocketAddr;

use minutes_shared::settings::ServiceSettings;

/// Every setting of an API process; each flag also reads a `MINUTES_*` variable.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiSettings {
    #[command(flatten)]
    /// Postgres, Redis and object store.
    pub service: ServiceSettings,
    #[command(flatten)]
    /// How the API logs.
    pub log: minutes_shared::logging::LogSettings,
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, env = "MINUTES_API_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Largest upload accepted, in bytes (4 GiB by default).
    #[arg(long, env = "MINUTES_MAX_UPLOAD_BYTES", default_value_t = 4 * 1024 * 1024 * 1024)]
    pub max_upload_bytes: u64,
    /// How often queued jobs missing from the queue are pushed again, in seconds.
    #[arg(long, env = "MINUTES_RECONCILE_SECS", default_value_t = 5)]
    pub reconcile_secs: u64,
    /// After a shutdown signal, how long requests in progress (uploads) may take before the
    /// process stops anyway, in seconds. Event streams end at once.
    #[arg(long, env = "MINUTES_API_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,
    #[command(flatten)]
    /// Accounts, sessions, links and limits.
    pub access: AccessSettings,
}

/// Accounts, sessions, links and per-user limits.
#[derive(Debug, Clone, clap::Args)]
pub struct AccessSettings {
    /// How long a web session lasts, in hours.
    #[arg(long, env = "MINUTES_SESSION_HOURS", default_value_t = 168, value_parser = clap::value_parser!(u64).range(1..=8760))]
    pub session_hours: u64,
    /// How long a signed download link works, in seconds.
    #[arg(long, env = "MINUTES_DOWNLOAD_LINK_SECS", default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..=604800))]
    pub download_link_secs: u64,
    /// Key that signs download links (at least 32 characters); by default a random key
    /// kept in Postgres and shared by every API process.
    #[arg(long, env = "MINUTES_SIGNING_KEY", hide_env_values = true)]
    pub signing_key: Option<String>,
    /// Failed sign-ins one account may have in the window before it must wait.
    #[arg(long, env = "MINUTES_LOGIN_ATTEMPTS_PER_ACCOUNT", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub login_attempts_per_account: u32,
    /// Failed sign-ins one client address may have in the window before it must wait.
    #[arg(long, env = "MINUTES_LOGIN_ATTEMPTS_PER_ADDRESS", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub login_attempts_per_address: u32,
    /// Reverse proxies in front of the API (comma-separated IPs): behind them the sign-in
    /// throttle counts the address they forward in `X-Forwarded-For`.
    #[arg(long, env = "MINUTES_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: TrustedProxies,
    /// The sign-in throttle's window, in seconds.
    #[arg(long, env = "MINUTES_LOGIN_WINDOW_SECS", default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..))]
    pub login_window_secs: u64,
    /// Uploads one user may start per minute (0: no limit).
    #[arg(long, env = "MINUTES_UPLOADS_PER_MINUTE", default_value_t = 10)]
    pub uploads_per_minute: u32,
    /// Bytes of recordings one user may keep stored (0: no limit; 20 GiB by default).
    #[arg(long, env = "MINUTES_USER_QUOTA_BYTES", default_value_t = 20 * 1024 * 1024 * 1024)]
    pub user_quota_bytes: u64,
    /// Who minutes may be mailed to besides the uploader: addresses and domains,
    /// comma-separated (empty: only the uploader's own address).
    #[arg(long, env = "MINUTES_MAIL_ALLOWED_RECIPIENTS", default_value = "")]
    pub mail_allowed_recipients: crate::recipients::AllowedRecipients,
    /// Progress streams (`/api/v1/jobs/{id}/events`) one user may hold open at once in one
    /// API process.
    #[arg(long, env = "MINUTES_EVENT_STREAMS_PER_USER", default_value_t = 8, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1000))]
    pub event_streams_per_user: usize,
}

impl AccessSettings {
    /// The settings as flags and `MINUTES_*` variables give them with nothing on the
    /// command line (embedding and tests).
    pub fn from_environment() -> Result<Self, clap::Error> {
        use clap::{Args as _, FromArgMatches as _};
        let command = AccessSettings::augment_args(clap::Command::new("minutes-api"));
        AccessSettings::from_arg_matches(&command.try_get_matches_from(["minutes-api"])?)
    }
}

/// A comma-separated list of IP addresses; empty means none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrustedProxies(pub Vec<std::net::IpAddr>);

impl std::str::FromStr for TrustedProxies {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| item.parse().map_err(|_| format!("{item:?} is not an IP address")))
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_lists_parse_and_empty_means_none() {
        assert_eq!("".parse::<TrustedProxies>(), Ok(TrustedProxies(vec![])));
        let two: Result<TrustedProxies, _> = "10.0.0.2, ::1".parse();
        assert_eq!(two.map(|p| p.0.len()), Ok(2));
        assert!("10.0.0.300".parse::<TrustedProxies>().is_err());
    }
}
