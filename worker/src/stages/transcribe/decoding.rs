//! The decoding loop: windows go through the model in batches, and every result is checked
//! the way faster-whisper and openai-whisper check theirs, in the batched pipeline.
//!
//! - **Temperature fallback**: a result whose text compresses too well (a loop) or whose
//!   average log-probability is too low is decoded again by sampling at the next
//!   temperature; when every temperature fails, the best attempt is kept.
//! - **Silence**: a result the model calls non-speech with low confidence is dropped.
//! - **Nothing left undecoded**: when the last closed segment ends before the speech of
//!   its window does (beam search often stops early), the rest of the window is decoded as
//!   a new piece starting at that timestamp, with the text before it as the prompt: the
//!   `seek` of the sequential implementations. An unfinished last segment is dropped and
//!   decoded again the same way.
//! - **Language per piece** (multilingual models): detected from each piece's encoder
//!   output; a piece the model is unsure about is split at a pause and each half detected
//!   on its own, so a meeting that switches language gets each part in its own.
//!
//! Pieces of one round share a temperature; they are split over the lanes (model replicas).

use std::ops::{ControlFlow, Range};

use ct2rs::sys::{Device, StorageView};
use minutes_shared::transcript::Segment;

use super::fallback::{judge, Judgement};
use super::features::{SAMPLE_RATE, WINDOW_FRAMES};
use super::segments::{detection_parts, WindowResult};
use super::{TranscribeError, TranscribeOptions, WhisperModel};

/// A piece whose detected language is less likely than this is split and detected again.
const SURE_LANGUAGE: f32 = 0.8;

/// Part of a window to decode: a planned window, the rest of one, half of one, or a
/// stretch looked at again.
#[derive(Debug, Clone, Default)]
pub(super) struct Piece {
    pub range: Range<usize>,
    /// `None`: detect it.
    pub language: Option<String>,
    /// Index into the options' temperatures.
    pub temperature: usize,
    /// Text tokens decoded just before this piece in the same window (the prompt).
    pub previous: Vec<String>,
    /// The words of the last segments decoded before this piece: a continuation that
    /// starts by writing them again (timestamps can end early) does not keep them.
    pub recent: Vec<String>,
    /// Earlier attempts at lower temperatures.
    pub tried: Vec<Attempt>,
    pub continuations: usize,
    pub splits: usize,
    /// Already a second look at an unsure stretch: its result is kept as it is.
    pub rechecked: bool,
    /// A stretch whose language is to be detected again, with the segments it had: they
    /// stay when the language is the same.
    pub recheck: Option<Recheck>,
}

/// Segments decoded in one language and looked at again (see `followup`).
#[derive(Debug, Clone)]
pub(super) struct Recheck {
    pub segments: Vec<Segment>,
    pub language: String,
}

/// One decoding of a piece and how good it looks.
#[derive(Debug, Clone)]
pub(super) struct Attempt {
    pub result: WindowResult,
    pub language: String,
    pub avg_logprob: f32,
    pub compression_ratio: f32,
    pub no_speech_prob: f32,
}

/// What became of a piece after one pass.
pub(super) enum Outcome {
    /// Segments to keep, how much of the piece they settle (samples), and what is left
    /// to decode of it (the rest of the window, stretches to look at again).
    Done { segments: Vec<Segment>, decoded: usize, more: Vec<Piece> },
    /// Decode again at the next temperature.
    Retry(Piece),
    /// Unsure of the language: decode each half on its own.
    Split(Piece, Piece),
    /// Non-speech.
    Silence(usize),
}

/// Everything one transcription's pieces are decoded with.
pub(super) struct Context<'a> {
    pub audio: &'a [f32],
    pub regions: &'a [Range<usize>],
    pub options: &'a TranscribeOptions,
    /// The forced language, if any.
    pub language: Option<&'a str>,
    /// BPE tokens of the vocabulary hints.
    pub hints: &'a [String],
    /// Whether the model is multilingual.
    pub multilingual: bool,
}

impl Context<'_> {
    /// Whether languages are detected, so that a switch inside a piece must be caught.
    pub fn verify_language(&self) -> bool {
        self.multilingual && self.language.is_none()
    }
}

