//! Logs of every binary: `tracing` events written to stderr by `tracing-subscriber`,
//! filtered by `RUST_LOG` (default `info`), as text for people or as JSON lines for a log
//! collector. In JSON each line carries the fields of the spans it happened in, so a
//! worker's lines carry the `job_id`, `attempt` and `request_id` of the job they are about.

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    #[default]
    Text,
    /// One JSON object per line, with the event's span fields.
    Json,
}

/// The logging flags every service binary takes.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LogSettings {
    /// How log lines are written: text, or json (one object per line). Which lines are
    /// written is up to RUST_LOG (default info).
    #[arg(long, global = true, env = "MINUTES_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// RUST_LOG is not a filter.
    #[error("RUST_LOG is not a valid filter: {0}")]
    Filter(#[from] tracing_subscriber::filter::ParseError),
    /// Another subscriber was installed first.
    #[error("logging was already set up: {0}")]
    Installed(#[from] tracing_subscriber::util::TryInitError),
}

impl LogSettings {
    /// Installs the process's subscriber. Call once, first thing in `main`.
    pub fn init(&self) -> Result<(), LogError> {
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::util::SubscriberInitExt as _;
        let filter = match std::env::var("RUST_LOG") {
            Ok(directives) if !directives.trim().is_empty() => EnvFilter::try_new(directives)?,
            _ => EnvFilter::new("info"),
        };
        let registry = tracing_subscriber::registry().with(filter);
        match self.log_format {
            LogFormat::Text => registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                        .with_writer(std::io::stderr),
                )
                .try_init()?,
            LogFormat::Json => registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .json()
                        .with_current_span(true)
                        .with_span_list(true)
                        .with_writer(std::io::stderr),
                )
                .try_init()?,
        }
        Ok(())
    }
}
