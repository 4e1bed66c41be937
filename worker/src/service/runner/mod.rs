//! The daemon's side of [`crate::pipeline`]: runs one leased job through the one pipeline,
//! with the object store as its artifact store and the send intents as its notifier.
//!
//! A run builds one version of the job's results (its lease names it). Each artifact is
//! stored under a key of the run's own (`jobs/{id}/v{version}/a{attempt}/minutes.pdf`) and
//! then recorded in the version's row under the lease, so a job that is retried or taken
//! over after a crash redoes only what was not finished, and a worker that lost its lease
//! never overwrites what another stored (the row refuses it, and the object it just wrote
//! is deleted). The version becomes current when the daemon marks the job done; older
//! versions beyond `MINUTES_KEEP_VERSIONS` are then pruned ([`tidy_versions`]). The store
//! is in `artifacts`, the emails in `notify`.

mod artifacts;
mod notify;

pub use artifacts::tidy_versions;
pub use notify::notify_failure;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use minutes_shared::failure::FailureCode;
use minutes_shared::jobs::{Job, JobRepo, Lease, RepoError};
use minutes_shared::options::{Speakers, SummarizerKind};
use minutes_shared::storage::{Storage, StorageError};

use super::lease_keeper::{Reporter, StopFlag, StopReason};
use super::metrics::Metrics;
use super::models::Models;
use crate::decoder_process::SupervisedDecoder;
use crate::mail::Outbox;
use crate::pipeline::{self, Control, Diarize, Inputs, ModelLoader, PipelineError};
use crate::stages::diarize::{ClusterOptions, SpeakerCount};
use crate::stages::render::{Paper, RenderOptions};
use crate::stages::summarize::{Extractive, MeetingInfo, Summarizer};
use crate::stages::transcribe::speech::SpeechDetector;
use crate::stages::transcribe::TranscribeOptions;

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
    /// Finds who speaks when; `None` when the operator turned diarization off.
    pub diarize: Option<Diarize>,
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

impl From<RepoError> for PipelineError {
    fn from(error: RepoError) -> Self {
        match error {
            RepoError::LeaseLost(_) => PipelineError::Stopped(StopReason::LeaseLost),
            other => PipelineError::transient(other),
        }
    }
}

impl From<StorageError> for PipelineError {
    fn from(error: StorageError) -> Self {
        PipelineError::transient(error)
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
) -> Result<(), PipelineError> {
    let store = artifacts::JobArtifacts::open(tools, lease, job).await?;
    let notifier = notify::JobNotifier { tools, lease, job };
    let reporter = reporter.clone();
    let metrics = Arc::clone(&tools.metrics);
    let control = Control::new(
        move |stage, percent, message| reporter.report(stage, percent, message),
        move |stage, took| metrics.stage_done(stage.as_str(), took),
        stop.clone(),
    );
    let made = pipeline::run(inputs(tools, job), &store, &notifier, &control).await?;
    if !made.resumed.is_empty() {
        tracing::info!(resumed = ?made.resumed, "resumed from stored artifacts");
    }
    Ok(())
}

/// The pipeline's inputs for `job`: the operator's settings with what the job asked for.
fn inputs<'a>(tools: &'a Tools, job: &Job) -> Inputs<'a> {
    let model: ModelLoader = match &job.options.model {
        Some(name) => {
            let (name, models) = (name.clone(), Arc::clone(&tools.models));
            Arc::new(move || {
                models.get(&name).map_err(|e| {
                    PipelineError::permanent(FailureCode::ModelUnavailable, e.to_string())
                })
            })
        }
        None => {
            let model = tools.models.default_model();
            Arc::new(move || Ok(Arc::clone(&model)))
        }
    };
    let mut transcribe = tools.options.transcribe.clone();
    if let Some(language) = job.language.clone().filter(|l| !l.is_empty()) {
        transcribe.language = Some(language);
    }
    if let Some(vocabulary) = &job.options.vocabulary {
        transcribe.vocabulary = Some(vocabulary.clone());
    }
    let summarizer: &dyn Summarizer = match chosen_summarizer(tools, job) {
        Some(SummarizerKind::Extractive) => &Extractive,
        Some(SummarizerKind::Openai) => tools.openai.as_ref(),
        None => tools.summarizer.as_ref(),
    };
    Inputs {
        meeting: meeting_info(job),
        decoder: tools.options.decoder.clone(),
        model,
        detector: tools.detector.clone(),
        transcribe,
        diarize: diarize_for(tools, job),
        summarizer,
        summary_fallback: tools.options.summary_fallback,
        render: RenderOptions {
            paper: tools.options.paper,
            created_unix: job.created_at.timestamp(),
        },
    }
}

/// The diarization of `job`: the worker's, unless the job turns it off or gives the
/// number of speakers (a worker started with `--speakers off` has no models: its jobs get
/// no speakers whatever they ask).
fn diarize_for(tools: &Tools, job: &Job) -> Option<Diarize> {
    let diarize = tools.diarize.clone()?;
    match job.options.speakers {
        Some(Speakers::Off) => None,
        Some(Speakers::Exactly(n)) => Some(Diarize {
            options: ClusterOptions {
                count: SpeakerCount::exactly(usize::from(n)),
                ..diarize.options
            },
            ..diarize
        }),
        Some(Speakers::Auto) | None => Some(diarize),
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
