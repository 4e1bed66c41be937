//! Runs one leased job through the stages, resuming at the first stage whose artifact is
//! missing, and says how it ended.
//!
//! A run builds one version of the job's results (its lease names it). Each artifact is
//! stored under a key of the run's own (`jobs/{id}/v{version}/a{attempt}/minutes.pdf`) and
//! then recorded in the version's row under the lease, so a job that is retried or taken
//! over after a crash redoes only what was not finished, and a worker that lost its lease
//! never overwrites what another stored (the row refuses it, and the object it just wrote
//! is deleted). The version becomes current when the daemon marks the job done; older
//! versions beyond `MINUTES_KEEP_VERSIONS` are then pruned ([`tidy_versions`]). The email
//! is sent through a send-intent row with a fixed Message-ID and marked sent once the server
//! accepted it, so a retry does not send it twice. Decoding runs in a supervised child
//! process ([`crate::decoder_process`]); the other CPU-bound stages (transcribe, render) run
//! on blocking threads; the async runtime only moves bytes and writes rows. The emails are
//! in `notify`.

mod artifacts;
mod notify;

pub use artifacts::tidy_versions;
pub use notify::notify_failure;

use artifacts::{load, load_json, store};

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use minutes_shared::failure::{FailureCode, FailureReason};
use minutes_shared::jobs::{Job, JobRepo, Lease, RepoError};
use minutes_shared::options::SummarizerKind;
use minutes_shared::stage::{MINUTES_JSON, MINUTES_PDF};
use minutes_shared::storage::{Storage, StorageError};
use minutes_shared::subtitles::TranscriptFormat;
use minutes_shared::{Minutes, Transcript};

use super::lease_keeper::{Reporter, StopFlag, StopReason};
use super::metrics::Metrics;
use super::models::Models;
use crate::decoder_process::{SupervisedDecoder, SupervisedError};
use crate::mail::Outbox;
use crate::stages::render::{render_pdf, Paper, RenderOptions};
use crate::stages::summarize::{
    assemble, summarize_or_fall_back, Extractive, MeetingInfo, Summarized, Summarizer,
};
use crate::stages::transcribe::speech::SpeechDetector;
use crate::stages::transcribe::{TranscribeError, TranscribeOptions};

/// The transcript artifact whose presence marks the transcription step complete.
const TRANSCRIPT: &str = "transcript.json";

/// Everything a job needs, shared by all jobs of the process.
pub struct Tools {
    /// The job repository.
    pub repo: JobRepo,
    /// The object store.
    pub storage: Storage,
    /// The Whisper models: the configured one and the others the operator offers.
    pub models: Arc<Models>,
    /// Finds the speech in a recording.
    pub detector: SpeechDetector,
    /// The provider used when a job does not name one.
    pub summarizer: Arc<dyn Summarizer>,
    /// The OpenAI-compatible provider, for jobs that ask for `openai`.
    pub openai: Arc<dyn Summarizer>,
    /// Where emails go.
    pub outbox: Outbox,
    /// Counters for /metrics.
    pub metrics: Arc<Metrics>,
    /// Stage options.
    pub options: RunOptions,
}

/// Per-process options of the stages.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The decoder process and its limits.
    pub decoder: SupervisedDecoder,
    /// Transcription options.
    pub transcribe: TranscribeOptions,
    /// Paper size of the PDFs.
    pub paper: Paper,
    /// Sender of notification emails.
    pub mail_from: String,
    /// PDFs above this many bytes are linked, not attached.
    pub attachment_limit: usize,
    /// The web address of the service, for links in emails.
    pub public_url: Option<url::Url>,
    /// Where recordings are copied while they are decoded.
    pub work_dir: PathBuf,
    /// How long a lease lasts without a heartbeat.
    pub lease: std::time::Duration,
    /// The summarizers a job may choose (`MINUTES_SUMMARIZERS`).
    pub summarizers: minutes_shared::options::SummarizerList,
    /// Whether the extractive summarizer writes the minutes when the chosen one fails
    /// (`MINUTES_SUMMARY_FALLBACK`); off, the run fails with `summary_failed`.
    pub summary_fallback: bool,
    /// Versions of a job's results kept (`MINUTES_KEEP_VERSIONS`), the current one always.
    pub keep_versions: u32,
}

