//! What follows a kept decoding: the rest of its piece when speech is left undecoded (the
//! `seek` of the sequential implementations), a second look at segments the model wrote
//! with little confidence in a multilingual recording (the speaker may have switched
//! language: the stretch is detected again on its own), and the halves of a piece whose
//! language the model is unsure of.

use std::ops::Range;

use minutes_shared::transcript::Segment;

use super::decoding::{Attempt, Context, Outcome, Piece, Recheck};
use super::features::SAMPLE_RATE;
use super::repetition::key;
use super::windows::{quietest_cut, speech_within};
use super::WhisperModel;

/// A piece continues when at least this much speech (seconds) follows its last segment.
const MIN_UNDECODED_SPEECH: f64 = 1.0;
/// ... and its decoded part covers at least this much (so each pass makes progress).
const MIN_PROGRESS: f64 = 1.0;
/// Continuations of one window at most (a guard against a model that never finishes).
const MAX_CONTINUATIONS: usize = 8;
/// Segments remembered from before a continuation to catch it repeating them.
const RECENT_SEGMENTS: usize = 3;
/// Neither half of a split may be shorter than this (seconds).
const MIN_SPLIT_SECONDS: f64 = 4.0;
/// Splits of one window at most.
const MAX_SPLITS: usize = 2;
/// In a multilingual recording, segments whose words average a lower probability than this
/// are detected and decoded again on their own (German decoded as English scores 0.4-0.55,
/// English 0.8-0.98 on the evaluation clips).
const SUSPECT_WORD_PROBABILITY: f32 = 0.65;
/// A stretch to look at again is widened by this much (seconds) on both sides.
const RECHECK_MARGIN: f64 = 0.3;

impl WhisperModel {
    /// The kept attempt's segments, the rest of the piece when speech is left in it, and
    /// stretches to look at again.
    pub(super) fn finish(
        &self,
        context: &Context<'_>,
        piece: &Piece,
        mut attempt: Attempt,
    ) -> Outcome {
        let seconds = |samples: usize| samples as f64 / SAMPLE_RATE as f64;
        attempt.result.split_into_lines();
        let closed_end = attempt.result.closed_end().unwrap_or(0.0);
        let may_continue = piece.continuations < MAX_CONTINUATIONS && closed_end >= MIN_PROGRESS;
        let seek = if !may_continue {
            None
        } else if attempt.result.ends_unfinished() {
            // The sequential implementations drop an unfinished segment and decode again
            // from the last timestamp.
            attempt.result.drop_unfinished();
            Some(closed_end)
        } else {
            let from = piece.range.start + (closed_end * SAMPLE_RATE as f64) as usize;
            let left =
                speech_within(&(from.min(piece.range.end)..piece.range.end), context.regions);
            (seconds(left) >= MIN_UNDECODED_SPEECH).then_some(closed_end)
        };
        let previous: Vec<String> = piece
            .previous
            .iter()
            .cloned()
            .chain(
                attempt
                    .result
                    .text_tokens()
                    .iter()
                    .filter_map(|&id| self.vocabulary.token(id).map(str::to_string)),
            )
            .collect();
        let mut segments =
            attempt.result.into_segments(seconds(piece.range.start), context.options.max_repeats);
        let repeated = segments
            .iter()
            .take_while(|s| piece.recent.iter().any(|recent| nearly_same(recent, &key(&s.text))))
            .count();
        segments.drain(..repeated);
        if segments.is_empty() && piece.continuations > 0 {
            // The continuation only repeated what was decoded: the window is done.
            return Outcome::Done { segments, decoded: piece.range.len(), more: Vec::new() };
        }
        let mut recent = piece.recent.clone();
        recent.extend(segments.iter().map(|s| key(&s.text)));
        let recent = recent.split_off(recent.len().saturating_sub(RECENT_SEGMENTS));
        for segment in &mut segments {
            segment.language.clone_from(&attempt.language);
            segment.avg_logprob = Some(line_logprob(segment).unwrap_or(attempt.avg_logprob));
            segment.no_speech_prob = Some(attempt.no_speech_prob);
        }
        let mut more = Vec::new();
        let mut rechecked = 0;
        if context.verify_language() && !piece.rechecked {
            for (stretch, mut unsure) in unsure_stretches(&mut segments, &piece.range) {
                rechecked += stretch.len();
                if !context.options.word_timestamps {
                    unsure.iter_mut().for_each(|s| s.words = None);
                }
                let recheck = Recheck { segments: unsure, language: attempt.language.clone() };
                more.push(Piece { range: stretch, recheck: Some(recheck), ..Piece::default() });
            }
        }
        if !context.options.word_timestamps {
            segments.iter_mut().for_each(|s| s.words = None);
        }
        let decoded = match seek {
            None => piece.range.len(),
            Some(seek) => {
                let cut =
                    (piece.range.start + (seek * SAMPLE_RATE as f64) as usize).min(piece.range.end);
                more.push(Piece {
                    range: cut..piece.range.end,
                    // A continuation is detected again unless the language was forced:
                    // the speaker may have switched.
                    language: context.language.map(str::to_string),
                    previous,
                    recent,
                    continuations: piece.continuations + 1,
                    splits: piece.splits,
                    ..Piece::default()
                });
                cut - piece.range.start
            }
        };
        Outcome::Done { segments, decoded: decoded.saturating_sub(rechecked), more }
    }

