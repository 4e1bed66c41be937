//! The outbox against a real SMTP server (aiosmtpd, started by the README's test command;
//! `MINUTES_TEST_SMTP_STATE` names its ports, CA and mail folder). Faults are chosen by the
//! recipient's local part: `tempfail-*` gets 451 once, `reject-*` always gets 550.

use std::time::Duration;

use mail_parser::{MessageParser, MimeHeaders};
use minutes_shared::minutes::Minutes;
use minutes_worker::mail::{MailError, MailSettings, Outbox};
use minutes_worker::stages::notify::{minutes_email, Email, NotifyOptions};
use minutes_worker::stages::render::{render_pdf, Paper, RenderOptions};
use minutes_worker::stages::summarize::{assemble, extractive, MeetingInfo};
use sha2::{Digest, Sha256};

use super::*;

#[derive(serde::Deserialize)]
pub(super) struct SmtpState {
    pub(super) starttls: String,
    tls: String,
    pub(super) ca_file: PathBuf,
    maildir: PathBuf,
    user: String,
    password: String,
}

pub(super) fn state() -> SmtpState {
    let path = std::env::var("MINUTES_TEST_SMTP_STATE").expect(
        "MINUTES_TEST_SMTP_STATE: run the tests with the README's test command (scripts/test)",
    );
    serde_json::from_slice(&std::fs::read(&path).expect("read the SMTP state"))
        .expect("SMTP state JSON")
}

pub(super) fn url(scheme: &str, address: &str) -> String {
    let state = state();
    let password = state.password.replace(' ', "%20");
    format!("{scheme}://{}:{password}@{address}", state.user)
}

fn settings(url: String, trust_test_ca: bool) -> MailSettings {
    MailSettings {
        ca_file: trust_test_ca.then(|| state().ca_file),
        attempts: 3,
        backoff: Duration::from_millis(50),
        timeout: Duration::from_secs(20),
        ..MailSettings::new(url)
    }
}

/// A recipient no other test uses.
pub(super) fn recipient(prefix: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    format!("{prefix}-{}-{n}@example.test", std::process::id())
}

/// Raw messages the server accepted whose `To:` is `to`.
pub(super) fn received(to: &str) -> Vec<Vec<u8>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(state().maildir).expect("maildir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "eml") {
            let raw = std::fs::read(&path).expect("read message");
            let to_header = format!("To: {to}\r\n");
            if raw.windows(to_header.len()).any(|w| w == to_header.as_bytes()) {
                found.push(raw);
            }
        }
    }
    found
}

/// The codes the server answered to RCPT TO for `address`, in order.
fn rcpt_codes(address: &str) -> Vec<String> {
    let log = std::fs::read_to_string(state().maildir.join("rcpt.log")).unwrap_or_default();
    log.lines()
        .filter_map(|line| line.strip_prefix(&format!("{address} ")).map(str::to_string))
        .collect()
}

fn minutes(title: &str) -> Minutes {
    let lines = ["We decided to ship on March 15.", "David will post the job listing by Friday."];
    let transcript = scripted_transcript(&lines, 6.0);
    let info = MeetingInfo {
        title: title.into(),
        date: "2026-11-22".into(),
        source_filename: "m.flac".into(),
    };
    let summary = extractive::summarize(&transcript);
    assemble(&info, &transcript, summary, minutes_shared::minutes::SummarizerInfo::extractive())
}

fn email(title: &str, to: &str, pdf: &[u8]) -> Email {
    let options = NotifyOptions {
        from: "minutes <minutes@example.test>".into(),
        to: to.into(),
        message_id: format!("{}@minutes", to.replace('@', ".")),
        link: Some("https://minutes.example/jobs/42".into()),
        attachment_limit: 10 * 1024 * 1024,
    };
    minutes_email(&minutes(title), pdf, "minutes.pdf", &options).expect("email")
}

