//! Notify stage: the email that tells people their minutes are ready.
//!
//! Builds a MIME message with lettre: `Minutes: {title}` as subject (lettre's typed
//! headers encode CR and LF, so a title cannot smuggle in other headers), plain-text and
//! HTML alternatives with the summary, decisions and action items, the PDF attached when
//! it is under the size limit (otherwise only the link, when there is one), and a fixed
//! Message-ID so a resend is recognisable. A job that failed gets [`failure_email`] with
//! the reason instead. Delivering either (SMTP, or an `.eml` file) is the outbox's business
//! (`crate::mail`): this module returns the message's bytes and envelope.

use lettre::address::Envelope;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::Message;
use minutes_shared::minutes::Minutes;
use minutes_shared::subtitles::clock;

/// Who gets the message and what it may carry.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifyOptions {
    /// Sender, e.g. `minutes <minutes@example.com>`.
    pub from: String,
    /// Recipient.
    pub to: String,
    /// `<id@host>` without the brackets; derive it from the job so a resend has the same.
    pub message_id: String,
    /// The job page, when the service has a public address.
    pub link: Option<String>,
    /// PDFs larger than this are not attached (only linked).
    pub attachment_limit: usize,
}

/// Which email of a job a Message-ID names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// The minutes are ready.
    Minutes,
    /// The job failed.
    Failure,
}

/// The one Message-ID scheme of the daemon and the command line: `minutes-{job}-v{n}@minutes`
/// or `failed-{job}-v{n}@minutes`, `job` being the job id (or, for `minutes process`, the
/// key of the recording's folder) and `n` the version of its results, so a resend of the
/// same version carries the same ID and a reprocess a new one.
pub fn message_id(notice: Notice, job: &str, version: i32) -> String {
    let kind = match notice {
        Notice::Minutes => "minutes",
        Notice::Failure => "failed",
    };
    format!("{kind}-{job}-v{version}@minutes")
}

/// Why the message could not be built.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// An address does not parse.
    #[error("invalid email address {address:?}: {reason}")]
    Address {
        /// The address given.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// lettre refused the message.
    #[error("cannot build the email: {0}")]
    Build(String),
}

/// A message ready for an outbox.
#[derive(Debug, Clone)]
pub struct Email {
    /// The Message-ID without brackets.
    pub message_id: String,
    /// Sender and recipient for the SMTP envelope.
    pub envelope: Envelope,
    /// The RFC 5322 message.
    pub raw: Vec<u8>,
}

/// What the failure email says about a job that could not be completed.
#[derive(Debug, Clone, PartialEq)]
pub struct FailureNotice {
    /// The meeting's title.
    pub title: String,
    /// The uploaded file's name.
    pub source_filename: String,
    /// Why it failed, in plain words.
    pub reason: String,
}

fn mailbox(address: &str) -> Result<Mailbox, NotifyError> {
    address.parse().map_err(|e: lettre::address::AddressError| NotifyError::Address {
        address: address.to_string(),
        reason: e.to_string(),
    })
}

/// The message announcing `minutes`, with `pdf` attached under the limit.
pub fn minutes_email(
    minutes: &Minutes,
    pdf: &[u8],
    pdf_name: &str,
    options: &NotifyOptions,
) -> Result<Email, NotifyError> {
    let attach = pdf.len() <= options.attachment_limit;
    let text = SinglePart::plain(plain_body(minutes, options.link.as_deref(), attach));
    let html = SinglePart::html(html_body(minutes, options.link.as_deref(), attach));
    let alternatives = MultiPart::alternative().singlepart(text).singlepart(html);
    let body = if attach {
        let content_type =
            ContentType::parse("application/pdf").map_err(|e| NotifyError::Build(e.to_string()))?;
        let file = Attachment::new(pdf_name.to_string()).body(pdf.to_vec(), content_type);
        MultiPart::mixed().multipart(alternatives).singlepart(file)
    } else {
        alternatives
    };
    build(options, &format!("Minutes: {}", single_line(&minutes.title)), body)
}