/// How a job attempt ended, when it did not finish.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The input can never work: the job fails at once with this reason.
    #[error("{0}")]
    Permanent(FailureReason),
    /// Something outside the job failed (storage, database, network): try again later.
    #[error("{0}")]
    Transient(String),
    /// The job was stopped (cancelled, taken over, or this worker is shutting down).
    #[error("stopped")]
    Stopped(StopReason),
}

/// A permanent failure of `code`.
fn permanent(code: FailureCode, detail: impl Into<String>) -> JobError {
    JobError::Permanent(FailureReason::new(code, detail))
}

impl From<RepoError> for JobError {
    fn from(error: RepoError) -> Self {
        match error {
            RepoError::LeaseLost(_) => JobError::Stopped(StopReason::LeaseLost),
            other => JobError::Transient(other.to_string()),
        }
    }
}

impl From<StorageError> for JobError {
    fn from(error: StorageError) -> Self {
        JobError::Transient(error.to_string())
    }
}

/// Runs the stages of `job` under `lease`; `Ok` means the minutes (and the email, when one
/// was asked for) are done and recorded.
pub async fn run(
    tools: &Tools,
    lease: Lease,
    job: &Job,
    reporter: &Reporter,
    stop: &StopFlag,
) -> Result<(), JobError> {
    let artifacts = tools.repo.working_artifacts(lease).await?;
    let key = |name: &str| artifacts.get(name).and_then(|v| v.as_str()).map(String::from);

    let transcript = if let Some(stored) = key(TRANSCRIPT) {
        match load(tools, &stored).await?.and_then(|b| Transcript::from_json(&b).ok()) {
            Some(transcript) => transcript,
            None => transcribe(tools, lease, job, reporter, stop).await?,
        }
    } else {
        transcribe(tools, lease, job, reporter, stop).await?
    };
    check_stop(stop)?;

    let minutes = match key(MINUTES_JSON) {
        Some(stored) => load_json::<Minutes>(tools, &stored).await?,
        None => None,
    };
    let minutes = match minutes {
        Some(minutes) => minutes,
        None => summarize(tools, lease, job, transcript, reporter).await?,
    };
    check_stop(stop)?;

    let pdf = match key(MINUTES_PDF) {
        Some(stored) => load(tools, &stored).await?,
        None => None,
    };
    let pdf = match pdf {
        Some(pdf) => pdf,
        None => render(tools, lease, job, &minutes, reporter).await?,
    };
    check_stop(stop)?;

    notify::notify(tools, lease, job, &minutes, &pdf, reporter).await?;
    Ok(())
}

fn check_stop(stop: &StopFlag) -> Result<(), JobError> {
    match stop.reason() {
        Some(reason) => Err(JobError::Stopped(reason)),
        None => Ok(()),
    }
}

/// Counts and logs a stage that ended.
fn stage_finished(tools: &Tools, stage: &'static str, started: Instant) {
    let took = started.elapsed();
    tools.metrics.stage_done(stage, took);
    tracing::info!(stage, seconds = took.as_secs_f64(), "stage finished");
}

/// Runs `work` on a blocking thread; a panic is a permanent failure of this job.
async fn blocking<T: Send + 'static>(
    what: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, JobError> {
    // The thread runs in the job's span, so what the stage logs names the job.
    let span = tracing::info_span!("stage", stage = what);
    tokio::task::spawn_blocking(move || span.in_scope(work)).await.map_err(|error| {
        permanent(FailureCode::InternalError, format!("the {what} stage crashed: {error}"))
    })
}

/// Deletes the local copy of a recording when dropped, whatever happens.
struct LocalCopy(PathBuf);

