//! One pipeline for the daemon and `minutes process`: decode and transcribe, summarize,
//! render and notify, over an [`Artifacts`] store (the object store under a lease in the
//! daemon, a local folder for `minutes process`), reporting through a [`Control`], and
//! resuming at the first artifact the store does not have.
//!
//! The callers only say where things are kept and who is told: the daemon
//! (`service::runner`) and the command line (`minutes process`) each implement
//! [`Artifacts`] and [`Notifier`] and build the [`Inputs`]; the order of the stages, what
//! each stores, what is resumed and how failures are classified live here once.

mod control;
mod folder;
mod steps;

pub use control::{Control, StopFlag, StopReason};
pub use folder::{recording_key, write_atomically, FolderArtifacts, FolderError, StageInputs};

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use minutes_shared::failure::{FailureCode, FailureReason};
use minutes_shared::stage::{Stage, MINUTES_JSON, MINUTES_PDF};
use minutes_shared::{Minutes, Transcript};

use crate::decoder_process::SupervisedDecoder;
use crate::stages::diarize::{ClusterOptions, Diarizer};
use crate::stages::render::RenderOptions;
use crate::stages::summarize::{MeetingInfo, Summarizer};
use crate::stages::transcribe::speech::SpeechDetector;
use crate::stages::transcribe::{TranscribeOptions, WhisperModel};

/// The transcript artifact whose presence marks the transcription step complete.
pub const TRANSCRIPT_JSON: &str = "transcript.json";

/// How a run ended, when it did not finish.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The input can never work: the run fails at once with this reason.
    #[error("{0}")]
    Permanent(FailureReason),
    /// Something outside the run failed (storage, database, network): try again later.
    #[error(transparent)]
    Transient(Box<dyn std::error::Error + Send + Sync>),
    /// The run was stopped (cancelled, taken over, or the process is shutting down).
    #[error("stopped")]
    Stopped(StopReason),
}

impl PipelineError {
    /// A permanent failure of `code`.
    pub fn permanent(code: FailureCode, detail: impl Into<String>) -> Self {
        Self::Permanent(FailureReason::new(code, detail))
    }

    /// A transient failure caused by `error`.
    pub fn transient(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Transient(error.into())
    }
}

/// The recording as a local file, deleted when dropped if it is a copy.
#[derive(Debug)]
pub struct LocalRecording {
    path: PathBuf,
    copy: bool,
}

impl LocalRecording {
    /// The caller's own file, left alone.
    pub fn original(path: &Path) -> Self {
        Self { path: path.to_path_buf(), copy: false }
    }

