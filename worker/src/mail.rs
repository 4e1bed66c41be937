//! The outbox: delivers notification emails to where one URL setting says.
//!
//! - `file:///dir` (the default): writes `{name}.eml` into the folder, atomically; a
//!   resend replaces the file.
//! - `smtp://user:pass@host:port`: SMTP with STARTTLS required (port 587 by default);
//!   `?tls=opportunistic` or `?tls=none` for a relay on a trusted network.
//! - `smtps://user:pass@host:port`: SMTP over TLS from the first byte (port 465).
//!
//! A private CA can be trusted with [`MailSettings::ca_file`]. Transient failures (4xx
//! replies, timeouts, refused connections) are retried with exponential backoff; permanent
//! ones (5xx replies, such as an unknown recipient or a refused login) and TLS failures
//! (an untrusted certificate) are not.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use percent_encoding::percent_decode_str;
use url::Url;

use crate::stages::notify::Email;

/// Where and how to deliver.
#[derive(Debug, Clone, PartialEq)]
pub struct MailSettings {
    /// `file:///dir`, `smtp://...` or `smtps://...`.
    pub url: String,
    /// A PEM certificate to trust besides the public roots (a self-hosted relay's CA).
    pub ca_file: Option<PathBuf>,
    /// Tries per message (transient failures only).
    pub attempts: u32,
    /// Wait before the first retry; doubles on each further one.
    pub backoff: Duration,
    /// Time limit of each SMTP command.
    pub timeout: Duration,
}

impl MailSettings {
    /// Settings for `url` with the default retry policy (4 tries, 5 s, 10 s, 20 s apart).
    pub fn new(url: impl Into<String>) -> Self {
        MailSettings {
            url: url.into(),
            ca_file: None,
            attempts: 4,
            backoff: Duration::from_secs(5),
            timeout: Duration::from_secs(60),
        }
    }
}

/// Why a message was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The URL or the CA file cannot be used.
    #[error("mail settings: {0}")]
    Settings(String),
    /// The server refused for good (5xx): retrying would not help.
    #[error("the mail server refused the message: {0}")]
    Permanent(String),
    /// The TLS handshake failed (an unknown CA, a wrong host name): a setting to fix, so
    /// it is not retried.
    #[error("TLS with the mail server failed: {0}")]
    Tls(String),
    /// Temporary failures on every try.
    #[error("the message could not be delivered after {attempts} tries: {message}")]
    Transient {
        /// Tries made.
        attempts: u32,
        /// The last failure.
        message: String,
    },
    /// The outbox folder could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// A message delivered, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Tries it took (1 when the first was accepted).
    pub attempts: u32,
    /// The file written, or `smtp://host:port`.
    pub destination: String,
}

/// A configured outbox.
#[derive(Debug, Clone)]
pub enum Outbox {
    /// `.eml` files in a folder.
    Folder(PathBuf),
    /// An SMTP server.
    Smtp {
        /// The transport, with TLS and credentials set.
        transport: Box<AsyncSmtpTransport<Tokio1Executor>>,
        /// `smtp://host:port`, for messages (never with the password).
        address: String,
        /// Tries per message.
        attempts: u32,
        /// First retry delay.
        backoff: Duration,
    },
}

impl Outbox {
    /// The outbox `settings.url` names.
    pub fn new(settings: &MailSettings) -> Result<Self, MailError> {
        let url = Url::parse(&settings.url).map_err(|e| {
            MailError::Settings(format!("{:?} is not a URL: {e}", redacted(&settings.url)))
        })?;
        match url.scheme() {
            "file" => {
                let dir = url.to_file_path().map_err(|()| {
                    MailError::Settings(format!("{:?} is not a local folder", settings.url))
                })?;
                Ok(Outbox::Folder(dir))
            }
            "smtp" | "smtps" => smtp(&url, settings),
            other => Err(MailError::Settings(format!(
                "unknown mail URL scheme {other:?}: use file:///dir, smtp://host:port or smtps://host:port"
            ))),
        }
    }

    /// Delivers `email`; the folder outbox names the file `{name}.eml`.
    pub async fn deliver(&self, email: &Email, name: &str) -> Result<Delivery, MailError> {
        match self {
            Outbox::Folder(dir) => {
                let path = dir.join(format!("{}.eml", safe_file_name(name)));
                write_atomically(dir, &path, &email.raw)?;
                Ok(Delivery { attempts: 1, destination: path.display().to_string() })
            }
            Outbox::Smtp { transport, address, attempts, backoff } => {
                let attempts = (*attempts).max(1);
                let mut attempt = 1;
                loop {
                    match transport.send_raw(&email.envelope, &email.raw).await {
                        Ok(_) => {
                            return Ok(Delivery { attempts: attempt, destination: address.clone() })
                        }
                        Err(error) if error.is_permanent() => {
                            return Err(MailError::Permanent(describe(&error)))
                        }
                        Err(error) if error.is_tls() || is_tls_failure(&error) => {
                            return Err(MailError::Tls(describe(&error)))
                        }
                        Err(error) if attempt >= attempts => {
                            return Err(MailError::Transient {
                                attempts,
                                message: describe(&error),
                            })
                        }
                        Err(_) => {
                            tokio::time::sleep(backoff.saturating_mul(1 << (attempt - 1).min(10)))
                                .await;
                            attempt += 1;
                        }
                    }
                }
            }
        }
    }
}

