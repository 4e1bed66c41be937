//! `minutes process FILE...`: recordings to minutes on this machine, no server needed.
//!
//! Each file goes through the one pipeline (`minutes_worker::pipeline`) with a folder of
//! its own under `OUT/.minutes/` as the artifact store, so a run that was stopped (Ctrl-C,
//! a crash, a summarizer that never answered) resumes at the first missing artifact when
//! run again; `--fresh` starts over. The results are then copied out as `{name}.pdf`,
//! `{name}.minutes.json` and `{name}.transcript.{txt,srt,vtt,json}`. With `--email` the
//! notification goes to the outbox: by default `{name}.eml` in the output folder, or an
//! SMTP server with `--mail-url`; a file that fails gets the failure email instead. A file
//! that fails is reported and the others still run; the exit status says whether any failed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use minutes_shared::failure::FailureCode;
use minutes_shared::stage::{Stage, MINUTES_JSON, MINUTES_PDF, TRANSCRIPT_ARTIFACTS};
use minutes_shared::Minutes;
use minutes_worker::mail::Outbox;
use minutes_worker::pipeline::{
    self, recording_key, write_atomically, Control, Diarize, FolderArtifacts, Inputs, ModelLoader,
    Notifier, PipelineError, StageInputs, StopFlag,
};
use minutes_worker::settings::{DeliveryArgs, RecognitionArgs, SummarizerArgs};
use minutes_worker::stages::notify::{
    failure_email, message_id, minutes_email, FailureNotice, Notice, NotifyOptions,
};
use minutes_worker::stages::render::RenderOptions;
use minutes_worker::stages::summarize::{title_from_file_name, MeetingInfo, Summarizer};
use minutes_worker::stages::transcribe::speech::SpeechDetector;
use minutes_worker::stages::transcribe::WhisperModel;
use tokio::runtime::Runtime;

use crate::progress::{seconds, Progress};

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
    /// Send the notification email to this address (by default written as NAME.eml).
    #[arg(long, env = "MINUTES_EMAIL")]
    email: Option<String>,
    /// Start over: ignore what an earlier run of the same recording left in OUT/.minutes.
    #[arg(long)]
    fresh: bool,
    #[command(flatten)]
    delivery: DeliveryArgs,
    #[command(flatten)]
    recognition: RecognitionArgs,
    #[command(flatten)]
    summarizer: SummarizerArgs,
}

