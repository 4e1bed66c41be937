//! Whisper's loop failure, caught at three scales.
//!
//! On noisy or overlapping speech the model can fall into a loop: a phrase written again
//! and again inside one segment, the same segment over and over ("It opens a menu." 22
//! times), or a whole window of repetition. [`compression_ratio`] measures the last (the
//! decoder falls back to sampling when a window compresses too well, as faster-whisper
//! does); [`cut_loops`] and [`drop_repeated_segments`] remove what is left.

use std::io::Write as _;

use flate2::write::ZlibEncoder;
use flate2::Compression;
use minutes_shared::transcript::Segment;

/// Longest phrase (in words) checked for loops inside a segment.
const MAX_LOOP_WORDS: usize = 12;
/// Longest run of segments (a pair, a triple, ...) checked for loops.
const MAX_LOOP_SEGMENTS: usize = 4;

/// How much `text` shrinks under zlib (faster-whisper's `get_compression_ratio`): about 1.5
/// for speech, above 2.4 for a loop.
pub fn compression_ratio(text: &str) -> f32 {
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return 0.0;
    }
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
    // Writing into a Vec cannot fail.
    let compressed = encoder.write_all(bytes).and_then(|()| encoder.finish()).unwrap_or_default();
    bytes.len() as f32 / compressed.len().max(1) as f32
}

/// The words of `text` as compared: letters and digits, lower case.
pub fn key(text: &str) -> String {
    text.split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Keeps at most `max_repeats` back-to-back copies of any phrase of up to
/// [`MAX_LOOP_WORDS`] words ("no, no, no" survives; forty "thank you"s do not).
pub fn cut_loops(text: &str, max_repeats: usize) -> String {
    let max_repeats = max_repeats.max(1);
    let words: Vec<&str> = text.split_whitespace().collect();
    let keys: Vec<String> = words.iter().map(|w| key(w)).collect();
    let mut keep = vec![true; words.len()];
    let mut i = 0;
    while i < words.len() {
        let mut advanced = false;
        for n in 1..=MAX_LOOP_WORDS.min((words.len() - i) / (max_repeats + 1)) {
            let mut copies = 1;
            while i + (copies + 1) * n <= words.len()
                && keys[i + copies * n..i + (copies + 1) * n] == keys[i..i + n]
            {
                copies += 1;
            }
            if copies > max_repeats {
                keep[i + max_repeats * n..i + copies * n].iter_mut().for_each(|k| *k = false);
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

/// Removes a loop across segments: when a segment (or a run of up to
/// [`MAX_LOOP_SEGMENTS`]) comes back more than `max_repeats` times in a row, across
/// windows too, only its first occurrence is kept. A few repeats ("Yes." "Yes.") are
/// speech; a long run is the model stuck, and what it repeats is rarely what was said.
/// Returns how many segments were removed.
pub fn drop_repeated_segments(segments: &mut Vec<Segment>, max_repeats: usize) -> usize {
    let max_repeats = max_repeats.max(1);
    let keys: Vec<String> = segments.iter().map(|s| key(&s.text)).collect();
    let mut keep = vec![true; segments.len()];
    let mut i = 0;
    while i < segments.len() {
        let mut advanced = false;
        for n in 1..=MAX_LOOP_SEGMENTS {
            if i + n > segments.len() || keys[i..i + n].iter().any(String::is_empty) {
                break;
            }
            let mut copies = 1;
            while i + (copies + 1) * n <= segments.len()
                && keys[i + copies * n..i + (copies + 1) * n] == keys[i..i + n]
            {
                copies += 1;
            }
            if copies > max_repeats {
                keep[i + n..i + copies * n].iter_mut().for_each(|k| *k = false);
                i += copies * n;
                advanced = true;
                break;
            }
        }
        if !advanced {
            i += 1;
        }
    }
    let before = segments.len();
    let mut flags = keep.into_iter();
    segments.retain(|_| flags.next().unwrap_or(true));
    before - segments.len()
}

/// The longest run of back-to-back segments with the same words (what the evaluation
/// reports as "longest repeat").
pub fn longest_repeat(segments: &[Segment]) -> usize {
    let mut longest = 0;
    let mut run = 0;
    let mut previous: Option<String> = None;
    for segment in segments {
        let current = key(&segment.text);
        run = if previous.as_ref() == Some(&current) { run + 1 } else { 1 };
        longest = longest.max(run);
        previous = Some(current);
    }
    longest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(text: &str, start: f64) -> Segment {
        Segment { start, end: start + 1.0, text: text.into(), ..Segment::default() }
    }

    #[test]
    fn loops_inside_a_segment_are_cut_but_short_repeats_survive() {
        assert_eq!(cut_loops("no, no, no, I disagree", 3), "no, no, no, I disagree");
        let looped = format!("We agreed.{}", " Thank you.".repeat(40));
        assert_eq!(cut_loops(&looped, 3), "We agreed. Thank you. Thank you. Thank you.");
        assert_eq!(cut_loops("a b c a b c a b c a b c a b c end", 3), "a b c a b c a b c end");
    }

    #[test]
    fn a_segment_repeated_22_times_is_kept_once() {
        let mut segments = vec![segment("So what happens?", 0.0)];
        for i in 0..22 {
            segments.push(segment("It opens a menu.", 1.0 + f64::from(i)));
        }
        segments.push(segment("Right.", 30.0));
        assert_eq!(longest_repeat(&segments), 22);
        assert_eq!(drop_repeated_segments(&mut segments, 3), 21);
        let texts: Vec<&str> = segments.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts, vec!["So what happens?", "It opens a menu.", "Right."]);
    }

    #[test]
    fn alternating_loops_and_short_repeats() {
        let mut segments: Vec<Segment> =
            ["Yes.", "yes", "Yes!"].iter().map(|t| segment(t, 0.0)).collect();
        assert_eq!(drop_repeated_segments(&mut segments, 3), 0, "three yeses are speech");
        let mut segments: Vec<Segment> = (0..10)
            .map(|i| segment(if i % 2 == 0 { "Hello." } else { "Can you hear me?" }, 0.0))
            .collect();
        assert_eq!(drop_repeated_segments(&mut segments, 3), 8);
    }

    #[test]
    fn loops_compress_far_better_than_speech() {
        let speech = "Okay, then I thought you know, I heard a beep. This is Diane in New Jersey.";
        let looped = "I can't hear you. ".repeat(12);
        assert!(compression_ratio(speech) < 2.0, "{}", compression_ratio(speech));
        assert!(compression_ratio(&looped) > 2.4, "{}", compression_ratio(&looped));
    }
}
