//! `minutes process FILE...`: recordings to minutes on this machine, no server needed.
//!
//! For each file: decode, transcribe, summarize (offline, extractive), render the PDF, and
//! write `{name}.pdf`, `{name}.minutes.json` and `{name}.transcript.{txt,srt,vtt,json}`
//! into the output folder, and with `--email` the notification as `{name}.eml` (the file
//! outbox: nothing is sent from this command). A file that fails is reported and the
//! others still run; the exit status says whether any failed.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use minutes_shared::minutes::SummarizerInfo;
use minutes_shared::subtitles::TranscriptFormat;
use minutes_worker::audio;
use minutes_worker::stages::notify::{minutes_email, NotifyOptions};
use minutes_worker::stages::render::{render_pdf, Paper, RenderOptions};
use minutes_worker::stages::summarize::{assemble, extractive, MeetingInfo};
use minutes_worker::stages::transcribe::WhisperModel;

use crate::progress::{seconds, write_atomically, Progress};
use crate::recognition::RecognitionArgs;

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
    /// Meeting date (YYYY-MM-DD); today by default.
    #[arg(long, env = "MINUTES_DATE")]
    date: Option<String>,
    /// Paper size of the PDF: a4 or letter.
    #[arg(long, env = "MINUTES_PAPER", default_value = "a4")]
    paper: Paper,
    /// Write the notification email for this address as NAME.eml.
    #[arg(long, env = "MINUTES_EMAIL")]
    email: Option<String>,
    /// Sender of the notification email.
    #[arg(long, env = "MINUTES_MAIL_FROM", default_value = "minutes <minutes@localhost>")]
    mail_from: String,
    /// PDFs larger than this many MiB are not attached to the email.
    #[arg(long, env = "MINUTES_ATTACHMENT_LIMIT_MB", default_value_t = 10)]
    attachment_limit_mb: usize,
    #[command(flatten)]
    recognition: RecognitionArgs,
}

/// Where each output of one recording went and how long each stage took.
struct Outcome {
    pdf: PathBuf,
    stage_times: Vec<(&'static str, Duration)>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(date) = &args.date {
        if !is_iso_date(date) {
            bail!("--date {date:?}: expected YYYY-MM-DD");
        }
    }
    args.recognition.check_model()?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("{}: cannot create the output folder", args.out.display()))?;
    let bar = Progress::new();
    bar.stage("loading model");
    let model = args.recognition.load_model()?;
    let mut failed = 0;
    for file in &args.files {
        match process_one(&args, &model, file, &bar) {
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
            }
            Err(error) => {
                failed += 1;
                bar.println(&format!("minutes: {error:#}"));
            }
        }
    }
    bar.finish("");
    if failed > 0 {
        bail!("{failed} of {} recordings failed", args.files.len());
    }
    Ok(())
}

fn process_one(
    args: &Args,
    model: &WhisperModel,
    file: &Path,
    bar: &Progress,
) -> anyhow::Result<Outcome> {
    let name = file.display().to_string();
    if !file.is_file() {
        bail!("{name}: no such file");
    }
    let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut stage_times = Vec::new();
    let mut timed =
        |stage: &'static str, started: Instant| stage_times.push((stage, started.elapsed()));

    let started = Instant::now();
    bar.stage(&format!("{stem}: decode"));
    let audio = audio::load(file, args.recognition.decode_options(), &mut |f| bar.set(f))
        .with_context(|| name.clone())?;
    timed("decode", started);

    let started = Instant::now();
    bar.stage(&format!("{stem}: transcribe"));
    let transcript = model
        .transcribe(&audio.samples, &args.recognition.transcribe_options(), &mut |f| {
            bar.set(f);
            ControlFlow::Continue(())
        })
        .with_context(|| name.clone())?;
    timed("transcribe", started);

    let started = Instant::now();
    bar.stage(&format!("{stem}: summarize"));
    let info = MeetingInfo {
        title: args.title.clone().unwrap_or_else(|| title_from_file_name(&stem)),
        date: args.date.clone().unwrap_or_else(today),
        source_filename: file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| name.clone()),
    };
    let summarizer =
        SummarizerInfo { provider: "extractive".into(), model: None, fallback_reason: None };
    let minutes = assemble(&info, &transcript, extractive::summarize(&transcript), summarizer);
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
    if let Some(to) = &args.email {
        let started = Instant::now();
        let options = NotifyOptions {
            from: args.mail_from.clone(),
            to: to.clone(),
            message_id: format!(
                "{stem}-{:016x}@minutes",
                fnv1a(format!("{}|{}|{}", info.source_filename, info.date, info.title).as_bytes())
            ),
            link: None,
            attachment_limit: args.attachment_limit_mb.saturating_mul(1024 * 1024),
        };
        let eml = minutes_email(&minutes, &pdf, &format!("{stem}.pdf"), &options)?;
        write(args.out.join(format!("{stem}.eml")), &eml)?;
        timed("notify", started);
    }
    let pdf = write(args.out.join(format!("{stem}.pdf")), &pdf)?;
    Ok(Outcome { pdf, stage_times })
}

/// FNV-1a, 64 bits: a stable fingerprint for the Message-ID (the same recording, date and
/// title give the same ID, so a re-run is recognisable as a resend).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// "weekly_sync-2026" -> "Weekly sync 2026".
fn title_from_file_name(stem: &str) -> String {
    let spaced: String = stem.chars().map(|c| if c == '_' || c == '-' { ' ' } else { c }).collect();
    let spaced = spaced.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => "Meeting".into(),
    }
}

fn is_iso_date(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    matches!(parts.as_slice(), [y, m, d] if y.len() == 4 && m.len() == 2 && d.len() == 2
        && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_digit()))
        && (1..=12).contains(&m.parse::<u32>().unwrap_or(0))
        && (1..=31).contains(&d.parse::<u32>().unwrap_or(0)))
}

/// Today's UTC date, `YYYY-MM-DD` (civil-from-days, proleptic Gregorian).
fn today() -> String {
    let days =
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_come_from_file_names() {
        assert_eq!(title_from_file_name("weekly_sync-2026"), "Weekly sync 2026");
        assert_eq!(title_from_file_name("__"), "Meeting");
    }

    #[test]
    fn dates_are_checked() {
        assert!(is_iso_date("2026-11-22"));
        assert!(!is_iso_date("2026-13-01"));
        assert!(!is_iso_date("22.11.2026"));
        assert!(is_iso_date(&today()));
    }
}
