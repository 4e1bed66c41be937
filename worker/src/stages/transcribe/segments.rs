//! From the model's token ids for one window to timed segments.
//!
//! Whisper writes `<|t0|> text <|t1|>` pairs; each pair is a segment. A window the model
//! judges silent (high no-speech probability and low confidence, faster-whisper's rule) is
//! dropped, and a phrase repeated over and over (Whisper's known failure on long or noisy
//! input) is cut back to its first occurrences.

use ct2rs::sys::{DetectionResult, WhisperGenerationResult, WhisperTokenAlignment};
use minutes_shared::transcript::{Segment, Word};

use super::vocabulary::Vocabulary;

/// A window is silence when the model says so with at least this probability ...
const NO_SPEECH_THRESHOLD: f32 = 0.6;
/// ... and its mean token log-probability is under this.
const LOG_PROB_THRESHOLD: f32 = -1.0;
/// A phrase repeated back to back more than this many times is a loop, not speech.
const MAX_REPEATS: usize = 3;
/// Longest phrase (in words) checked for loops.
const MAX_LOOP_WORDS: usize = 12;
/// Encoder frames per second (each covers 20 ms).
const FRAMES_PER_SECOND: f64 = 50.0;

/// One segment inside a window, before its words are timed.
#[derive(Debug, Clone)]
struct RawSegment {
    start: f64,
    end: f64,
    tokens: Vec<usize>,
    text: String,
    words: Option<Vec<Word>>,
}

/// What the model wrote for one window, times relative to the window start.
#[derive(Debug, Clone, Default)]
pub struct WindowResult {
    segments: Vec<RawSegment>,
}

impl WindowResult {
    /// Reads the best hypothesis of `generation` for a window of `window_seconds`.
    pub fn from_generation(
        vocabulary: &Vocabulary,
        generation: WhisperGenerationResult,
        window_seconds: f64,
    ) -> Self {
        let Some(ids) = generation.sequences_ids.into_iter().next() else {
            return Self::default();
        };
        let text_tokens = ids.iter().filter(|&&id| vocabulary.is_text(id)).count();
        let log_prob = generation.scores.first().copied().unwrap_or(0.0);
        if generation.no_speech_prob > NO_SPEECH_THRESHOLD && log_prob < LOG_PROB_THRESHOLD {
            return Self::default();
        }
        if text_tokens == 0 {
            return Self::default();
        }
        Self { segments: split_segments(vocabulary, &ids, window_seconds) }
    }

    /// The text tokens of the whole window, in order (what word alignment needs).
    pub fn text_tokens(&self) -> Vec<usize> {
        self.segments.iter().flat_map(|s| s.tokens.iter().copied()).collect()
    }

    /// Times every word from the alignment of [`Self::text_tokens`] to encoder frames.
    pub fn attach_words(
        &mut self,
        vocabulary: &Vocabulary,
        alignment: &[WhisperTokenAlignment],
        probabilities: &[f32],
    ) {
        // The time each text token starts at: the frame where the alignment path first
        // reaches the token (faster-whisper's "jumps").
        let token_count: usize = self.segments.iter().map(|s| s.tokens.len()).sum();
        let mut token_start = vec![None; token_count + 1];
        for step in alignment {
            let (token, frame) = (step.token_x, step.frame_x);
            if token >= 0
                && (token as usize) <= token_count
                && token_start[token as usize].is_none()
            {
                token_start[token as usize] = Some(frame as f64 / FRAMES_PER_SECOND);
            }
        }
        let mut index = 0;
        for segment in &mut self.segments {
            let mut words: Vec<Word> = Vec::new();
            let mut word_tokens: Vec<usize> = Vec::new();
            let mut word_first = index;
            let flush = |tokens: &mut Vec<usize>,
                         first: usize,
                         last_exclusive: usize,
                         words: &mut Vec<Word>| {
                if tokens.is_empty() {
                    return;
                }
                let text = vocabulary.decode(tokens).trim().to_string();
                let start = token_start.get(first).copied().flatten().unwrap_or(segment.start);
                let end = token_start.get(last_exclusive).copied().flatten().unwrap_or(segment.end);
                let probs = &probabilities
                    [first.min(probabilities.len())..last_exclusive.min(probabilities.len())];
                let probability = if probs.is_empty() {
                    0.0
                } else {
                    probs.iter().sum::<f32>() / probs.len() as f32
                };
                if !text.is_empty() {
                    words.push(Word {
                        start: start.clamp(segment.start, segment.end),
                        end: end.clamp(start.clamp(segment.start, segment.end), segment.end),
                        text,
                        probability,
                    });
                }
                tokens.clear();
            };
            for &token in &segment.tokens {
                let starts_word = vocabulary.token(token).is_some_and(|t| t.starts_with('Ġ'));
                if starts_word && !word_tokens.is_empty() {
                    flush(&mut word_tokens, word_first, index, &mut words);
                    word_first = index;
                }
                word_tokens.push(token);
                index += 1;
            }
            flush(&mut word_tokens, word_first, index, &mut words);
            segment.words = Some(words);
        }
    }

    /// The segments with times shifted by `offset` seconds, text decoded and loops cut.
    pub fn into_segments(self, offset: f64) -> Vec<Segment> {
        self.segments
            .into_iter()
            .filter_map(|raw| {
                let words = raw.words.map(|words| {
                    words
                        .into_iter()
                        .map(|w| Word { start: w.start + offset, end: w.end + offset, ..w })
                        .collect::<Vec<_>>()
                });
                let text = cut_loops(&raw.text);
                (!text.is_empty()).then_some(Segment {
                    start: raw.start + offset,
                    end: raw.end + offset,
                    text,
                    words,
                })
            })
            .collect()
    }
}