fn smtp(url: &Url, settings: &MailSettings) -> Result<Outbox, MailError> {
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| MailError::Settings(format!("{:?} names no host", redacted(&settings.url))))?
        .trim_matches(['[', ']'])
        .to_string();
    let implicit_tls = url.scheme() == "smtps";
    let port = url.port().unwrap_or(if implicit_tls { 465 } else { 587 });
    let mode = url
        .query_pairs()
        .find(|(key, _)| key == "tls")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_else(|| "required".into());
    let mut tls = TlsParameters::builder(host.clone());
    if let Some(path) = &settings.ca_file {
        let pem =
            std::fs::read(path).map_err(|source| MailError::Io { path: path.clone(), source })?;
        let cert = Certificate::from_pem(&pem).map_err(|e| {
            MailError::Settings(format!("{}: not a PEM certificate: {e}", path.display()))
        })?;
        tls = tls.add_root_certificate(cert);
    }
    let tls = tls.build_rustls().map_err(|e| MailError::Settings(format!("TLS: {e}")))?;
    let tls = match (implicit_tls, mode.as_str()) {
        (true, _) => Tls::Wrapper(tls),
        (false, "required") => Tls::Required(tls),
        (false, "opportunistic") => Tls::Opportunistic(tls),
        (false, "none") => Tls::None,
        (false, other) => {
            return Err(MailError::Settings(format!(
                "tls={other:?}: use required (the default), opportunistic or none"
            )))
        }
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
        .port(port)
        .tls(tls)
        .timeout(Some(settings.timeout));
    if !url.username().is_empty() {
        let decode = |text: &str| percent_decode_str(text).decode_utf8_lossy().into_owned();
        let password = url.password().map(decode).unwrap_or_default();
        builder = builder.credentials(Credentials::new(decode(url.username()), password));
    }
    Ok(Outbox::Smtp {
        transport: Box::new(builder.build()),
        address: format!("{}://{host}:{port}", url.scheme()),
        attempts: settings.attempts,
        backoff: settings.backoff,
    })
}

/// The URL with its password replaced, for error messages.
fn redacted(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

/// lettre's error with those of its causes that add something (its own message often
/// repeats its cause's).
fn describe(error: &lettre::transport::smtp::Error) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        source = cause.source();
    }
    message
}

/// Whether a rustls error (an untrusted certificate, a wrong name) is behind `error`:
/// lettre reports a failed handshake on a TLS-wrapped connection as a connection error.
fn is_tls_failure(error: &lettre::transport::smtp::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        // io::Error::source skips the error it wraps, so look inside it too.
        let wrapped = cause.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref());
        if cause.is::<rustls::Error>() || wrapped.is_some_and(|inner| inner.is::<rustls::Error>()) {
            return true;
        }
        source = cause.source();
    }
    false
}

/// Letters, digits, `-`, `_` and `.` kept; anything else becomes `_`.
fn safe_file_name(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
        .collect();
    let safe = safe.trim_start_matches('.');
    if safe.is_empty() {
        "message".into()
    } else {
        safe.to_string()
    }
}

fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), MailError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| MailError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let partial = path.with_extension("eml.partial");
    std::fs::write(&partial, bytes).map_err(io(&partial))?;
    std::fs::rename(&partial, path).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_choose_the_transport_and_bad_ones_say_why() {
        let folder = Outbox::new(&MailSettings::new("file:///tmp/outbox"));
        assert!(matches!(folder, Ok(Outbox::Folder(ref p)) if p == Path::new("/tmp/outbox")));
        let starttls = Outbox::new(&MailSettings::new("smtp://u:p%40ss@mail.example:2525"));
        assert!(
            matches!(starttls, Ok(Outbox::Smtp { ref address, .. }) if address == "smtp://mail.example:2525")
        );
        let tls = Outbox::new(&MailSettings::new("smtps://mail.example"));
        assert!(
            matches!(tls, Ok(Outbox::Smtp { ref address, .. }) if address == "smtps://mail.example:465")
        );
        for bad in ["imap://x", "smtp://x?tls=maybe", "not a url", "smtp://:25"] {
            let error = Outbox::new(&MailSettings::new(bad)).err();
            assert!(matches!(error, Some(MailError::Settings(_))), "{bad}: {error:?}");
        }
    }

    #[test]
    fn passwords_never_appear_in_errors() {
        let error = Outbox::new(&MailSettings::new("smtp://user:secret@mail.example?tls=maybe"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!error.contains("secret"), "{error}");
        assert_eq!(redacted("smtp://user:secret@host"), "smtp://user:***@host");
    }

    #[test]
    fn file_names_cannot_leave_the_folder() {
        assert_eq!(safe_file_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(safe_file_name("job-42@minutes"), "job-42_minutes");
        assert_eq!(safe_file_name(""), "message");
    }
}
