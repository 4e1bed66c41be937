//! The stages of a run, each taking what the one before made and storing what it makes:
//! decode and transcribe (one step: the samples are never stored), summarize, render. The
//! CPU-bound work runs on blocking threads; a panic there fails the run, not the process.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use minutes_shared::failure::FailureCode;
use minutes_shared::stage::{Stage, MINUTES_JSON, MINUTES_PDF};
use minutes_shared::subtitles::TranscriptFormat;
use minutes_shared::{Minutes, Transcript};

use super::TRANSCRIPT_JSON;
use super::{
    clock, Artifacts, Control, Diarize, Inputs, LocalRecording, PipelineError, StopReason,
};
use crate::decoder_process::SupervisedError;
use crate::stages::diarize::{assign, DiarizeError};
use crate::stages::render::render_pdf;
use crate::stages::summarize::{assemble, summarize_or_fall_back, Summarized};
use crate::stages::transcribe::TranscribeError;

/// Runs `work` on a blocking thread; a panic is a permanent failure of this run.
async fn blocking<T: Send + 'static>(
    stage: Stage,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, PipelineError> {
    // The thread runs in the job's span, so what the stage logs names the job.
    let span = tracing::info_span!("stage", stage = stage.as_str());
    tokio::task::spawn_blocking(move || span.in_scope(work)).await.map_err(|error| {
        PipelineError::permanent(
            FailureCode::InternalError,
            format!("the {stage} stage crashed: {error}"),
        )
    })
}

/// The stop reason to report when a stage says it was stopped.
fn stopped(control: &Control) -> PipelineError {
    PipelineError::Stopped(control.stop_reason().unwrap_or(StopReason::LeaseLost))
}

/// Decodes the recording in the supervised decoder process, then transcribes it; returns
/// the recording's length and the transcript.
pub(super) async fn transcribe(
    inputs: &Inputs<'_>,
    recording: LocalRecording,
    store: &impl Artifacts,
    control: &Control,
) -> Result<(f64, Transcript), PipelineError> {
    let started = Instant::now();
    control.report(Stage::Decode, 2.0, "decoding");
    let path = recording.path().to_path_buf();
    let decoder = inputs.decoder.clone();
    let decode_control = control.clone();
    let audio = blocking(Stage::Decode, move || {
        decoder.load(
            &path,
            &mut |fraction| {
                decode_control.report(Stage::Decode, 2.0 + 8.0 * fraction as f32, "decoding");
            },
            &|| decode_control.stop_reason().is_some(),
        )
    })
    .await?
    .map_err(|error| match error {
        SupervisedError::Rejected(reason) => PipelineError::Permanent(reason),
        SupervisedError::Stopped => stopped(control),
        error @ (SupervisedError::Unreadable(_) | SupervisedError::Process(_)) => {
            PipelineError::transient(error)
        }
    })?;
    drop(recording);
    control.finished(Stage::Decode, started.elapsed());
    let duration = audio.duration();
    store.media(duration, None).await?;
    super::check_stop(control)?;

    let started = Instant::now();
    let load = inputs.model.clone();
    let model = blocking(Stage::Transcribe, move || load()).await??;
    let mut options = inputs.transcribe.clone();
    // Diarization splits lines where their words change speaker, so it needs word times;
    // they are dropped again afterwards when they were not asked for.
    let keep_words = options.word_timestamps;
    options.word_timestamps |= inputs.diarize.is_some();
    let detector = inputs.detector.clone();
    let transcribe_control = control.clone();
    control.report(Stage::Transcribe, 10.0, format!("transcribing 0:00 of {}", clock(duration)));
    let audio = Arc::new(audio);
    let audio_for_speakers = Arc::clone(&audio);
    let transcript = blocking(Stage::Transcribe, move || {
        model.transcribe(&audio.samples, &detector, &options, &mut |fraction| {
            transcribe_control.report(
                Stage::Transcribe,
                10.0 + 75.0 * fraction as f32,
                format!("transcribing {} of {}", clock(duration * fraction), clock(duration)),
            );
            match transcribe_control.stop_reason() {
                Some(_) => ControlFlow::Break(()),
                None => ControlFlow::Continue(()),
            }
        })
    })
    .await?
    .map_err(|error| match error {
        TranscribeError::Cancelled => stopped(control),
        error @ TranscribeError::UnknownLanguage(_) => {
            PipelineError::permanent(FailureCode::UnsupportedLanguage, error.to_string())
        }
        error => PipelineError::transient(error),
    })?;
    let transcript = match &inputs.diarize {
        Some(diarize) => {
            let mut transcript =
                find_speakers(diarize, transcript, audio_for_speakers, control).await?;
            if !keep_words {
                assign::drop_words(&mut transcript);
            }
            transcript
        }
        None => transcript,
    };
    control.finished(Stage::Transcribe, started.elapsed());
    Ok((duration, transcript))
}

