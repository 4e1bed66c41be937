//! Flags shared by every subcommand that runs speech recognition, and what they build:
//! decode limits, the loaded model and the transcription options.

use std::path::PathBuf;
use std::time::Duration;

use crate::stages::decode::DecodeOptions;
use crate::stages::transcribe::{
    ModelOptions, Precision, TranscribeError, TranscribeOptions, WhisperModel,
};

/// Where the README's set-up puts the default model, relative to the working directory.
const DEFAULT_MODEL_DIR: &str = "models/whisper-tiny.en";

/// Speech-recognition flags; every one can also come from the environment.
#[derive(Debug, Clone, clap::Args)]
pub struct RecognitionArgs {
    /// Spoken language (ISO 639-1, e.g. en, de); detected when omitted.
    #[arg(long, short, env = "MINUTES_LANGUAGE")]
    pub language: Option<String>,
    /// CTranslate2 Whisper model directory (any faster-whisper model).
    #[arg(long, short, env = "MINUTES_MODEL_DIR", default_value = DEFAULT_MODEL_DIR)]
    pub model: PathBuf,
    /// Beam width (1 = greedy, faster and a little less accurate).
    #[arg(long, env = "MINUTES_BEAM_SIZE", default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub beam_size: u16,
    /// 30-second windows decoded together.
    #[arg(long, env = "MINUTES_BATCH_SIZE", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub batch_size: u16,
    /// Numeric precision: int8, float32 or default (as saved).
    #[arg(long, env = "MINUTES_COMPUTE_TYPE", default_value = "int8")]
    pub compute_type: Precision,
    /// CPU threads; 0 uses every core.
    #[arg(long, env = "MINUTES_THREADS", default_value_t = 0)]
    pub threads: usize,
    /// Batches decoded side by side (each by a model replica with threads/lanes threads);
    /// 0 picks min(threads, 4).
    #[arg(long, env = "MINUTES_DECODE_LANES", default_value_t = 0)]
    pub lanes: usize,
    /// Time every word (json output carries them).
    #[arg(long, env = "MINUTES_WORD_TIMESTAMPS")]
    pub words: bool,
    /// Longest recording accepted, in minutes.
    #[arg(long, env = "MINUTES_MAX_DURATION_MINUTES", default_value_t = 360)]
    pub max_duration_minutes: u64,
}

impl RecognitionArgs {
    /// A clear error before any work when the model directory is not there.
    pub fn check_model(&self) -> Result<(), TranscribeError> {
        if !self.model.join("model.bin").is_file() {
            return Err(TranscribeError::InvalidModel {
                path: self.model.clone(),
                reason: "model.bin is missing: pass --model DIR or set MINUTES_MODEL_DIR \
                         (scripts/demo fetches the default model)"
                    .into(),
            });
        }
        Ok(())
    }

    /// Limits for decoding.
    pub fn decode_options(&self) -> DecodeOptions {
        DecodeOptions {
            max_duration: Duration::from_secs(self.max_duration_minutes.saturating_mul(60)),
            ..DecodeOptions::default()
        }
    }

    /// Loads the model with the thread and lane counts asked for.
    pub fn load_model(&self) -> Result<WhisperModel, TranscribeError> {
        WhisperModel::load(&self.model_options())
    }

    /// How models are loaded: the directory, precision, threads and lanes asked for.
    pub fn model_options(&self) -> ModelOptions {
        let threads = if self.threads == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            self.threads
        };
        ModelOptions {
            model_dir: self.model.clone(),
            precision: self.compute_type,
            threads,
            lanes: if self.lanes == 0 { threads.min(4) } else { self.lanes },
        }
    }

    /// Options of one transcription.
    pub fn transcribe_options(&self) -> TranscribeOptions {
        TranscribeOptions {
            language: self.language.clone(),
            beam_size: usize::from(self.beam_size),
            batch_size: usize::from(self.batch_size),
            word_timestamps: self.words,
        }
    }
}
