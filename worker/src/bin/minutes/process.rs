//! `minutes process FILE...`: recordings to minutes on this machine, no server needed.
//!
//! For each file: decode, transcribe, summarize (extractive by default, or an
//! OpenAI-compatible endpoint), render the PDF, and write `{name}.pdf`, `{name}.minutes.json`
//! and `{name}.transcript.{txt,srt,vtt,json}` into the output folder. With `--email` the
//! notification goes to the outbox: by default `{name}.eml` in the output folder, or an
//! SMTP server with `--mail-url`; a file that fails gets the failure email instead. A file
//! that fails is reported and the others still run; the exit status says whether any failed.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use minutes_shared::subtitles::TranscriptFormat;
use minutes_worker::mail::{MailSettings, Outbox};
use minutes_worker::stages::notify::{failure_email, minutes_email, FailureNotice, NotifyOptions};
use minutes_worker::stages::render::{render_pdf, Paper, RenderOptions};
use minutes_worker::stages::summarize::{
    assemble, summarize_or_fall_back, title_from_file_name, MeetingInfo, Summarizer,
};
use minutes_worker::stages::transcribe::speech::SpeechDetector;
use minutes_worker::stages::transcribe::WhisperModel;
use tokio::runtime::Runtime;

use crate::progress::{seconds, write_atomically, Progress};
use minutes_worker::settings::RecognitionArgs;
use minutes_worker::settings::SummarizerArgs;

/// Arguments of `minutes process`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Recordings to turn into minutes.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Folder for the outputs (created when missing).
    #[arg(long, short, env = "MINUTES_OUT_DIR", default_value = ".")]
    out: PathBuf,
    /// Meeting title; by default made from each file's name.
    #[arg(long, env = "MINUTES_TITLE")]
    title: Option<String>,
    /// Meeting date (YYYY-MM-DD, a real calendar day); today by default.
    #[arg(long, env = "MINUTES_DATE", value_parser = calendar_day)]
    date: Option<chrono::NaiveDate>,
    /// Paper size of the PDF: a4 or letter.
    #[arg(long, env = "MINUTES_PAPER", default_value = "a4")]
    paper: Paper,
    /// Send the notification email to this address (by default written as NAME.eml).
    #[arg(long, env = "MINUTES_EMAIL")]
    email: Option<String>,
    /// Where emails go: file:///dir (default: the output folder),
    /// smtp://user:pass@host:port (STARTTLS) or smtps://user:pass@host:port (TLS).
    #[arg(long, env = "MINUTES_MAIL_URL", hide_env_values = true)]
    mail_url: Option<String>,
    /// A PEM certificate to trust for the SMTP server (a private CA).
    #[arg(long, env = "MINUTES_MAIL_CA_FILE")]
    mail_ca_file: Option<PathBuf>,
    /// Tries per email; only temporary failures (4xx, timeouts) are retried.
    #[arg(long, env = "MINUTES_MAIL_ATTEMPTS", default_value_t = 4)]
    mail_attempts: u32,
    /// Wait before the first email retry, in milliseconds; doubles each time.
    #[arg(long, env = "MINUTES_MAIL_BACKOFF_MS", default_value_t = 5000)]
    mail_backoff_ms: u64,
    /// Sender of the notification email.
    #[arg(long, env = "MINUTES_MAIL_FROM", default_value = "minutes <minutes@localhost>")]
    mail_from: String,
    /// PDFs larger than this many MiB are not attached to the email.
    #[arg(long, env = "MINUTES_ATTACHMENT_LIMIT_MB", default_value_t = 10)]
    attachment_limit_mb: usize,
    #[command(flatten)]
    recognition: RecognitionArgs,
    #[command(flatten)]
    summarizer: SummarizerArgs,
}

/// What every recording is processed with.
struct Tools {
    model: WhisperModel,
    detector: SpeechDetector,
    summarizer: Box<dyn Summarizer>,
    outbox: Outbox,
    runtime: Runtime,
}