/// The message saying that the minutes of a recording could not be made, and why.
pub fn failure_email(
    notice: &FailureNotice,
    options: &NotifyOptions,
) -> Result<Email, NotifyError> {
    let title = single_line(&notice.title);
    let mut text = format!(
        "The minutes of \"{title}\" ({}) could not be made.\n\nReason: {}\n",
        notice.source_filename, notice.reason
    );
    let mut html = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\"><p>The minutes of <b>{}</b> ({}) could not be made.</p><p>Reason: {}</p>",
        escape(&title),
        escape(&notice.source_filename),
        escape(&notice.reason)
    );
    if let Some(link) = &options.link {
        text.push_str(&format!("\nDetails and a Retry button: {link}\n"));
        html.push_str(&format!(
            "<p><a href=\"{}\">Details and a Retry button</a></p>",
            escape(link)
        ));
    }
    html.push_str("</body></html>");
    let body = MultiPart::alternative()
        .singlepart(SinglePart::plain(text))
        .singlepart(SinglePart::html(html));
    build(options, &format!("Minutes failed: {title}"), body)
}

fn build(options: &NotifyOptions, subject: &str, body: MultiPart) -> Result<Email, NotifyError> {
    let message = Message::builder()
        .from(mailbox(&options.from)?)
        .to(mailbox(&options.to)?)
        .subject(subject)
        .message_id(Some(format!("<{}>", options.message_id)))
        .multipart(body)
        .map_err(|e| NotifyError::Build(e.to_string()))?;
    Ok(Email {
        message_id: options.message_id.clone(),
        envelope: message.envelope().clone(),
        raw: message.formatted(),
    })
}

/// Titles come from people: fold any line break into a space before it becomes a header.
fn single_line(text: &str) -> String {
    text.split(['\r', '\n']).map(str::trim).filter(|p| !p.is_empty()).collect::<Vec<_>>().join(" ")
}

/// "Sarah Chen 60 %, S2 40 %": who took part and their share of the talk.
fn participants_line(minutes: &Minutes) -> String {
    let names = minutes
        .participants
        .iter()
        .map(|p| format!("{} {:.0} %", single_line(p.display_name()), p.share * 100.0));
    names.collect::<Vec<_>>().join(", ")
}

