//! From the model's token ids for one window to timed segments.
//!
//! The decoder asks for text without timestamp tokens (as faster-whisper's batched pipeline
//! does: on the evaluation clips it is the more accurate way), so a window's text comes
//! back as one run; the words are then timed by aligning the tokens to the audio
//! (cross-attention, `align`), and [`WindowResult::split_into_lines`] cuts the run into
//! lines at sentence ends and pauses. Output that does carry `<|t0|> text <|t1|>` pairs is
//! read pair by pair; a pair whose closing timestamp never came is marked unfinished, so
//! that the decoder can decode that stretch again from its start.

use ct2rs::sys::{DetectionResult, WhisperTokenAlignment};
use minutes_shared::transcript::{Segment, Word};

use super::repetition::cut_loops;
use super::vocabulary::Vocabulary;

/// A line ends after a word ending a sentence, once it has this many words ...
const MIN_LINE_WORDS: usize = 3;
/// ... and always where the speaker pauses longer than this (seconds) ...
const LINE_PAUSE: f64 = 1.0;
/// ... and at a comma or a pause once it is this long (words), at the latest at twice it.
const LONG_LINE_WORDS: usize = 30;
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
    /// Whether a timestamp token closed it.
    closed: bool,
}

/// What the model wrote for one window, times relative to the window start.
#[derive(Debug, Clone, Default)]
pub struct WindowResult {
    segments: Vec<RawSegment>,
    /// Every text token of the hypothesis, in order.
    tokens: Vec<usize>,
}

impl WindowResult {
    /// Reads the token ids of one hypothesis for a window of `window_seconds`.
    pub fn from_ids(vocabulary: &Vocabulary, ids: &[usize], window_seconds: f64) -> Self {
        let tokens = ids.iter().copied().filter(|&id| vocabulary.is_text(id)).collect();
        Self { segments: split_segments(vocabulary, ids, window_seconds), tokens }
    }

    /// The decoded text of the whole window.
    pub fn text(&self) -> String {
        self.segments.iter().map(|s| s.text.as_str()).collect::<Vec<_>>().join(" ")
    }

    /// Where the last segment closed by a timestamp ends (seconds from the window start);
    /// `None` when no segment was closed.
    pub fn closed_end(&self) -> Option<f64> {
        self.segments.iter().rev().find(|s| s.closed).map(|s| s.end)
    }

    /// Whether the last segment was left unfinished (no closing timestamp).
    pub fn ends_unfinished(&self) -> bool {
        self.segments.last().is_some_and(|s| !s.closed)
    }

    /// Drops the unfinished last segment (it is decoded again from its start).
    pub fn drop_unfinished(&mut self) {
        if self.ends_unfinished() {
            self.segments.pop();
        }
    }

    /// The text tokens of the whole window, in order (what word alignment needs).
    pub fn text_tokens(&self) -> Vec<usize> {
        self.tokens.clone()
    }

    /// Cuts each segment that has timed words into lines: after a word that ends a sentence
    /// (once the line has [`MIN_LINE_WORDS`]), where the speaker pauses for [`LINE_PAUSE`],
    /// and in long lines at a comma. Each line is closed at its last word's end.
    pub fn split_into_lines(&mut self) {
        let mut lines = Vec::with_capacity(self.segments.len());
        for segment in std::mem::take(&mut self.segments) {
            let words = match &segment.words {
                Some(words) if !words.is_empty() => words.clone(),
                _ => {
                    lines.push(segment);
                    continue;
                }
            };
            let mut line: Vec<Word> = Vec::new();
            for (i, word) in words.iter().enumerate() {
                line.push(word.clone());
                let next = words.get(i + 1);
                let ends_sentence = word.text.ends_with(['.', '?', '!', '…']);
                let pause = next.is_some_and(|n| n.start - word.end > LINE_PAUSE);
                let comma = word.text.ends_with([',', ';', ':']);
                let cut = next.is_none()
                    || pause
                    || (ends_sentence && line.len() >= MIN_LINE_WORDS)
                    || (comma && line.len() >= LONG_LINE_WORDS)
                    || line.len() >= 2 * LONG_LINE_WORDS;
                if cut {
                    let words = std::mem::take(&mut line);
                    lines.push(RawSegment {
                        start: words.first().map_or(segment.start, |w| w.start),
                        end: words.last().map_or(segment.end, |w| w.end),
                        tokens: Vec::new(),
                        text: words.iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" "),
                        words: Some(words),
                        closed: true,
                    });
                }
            }
        }
        self.segments = lines;
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
                        speaker: None,
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

    /// The segments with times shifted by `offset` seconds and loops inside each cut.
    pub fn into_segments(self, offset: f64, max_repeats: usize) -> Vec<Segment> {
        self.segments
            .into_iter()
            .filter_map(|raw| {
                let words = raw.words.map(|words| {
                    words
                        .into_iter()
                        .map(|w| Word { start: w.start + offset, end: w.end + offset, ..w })
                        .collect::<Vec<_>>()
                });
                let text = cut_loops(&raw.text, max_repeats);
                (!text.is_empty()).then_some(Segment {
                    start: raw.start + offset,
                    end: raw.end + offset,
                    text,
                    words,
                    ..Segment::default()
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
    let close = |start: f64,
                 end: f64,
                 closed: bool,
                 tokens: &mut Vec<usize>,
                 segments: &mut Vec<RawSegment>| {
        let text = vocabulary.decode(tokens).trim().to_string();
        if !text.is_empty() {
            let end = end.clamp(start, window_seconds.max(start));
            segments.push(RawSegment {
                start,
                end,
                tokens: std::mem::take(tokens),
                text,
                words: None,
                closed,
            });
        }
        tokens.clear();
    };
    for &id in ids {
        if vocabulary.is_timestamp(id) {
            let time = vocabulary.timestamp_seconds(id).min(window_seconds);
            match start {
                Some(open) if !tokens.is_empty() => {
                    close(open, time, true, &mut tokens, &mut segments);
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
        close(open, window_seconds, false, &mut tokens, &mut segments);
    }
    segments
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
        let texts: Vec<(&str, f64, f64, bool)> =
            segments.iter().map(|s| (s.text.as_str(), s.start, s.end, s.closed)).collect();
        assert_eq!(
            texts,
            vec![
                ("Hello there.", 0.0, 1.5, true),
                ("Bye", 2.0, 2.6, true),
                ("Bye", 3.0, 4.0, false)
            ]
        );
        let mut window = WindowResult::from_ids(&v, &ids, 4.0);
        assert!(window.ends_unfinished());
        assert_eq!(window.closed_end(), Some(2.6));
        window.drop_unfinished();
        assert_eq!(window.text(), "Hello there. Bye");
    }

    #[test]
    fn detection_debug_text_parses() {
        let parsed = parse_detection("DetectionResult { language: \"<|de|>\", probability: 0.93 }");
        assert_eq!(parsed.0, "<|de|>");
        assert!((parsed.1 - 0.93).abs() < 1e-6);
    }
}