/// Where each output of one recording went and how long each stage took.
struct Outcome {
    pdf: PathBuf,
    stage_times: Vec<(&'static str, Duration)>,
    /// Why the email was not delivered (the minutes are written all the same).
    email_error: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    args.recognition.check()?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("{}: cannot create the output folder", args.out.display()))?;
    let summarizer = args.summarizer.build()?;
    let outbox = outbox(&args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let bar = Progress::new();
    bar.stage("loading model");
    let model = args.recognition.load_model()?;
    let detector = args.recognition.speech_detector()?;
    let tools = Tools { model, detector, summarizer, outbox, runtime };
    let mut failed = 0;
    for file in &args.files {
        match process_one(&args, &tools, file, &bar) {
            Ok(outcome) => {
                let times: Vec<String> = outcome
                    .stage_times
                    .iter()
                    .map(|(stage, took)| format!("{stage} {}", seconds(*took)))
                    .collect();
                bar.println(&format!(
                    "{}: minutes in {} ({})",
                    file.display(),
                    outcome.pdf.display(),
                    times.join(", ")
                ));
                if let Some(error) = outcome.email_error {
                    failed += 1;
                    bar.println(&format!(
                        "minutes: {}: the email was not sent: {error}",
                        file.display()
                    ));
                }
            }
            Err(error) => {
                failed += 1;
                bar.println(&format!("minutes: {error:#}"));
                if let Err(mail_error) = notify_failure(&args, &tools, file, &format!("{error:#}"))
                {
                    bar.println(&format!(
                        "minutes: {}: failure email: {mail_error:#}",
                        file.display()
                    ));
                }
            }
        }
    }
    bar.finish("");
    if failed > 0 {
        bail!("{failed} of {} recordings failed", args.files.len());
    }
    Ok(())
}

/// The outbox `--mail-url` names; by default the output folder.
fn outbox(args: &Args) -> anyhow::Result<Outbox> {
    let url = match &args.mail_url {
        Some(url) => url.clone(),
        None => {
            let dir = std::path::absolute(&args.out).with_context(|| {
                format!("{}: cannot resolve the output folder", args.out.display())
            })?;
            url::Url::from_directory_path(&dir)
                .map_err(|()| anyhow::anyhow!("{}: not a usable folder", dir.display()))?
                .to_string()
        }
    };
    let settings = MailSettings {
        ca_file: args.mail_ca_file.clone(),
        attempts: args.mail_attempts,
        backoff: Duration::from_millis(args.mail_backoff_ms),
        ..MailSettings::new(url)
    };
    Ok(Outbox::new(&settings)?)
}

fn stem_of(file: &Path) -> String {
    file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

fn file_name_of(file: &Path) -> String {
    file.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.display().to_string())
}

fn notify_options(args: &Args, to: &str, message_id: String) -> NotifyOptions {
    NotifyOptions {
        from: args.mail_from.clone(),
        to: to.to_string(),
        message_id,
        link: None,
        attachment_limit: args.attachment_limit_mb.saturating_mul(1024 * 1024),
    }
}

/// Sends the failure email for `file` when `--email` is set.
fn notify_failure(args: &Args, tools: &Tools, file: &Path, reason: &str) -> anyhow::Result<()> {
    let Some(to) = &args.email else { return Ok(()) };
    let stem = stem_of(file);
    let notice = FailureNotice {
        title: args.title.clone().unwrap_or_else(|| title_from_file_name(&stem)),
        source_filename: file_name_of(file),
        reason: reason.to_string(),
    };
    let message_id =
        format!("{stem}-failed-{:016x}@minutes", fnv1a(file.display().to_string().as_bytes()));
    let email = failure_email(&notice, &notify_options(args, to, message_id))?;
    tools.runtime.block_on(tools.outbox.deliver(&email, &format!("{stem}.failed")))?;
    Ok(())
}

fn process_one(args: &Args, tools: &Tools, file: &Path, bar: &Progress) -> anyhow::Result<Outcome> {
    let name = file.display().to_string();
    if !file.is_file() {
        bail!("{name}: no such file");
    }
    let stem = stem_of(file);
    let mut stage_times = Vec::new();
    let mut timed =
        |stage: &'static str, started: Instant| stage_times.push((stage, started.elapsed()));

    let started = Instant::now();
    bar.stage(&format!("{stem}: decode"));
    let audio = args
        .recognition
        .decoder()?
        .load(file, &mut |f| bar.set(f), &|| false)
        .with_context(|| name.clone())?;
    timed("decode", started);

    let started = Instant::now();
    bar.stage(&format!("{stem}: transcribe"));
    let transcript = tools
        .model
        .transcribe(
            &audio.samples,
            &tools.detector,
            &args.recognition.transcribe_options(),
            &mut |f| {
                bar.set(f);
                ControlFlow::Continue(())
            },
        )
        .with_context(|| name.clone())?;
    timed("transcribe", started);

    let started = Instant::now();
    bar.stage(&format!("{stem}: summarize"));
    let info = MeetingInfo {
        title: args.title.clone().unwrap_or_else(|| title_from_file_name(&stem)),
        date: args.date.unwrap_or_else(|| chrono::Utc::now().date_naive()).to_string(),
        source_filename: file_name_of(file),
    };
    let summarized =
        tools.runtime.block_on(summarize_or_fall_back(&*tools.summarizer, &transcript));
    if let Some(error) = &summarized.failure {
        bar.println(&format!("{name}: summarized offline instead: {error}"));
    }
    let summary = summarized.summary;
    let minutes = assemble(&info, &transcript, summary.content, summary.info);
    timed("summarize", started);

    let started = Instant::now();
    bar.stage(&format!("{stem}: render"));
    let created_unix =
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let pdf = render_pdf(&minutes, &RenderOptions { paper: args.paper, created_unix })?;
    timed("render", started);

    let write = |path: PathBuf, bytes: &[u8]| -> anyhow::Result<PathBuf> {
        write_atomically(&path, bytes)
            .with_context(|| format!("{}: cannot write", path.display()))?;
        Ok(path)
    };
    for format in TranscriptFormat::ALL {
        let path = args.out.join(format!("{stem}.transcript.{}", format.extension()));
        write(path, format.render(&transcript).as_bytes())?;
    }
    let json = serde_json::to_vec_pretty(&minutes).context("cannot serialize the minutes")?;
    write(args.out.join(format!("{stem}.minutes.json")), &json)?;
    let pdf_path = write(args.out.join(format!("{stem}.pdf")), &pdf)?;
    let mut email_error = None;
    if let Some(to) = &args.email {
        let started = Instant::now();
        bar.stage(&format!("{stem}: notify"));
        let message_id = format!(
            "{stem}-{:016x}@minutes",
            fnv1a(format!("{}|{}|{}", info.source_filename, info.date, info.title).as_bytes())
        );
        let email = minutes_email(
            &minutes,
            &pdf,
            &format!("{stem}.pdf"),
            &notify_options(args, to, message_id),
        )?;
        match tools.runtime.block_on(tools.outbox.deliver(&email, &stem)) {
            Ok(delivery) if delivery.attempts > 1 => {
                bar.println(&format!("{name}: email delivered on try {}", delivery.attempts));
            }
            Ok(_) => {}
            Err(error) => email_error = Some(error.to_string()),
        }
        timed("notify", started);
    }
    Ok(Outcome { pdf: pdf_path, stage_times, email_error })
}
/// FNV-1a, 64 bits: a stable fingerprint for the Message-ID (the same recording, date and
/// title give the same ID, so a re-run is recognisable as a resend).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `--date`: a day of the calendar, written YYYY-MM-DD.
fn calendar_day(text: &str) -> Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|error| format!("expected YYYY-MM-DD, a day of the calendar ({error})"))
}
