//! Transcribe stage: 16 kHz mono audio to a timed [`Transcript`] with Whisper (CTranslate2).
//!
//! The approach is faster-whisper's batched pipeline, rebuilt on `ct2rs`'s low-level API,
//! with the checks of its sequential one:
//! 1. [`speech`] finds speech (Silero VAD, or the [`energy`] detector) and [`windows`]
//!    packs it into windows of at most 30 s that end in pauses, so no word straddles a cut
//!    and silence never reaches the model;
//! 2. [`features`] computes each window's log-mel spectrogram;
//! 3. [`decoding`] encodes and decodes the windows in batches (beam search with timestamp
//!    tokens, split over model replicas), falls back to sampling on poor results, decodes
//!    what a window left undecoded, and detects the language of every piece;
//! 4. [`segments`] turns timestamp tokens into segments, and [`repetition`] removes loops
//!    inside a segment and across segments.
//!
//! The stage is a pure function of its input and options: no storage, queue or database.

mod decoding;
mod encoder;
pub mod energy;
pub mod engine;
mod fallback;
mod features;
mod followup;
mod prompting;
pub mod repetition;
mod segments;
pub mod silero;
pub mod speech;
mod vocabulary;
pub mod windows;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use ct2rs::sys::{ComputeType, Config, Device, Whisper};
use minutes_shared::transcript::{Transcript, TRANSCRIPT_FORMAT_VERSION};

use self::decoding::Context;
use self::encoder::Encoder;
use self::features::{FeatureExtractor, SAMPLE_RATE};
use self::speech::SpeechDetector;
use self::vocabulary::Vocabulary;
use crate::onnx::OnnxError;

/// The numeric precision the model runs at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// 8-bit integer weights: fastest on CPUs, the accuracy loss is negligible.
    #[default]
    Int8,
    /// 32-bit floats.
    Float32,
    /// Whatever the model was saved in.
    Default,
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "int8" => Ok(Self::Int8),
            "float32" => Ok(Self::Float32),
            "default" => Ok(Self::Default),
            other => {
                Err(format!("unknown compute type {other:?} (expected int8, float32 or default)"))
            }
        }
    }
}

/// How the model is loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelOptions {
    /// A CTranslate2 Whisper model directory (any faster-whisper model works).
    pub model_dir: PathBuf,
    /// Numeric precision.
    pub precision: Precision,
    /// CPU threads for one transcription, in all.
    pub threads: usize,
    /// Batches decoded side by side, each by its own replica with `threads / lanes`
    /// threads. Beam search over a few windows does not keep several threads busy, so on a
    /// small machine two single-threaded lanes beat one lane with two threads (except where
    /// CTranslate2 uses Intel MKL: see [`engine`]).
    pub lanes: usize,
}

/// What the model is asked to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Task {
    /// The words as spoken, in their language.
    #[default]
    Transcribe,
    /// An English translation (multilingual models).
    Translate,
}

impl std::str::FromStr for Task {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "transcribe" => Ok(Self::Transcribe),
            "translate" => Ok(Self::Translate),
            other => Err(format!("unknown task {other:?} (expected transcribe or translate)")),
        }
    }
}

/// How one recording is transcribed. The thresholds are faster-whisper's, with its defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct TranscribeOptions {
    /// ISO 639-1 language code; `None` detects it per piece (multilingual models) or uses
    /// English.
    pub language: Option<String>,
    /// Transcribe, or translate into English.
    pub task: Task,
    /// Beam width of the search; 1 is greedy.
    pub beam_size: usize,
    /// Candidates sampled at each fallback temperature.
    pub best_of: usize,
    /// Windows decoded together.
    pub batch_size: usize,
    /// Whether to time every word.
    pub word_timestamps: bool,
    /// Temperatures tried in turn while a result looks poor; the first is beam search.
    pub temperatures: Vec<f32>,
    /// A result whose text compresses better than this is a loop: try the next temperature.
    pub compression_ratio_threshold: f32,
    /// A result whose average log-probability is under this is poor: try the next
    /// temperature ...
    pub log_prob_threshold: f32,
    /// ... unless the model also says, with more than this probability, that the window
    /// holds no speech: then it is dropped as silence.
    pub no_speech_threshold: f32,
    /// A phrase or segment repeated back to back more than this many times is a loop.
    pub max_repeats: usize,
    /// Names and jargon to expect ("Kubernetes, Sarah Chen"), given to the model as
    /// preceding text (faster-whisper's `hotwords`).
    pub vocabulary: Option<String>,
}

