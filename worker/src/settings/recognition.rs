//! Flags shared by every subcommand that runs speech recognition, and what they build:
//! decode limits, the loaded model, the speech detector and the transcription options.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::diarization::DiarizationArgs;
use crate::decoder_process::{DecoderCommand, DecoderLimits, SupervisedDecoder};
use crate::models::{self, Locations, ModelError};
use crate::onnx::{self, OnnxError};
use crate::stages::decode::DecodeOptions;
use crate::stages::diarize::{DiarizeError, Diarizer};
use crate::stages::transcribe::engine;
use crate::stages::transcribe::silero::{SileroVad, VadOptions};
use crate::stages::transcribe::speech::{DetectorKind, SpeechDetector};
use crate::stages::transcribe::{
    ModelOptions, Precision, Task, TranscribeError, TranscribeOptions, WhisperModel,
};

/// Why recognition cannot start: the model, ONNX Runtime or the detector is missing.
#[derive(Debug, thiserror::Error)]
pub enum RecognitionError {
    /// `--model` names nothing usable.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The model folder is not a usable model.
    #[error(transparent)]
    Load(#[from] TranscribeError),
    /// A diarization model is missing or broken.
    #[error("diarization cannot start (--speakers off needs nothing installed)")]
    Diarization(#[from] DiarizeError),
    /// ONNX Runtime or the Silero model is missing or broken.
    #[error("speech detection (Silero VAD) cannot start; --vad energy needs nothing installed")]
    Onnx(#[from] OnnxError),
}

/// Speech-recognition flags; every one can also come from the environment.
#[derive(Debug, Clone, clap::Args)]
pub struct RecognitionArgs {
    /// Who speaks when.
    #[command(flatten)]
    pub diarization: DiarizationArgs,
    /// Spoken language (ISO 639-1, e.g. en, de); detected for each part when omitted.
    #[arg(long, short, env = "MINUTES_LANGUAGE")]
    pub language: Option<String>,
    /// transcribe, or translate (into English; multilingual models).
    #[arg(long, env = "MINUTES_TASK", default_value = "transcribe")]
    pub task: Task,
    /// A model name (`minutes models list`: tiny.en, base) or a CTranslate2 Whisper model
    /// folder (any faster-whisper model).
    #[arg(long, short, env = "MINUTES_MODEL", default_value = "tiny.en")]
    pub model: String,
    /// Names and jargon to expect, e.g. "Kubernetes, Sarah Chen" (given to the model as
    /// text that came before, like faster-whisper's hotwords).
    #[arg(long, env = "MINUTES_VOCABULARY")]
    pub vocabulary: Option<String>,
    /// Speech detector: silero (Silero VAD through ONNX Runtime) or energy.
    #[arg(long, env = "MINUTES_VAD", default_value = "silero")]
    pub vad: DetectorKind,
    /// Silero: a 32 ms frame at or above this speech probability is speech.
    #[arg(long, env = "MINUTES_VAD_THRESHOLD", default_value_t = 0.5)]
    pub vad_threshold: f32,
    /// Silero: silence shorter than this (ms) does not end a speech region.
    #[arg(long, env = "MINUTES_VAD_MIN_SILENCE_MS", default_value_t = 160)]
    pub vad_min_silence_ms: u32,
    /// Silero: audio kept on each side of a speech region (ms).
    #[arg(long, env = "MINUTES_VAD_PAD_MS", default_value_t = 400)]
    pub vad_pad_ms: u32,
    /// Where `minutes models install` puts models and runtimes (default:
    /// $XDG_DATA_HOME/minutes, else ~/.local/share/minutes).
    #[arg(long, env = "MINUTES_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The ONNX Runtime library (default: installed by `minutes models install`).
    #[arg(long, env = "MINUTES_ONNXRUNTIME")]
    pub onnxruntime: Option<PathBuf>,
    /// The Silero VAD model (default: installed by `minutes models install`).
    #[arg(long, env = "MINUTES_VAD_MODEL")]
    pub vad_model: Option<PathBuf>,
    /// Beam width (1 = greedy, faster and a little less accurate).
    #[arg(long, env = "MINUTES_BEAM_SIZE", default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub beam_size: u16,
    /// Candidates sampled at each fallback temperature.
    #[arg(long, env = "MINUTES_BEST_OF", default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub best_of: u16,
    /// Temperatures tried in turn while a window's result looks poor (comma-separated; the
    /// first, 0, is beam search).
    #[arg(
        long,
        env = "MINUTES_TEMPERATURES",
        value_delimiter = ',',
        default_value = "0,0.2,0.4,0.6,0.8,1"
    )]
    pub temperatures: Vec<f32>,
    /// A window whose text compresses better than this (zlib) is a loop: try again hotter.
    #[arg(long, env = "MINUTES_COMPRESSION_RATIO_THRESHOLD", default_value_t = 2.4)]
    pub compression_ratio_threshold: f32,
    /// A window whose average token log-probability is under this is a guess: try again.
    #[arg(long, env = "MINUTES_LOG_PROB_THRESHOLD", default_value_t = -1.0, allow_negative_numbers = true)]
    pub log_prob_threshold: f32,
    /// A window the model calls non-speech with more than this probability, and a guess
    /// too, is dropped as silence.
    #[arg(long, env = "MINUTES_NO_SPEECH_THRESHOLD", default_value_t = 0.6)]
    pub no_speech_threshold: f32,
    /// A phrase or segment repeated back to back more than this many times is a loop.
    #[arg(long, env = "MINUTES_MAX_REPEATS", default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub max_repeats: u16,
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
    /// 0 picks min(threads, 4), or 1 where CTranslate2 uses Intel MKL.
    #[arg(long, env = "MINUTES_DECODE_LANES", default_value_t = 0)]
    pub lanes: usize,
    /// Time every word (json output carries them).
    #[arg(long, env = "MINUTES_WORD_TIMESTAMPS")]
    pub words: bool,
    /// Longest recording accepted, in minutes.
    #[arg(long, env = "MINUTES_MAX_DURATION_MINUTES", default_value_t = 360)]
    pub max_duration_minutes: u64,
    /// Memory the decoder process may map beyond the program's own, in MiB.
    #[arg(long, env = "MINUTES_DECODE_MEMORY_MB", default_value_t = DecoderLimits::MEMORY_MIB, value_parser = clap::value_parser!(u64).range(64..))]
    pub decode_memory_mb: u64,
    /// CPU seconds the decoder process may use on one file.
    #[arg(long, env = "MINUTES_DECODE_CPU_SECS", default_value_t = DecoderLimits::CPU_SECS, value_parser = clap::value_parser!(u64).range(1..))]
    pub decode_cpu_secs: u64,
    /// Seconds without progress after which the decoder process is taken to hang and killed.
    #[arg(long, env = "MINUTES_DECODE_WATCHDOG_SECS", default_value_t = DecoderLimits::WATCHDOG_SECS, value_parser = clap::value_parser!(u64).range(1..))]
    pub decode_watchdog_secs: u64,
}

impl RecognitionArgs {
    /// The model folder `--model` names.
    pub fn model_dir(&self) -> Result<PathBuf, ModelError> {
        models::resolve_model(&self.model, &self.locations())
    }

