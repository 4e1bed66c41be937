//! How minutes leave: the PDF's paper size and the notification email (outbox, sender,
//! retries, attachment size). One set of flags for `minutes process` and the worker.

use std::path::PathBuf;
use std::time::Duration;

use crate::mail::MailSettings;
use crate::stages::render::Paper;

/// Paper and mail flags; each also reads a `MINUTES_*` variable.
#[derive(Debug, Clone, clap::Args)]
pub struct DeliveryArgs {
    /// Paper size of the PDFs: a4 or letter.
    #[arg(long, env = "MINUTES_PAPER", default_value = "a4")]
    pub paper: Paper,
    /// Where emails go: smtp://user:pass@host:port (STARTTLS), smtps://user:pass@host:port
    /// (TLS) or file:///dir (.eml files); by default the output folder for
    /// `minutes process` and file://./data/outbox for the worker.
    #[arg(long, env = "MINUTES_MAIL_URL", hide_env_values = true)]
    pub mail_url: Option<String>,
    /// A PEM certificate to trust for the SMTP server (a private CA).
    #[arg(long, env = "MINUTES_MAIL_CA_FILE")]
    pub mail_ca_file: Option<PathBuf>,
    /// Tries per email; only temporary failures (4xx, timeouts) are retried.
    #[arg(long, env = "MINUTES_MAIL_ATTEMPTS", default_value_t = 4)]
    pub mail_attempts: u32,
    /// Wait before the first email retry, in milliseconds; doubles each time.
    #[arg(long, env = "MINUTES_MAIL_BACKOFF_MS", default_value_t = 5000)]
    pub mail_backoff_ms: u64,
    /// Sender of notification emails.
    #[arg(long, env = "MINUTES_MAIL_FROM", default_value = "minutes <minutes@localhost>")]
    pub mail_from: String,
    /// PDFs larger than this many MiB are not attached (only linked, when there is a link).
    #[arg(long, env = "MINUTES_ATTACHMENT_LIMIT_MB", default_value_t = 10)]
    pub attachment_limit_mb: usize,
}

impl DeliveryArgs {
    /// The outbox settings: `--mail-url`, or `default_url` when it is not given; a relative
    /// `file://./dir` is made absolute.
    pub fn mail(&self, default_url: &str) -> MailSettings {
        let given = self.mail_url.clone().unwrap_or_else(|| default_url.to_string());
        let url = match given.strip_prefix("file://") {
            Some(rest) if !rest.starts_with('/') => std::path::absolute(rest)
                .ok()
                .and_then(|dir| url::Url::from_directory_path(dir).ok())
                .map_or_else(|| given.clone(), |url| url.to_string()),
            _ => given.clone(),
        };
        MailSettings {
            ca_file: self.mail_ca_file.clone(),
            attempts: self.mail_attempts,
            backoff: Duration::from_millis(self.mail_backoff_ms),
            ..MailSettings::new(url)
        }
    }

    /// The attachment limit in bytes.
    pub fn attachment_limit(&self) -> usize {
        self.attachment_limit_mb.saturating_mul(1024 * 1024)
    }
}