impl Default for TranscribeOptions {
    fn default() -> Self {
        Self {
            language: None,
            task: Task::Transcribe,
            beam_size: 5,
            best_of: 5,
            batch_size: 8,
            word_timestamps: false,
            temperatures: vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
            compression_ratio_threshold: 2.4,
            log_prob_threshold: -1.0,
            no_speech_threshold: 0.6,
            max_repeats: 3,
            vocabulary: None,
        }
    }
}

/// Why a transcription failed.
#[derive(Debug, thiserror::Error)]
pub enum TranscribeError {
    /// The model directory is missing or incomplete.
    #[error("no usable Whisper model in {path}: {reason}")]
    InvalidModel {
        /// The directory given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The language asked for is not one the model knows.
    #[error("the model does not know the language {0:?}")]
    UnknownLanguage(String),
    /// The inference engine failed.
    #[error("speech recognition failed: {0}")]
    Engine(String),
    /// Speech detection (Silero VAD) could not run.
    #[error("speech detection failed: {0}")]
    SpeechDetection(#[source] OnnxError),
    /// Vocabulary hints were given but the model has no tokenizer to write them.
    #[error("vocabulary hints need the model's tokenizer.json: {0}")]
    NoTokenizer(String),
    /// The progress callback asked to stop.
    #[error("transcription was cancelled")]
    Cancelled,
}

impl TranscribeError {
    fn invalid_model(path: &Path, reason: String) -> Self {
        Self::InvalidModel { path: path.to_path_buf(), reason }
    }
}

/// A loaded Whisper model, ready to transcribe any number of recordings.
pub struct WhisperModel {
    whisper: Whisper,
    vocabulary: Vocabulary,
    /// The BPE merges, when the model directory has `tokenizer.json`.
    encoder: Result<Encoder, String>,
    extractor: FeatureExtractor,
    name: String,
    /// Model replicas decoding side by side (CTranslate2 shares the weights between them).
    lanes: usize,
}

impl WhisperModel {
    /// Loads the model in `options.model_dir`.
    pub fn load(options: &ModelOptions) -> Result<Self, TranscribeError> {
        let dir = &options.model_dir;
        if !dir.join("model.bin").is_file() {
            return Err(TranscribeError::invalid_model(dir, "model.bin is missing".into()));
        }
        let vocabulary = Vocabulary::load(dir)?;
        let mut lanes = options.lanes.clamp(1, options.threads.max(1));
        if lanes > engine::max_lanes() {
            tracing::warn!(
                asked = lanes,
                "CTranslate2 uses Intel MKL here, which crashes with several replicas: one lane"
            );
            lanes = engine::max_lanes();
        }
        let config = Config {
            device: Device::CPU,
            compute_type: match options.precision {
                Precision::Int8 => ComputeType::INT8,
                Precision::Float32 => ComputeType::FLOAT32,
                Precision::Default => ComputeType::DEFAULT,
            },
            device_indices: vec![0; lanes],
            num_threads_per_replica: (options.threads / lanes).max(1),
            ..Config::default()
        };
        let whisper = Whisper::new(dir, config)
            .map_err(|e| TranscribeError::invalid_model(dir, e.to_string()))?;
        let n_mels = preprocessor_mel_bins(dir).unwrap_or_else(|| whisper.n_mels());
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string());
        let encoder = Encoder::load(dir);
        Ok(Self {
            whisper,
            vocabulary,
            encoder,
            extractor: FeatureExtractor::new(n_mels),
            name,
            lanes,
        })
    }

    /// Whether the model transcribes languages other than English.
    pub fn is_multilingual(&self) -> bool {
        self.whisper.is_multilingual()
    }

    /// The directory name the model was loaded from ("whisper-tiny.en").
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Transcribes `audio` (16 kHz mono), finding speech with `detector`. `progress` is told
    /// the fraction of the speech done after every round and may return `Break` to cancel.
    pub fn transcribe(
        &self,
        audio: &[f32],
        detector: &SpeechDetector,
        options: &TranscribeOptions,
        progress: &mut dyn FnMut(f64) -> ControlFlow<()>,
    ) -> Result<Transcript, TranscribeError> {
        let duration = audio.len() as f64 / SAMPLE_RATE as f64;
        let forced = self.forced_language(options.language.as_deref())?;
        let hints = self.hint_tokens(options.vocabulary.as_deref())?;
        let started = std::time::Instant::now();
        let regions = detector.regions(audio)?;
        tracing::debug!(
            detector = ?detector,
            regions = regions.len(),
            seconds = started.elapsed().as_secs_f64(),
            "speech found"
        );
        let windows = windows::plan_windows(audio, &regions);
        let context = Context {
            audio,
            regions: &regions,
            options,
            language: forced.as_deref(),
            hints: &hints,
            multilingual: self.is_multilingual(),
        };
        let mut segments = self.decode_windows(&context, &windows, progress)?;
        repetition::drop_repeated_segments(&mut segments, options.max_repeats);
        keep_times_in_order(&mut segments, duration);
        if progress(1.0).is_break() {
            return Err(TranscribeError::Cancelled);
        }
        let mut transcript = Transcript {
            version: TRANSCRIPT_FORMAT_VERSION,
            language: forced.unwrap_or_else(|| "en".into()),
            duration,
            model: self.name.clone(),
            segments,
            speakers: Vec::new(),
            turns: Vec::new(),
        };
        if let Some((main, _)) = transcript.languages().into_iter().next() {
            transcript.language = main;
        }
        Ok(transcript)
    }

    fn features(&self, audio: &[f32], windows: &[std::ops::Range<usize>]) -> Vec<f32> {
        let frames = features::WINDOW_FRAMES;
        let mut data = Vec::with_capacity(windows.len() * self.extractor.n_mels() * frames);
        for window in windows {
            self.extractor.window_features(&audio[window.clone()], &mut data);
        }
        data
    }

    /// The forced language checked against the model, or English for English-only models
    /// (`None`: detect).
    fn forced_language(&self, forced: Option<&str>) -> Result<Option<String>, TranscribeError> {
        let Some(language) = forced else {
            return Ok((!self.is_multilingual()).then(|| "en".to_string()));
        };
        let language = language.to_ascii_lowercase();
        if self.is_multilingual() && self.vocabulary.id(&format!("<|{language}|>")).is_none() {
            return Err(TranscribeError::UnknownLanguage(language));
        }
        if !self.is_multilingual() && language != "en" {
            return Err(TranscribeError::UnknownLanguage(format!(
                "{language} (this model is English-only)"
            )));
        }
        Ok(Some(language))
    }

    /// The hint text as tokens, with the leading space faster-whisper gives it.
    fn hint_tokens(&self, hints: Option<&str>) -> Result<Vec<String>, TranscribeError> {
        let Some(hints) = hints.map(str::trim).filter(|h| !h.is_empty()) else {
            return Ok(Vec::new());
        };
        let encoder = self.encoder.as_ref().map_err(|e| TranscribeError::NoTokenizer(e.clone()))?;
        Ok(encoder
            .tokens(&format!(" {hints}"))
            .into_iter()
            .filter(|token| self.vocabulary.id(token).is_some())
            .collect())
    }
}

/// Segments in time order, each starting where the one before it ended at the earliest and
/// ending within the recording.
fn keep_times_in_order(segments: &mut [minutes_shared::transcript::Segment], duration: f64) {
    let mut previous_end = 0.0f64;
    for segment in segments.iter_mut() {
        segment.start = segment.start.max(previous_end).min(duration);
        segment.end = segment.end.clamp(segment.start, duration);
        previous_end = segment.end;
    }
}

/// The mel band count from `preprocessor_config.json`, when the directory has one.
fn preprocessor_mel_bins(dir: &Path) -> Option<usize> {
    let text = std::fs::read_to_string(dir.join("preprocessor_config.json")).ok()?;
    let config: serde_json::Value = serde_json::from_str(&text).ok()?;
    config.get("feature_size")?.as_u64().map(|n| n as usize)
}