impl WhisperModel {
    /// Decodes `windows` to segments in time order.
    pub(super) fn decode_windows(
        &self,
        context: &Context<'_>,
        windows: &[Range<usize>],
        progress: &mut dyn FnMut(f64) -> ControlFlow<()>,
    ) -> Result<Vec<Segment>, TranscribeError> {
        let total: usize = windows.iter().map(|w| w.len()).sum::<usize>().max(1);
        let mut done = 0usize;
        let mut pending: Vec<Piece> = windows
            .iter()
            .map(|range| Piece {
                range: range.clone(),
                language: context.language.map(str::to_string),
                ..Piece::default()
            })
            .collect();
        let mut segments = Vec::new();
        let per_round = context.options.batch_size.max(1) * self.lanes.max(1);
        while !pending.is_empty() {
            // The lowest temperature first, in time order: fallbacks gather into full batches,
            // and so do continuations (which carry earlier text in their prompts).
            let kind_of = |p: &Piece| (p.recheck.is_none(), p.temperature, !p.previous.is_empty());
            let kind = pending.iter().map(kind_of).min();
            let mut round = Vec::with_capacity(per_round);
            let mut rest = Vec::with_capacity(pending.len());
            for piece in pending.drain(..) {
                let same = Some(kind_of(&piece)) == kind;
                if same && round.len() < per_round {
                    round.push(piece);
                } else {
                    rest.push(piece);
                }
            }
            pending = rest;
            for piece in &round {
                tracing::debug!(
                    start = piece.range.start as f64 / SAMPLE_RATE as f64,
                    end = piece.range.end as f64 / SAMPLE_RATE as f64,
                    temperature = piece.temperature,
                    language = piece.language.as_deref(),
                    continuations = piece.continuations,
                    splits = piece.splits,
                    recheck = piece.recheck.is_some(),
                    "decoding a piece"
                );
            }
            for outcome in self.decode_round(context, &round)? {
                match outcome {
                    Outcome::Done { segments: found, decoded, more } => {
                        segments.extend(found);
                        done += decoded;
                        pending.extend(more);
                    }
                    Outcome::Retry(piece) => pending.push(piece),
                    Outcome::Split(first, second) => pending.extend([first, second]),
                    Outcome::Silence(length) => done += length,
                }
            }
            pending.sort_by_key(|p| p.range.start);
            if progress((done as f64 / total as f64).min(1.0)).is_break() {
                return Err(TranscribeError::Cancelled);
            }
        }
        segments.sort_by(|a, b| a.start.total_cmp(&b.start));
        Ok(segments)
    }