    /// A copy made for this run, deleted when done with.
    pub fn copy(path: PathBuf) -> Self {
        Self { path, copy: true }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for LocalRecording {
    fn drop(&mut self) {
        if self.copy {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Where a run finds its recording and keeps what each stage made.
pub trait Artifacts: Sync {
    /// The recording, as a local file (fetched when it is kept elsewhere).
    fn recording(&self) -> impl Future<Output = Result<LocalRecording, PipelineError>> + Send;
    /// The artifact `name`, or `None` when this run has none (or the store lost it).
    fn load(&self, name: &str)
        -> impl Future<Output = Result<Option<Bytes>, PipelineError>> + Send;
    /// Keeps artifact `name`.
    fn store(
        &self,
        name: &str,
        bytes: Bytes,
    ) -> impl Future<Output = Result<(), PipelineError>> + Send;
    /// What the stages learnt of the recording: its length, then its language.
    fn media(
        &self,
        duration: f64,
        language: Option<&str>,
    ) -> impl Future<Output = Result<(), PipelineError>> + Send;
}

/// Who is told that the minutes are ready.
pub trait Notifier: Sync {
    /// Sends the minutes email, when one is asked for; `Ok(Some(why))` when it was not
    /// delivered (the minutes stand all the same).
    fn minutes(
        &self,
        minutes: &Minutes,
        pdf: &Bytes,
        control: &Control,
    ) -> impl Future<Output = Result<Option<String>, PipelineError>> + Send;
}

/// The Whisper model of a run, asked for only when transcription has to run (on a blocking
/// thread: loading reads hundreds of megabytes).
pub type ModelLoader = Arc<dyn Fn() -> Result<Arc<WhisperModel>, PipelineError> + Send + Sync>;

/// The diarize stage's models and settings.
#[derive(Clone)]
pub struct Diarize {
    /// The loaded models (shared by every run of the process).
    pub diarizer: Arc<Diarizer>,
    /// How many speakers, and how voices are told apart.
    pub options: ClusterOptions,
}

/// What one run is made of, besides its store.
pub struct Inputs<'a> {
    /// Title, date and file name of the meeting.
    pub meeting: MeetingInfo,
    /// The decoder process and its limits.
    pub decoder: SupervisedDecoder,
    /// The model to transcribe with.
    pub model: ModelLoader,
    /// Finds the speech in the recording.
    pub detector: SpeechDetector,
    /// How to transcribe.
    pub transcribe: TranscribeOptions,
    /// Who speaks when; `None` leaves the transcript without speakers.
    pub diarize: Option<Diarize>,
    /// Who writes the minutes.
    pub summarizer: &'a dyn Summarizer,
    /// Whether the extractive summarizer writes the minutes when the chosen one fails;
    /// when false the run fails with `summary_failed`.
    pub summary_fallback: bool,
    /// Paper and creation date of the PDF.
    pub render: RenderOptions,
}

/// What a finished run made.
#[derive(Debug)]
pub struct Made {
    /// The minutes.
    pub minutes: Minutes,
    /// The PDF.
    pub pdf: Bytes,
    /// The stages whose artifacts an earlier run had left, in order.
    pub resumed: Vec<Stage>,
    /// Why the email was not delivered, when one was asked for and it was not.
    pub email_problem: Option<String>,
}

/// Runs every stage whose artifact `store` lacks, then the notification.
pub async fn run(
    inputs: Inputs<'_>,
    store: &impl Artifacts,
    notifier: &impl Notifier,
    control: &Control,
) -> Result<Made, PipelineError> {
    let mut resumed = Vec::new();
    let stored = store.load(TRANSCRIPT_JSON).await?;
    let transcript = match stored.and_then(|bytes| Transcript::from_json(&bytes).ok()) {
        Some(transcript) => {
            resumed.push(Stage::Transcribe);
            transcript
        }
        None => {
            control.report(Stage::Decode, 1.0, "reading the recording");
            let recording = store.recording().await?;
            check_stop(control)?;
            let (duration, transcript) =
                steps::transcribe(&inputs, recording, store, control).await?;
            store.media(duration, Some(&transcript.language)).await?;
            steps::store_transcript(store, &transcript).await?;
            transcript
        }
    };
    check_stop(control)?;

    let stored = store.load(MINUTES_JSON).await?;
    let minutes = match stored.and_then(|bytes| serde_json::from_slice::<Minutes>(&bytes).ok()) {
        Some(minutes) => {
            resumed.push(Stage::Summarize);
            minutes
        }
        None => steps::summarize(&inputs, transcript, store, control).await?,
    };
    check_stop(control)?;

    let pdf = match store.load(MINUTES_PDF).await? {
        Some(pdf) => {
            resumed.push(Stage::Render);
            pdf
        }
        None => steps::render(&inputs, &minutes, store, control).await?,
    };
    check_stop(control)?;

    let email_problem = notifier.minutes(&minutes, &pdf, control).await?;
    Ok(Made { minutes, pdf, resumed, email_problem })
}

fn check_stop(control: &Control) -> Result<(), PipelineError> {
    match control.stop_reason() {
        Some(reason) => Err(PipelineError::Stopped(reason)),
        None => Ok(()),
    }
}

/// `error` and each of its causes, joined by ": " (for a stored reason or a message to
/// a person, where the chain is not followed).
pub fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Many errors already print their cause; say each thing once.
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

/// `m:ss` or `h:mm:ss`.
pub fn clock(seconds: f64) -> String {
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