fn deliver(outbox: &Outbox, email: &Email) -> Result<minutes_worker::mail::Delivery, MailError> {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(outbox.deliver(email, "unused"))
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The decoded bytes of the `application/pdf` part of `raw`.
fn pdf_attachment(raw: &[u8]) -> Vec<u8> {
    let message = MessageParser::default().parse(raw).expect("the message parses");
    let pdf = message
        .attachments()
        .find(|part| part.content_type().is_some_and(|t| t.c_subtype.as_deref() == Some("pdf")))
        .expect("a PDF attachment");
    pdf.contents().to_vec()
}

fn assert_delivered_intact(scheme: &str, address: &str) {
    let to = recipient("owner");
    let pdf =
        render_pdf(&minutes("Planning"), &RenderOptions { paper: Paper::A4, created_unix: 0 })
            .expect("render");
    let outbox = Outbox::new(&settings(url(scheme, address), true)).expect("outbox");
    let delivery = deliver(&outbox, &email("Planning", &to, &pdf)).expect("delivered");
    assert_eq!(delivery.attempts, 1);
    let messages = received(&to);
    assert_eq!(messages.len(), 1, "exactly one message for {to}");
    assert_eq!(sha256(&pdf_attachment(&messages[0])), sha256(&pdf), "attachment bytes intact");
    let parsed = MessageParser::default().parse(&messages[0]).expect("parse");
    assert_eq!(parsed.subject(), Some("Minutes: Planning"));
    assert_eq!(parsed.message_id(), Some(format!("{}@minutes", to.replace('@', ".")).as_str()));
}

#[test]
fn smtp_with_starttls_delivers_the_pdf_byte_for_byte() {
    assert_delivered_intact("smtp", &state().starttls);
}

#[test]
fn smtps_delivers_the_pdf_byte_for_byte() {
    assert_delivered_intact("smtps", &state().tls);
}

#[test]
fn a_title_smuggling_a_bcc_header_gives_one_subject_and_no_bcc() {
    let to = recipient("owner");
    let outbox = Outbox::new(&settings(url("smtp", &state().starttls), true)).expect("outbox");
    deliver(&outbox, &email("Budget\r\nBcc: x@y.test", &to, b"%PDF-1.7")).expect("delivered");
    let messages = received(&to);
    assert_eq!(messages.len(), 1);
    let raw = String::from_utf8_lossy(&messages[0]);
    let head = raw.split("\r\n\r\n").next().expect("headers");
    let lines: Vec<&str> = head.split("\r\n").collect();
    assert_eq!(lines.iter().filter(|l| l.starts_with("Subject:")).count(), 1, "{head}");
    assert!(!lines.iter().any(|l| l.to_ascii_lowercase().starts_with("bcc:")), "{head}");
    assert!(rcpt_codes("x@y.test").is_empty(), "the smuggled address never became a recipient");
}

#[test]
fn a_451_is_retried_and_a_550_is_not() {
    let outbox = Outbox::new(&settings(url("smtp", &state().starttls), true)).expect("outbox");
    let later = recipient("tempfail");
    let delivery =
        deliver(&outbox, &email("Retry", &later, b"%PDF-1.7")).expect("delivered on retry");
    assert_eq!(delivery.attempts, 2);
    assert_eq!(rcpt_codes(&later), ["451", "250"]);
    assert_eq!(received(&later).len(), 1);

    let never = recipient("reject");
    let error = deliver(&outbox, &email("Refused", &never, b"%PDF-1.7")).err();
    assert!(matches!(error, Some(MailError::Permanent(ref m)) if m.contains("550")), "{error:?}");
    assert_eq!(rcpt_codes(&never), ["550"], "a permanent refusal is not retried");
}

#[test]
fn a_server_certificate_from_an_unknown_ca_is_refused() {
    let to = recipient("owner");
    let outbox = Outbox::new(&settings(url("smtps", &state().tls), false)).expect("outbox");
    let error = deliver(&outbox, &email("Secret", &to, b"%PDF-1.7")).err();
    assert!(matches!(error, Some(MailError::Tls(_))), "not retried: {error:?}");
    assert!(format!("{error:?}").to_lowercase().contains("certificate"), "{error:?}");
    assert!(received(&to).is_empty());
}

/// `minutes process --mail-url smtp://...` mails the minutes (the PDF as written) and, for a
/// file that fails, the failure email with the reason.
#[test]
fn cli_process_mails_minutes_and_failures_over_smtp() {
    let out = tempdir();
    let to = recipient("team");
    let state = state();
    let output = super::minutes(&[
        "process",
        fixture("meeting.flac").to_str().expect("utf-8"),
        fixture("bad/notes.mp3").to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
        "--title",
        "Planning",
        "--email",
        &to,
        "--mail-url",
        &url("smtp", &state.starttls),
        "--mail-ca-file",
        state.ca_file.to_str().expect("utf-8"),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "the bad file fails the run: {stderr}");
    let messages = received(&to);
    assert_eq!(messages.len(), 2, "minutes and failure email: {stderr}");
    let parsed: Vec<_> =
        messages.iter().map(|m| MessageParser::default().parse(m).expect("parse")).collect();
    let subjects: Vec<&str> = parsed.iter().filter_map(|m| m.subject()).collect();
    assert!(subjects.contains(&"Minutes: Planning"), "{subjects:?}");
    assert!(subjects.contains(&"Minutes failed: Planning"), "{subjects:?}");
    let minutes_mail = messages
        .iter()
        .find(|m| String::from_utf8_lossy(m).contains("Subject: Minutes: Planning"))
        .expect("minutes email");
    let written = std::fs::read(out.join("meeting.pdf")).expect("pdf written");
    assert_eq!(sha256(&pdf_attachment(minutes_mail)), sha256(&written));
    let failure = parsed
        .iter()
        .find(|m| m.subject() == Some("Minutes failed: Planning"))
        .and_then(|m| m.body_text(0).map(|t| t.into_owned()))
        .expect("failure email text");
    assert!(
        failure.contains("notes.mp3") && failure.contains("not a recognised audio or video file"),
        "{failure}"
    );
    assert!(!out.join("meeting.eml").exists(), "mail went to SMTP, not the folder");
}