    /// The data folder's locations.
    pub fn locations(&self) -> Locations {
        Locations::new(self.data_dir.clone(), None)
    }

    /// A clear error before any work when the model, ONNX Runtime or the speech detector
    /// is not there.
    pub fn check(&self) -> Result<(), RecognitionError> {
        let dir = self.model_dir()?;
        if !dir.join("model.bin").is_file() {
            return Err(TranscribeError::InvalidModel {
                path: dir,
                reason: "model.bin is missing: pass a model folder or a name from \
                         `minutes models list` to --model"
                    .into(),
            }
            .into());
        }
        if self.vad == DetectorKind::Silero {
            let locations = self.locations();
            onnx::check_library(&self.onnxruntime_path(&locations))?;
            let model = self.vad_model.clone().unwrap_or_else(|| locations.silero_vad());
            if !model.is_file() {
                return Err(OnnxError::MissingModel { path: model }.into());
            }
        }
        // Loading is the check: the files are there, ONNX Runtime takes the segmentation
        // model and the voice encoder reads (a few hundred milliseconds).
        self.diarizer()?;
        Ok(())
    }

    /// The diarization models, loaded; `None` with `--speakers off`.
    pub fn diarizer(&self) -> Result<Option<Diarizer>, RecognitionError> {
        let locations = self.locations();
        Ok(self.diarization.load(&locations, &self.onnxruntime_path(&locations))?)
    }

