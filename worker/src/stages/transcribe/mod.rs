//! Transcribe stage: 16 kHz mono audio to a timed [`Transcript`] with Whisper (CTranslate2).
//!
//! The approach is faster-whisper's batched pipeline, rebuilt on `ct2rs`'s low-level API:
//! 1. [`speech`] finds speech and packs it into windows of at most 30 s that end in pauses,
//!    so no word straddles a cut and silence or steady noise never reaches the model;
//! 2. [`features`] computes each window's log-mel spectrogram;
//! 3. windows are encoded and decoded in batches (beam search with timestamp tokens), which
//!    keeps both cores busy on the matrix products;
//! 4. [`segments`] turns timestamp tokens into segments, drops windows the model itself
//!    calls non-speech, and cuts repetition loops.
//!
//! The stage is a pure function of its input and options: no storage, queue or database.

mod features;
mod segments;
pub mod speech;
mod vocabulary;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use ct2rs::sys::{ComputeType, Config, Device, StorageView, Whisper, WhisperOptions};
use minutes_shared::transcript::{Segment, Transcript, TRANSCRIPT_FORMAT_VERSION};

use self::features::{FeatureExtractor, SAMPLE_RATE, WINDOW_FRAMES};
use self::segments::WindowResult;
use self::vocabulary::Vocabulary;

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
    /// small machine two single-threaded lanes beat one lane with two threads.
    pub lanes: usize,
}

/// How one recording is transcribed.
#[derive(Debug, Clone, PartialEq)]
pub struct TranscribeOptions {
    /// ISO 639-1 language code; `None` detects it (multilingual models) or uses English.
    pub language: Option<String>,
    /// Beam width of the search; 1 is greedy.
    pub beam_size: usize,
    /// Windows decoded together.
    pub batch_size: usize,
    /// Whether to time every word.
    pub word_timestamps: bool,
}

impl Default for TranscribeOptions {
    fn default() -> Self {
        Self { language: None, beam_size: 5, batch_size: 8, word_timestamps: false }
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
        let lanes = options.lanes.clamp(1, options.threads.max(1));
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
        Ok(Self { whisper, vocabulary, extractor: FeatureExtractor::new(n_mels), name, lanes })
    }

    /// Whether the model transcribes languages other than English.
    pub fn is_multilingual(&self) -> bool {
        self.whisper.is_multilingual()
    }

    /// Transcribes `audio` (16 kHz mono). `progress` is told the fraction of the audio done
    /// after every batch and may return `Break` to cancel.
    pub fn transcribe(
        &self,
        audio: &[f32],
        options: &TranscribeOptions,
        progress: &mut dyn FnMut(f64) -> ControlFlow<()>,
    ) -> Result<Transcript, TranscribeError> {
        let duration = audio.len() as f64 / SAMPLE_RATE as f64;
        let windows = speech::plan_windows(audio, &speech::speech_regions(audio));
        let language = self.choose_language(audio, &windows, options.language.as_deref())?;
        let prompt = self.prompt(&language)?;
        let mut segments: Vec<Segment> = Vec::new();
        let batch_size = options.batch_size.max(1);
        let lanes = self.lanes.max(1);
        // Each round hands every lane (a model replica with its own threads) one batch.
        for round in windows.chunks(batch_size * lanes) {
            let per_lane = round.len().div_ceil(lanes);
            let outcomes: Vec<Result<Vec<WindowResult>, TranscribeError>> = if per_lane
                == round.len()
            {
                vec![self.decode_batch(audio, round, &prompt, options)]
            } else {
                std::thread::scope(|scope| {
                    let handles: Vec<_> = round
                        .chunks(per_lane)
                        .map(|batch| {
                            scope.spawn(|| self.decode_batch(audio, batch, &prompt, options))
                        })
                        .collect();
                    handles
                        .into_iter()
                        .map(|handle| {
                            handle.join().unwrap_or_else(|_| {
                                Err(TranscribeError::Engine("a decoding thread panicked".into()))
                            })
                        })
                        .collect()
                })
            };
            let mut results = Vec::with_capacity(round.len());
            for outcome in outcomes {
                results.extend(outcome?);
            }
            for (window, result) in round.iter().zip(results) {
                let offset = window.start as f64 / SAMPLE_RATE as f64;
                segments.extend(result.into_segments(offset));
            }
            let done = round.last().map_or(1.0, |w| w.end as f64 / audio.len().max(1) as f64);
            if progress(done.min(1.0)).is_break() {
                return Err(TranscribeError::Cancelled);
            }
        }
        if progress(1.0).is_break() {
            return Err(TranscribeError::Cancelled);
        }
        Ok(Transcript {
            version: TRANSCRIPT_FORMAT_VERSION,
            language,
            duration,
            model: self.name.clone(),
            segments,
        })
    }

    fn features(&self, audio: &[f32], windows: &[std::ops::Range<usize>]) -> Vec<f32> {
        let mut data = Vec::with_capacity(windows.len() * self.extractor.n_mels() * WINDOW_FRAMES);
        for window in windows {
            self.extractor.window_features(&audio[window.clone()], &mut data);
        }
        data
    }