/// Splits a window's ids at timestamp tokens. Text after the last timestamp (the model
/// stopped mid-pair) runs to the end of the window.
fn split_segments(vocabulary: &Vocabulary, ids: &[usize], window_seconds: f64) -> Vec<RawSegment> {
    let mut segments = Vec::new();
    let mut start: Option<f64> = None;
    let mut tokens: Vec<usize> = Vec::new();
    let close = |start: f64, end: f64, tokens: &mut Vec<usize>, segments: &mut Vec<RawSegment>| {
        let text = vocabulary.decode(tokens).trim().to_string();
        if !text.is_empty() {
            let end = end.clamp(start, window_seconds.max(start));
            segments.push(RawSegment {
                start,
                end,
                tokens: std::mem::take(tokens),
                text,
                words: None,
            });
        }
        tokens.clear();
    };
    for &id in ids {
        if vocabulary.is_timestamp(id) {
            let time = vocabulary.timestamp_seconds(id).min(window_seconds);
            match start {
                Some(open) if !tokens.is_empty() => {
                    close(open, time, &mut tokens, &mut segments);
                    start = None;
                }
                _ => start = Some(time),
            }
        } else if vocabulary.is_text(id) {
            tokens.push(id);
        }
    }
    if !tokens.is_empty() {
        let open = start.unwrap_or_else(|| segments.last().map_or(0.0, |s: &RawSegment| s.end));
        close(open, window_seconds, &mut tokens, &mut segments);
    }
    segments
}

/// Keeps at most [`MAX_REPEATS`] back-to-back copies of any phrase of up to
/// [`MAX_LOOP_WORDS`] words ("no, no, no" survives; forty "thank you"s do not).
pub fn cut_loops(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let key = |w: &str| w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase();
    let keys: Vec<String> = words.iter().map(|w| key(w)).collect();
    let mut keep = vec![true; words.len()];
    let mut i = 0;
    while i < words.len() {
        let mut advanced = false;
        for n in 1..=MAX_LOOP_WORDS.min((words.len() - i) / (MAX_REPEATS + 1)) {
            let mut copies = 1;
            while i + (copies + 1) * n <= words.len()
                && keys[i + copies * n..i + (copies + 1) * n] == keys[i..i + n]
            {
                copies += 1;
            }
            if copies > MAX_REPEATS {
                keep[i + MAX_REPEATS * n..i + copies * n].iter_mut().for_each(|k| *k = false);
                i += copies * n;
                advanced = true;
                break;
            }
        }
        if !advanced {
            i += 1;
        }
    }
    words
        .iter()
        .zip(keep)
        .filter_map(|(word, kept)| kept.then_some(*word))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The language token and probability of one detection. `ct2rs` keeps the fields private
/// and shows them only through `Debug` (`DetectionResult { language: "<|de|>",
/// probability: 0.93 }`); the crate is pinned to an exact version, and a format change
/// would surface as a failed parse (probability 0), never as a wrong language.
pub fn detection_parts(detection: &DetectionResult) -> (String, f32) {
    parse_detection(&format!("{detection:?}"))
}

fn parse_detection(debug: &str) -> (String, f32) {
    let language = debug
        .split("language: \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_string();
    let probability = debug
        .split("probability: ")
        .nth(1)
        .and_then(|rest| {
            rest.trim_end_matches(|c: char| c == '}' || c.is_whitespace()).parse().ok()
        })
        .unwrap_or(0.0);
    (language, probability)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab() -> Vocabulary {
        let mut tokens: Vec<String> =
            ["ĠHello", "Ġthere", ".", "ĠBye"].iter().map(|t| t.to_string()).collect();
        tokens.push("<|endoftext|>".into());
        tokens.push("<|startoftranscript|>".into());
        for i in 0..=1500 {
            tokens.push(format!("<|{:.2}|>", i as f64 * 0.02));
        }
        Vocabulary::from_tokens(tokens).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn timestamp_pairs_become_segments() {
        let v = vocab();
        let ts = |seconds: f64| v.timestamp_begin + (seconds / 0.02).round() as usize;
        let ids = vec![ts(0.0), 0, 1, 2, ts(1.5), ts(2.0), 3, ts(2.6), ts(3.0), 3];
        let segments = split_segments(&v, &ids, 4.0);
        let texts: Vec<(&str, f64, f64)> =
            segments.iter().map(|s| (s.text.as_str(), s.start, s.end)).collect();
        assert_eq!(texts, vec![("Hello there.", 0.0, 1.5), ("Bye", 2.0, 2.6), ("Bye", 3.0, 4.0)]);
    }

    #[test]
    fn loops_are_cut_but_short_repeats_survive() {
        assert_eq!(cut_loops("no, no, no, I disagree"), "no, no, no, I disagree");
        let looped = format!("We agreed.{}", " Thank you.".repeat(40));
        assert_eq!(cut_loops(&looped), "We agreed. Thank you. Thank you. Thank you.");
        assert_eq!(cut_loops("a b c a b c a b c a b c a b c end"), "a b c a b c a b c end");
    }

    #[test]
    fn detection_debug_text_parses() {
        let parsed = parse_detection("DetectionResult { language: \"<|de|>\", probability: 0.93 }");
        assert_eq!(parsed.0, "<|de|>");
        assert!((parsed.1 - 0.93).abs() < 1e-6);
    }
}