    fn onnxruntime_path(&self, locations: &Locations) -> PathBuf {
        self.onnxruntime.clone().unwrap_or_else(|| locations.onnxruntime())
    }

    /// Limits for decoding.
    pub fn decode_options(&self) -> DecodeOptions {
        DecodeOptions {
            max_duration: Duration::from_secs(self.max_duration_minutes.saturating_mul(60)),
            ..DecodeOptions::default()
        }
    }

    /// What a transcript made with these settings depends on (for `minutes process`
    /// to tell whether an earlier transcript still fits).
    pub fn transcript_inputs(&self) -> String {
        // Threads, lanes and the decoder's limits change how fast, not what is written.
        let mut inputs = self.clone();
        (inputs.threads, inputs.lanes) = (0, 0);
        (inputs.decode_memory_mb, inputs.decode_cpu_secs, inputs.decode_watchdog_secs) = (0, 0, 0);
        let model = self.model_dir().map(|dir| dir.display().to_string()).unwrap_or_default();
        format!("{model}|{inputs:?}")
    }

    /// The decoder process this binary runs recordings through, with the limits asked for.
    pub fn decoder(&self) -> std::io::Result<SupervisedDecoder> {
        Ok(SupervisedDecoder {
            command: DecoderCommand::current()?,
            options: self.decode_options(),
            limits: DecoderLimits {
                memory_mib: self.decode_memory_mb,
                cpu: Duration::from_secs(self.decode_cpu_secs),
                watchdog: Duration::from_secs(self.decode_watchdog_secs),
            },
        })
    }

    /// Loads the model with the thread and lane counts asked for.
    pub fn load_model(&self) -> Result<WhisperModel, RecognitionError> {
        Ok(WhisperModel::load(&self.model_options()?)?)
    }

    /// The speech detector asked for, loaded.
    pub fn speech_detector(&self) -> Result<SpeechDetector, RecognitionError> {
        match self.vad {
            DetectorKind::Energy => Ok(SpeechDetector::Energy),
            DetectorKind::Silero => {
                let locations = self.locations();
                let model = self.vad_model.clone().unwrap_or_else(|| locations.silero_vad());
                let vad = SileroVad::load(&self.onnxruntime_path(&locations), &model)?;
                let options = VadOptions {
                    threshold: self.vad_threshold,
                    min_silence_ms: self.vad_min_silence_ms,
                    speech_pad_ms: self.vad_pad_ms,
                    ..VadOptions::default()
                };
                Ok(SpeechDetector::Silero(Arc::new(vad), options))
            }
        }
    }

    /// How models are loaded: the folder, precision, threads and lanes asked for.
    pub fn model_options(&self) -> Result<ModelOptions, ModelError> {
        let threads = if self.threads == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            self.threads
        };
        Ok(ModelOptions {
            model_dir: self.model_dir()?,
            precision: self.compute_type,
            threads,
            lanes: match self.lanes {
                0 => threads.min(4).min(engine::max_lanes()),
                asked => asked,
            },
        })
    }

    /// Options of one transcription.
    pub fn transcribe_options(&self) -> TranscribeOptions {
        TranscribeOptions {
            language: self.language.clone(),
            task: self.task,
            beam_size: usize::from(self.beam_size),
            best_of: usize::from(self.best_of),
            batch_size: usize::from(self.batch_size),
            word_timestamps: self.words,
            temperatures: if self.temperatures.is_empty() {
                vec![0.0]
            } else {
                self.temperatures.clone()
            },
            compression_ratio_threshold: self.compression_ratio_threshold,
            log_prob_threshold: self.log_prob_threshold,
            no_speech_threshold: self.no_speech_threshold,
            max_repeats: usize::from(self.max_repeats),
            vocabulary: self.vocabulary.clone(),
        }
    }
}