    /// After a second look at `piece`'s language: its segments when it is the same, else
    /// the stretch to decode in the language detected.
    pub(super) fn rechecked(&self, piece: &Piece, language: String) -> Outcome {
        match &piece.recheck {
            Some(recheck) if recheck.language != language => Outcome::Done {
                segments: Vec::new(),
                decoded: 0,
                more: vec![Piece {
                    range: piece.range.clone(),
                    language: Some(language),
                    rechecked: true,
                    ..Piece::default()
                }],
            },
            Some(recheck) => Outcome::Done {
                segments: recheck.segments.clone(),
                decoded: piece.range.len(),
                more: Vec::new(),
            },
            None => Outcome::Silence(piece.range.len()),
        }
    }

    /// Two halves of `piece` cut at its longest pause (or quietest moment) near the middle,
    /// when it is long enough and has not been split too often.
    pub(super) fn split(&self, context: &Context<'_>, piece: &Piece) -> Option<(Piece, Piece)> {
        let min = (MIN_SPLIT_SECONDS * SAMPLE_RATE as f64) as usize;
        if piece.splits >= MAX_SPLITS || piece.range.len() < 2 * min {
            return None;
        }
        let middle = piece.range.start + min..piece.range.end - min;
        // The middle of the longest gap between speech regions inside that span.
        let gap = context
            .regions
            .windows(2)
            .map(|pair| pair[0].end..pair[1].start)
            .filter(|gap| gap.start >= middle.start && gap.end <= middle.end && gap.end > gap.start)
            .max_by_key(|gap| gap.len())
            .map(|gap| (gap.start + gap.end) / 2);
        let cut = gap.unwrap_or_else(|| quietest_cut(context.audio, middle));
        let half = |range: Range<usize>| Piece {
            range,
            continuations: piece.continuations,
            splits: piece.splits + 1,
            rechecked: piece.rechecked,
            ..Piece::default()
        };
        Some((half(piece.range.start..cut), half(cut..piece.range.end)))
    }
}

/// Whether two segments' words differ in at most a quarter of them ("So, I don't hear
/// that" and "Oh, I don't hear that" are one sentence decoded twice).
fn nearly_same(a: &str, b: &str) -> bool {
    let errors = minutes_shared::wer::word_errors(a, b);
    errors.reference_words > 0 && errors.rate() <= 0.25
}

/// Takes out of `segments` the runs whose words the model was unsure of, and returns them
/// with the sample ranges (inside `within`) to detect again.
fn unsure_stretches(
    segments: &mut Vec<Segment>,
    within: &Range<usize>,
) -> Vec<(Range<usize>, Vec<Segment>)> {
    let unsure = |segment: &Segment| {
        let words = segment.words.as_deref().unwrap_or_default();
        !words.is_empty()
            && words.iter().map(|w| w.probability).sum::<f32>() / (words.len() as f32)
                < SUSPECT_WORD_PROBABILITY
    };
    let sample = |seconds: f64| (seconds.max(0.0) * SAMPLE_RATE as f64) as usize;
    let stretch = |run: &[Segment]| {
        let start = run.first().map_or(0.0, |s| s.start) - RECHECK_MARGIN;
        let end = run.last().map_or(0.0, |s| s.end) + RECHECK_MARGIN;
        sample(start).max(within.start)..sample(end).min(within.end)
    };
    let mut stretches = Vec::new();
    let mut kept = Vec::with_capacity(segments.len());
    let mut run: Vec<Segment> = Vec::new();
    for segment in segments.drain(..) {
        if unsure(&segment) {
            run.push(segment);
            continue;
        }
        if !run.is_empty() {
            stretches.push((stretch(&run), std::mem::take(&mut run)));
        }
        kept.push(segment);
    }
    if !run.is_empty() {
        stretches.push((stretch(&run), run));
    }
    *segments = kept;
    stretches.retain(|(range, _)| range.end > range.start);
    stretches
}

/// The average log-probability of a line's words (each word's probability is the mean of
/// its tokens' under the alignment); `None` without timed words.
fn line_logprob(segment: &Segment) -> Option<f32> {
    let words = segment.words.as_deref().filter(|w| !w.is_empty())?;
    Some(words.iter().map(|w| w.probability.max(1e-6).ln()).sum::<f32>() / words.len() as f32)
}