    /// One round: every lane (a model replica with its own threads) takes a share.
    fn decode_round(
        &self,
        context: &Context<'_>,
        round: &[Piece],
    ) -> Result<Vec<Outcome>, TranscribeError> {
        let lanes = self.lanes.max(1);
        let per_lane = round.len().div_ceil(lanes).max(1);
        if per_lane >= round.len() {
            return self.decode_group(context, round);
        }
        let outcomes: Vec<Result<Vec<Outcome>, TranscribeError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = round
                .chunks(per_lane)
                .map(|group| scope.spawn(|| self.decode_group(context, group)))
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle.join().unwrap_or_else(|_| {
                        Err(TranscribeError::Engine("a decoding thread panicked".into()))
                    })
                })
                .collect()
        });
        let mut all = Vec::with_capacity(round.len());
        for outcome in outcomes {
            all.extend(outcome?);
        }
        Ok(all)
    }

    /// Encodes and decodes one batch of pieces that share a temperature.
    fn decode_group(
        &self,
        context: &Context<'_>,
        group: &[Piece],
    ) -> Result<Vec<Outcome>, TranscribeError> {
        let engine = |e: anyhow::Error| TranscribeError::Engine(e.to_string());
        let ranges: Vec<Range<usize>> = group.iter().map(|p| p.range.clone()).collect();
        let mut data = self.features(context.audio, &ranges);
        let shape = [group.len(), self.extractor.n_mels(), WINDOW_FRAMES];
        let features = StorageView::new(&shape, &mut data, Device::CPU).map_err(engine)?;
        // Encode once: language detection, generation and word alignment all read it.
        let started = std::time::Instant::now();
        let encoded = self.whisper.encode(&features, false).map_err(engine)?;
        tracing::debug!(pieces = group.len(), seconds = started.elapsed().as_secs_f64(), "encoded");
        let detected = self.detect_languages(&encoded, group)?;
        if group.iter().all(|p| p.recheck.is_some()) {
            // A second look needs only the language: decode again only where it changed.
            return Ok(group
                .iter()
                .zip(detected)
                .map(|(p, (language, _))| self.rechecked(p, language))
                .collect());
        }
        // CTranslate2 wants `<|startoftranscript|>` at one position in the whole batch: every
        // piece keeps as much earlier text as the one with the least.
        let shared_previous = group.iter().map(|p| p.previous.len()).min().unwrap_or(0);
        let prompts: Vec<Vec<String>> = group
            .iter()
            .zip(&detected)
            .map(|(piece, (language, _))| {
                let previous = &piece.previous[piece.previous.len() - shared_previous..];
                self.prompt(language, previous, context)
            })
            .collect::<Result<_, _>>()?;
        let temperature = context.options.temperatures.get(group[0].temperature).copied();
        let whisper_options = self.generation_options(context.options, temperature.unwrap_or(0.0));
        let started = std::time::Instant::now();
        let generated =
            self.whisper.generate(&encoded, &prompts, &whisper_options).map_err(engine)?;
        tracing::debug!(
            pieces = group.len(),
            seconds = started.elapsed().as_secs_f64(),
            "generated"
        );
        let mut outcomes = Vec::with_capacity(group.len());
        let mut accepted: Vec<Option<Attempt>> = Vec::with_capacity(group.len());
        for ((piece, generation), (language, sure)) in group.iter().zip(generated).zip(detected) {
            if !sure {
                if let Some((first, second)) = self.split(context, piece) {
                    outcomes.push(Some(Outcome::Split(first, second)));
                    accepted.push(None);
                    continue;
                }
            }
            let ids = generation.sequences_ids.into_iter().next().unwrap_or_default();
            let score = generation.scores.first().copied().unwrap_or(f32::NEG_INFINITY);
            let attempt = self.attempt(piece, ids, score, generation.no_speech_prob, language);
            match judge(context.options, piece, attempt) {
                Judgement::Retry(piece) => {
                    outcomes.push(Some(Outcome::Retry(piece)));
                    accepted.push(None);
                }
                Judgement::Silence => {
                    outcomes.push(Some(Outcome::Silence(piece.range.len())));
                    accepted.push(None);
                }
                Judgement::Keep(attempt) => {
                    outcomes.push(None);
                    accepted.push(Some(attempt));
                }
            }
        }
        // The words' times cut the text into lines and say where decoding stopped; their
        // probabilities say how sure the model was (see `followup`).
        let started = std::time::Instant::now();
        self.align_words(&encoded, &prompts, group, &mut accepted)?;
        tracing::debug!(pieces = group.len(), seconds = started.elapsed().as_secs_f64(), "aligned");
        Ok(outcomes
            .into_iter()
            .zip(accepted)
            .zip(group)
            .map(|((outcome, attempt), piece)| match (outcome, attempt) {
                (Some(outcome), _) => outcome,
                (None, Some(attempt)) => self.finish(context, piece, attempt),
                (None, None) => Outcome::Silence(piece.range.len()),
            })
            .collect())
    }

    /// Each piece's language and whether the model is sure of it.
    fn detect_languages(
        &self,
        encoded: &StorageView,
        group: &[Piece],
    ) -> Result<Vec<(String, bool)>, TranscribeError> {
        let needs_detection = self.is_multilingual() && group.iter().any(|p| p.language.is_none());
        let detections = match needs_detection {
            true => self
                .whisper
                .detect_language(encoded)
                .map_err(|e| TranscribeError::Engine(e.to_string()))?,
            false => Vec::new(),
        };
        Ok(group
            .iter()
            .enumerate()
            .map(|(row, piece)| match &piece.language {
                Some(language) => (language.clone(), true),
                None if !self.is_multilingual() => ("en".to_string(), true),
                None => {
                    let best = detections
                        .get(row)
                        .and_then(|candidates| candidates.first())
                        .map(detection_parts)
                        .unwrap_or_default();
                    let language =
                        best.0.trim_start_matches("<|").trim_end_matches("|>").to_string();
                    let language = if language.is_empty() { "en".to_string() } else { language };
                    (language, best.1 >= SURE_LANGUAGE)
                }
            })
            .collect())
    }
}
