//! Cuts the recording into model windows of at most 30 s that end in pauses.
//!
//! Whisper reads 30 s at a time. Cutting every 30 s regardless (what `ct2rs`'s
//! `Whisper::generate` does) splits words, which are then lost. Here speech regions (from
//! either detector) are packed into windows of at most 30 s that end in pauses; silence
//! between windows is skipped, so the model cannot invent text there. A region longer than
//! a window without any pause is cut at its quietest moment.

use std::ops::Range;

use super::energy::level_db;
use super::features::{SAMPLE_RATE, WINDOW_SAMPLES};

/// Analysis step of the quietest-cut search: 10 ms.
const STEP: usize = SAMPLE_RATE / 100;
/// When a region must be cut, the cut is searched for in this part of the window.
const CUT_SEARCH_FROM: usize = WINDOW_SAMPLES / 2;

/// Packs speech regions into model windows of at most 30 s each, in order. Silence inside a
/// window is kept (the timestamps stay simple); silence between windows is skipped.
pub fn plan_windows(audio: &[f32], regions: &[Range<usize>]) -> Vec<Range<usize>> {
    let mut windows: Vec<Range<usize>> = Vec::new();
    for region in regions {
        let mut region = region.clone();
        // A region too long for one window is cut at its quietest point.
        while region.len() > WINDOW_SAMPLES {
            let cut =
                quietest_cut(audio, region.start + CUT_SEARCH_FROM..region.start + WINDOW_SAMPLES);
            push_region(&mut windows, region.start..cut);
            region = cut..region.end;
        }
        push_region(&mut windows, region);
    }
    windows
}

fn push_region(windows: &mut Vec<Range<usize>>, region: Range<usize>) {
    match windows.last_mut() {
        Some(window) if region.end - window.start <= WINDOW_SAMPLES => window.end = region.end,
        _ => windows.push(region),
    }
}

/// The start of the quietest 100 ms stretch in `search`, centred on its quietest frame.
pub fn quietest_cut(audio: &[f32], search: Range<usize>) -> usize {
    const SPAN: usize = SAMPLE_RATE / 10;
    let mut best = (f32::INFINITY, search.end);
    let mut position = search.start;
    while position + SPAN <= search.end.min(audio.len()) {
        let db = level_db(&audio[position..position + SPAN]);
        if db < best.0 {
            best = (db, position + SPAN / 2);
        }
        position += STEP;
    }
    best.1
}

/// Samples of `range` that fall inside `regions` (sorted, not overlapping).
pub fn speech_within(range: &Range<usize>, regions: &[Range<usize>]) -> usize {
    regions.iter().map(|r| r.end.min(range.end).saturating_sub(r.start.max(range.start))).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::transcribe::energy::speech_regions;

    const FRAME: usize = SAMPLE_RATE / 50;

    fn tone(seconds: f32, amplitude: f32) -> Vec<f32> {
        (0..(seconds * SAMPLE_RATE as f32) as usize)
            .map(|n| amplitude * (n as f32 * 0.05).sin() * (1.0 + (n as f32 * 0.0007).sin()) / 2.0)
            .collect()
    }

    #[test]
    fn windows_end_in_pauses_and_never_exceed_thirty_seconds() {
        // 12 s of talk, 1.5 s pause, repeated: windows must not cut inside a talk.
        let mut audio = Vec::new();
        let mut talks = Vec::new();
        for _ in 0..6 {
            let start = audio.len();
            audio.extend(tone(12.0, 0.5));
            talks.push(start..audio.len());
            audio.extend(vec![0.0; SAMPLE_RATE * 3 / 2]);
        }
        let windows = plan_windows(&audio, &speech_regions(&audio));
        assert!(windows.len() >= 3);
        for window in &windows {
            assert!(window.len() <= WINDOW_SAMPLES);
            for talk in &talks {
                let cuts_talk = window.end > talk.start && window.end < talk.end;
                assert!(!cuts_talk, "window {window:?} cuts talk {talk:?}");
            }
        }
    }

    #[test]
    fn a_long_region_is_cut_at_its_quietest_point() {
        let steady = |seconds: f32, amplitude: f32| -> Vec<f32> {
            (0..(seconds * SAMPLE_RATE as f32) as usize)
                .map(|n| amplitude * (n as f32 * 0.05).sin())
                .collect()
        };
        let mut audio = steady(20.0, 0.5);
        audio.extend(steady(0.1, 0.05));
        audio.extend(steady(20.0, 0.5));
        let whole = 0..audio.len();
        let windows = plan_windows(&audio, std::slice::from_ref(&whole));
        assert_eq!(windows.len(), 2);
        let dip = SAMPLE_RATE * 20..SAMPLE_RATE * 20 + SAMPLE_RATE / 10;
        assert!(
            windows[0].end >= dip.start - FRAME && windows[0].end <= dip.end + FRAME,
            "{windows:?}"
        );
        assert_eq!(windows[1].start, windows[0].end);
    }
}