/// What every recording is processed with.
struct Tools {
    model: ModelLoader,
    detector: SpeechDetector,
    diarize: Option<Diarize>,
    summarizer: Box<dyn Summarizer>,
    outbox: Outbox,
    runtime: Runtime,
    bar: Progress,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    args.recognition.check()?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("{}: cannot create the output folder", args.out.display()))?;
    let summarizer = args.summarizer.build()?;
    let out = std::path::absolute(&args.out)
        .with_context(|| format!("{}: cannot resolve the output folder", args.out.display()))?;
    let default_outbox = url::Url::from_directory_path(&out)
        .map_err(|()| anyhow::anyhow!("{}: not a usable folder", out.display()))?;
    let outbox = Outbox::new(&args.delivery.mail(default_outbox.as_str()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let detector = args.recognition.speech_detector()?;
    let diarize = args.recognition.diarizer()?.map(|diarizer| Diarize {
        diarizer: Arc::new(diarizer),
        options: args.recognition.diarization.cluster_options(),
    });
    let bar = Progress::new();
    let tools = Tools {
        model: lazy_model(&args.recognition, &bar),
        detector,
        diarize,
        summarizer,
        outbox,
        runtime,
        bar,
    };
    let mut failed = 0;
    for file in &args.files {
        if !process_and_report(&args, &tools, file) {
            failed += 1;
        }
    }
    tools.bar.finish("");
    if failed > 0 {
        bail!("{failed} of {} recordings failed", args.files.len());
    }
    Ok(())
}

/// The model, loaded the first time a recording needs transcribing (a run that resumes
/// every file never loads it).
fn lazy_model(recognition: &RecognitionArgs, bar: &Progress) -> ModelLoader {
    let (recognition, bar) = (recognition.clone(), bar.clone());
    let loaded: Mutex<Option<Arc<WhisperModel>>> = Mutex::new(None);
    Arc::new(move || {
        let mut loaded = loaded.lock().map_err(|_| {
            PipelineError::permanent(FailureCode::InternalError, "the model loader panicked")
        })?;
        if let Some(model) = loaded.as_ref() {
            return Ok(Arc::clone(model));
        }
        bar.stage("loading model");
        let model = recognition
            .load_model()
            .map(Arc::new)
            .map_err(|e| PipelineError::permanent(FailureCode::ModelUnavailable, e.to_string()))?;
        *loaded = Some(Arc::clone(&model));
        Ok(model)
    })
}

/// Processes one file and prints how it went; false when it failed.
fn process_and_report(args: &Args, tools: &Tools, file: &Path) -> bool {
    let bar = &tools.bar;
    match process_one(args, tools, file) {
        Ok(outcome) => {
            let mut done: Vec<String> = outcome
                .stage_times
                .iter()
                .map(|(stage, took)| format!("{stage} {}", seconds(*took)))
                .collect();
            if !outcome.resumed.is_empty() {
                let kept: Vec<&str> = outcome.resumed.iter().map(|s| s.as_str()).collect();
                done.insert(0, format!("kept from the last run: {}", kept.join(", ")));
            }
            bar.println(&format!(
                "{}: minutes in {} ({})",
                file.display(),
                outcome.pdf.display(),
                done.join(", ")
            ));
            match outcome.email_problem {
                Some(error) => {
                    bar.println(&format!(
                        "minutes: {}: the email was not sent: {error}",
                        file.display()
                    ));
                    false
                }
                None => true,
            }
        }
        Err(error) => {
            bar.println(&format!("minutes: {error:#}"));
            if let Err(mail_error) = notify_failure(args, tools, file, &format!("{error:#}")) {
                bar.println(&format!("minutes: {}: failure email: {mail_error:#}", file.display()));
            }
            false
        }
    }
}

/// Where the outputs of one recording went and how its run went.
struct Outcome {
    pdf: PathBuf,
    stage_times: Vec<(Stage, Duration)>,
    resumed: Vec<Stage>,
    email_problem: Option<String>,
}

fn process_one(args: &Args, tools: &Tools, file: &Path) -> anyhow::Result<Outcome> {
    let name = file.display().to_string();
    if !file.is_file() {
        bail!("{name}: no such file");
    }
    let stem = stem_of(file);
    let meeting = MeetingInfo {
        title: args.title.clone().unwrap_or_else(|| title_from_file_name(&stem)),
        date: args.date.unwrap_or_else(|| chrono::Utc::now().date_naive()).to_string(),
        source_filename: file_name_of(file),
    };
    let summarizer = tools.summarizer.describe();
    let stage_inputs = StageInputs {
        transcribe: args.recognition.transcript_inputs(),
        summarize: format!("{meeting:?}|{summarizer:?}"),
        render: format!("{:?}", args.delivery.paper),
    };
    let store = FolderArtifacts::open(&args.out, file, &stage_inputs, args.fresh)?;
    let created_unix =
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let inputs = Inputs {
        meeting,
        decoder: args.recognition.decoder()?,
        model: Arc::clone(&tools.model),
        detector: tools.detector.clone(),
        transcribe: args.recognition.transcribe_options(),
        diarize: tools.diarize.clone(),
        summarizer: tools.summarizer.as_ref(),
        summary_fallback: args.summarizer.summary_fallback,
        render: RenderOptions { paper: args.delivery.paper, created_unix },
    };
    let stage_times = Arc::new(Mutex::new(Vec::new()));
    let control = bar_control(&tools.bar, &stem, Arc::clone(&stage_times));
    let notifier = FileNotifier { args, tools, stem: &stem, store: &store };
    let made = tools.runtime.block_on(pipeline::run(inputs, &store, &notifier, &control)).map_err(
        |error| match error {
            PipelineError::Permanent(reason) => anyhow::anyhow!("{name}: {}", reason.detail),
            error => anyhow::anyhow!("{name}: {}", pipeline::with_causes(&error)),
        },
    )?;

    for artifact in TRANSCRIPT_ARTIFACTS {
        let target = args.out.join(format!("{stem}.{artifact}"));
        copy_out(&store.path(artifact), &target)?;
    }
    copy_out(&store.path(MINUTES_JSON), &args.out.join(format!("{stem}.minutes.json")))?;
    let pdf = args.out.join(format!("{stem}.pdf"));
    copy_out(&store.path(MINUTES_PDF), &pdf)?;
    let stage_times = stage_times.lock().map(|t| t.clone()).unwrap_or_default();
    Ok(Outcome { pdf, stage_times, resumed: made.resumed, email_problem: made.email_problem })
}

/// Progress on the terminal bar ("meeting: transcribe"), stage times into `times`.
fn bar_control(bar: &Progress, stem: &str, times: Arc<Mutex<Vec<(Stage, Duration)>>>) -> Control {
    let (bar, stem) = (bar.clone(), stem.to_string());
    let shown: Mutex<Option<Stage>> = Mutex::new(None);
    Control::new(
        move |stage, percent, _message| {
            if let Ok(mut shown) = shown.lock() {
                if *shown != Some(stage) {
                    bar.stage(&format!("{stem}: {stage}"));
                    *shown = Some(stage);
                }
            }
            bar.set(f64::from(percent) / 100.0);
        },
        move |stage, took| {
            if let Ok(mut times) = times.lock() {
                times.push((stage, took));
            }
        },
        // Ctrl-C ends the process; what was stored stays for the next run.
        StopFlag::default(),
    )
}

/// Copies a finished artifact to its place in the output folder.
fn copy_out(from: &Path, to: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(from).with_context(|| format!("{}: cannot read", from.display()))?;
    write_atomically(to, &bytes).with_context(|| format!("{}: cannot write", to.display()))
}

/// Sends the minutes email of one recording, when `--email` is set.
struct FileNotifier<'a> {
    args: &'a Args,
    tools: &'a Tools,
    stem: &'a str,
    store: &'a FolderArtifacts,
}