impl Drop for LocalCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn transcribe(
    tools: &Tools,
    lease: Lease,
    job: &Job,
    reporter: &Reporter,
    stop: &StopFlag,
) -> Result<Transcript, JobError> {
    let started = Instant::now();
    reporter.report("decode", 1.0, "fetching the recording");
    std::fs::create_dir_all(&tools.options.work_dir)
        .map_err(|e| JobError::Transient(format!("{}: {e}", tools.options.work_dir.display())))?;
    let local = LocalCopy(tools.options.work_dir.join(format!("{}.upload", job.id)));
    match tools.storage.download_to(&job.source_key, &local.0).await {
        Ok(_) => {}
        Err(StorageError::NotFound(_)) => {
            return Err(permanent(
                FailureCode::UploadMissing,
                "the uploaded recording is no longer stored",
            ))
        }
        Err(error) => return Err(error.into()),
    }
    check_stop(stop)?;

    reporter.report("decode", 2.0, "decoding");
    let path = local.0.clone();
    let decoder = tools.options.decoder.clone();
    let (decode_reporter, decode_stop) = (reporter.clone(), stop.clone());
    let audio = blocking("decode", move || {
        decoder.load(
            &path,
            &mut |fraction| {
                decode_reporter.report("decode", 2.0 + 8.0 * fraction as f32, "decoding");
            },
            &|| decode_stop.reason().is_some(),
        )
    })
    .await?
    .map_err(|error| decode_error(error, stop))?;
    drop(local);
    stage_finished(tools, "decode", started);
    let duration = audio.duration();
    tools.repo.set_media(lease, duration, None).await?;
    check_stop(stop)?;

    let started = Instant::now();
    let model = match &job.options.model {
        Some(name) => {
            let (name, models) = (name.clone(), Arc::clone(&tools.models));
            blocking("model", move || models.get(&name))
                .await?
                .map_err(|e| permanent(FailureCode::ModelUnavailable, e.to_string()))?
        }
        None => tools.models.default_model(),
    };
    let mut options = tools.options.transcribe.clone();
    if let Some(language) = job.language.clone().filter(|l| !l.is_empty()) {
        options.language = Some(language);
    }
    if let Some(vocabulary) = &job.options.vocabulary {
        options.vocabulary = Some(vocabulary.clone());
    }
    let detector = tools.detector.clone();
    let transcribe_reporter = reporter.clone();
    let transcribe_stop = stop.clone();
    reporter.report("transcribe", 10.0, format!("transcribing 0:00 of {}", clock(duration)));
    let transcript = blocking("transcribe", move || {
        model.transcribe(&audio.samples, &detector, &options, &mut |fraction| {
            transcribe_reporter.report(
                "transcribe",
                10.0 + 75.0 * fraction as f32,
                format!("transcribing {} of {}", clock(duration * fraction), clock(duration)),
            );
            match transcribe_stop.reason() {
                Some(_) => ControlFlow::Break(()),
                None => ControlFlow::Continue(()),
            }
        })
    })
    .await?;
    let transcript = match transcript {
        Ok(transcript) => transcript,
        Err(TranscribeError::Cancelled) => {
            return Err(JobError::Stopped(stop.reason().unwrap_or(StopReason::LeaseLost)))
        }
        Err(error @ TranscribeError::UnknownLanguage(_)) => {
            return Err(permanent(FailureCode::UnsupportedLanguage, error.to_string()))
        }
        Err(error) => return Err(JobError::Transient(error.to_string())),
    };
    stage_finished(tools, "transcribe", started);
    tools.repo.set_media(lease, duration, Some(&transcript.language)).await?;
    for format in TranscriptFormat::ALL {
        if format != TranscriptFormat::Json {
            let name = format!("transcript.{}", format.extension());
            store(tools, lease, &name, format.render(&transcript)).await?;
        }
    }
    // The JSON last: its presence says the transcription step is complete.
    store(tools, lease, TRANSCRIPT, TranscriptFormat::Json.render(&transcript)).await?;
    Ok(transcript)
}

/// A decode failure: the input's fault (permanent), unless reading the local copy or
/// starting the decoder process failed, or the job was stopped.
fn decode_error(error: SupervisedError, stop: &StopFlag) -> JobError {
    match error {
        SupervisedError::Rejected(reason) => JobError::Permanent(reason),
        SupervisedError::Stopped => {
            JobError::Stopped(stop.reason().unwrap_or(StopReason::LeaseLost))
        }
        error @ (SupervisedError::Unreadable(_) | SupervisedError::Process(_)) => {
            JobError::Transient(error.to_string())
        }
    }
}