fn plain_body(minutes: &Minutes, link: Option<&str>, attached: bool) -> String {
    let mut out = format!("{}\n{}\n\n", single_line(&minutes.title), minutes.date);
    if !minutes.participants.is_empty() {
        out.push_str(&format!("Participants\n{}\n\n", participants_line(minutes)));
    }
    out.push_str(&format!("Summary\n{}\n\n", minutes.summary));
    if !minutes.decisions.is_empty() {
        out.push_str("Decisions\n");
        for d in &minutes.decisions {
            out.push_str(&format!("- [{}] {}\n", clock(d.at), d.text));
        }
        out.push('\n');
    }
    if !minutes.action_items.is_empty() {
        out.push_str("Action items\n");
        for a in &minutes.action_items {
            let who = a.owner.as_deref().unwrap_or("unassigned");
            let due = a.due.as_deref().map(|d| format!(", due {d}")).unwrap_or_default();
            out.push_str(&format!("- [{}] {} ({who}{due})\n", clock(a.at), a.text));
        }
        out.push('\n');
    }
    if attached {
        out.push_str("The full minutes and transcript are attached as a PDF.\n");
    }
    if let Some(link) = link {
        out.push_str(&format!("Open the minutes: {link}\n"));
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn html_body(minutes: &Minutes, link: Option<&str>, attached: bool) -> String {
    let mut out = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\"><h1>{}</h1><p>{}</p><h2>Summary</h2><p>{}</p>",
        escape(&single_line(&minutes.title)),
        escape(&minutes.date),
        escape(&minutes.summary)
    );
    if !minutes.participants.is_empty() {
        let line = escape(&participants_line(minutes));
        out = out.replacen(
            "<h2>Summary</h2>",
            &format!("<h2>Participants</h2><p>{line}</p><h2>Summary</h2>"),
            1,
        );
    }
    if !minutes.decisions.is_empty() {
        out.push_str("<h2>Decisions</h2><ul>");
        for d in &minutes.decisions {
            out.push_str(&format!("<li>[{}] {}</li>", clock(d.at), escape(&d.text)));
        }
        out.push_str("</ul>");
    }
    if !minutes.action_items.is_empty() {
        out.push_str("<h2>Action items</h2><table><tr><th>Owner</th><th>Due</th><th>Item</th><th>Time</th></tr>");
        for a in &minutes.action_items {
            out.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(a.owner.as_deref().unwrap_or("—")),
                escape(a.due.as_deref().unwrap_or("—")),
                escape(&a.text),
                clock(a.at)
            ));
        }
        out.push_str("</table>");
    }
    if attached {
        out.push_str("<p>The full minutes and transcript are attached as a PDF.</p>");
    }
    if let Some(link) = link {
        out.push_str(&format!("<p><a href=\"{}\">Open the minutes</a></p>", escape(link)));
    }
    out.push_str("</body></html>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use minutes_shared::minutes::{ActionItem, Point, SummarizerInfo, MINUTES_FORMAT_VERSION};

    fn minutes(title: &str) -> Minutes {
        Minutes {
            version: MINUTES_FORMAT_VERSION,
            title: title.into(),
            date: "2026-11-22".into(),
            duration: 62.0,
            language: "en".into(),
            source_filename: "m.flac".into(),
            summary: "We planned <the> release & more.".into(),
            key_points: vec![],
            decisions: vec![Point { text: "Ship on March 15.".into(), at: 24.0 }],
            action_items: vec![ActionItem {
                text: "Post the job.".into(),
                owner: Some("David".into()),
                due: Some("this week".into()),
                at: 43.0,
            }],
            open_questions: vec![],
            summarizer: SummarizerInfo::extractive(),
            quality: None,
            participants: Vec::new(),
            transcript: vec![],
        }
    }

    fn options() -> NotifyOptions {
        NotifyOptions {
            from: "minutes <minutes@localhost>".into(),
            to: "owner@example.com".into(),
            message_id: "job-42@minutes".into(),
            link: Some("https://minutes.example/jobs/42".into()),
            attachment_limit: 1024,
        }
    }

    fn headers(raw: &str) -> Vec<&str> {
        raw.split("\r\n\r\n").next().unwrap_or_default().split("\r\n").collect()
    }

    #[test]
    fn a_title_cannot_inject_headers() {
        let email = minutes_email(&minutes("Budget\r\nBcc: x@y"), b"%PDF-1.7", "m.pdf", &options())
            .unwrap_or_else(|e| panic!("{e}"));
        let raw = String::from_utf8_lossy(&email.raw);
        assert_eq!(email.envelope.to().len(), 1, "one envelope recipient");
        let head = headers(&raw);
        assert_eq!(head.iter().filter(|h| h.starts_with("Subject:")).count(), 1, "{raw}");
        assert!(!head.iter().any(|h| h.to_ascii_lowercase().starts_with("bcc:")), "{raw}");
        assert!(head.contains(&"To: owner@example.com"), "{raw}");
        assert!(head.contains(&"Message-ID: <job-42@minutes>"), "{raw}");
    }

    #[test]
    fn the_pdf_is_attached_under_the_limit_and_only_linked_over_it() {
        let small = minutes_email(&minutes("T"), b"%PDF-small", "m.pdf", &options())
            .unwrap_or_else(|e| panic!("{e}"));
        let small = String::from_utf8_lossy(&small.raw);
        assert!(small.contains("application/pdf") && small.contains("filename=\"m.pdf\""));
        assert!(small.contains("text/plain") && small.contains("text/html"));
        assert!(small.contains("&lt;the&gt; release &amp; more"), "HTML is escaped");
        let big = vec![b'x'; 2048];
        let big = minutes_email(&minutes("T"), &big, "m.pdf", &options())
            .unwrap_or_else(|e| panic!("{e}"));
        let big = String::from_utf8_lossy(&big.raw);
        assert!(!big.contains("application/pdf"));
        assert!(big.contains("https://minutes.example/jobs/42"));
    }

    #[test]
    fn a_failed_job_gets_a_failure_email_with_the_reason_and_the_link() {
        let notice = FailureNotice {
            title: "Budget".into(),
            source_filename: "budget.m4a".into(),
            reason: "not_media: the file is not audio or video".into(),
        };
        let email = failure_email(&notice, &options()).unwrap_or_else(|e| panic!("{e}"));
        let raw = String::from_utf8_lossy(&email.raw);
        assert!(headers(&raw).contains(&"Subject: Minutes failed: Budget"), "{raw}");
        assert!(raw.contains("not_media: the file is not audio or video"));
        assert!(raw.contains("https://minutes.example/jobs/42"));
        assert!(!raw.contains("application/pdf"));
    }

    #[test]
    fn a_bad_address_is_a_clear_error() {
        let mut options = options();
        options.to = "not an address".into();
        let error = minutes_email(&minutes("T"), b"", "m.pdf", &options).err();
        assert!(matches!(error, Some(NotifyError::Address { .. })), "{error:?}");
    }
}