impl Notifier for FileNotifier<'_> {
    async fn minutes(
        &self,
        minutes: &Minutes,
        pdf: &Bytes,
        control: &Control,
    ) -> Result<Option<String>, PipelineError> {
        let Some(to) = &self.args.email else { return Ok(None) };
        let started = std::time::Instant::now();
        control.report(Stage::Notify, 97.0, format!("emailing {to}"));
        let id = message_id(Notice::Minutes, self.store.key(), self.store.version());
        let options = notify_options(self.args, to, id);
        let email = minutes_email(minutes, pdf, &format!("{}.pdf", self.stem), &options)
            .map_err(|e| PipelineError::permanent(FailureCode::InternalError, e.to_string()))?;
        let problem = match self.tools.outbox.deliver(&email, self.stem).await {
            Ok(delivery) if delivery.attempts > 1 => {
                let line = format!("{}: email delivered on try {}", self.stem, delivery.attempts);
                self.tools.bar.println(&line);
                None
            }
            Ok(_) => None,
            Err(error) => Some(error.to_string()),
        };
        control.finished(Stage::Notify, started.elapsed());
        Ok(problem)
    }
}

fn notify_options(args: &Args, to: &str, message_id: String) -> NotifyOptions {
    NotifyOptions {
        from: args.delivery.mail_from.clone(),
        to: to.to_string(),
        message_id,
        link: None,
        attachment_limit: args.delivery.attachment_limit(),
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
    let id = message_id(Notice::Failure, &recording_key(file), 1);
    let email = failure_email(&notice, &notify_options(args, to, id))?;
    tools.runtime.block_on(tools.outbox.deliver(&email, &format!("{stem}.failed")))?;
    Ok(())
}

fn stem_of(file: &Path) -> String {
    file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

fn file_name_of(file: &Path) -> String {
    file.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.display().to_string())
}

/// `--date`: a day of the calendar, written YYYY-MM-DD.
fn calendar_day(text: &str) -> Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|error| format!("expected YYYY-MM-DD, a day of the calendar ({error})"))
}