fn meeting_info(job: &Job) -> MeetingInfo {
    MeetingInfo {
        title: job.title.clone().filter(|t| !t.trim().is_empty()).unwrap_or_else(|| {
            let stem = Path::new(&job.original_filename)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            crate::stages::summarize::title_from_file_name(&stem)
        }),
        date: job.created_at.format("%Y-%m-%d").to_string(),
        source_filename: job.original_filename.clone(),
    }
}

async fn summarize(
    tools: &Tools,
    lease: Lease,
    job: &Job,
    transcript: Transcript,
    reporter: &Reporter,
) -> Result<Minutes, JobError> {
    let started = Instant::now();
    reporter.report("summarize", 86.0, "writing the minutes");
    let summarizer: &dyn Summarizer = match chosen_summarizer(tools, job) {
        Some(SummarizerKind::Extractive) => &Extractive,
        Some(SummarizerKind::Openai) => tools.openai.as_ref(),
        None => tools.summarizer.as_ref(),
    };
    let Summarized { summary, failure } = summarize_or_fall_back(summarizer, &transcript).await;
    if let (Some(error), false) = (&failure, tools.options.summary_fallback) {
        tracing::warn!(job_id = %job.id, stage = "summarize", %error,
            "the summarizer failed and falling back is off");
        let message = format!("the summarizer failed: {error}");
        tools.repo.progress(lease, "summarize", 88.0, &message).await.map_err(JobError::from)?;
        let wanted = summarizer.describe();
        return Err(permanent(
            FailureCode::SummaryFailed,
            format!("{}: {}", wanted.provider, error.for_people()),
        ));
    }
    if let Some(error) = failure {
        // The detail (endpoint, server text) goes to the job's events and the log; the
        // minutes say only that the offline summarizer wrote them and why in general.
        tracing::warn!(job_id = %job.id, stage = "summarize", %error,
            "the summarizer failed; the offline one writes the minutes");
        let message = format!("the summarizer failed ({error}); the offline one wrote the minutes");
        tools.repo.progress(lease, "summarize", 88.0, &message).await.map_err(JobError::from)?;
    }
    let minutes = assemble(&meeting_info(job), &transcript, summary.content, summary.info);
    let json = serde_json::to_vec_pretty(&minutes)
        .map_err(|e| permanent(FailureCode::InternalError, e.to_string()))?;
    store(tools, lease, MINUTES_JSON, json).await?;
    stage_finished(tools, "summarize", started);
    Ok(minutes)
}

/// The summarizer the job asked for, when this installation offers it (the API checks at
/// upload; the worker checks again, as a job may predate a change of the settings). None:
/// the workers' default.
fn chosen_summarizer(tools: &Tools, job: &Job) -> Option<SummarizerKind> {
    let asked = job.options.summarizer?;
    if tools.options.summarizers.offers(asked) {
        return Some(asked);
    }
    tracing::warn!(job_id = %job.id, stage = "summarize", summarizer = asked.as_str(),
        "the job asks for a summarizer not offered here; the default writes the minutes");
    None
}

async fn render(
    tools: &Tools,
    lease: Lease,
    job: &Job,
    minutes: &Minutes,
    reporter: &Reporter,
) -> Result<Bytes, JobError> {
    let started = Instant::now();
    reporter.report("render", 93.0, "rendering the PDF");
    let options =
        RenderOptions { paper: tools.options.paper, created_unix: job.created_at.timestamp() };
    let owned = minutes.clone();
    let pdf = blocking("render", move || render_pdf(&owned, &options))
        .await?
        .map_err(|e| permanent(FailureCode::RenderFailed, e.to_string()))?;
    let pdf = Bytes::from(pdf);
    store(tools, lease, MINUTES_PDF, pdf.clone()).await?;
    stage_finished(tools, "render", started);
    Ok(pdf)
}

/// `m:ss` or `h:mm:ss`.
fn clock(seconds: f64) -> String {
    let total = seconds.max(0.0) as u64;
    let (h, m, s) = (total / 3600, total % 3600 / 60, total % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_read_like_a_player() {
        assert_eq!(clock(75.4), "1:15");
        assert_eq!(clock(3725.0), "1:02:05");
    }
}