    fn decode_batch(
        &self,
        audio: &[f32],
        windows: &[std::ops::Range<usize>],
        prompt: &[String],
        options: &TranscribeOptions,
    ) -> Result<Vec<WindowResult>, TranscribeError> {
        let engine = |e: anyhow::Error| TranscribeError::Engine(e.to_string());
        let mut data = self.features(audio, windows);
        let shape = [windows.len(), self.extractor.n_mels(), WINDOW_FRAMES];
        let features = StorageView::new(&shape, &mut data, Device::CPU).map_err(engine)?;
        // Encode once: generation and word alignment both read the encoder output.
        let encoded = self.whisper.encode(&features, false).map_err(engine)?;
        let prompts = vec![prompt.to_vec(); windows.len()];
        let whisper_options = WhisperOptions {
            beam_size: options.beam_size.max(1),
            return_scores: true,
            return_no_speech_prob: true,
            ..WhisperOptions::default()
        };
        let generated =
            self.whisper.generate(&encoded, &prompts, &whisper_options).map_err(engine)?;
        let mut results: Vec<WindowResult> = windows
            .iter()
            .zip(generated)
            .map(|(window, generation)| {
                WindowResult::from_generation(
                    &self.vocabulary,
                    generation,
                    window.len() as f64 / SAMPLE_RATE as f64,
                )
            })
            .collect();
        if options.word_timestamps {
            self.align_words(&encoded, prompt, windows, &mut results)?;
        }
        Ok(results)
    }

    fn align_words(
        &self,
        encoded: &StorageView,
        prompt: &[String],
        windows: &[std::ops::Range<usize>],
        results: &mut [WindowResult],
    ) -> Result<(), TranscribeError> {
        let start_sequence: Vec<usize> =
            prompt.iter().filter_map(|t| self.vocabulary.id(t)).collect();
        let text_tokens: Vec<Vec<usize>> = results.iter().map(WindowResult::text_tokens).collect();
        if text_tokens.iter().all(Vec::is_empty) {
            return Ok(());
        }
        let frames: Vec<usize> = windows.iter().map(|w| w.len() / features::HOP).collect();
        let alignments = self
            .whisper
            .align(encoded, &start_sequence, &text_tokens, &frames, 7)
            .map_err(|e| TranscribeError::Engine(e.to_string()))?;
        for (result, alignment) in results.iter_mut().zip(alignments) {
            result.attach_words(
                &self.vocabulary,
                &alignment.alignments,
                &alignment.text_token_probs,
            );
        }
        Ok(())
    }

    /// The forced language, or English for English-only models, or the language the model
    /// hears most over up to three windows spread across the recording.
    fn choose_language(
        &self,
        audio: &[f32],
        windows: &[std::ops::Range<usize>],
        forced: Option<&str>,
    ) -> Result<String, TranscribeError> {
        if let Some(language) = forced {
            let language = language.to_ascii_lowercase();
            if self.is_multilingual() && self.vocabulary.id(&format!("<|{language}|>")).is_none() {
                return Err(TranscribeError::UnknownLanguage(language));
            }
            if !self.is_multilingual() && language != "en" {
                return Err(TranscribeError::UnknownLanguage(format!(
                    "{language} (this model is English-only)"
                )));
            }
            return Ok(language);
        }
        if !self.is_multilingual() || windows.is_empty() {
            return Ok("en".into());
        }
        let picks: Vec<std::ops::Range<usize>> = if windows.len() <= 3 {
            windows.to_vec()
        } else {
            vec![
                windows[0].clone(),
                windows[windows.len() / 2].clone(),
                windows[windows.len() - 1].clone(),
            ]
        };
        let mut data = self.features(audio, &picks);
        let shape = [picks.len(), self.extractor.n_mels(), WINDOW_FRAMES];
        let engine = |e: anyhow::Error| TranscribeError::Engine(e.to_string());
        let features = StorageView::new(&shape, &mut data, Device::CPU).map_err(engine)?;
        let detections = self.whisper.detect_language(&features).map_err(engine)?;
        let mut totals: Vec<(String, f32)> = Vec::new();
        for candidate in detections.into_iter().flatten() {
            let (token, probability) = segments::detection_parts(&candidate);
            match totals.iter_mut().find(|(t, _)| *t == token) {
                Some((_, total)) => *total += probability,
                None => totals.push((token, probability)),
            }
        }
        let best = totals.into_iter().max_by(|a, b| a.1.total_cmp(&b.1));
        Ok(best
            .map(|(token, _)| token.trim_start_matches("<|").trim_end_matches("|>").to_string())
            .unwrap_or_else(|| "en".into()))
    }

    fn prompt(&self, language: &str) -> Result<Vec<String>, TranscribeError> {
        let mut prompt = vec!["<|startoftranscript|>".to_string()];
        if self.is_multilingual() {
            let token = format!("<|{language}|>");
            if self.vocabulary.id(&token).is_none() {
                return Err(TranscribeError::UnknownLanguage(language.into()));
            }
            prompt.push(token);
            prompt.push("<|transcribe|>".into());
        }
        Ok(prompt)
    }
}

/// The mel band count from `preprocessor_config.json`, when the directory has one.
fn preprocessor_mel_bins(dir: &Path) -> Option<usize> {
    let text = std::fs::read_to_string(dir.join("preprocessor_config.json")).ok()?;
    let config: serde_json::Value = serde_json::from_str(&text).ok()?;
    config.get("feature_size")?.as_u64().map(|n| n as usize)
}