/// Finds the speakers of the recording and gives the transcript theirs. It runs in the
/// transcription step, while the samples are in memory (they are never stored).
async fn find_speakers(
    diarize: &Diarize,
    mut transcript: Transcript,
    audio: Arc<crate::audio::Audio>,
    control: &Control,
) -> Result<Transcript, PipelineError> {
    let started = Instant::now();
    control.report(Stage::Transcribe, 85.0, "finding the speakers");
    let diarizer = Arc::clone(&diarize.diarizer);
    let options = diarize.options;
    let speakers_control = control.clone();
    let diarization = blocking(Stage::Transcribe, move || {
        diarizer.diarize(&audio.samples, &options, &mut |fraction| {
            speakers_control.report(
                Stage::Transcribe,
                85.0 + 4.0 * fraction as f32,
                "finding the speakers",
            );
            speakers_control.stop_reason().is_none()
        })
    })
    .await?
    .map_err(|error| match error {
        DiarizeError::Cancelled => stopped(control),
        error => PipelineError::transient(error),
    })?;
    tracing::info!(
        speakers = diarization.speakers,
        seconds = started.elapsed().as_secs_f64(),
        "found the speakers"
    );
    assign::attach(&mut transcript, &diarization);
    Ok(transcript)
}

/// Stores the transcript in every format, the JSON last: its presence says the step is
/// complete.
pub(super) async fn store_transcript(
    store: &impl Artifacts,
    transcript: &Transcript,
) -> Result<(), PipelineError> {
    for format in TranscriptFormat::ALL {
        if format != TranscriptFormat::Json && format.is_stored() {
            let name = format!("transcript.{}", format.extension());
            store.store(&name, Bytes::from(format.render(transcript))).await?;
        }
    }
    let json = TranscriptFormat::Json.render(transcript);
    store.store(TRANSCRIPT_JSON, Bytes::from(json)).await
}

/// Writes and stores the minutes; a failing summarizer is replaced by the extractive one
/// unless falling back is off.
pub(super) async fn summarize(
    inputs: &Inputs<'_>,
    transcript: Transcript,
    store: &impl Artifacts,
    control: &Control,
) -> Result<Minutes, PipelineError> {
    let started = Instant::now();
    control.report(Stage::Summarize, 86.0, "writing the minutes");
    let summarizer = inputs.summarizer;
    let Summarized { summary, failure } = summarize_or_fall_back(summarizer, &transcript).await;
    if let Some(error) = failure {
        // The detail (endpoint, server text) goes to the events and the log; the minutes
        // say only that the offline summarizer wrote them and why in general.
        if !inputs.summary_fallback {
            tracing::warn!(stage = "summarize", %error, "the summarizer failed and falling back is off");
            control.report(Stage::Summarize, 88.0, format!("the summarizer failed: {error}"));
            let wanted = summarizer.describe();
            return Err(PipelineError::permanent(
                FailureCode::SummaryFailed,
                format!("{}: {}", wanted.provider, error.for_people()),
            ));
        }
        tracing::warn!(stage = "summarize", %error, "the summarizer failed; the offline one writes the minutes");
        let message = format!("the summarizer failed ({error}); the offline one wrote the minutes");
        control.report(Stage::Summarize, 88.0, message);
    }
    let minutes = assemble(&inputs.meeting, &transcript, summary.content, summary.info);
    let json = serde_json::to_vec_pretty(&minutes)
        .map_err(|e| PipelineError::permanent(FailureCode::InternalError, e.to_string()))?;
    store.store(MINUTES_JSON, Bytes::from(json)).await?;
    control.finished(Stage::Summarize, started.elapsed());
    Ok(minutes)
}

/// Renders and stores the PDF.
pub(super) async fn render(
    inputs: &Inputs<'_>,
    minutes: &Minutes,
    store: &impl Artifacts,
    control: &Control,
) -> Result<Bytes, PipelineError> {
    let started = Instant::now();
    control.report(Stage::Render, 93.0, "rendering the PDF");
    let (owned, options) = (minutes.clone(), inputs.render.clone());
    let pdf = blocking(Stage::Render, move || render_pdf(&owned, &options))
        .await?
        .map_err(|e| PipelineError::permanent(FailureCode::RenderFailed, e.to_string()))?;
    let pdf = Bytes::from(pdf);
    store.store(MINUTES_PDF, pdf.clone()).await?;
    control.finished(Stage::Render, started.elapsed());
    Ok(pdf)
}
