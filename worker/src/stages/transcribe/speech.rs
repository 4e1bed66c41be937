//! Finds where people speak and cuts the recording into model windows at pauses.
//!
//! Whisper reads 30 s at a time. Cutting every 30 s regardless (what `ct2rs`'s
//! `Whisper::generate` does) splits words, which are then lost. Here an energy detector
//! with an adaptive noise floor marks speech, short pauses are bridged, silence and steady
//! noise are dropped (they are never sent to the model, so it cannot invent text there),
//! and the speech regions are packed into windows of at most 30 s that end in pauses. A
//! region longer than a window without any pause is cut at its quietest moment.

use std::ops::Range;

use super::features::{SAMPLE_RATE, WINDOW_SAMPLES};

/// Analysis frame: 20 ms.
const FRAME: usize = SAMPLE_RATE / 50;
/// Speech must rise this far above the noise floor (the quiet end of the level histogram).
const ABOVE_FLOOR_DB: f32 = 10.0;
/// ... and be no quieter than this under the loudest speech, so that breaths and room
/// tone in a loud recording do not count.
const BELOW_PEAK_DB: f32 = 40.0;
/// Anything quieter than this is silence, whatever the floor.
const ABSOLUTE_FLOOR_DB: f32 = -60.0;
/// Pauses shorter than this stay inside a speech region.
const BRIDGE_FRAMES: usize = 40; // 800 ms
/// Bursts shorter than this (clicks, a cough) are not speech.
const MIN_SPEECH_FRAMES: usize = 10; // 200 ms
/// Context kept on both sides of a region, so that soft word onsets and endings survive.
const PAD_SAMPLES: usize = SAMPLE_RATE * 3 / 10; // 300 ms
/// When a region must be cut, the cut is searched for in this part of the window.
const CUT_SEARCH_FROM: usize = WINDOW_SAMPLES / 2;

/// Sample ranges of speech in `audio` (16 kHz mono), in order, not overlapping.
pub fn speech_regions(audio: &[f32]) -> Vec<Range<usize>> {
    let levels: Vec<f32> = audio.chunks(FRAME).map(level_db).collect();
    if levels.is_empty() {
        return Vec::new();
    }
    let threshold = speech_threshold(&levels);
    let mut speech: Vec<bool> = levels.iter().map(|&db| db > threshold).collect();
    bridge_gaps(&mut speech, BRIDGE_FRAMES);
    let mut regions = Vec::new();
    let mut frame = 0;
    while frame < speech.len() {
        if !speech[frame] {
            frame += 1;
            continue;
        }
        let start = frame;
        while frame < speech.len() && speech[frame] {
            frame += 1;
        }
        if frame - start >= MIN_SPEECH_FRAMES {
            let from = (start * FRAME).saturating_sub(PAD_SAMPLES);
            let to = (frame * FRAME + PAD_SAMPLES).min(audio.len());
            match regions.last_mut() {
                Some(Range { end, .. }) if *end >= from => *end = to,
                _ => regions.push(from..to),
            }
        }
    }
    regions
}

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
fn quietest_cut(audio: &[f32], search: Range<usize>) -> usize {
    const SPAN: usize = SAMPLE_RATE / 10;
    let mut best = (f32::INFINITY, search.end);
    let mut position = search.start;
    while position + SPAN <= search.end.min(audio.len()) {
        let db = level_db(&audio[position..position + SPAN]);
        if db < best.0 {
            best = (db, position + SPAN / 2);
        }
        position += FRAME / 2;
    }
    best.1
}

/// Frame level in dB relative to full scale (a full-scale sine is about -3 dB).
fn level_db(frame: &[f32]) -> f32 {
    if frame.is_empty() {
        return -120.0;
    }
    let mean_square = frame.iter().map(|s| s * s).sum::<f32>() / frame.len() as f32;
    10.0 * (mean_square + 1e-12).log10()
}

fn speech_threshold(levels: &[f32]) -> f32 {
    let mut sorted = levels.to_vec();
    sorted.sort_by(f32::total_cmp);
    let percentile = |p: f32| sorted[((sorted.len() - 1) as f32 * p) as usize];
    let floor = percentile(0.10);
    let peak = percentile(0.99);
    (floor + ABOVE_FLOOR_DB).max(peak - BELOW_PEAK_DB).max(ABSOLUTE_FLOOR_DB)
}

/// Marks gaps of at most `max_gap` frames between two speech frames as speech.
fn bridge_gaps(speech: &mut [bool], max_gap: usize) {
    let mut last_speech: Option<usize> = None;
    for frame in 0..speech.len() {
        if !speech[frame] {
            continue;
        }
        if let Some(previous) = last_speech {
            if frame - previous - 1 <= max_gap {
                speech[previous + 1..frame].iter_mut().for_each(|s| *s = true);
            }
        }
        last_speech = Some(frame);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(seconds: f32, amplitude: f32) -> Vec<f32> {
        (0..(seconds * SAMPLE_RATE as f32) as usize)
            .map(|n| amplitude * (n as f32 * 0.05).sin() * (1.0 + (n as f32 * 0.0007).sin()) / 2.0)
            .collect()
    }

    fn noise(seconds: f32, amplitude: f32) -> Vec<f32> {
        let mut state = 0x2545_f491u32;
        (0..(seconds * SAMPLE_RATE as f32) as usize)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                amplitude * (state as f32 / u32::MAX as f32 * 2.0 - 1.0)
            })
            .collect()
    }

    #[test]
    fn silence_and_steady_noise_hold_no_speech() {
        assert!(speech_regions(&vec![0.0; SAMPLE_RATE * 5]).is_empty());
        assert!(speech_regions(&noise(10.0, 0.3)).is_empty());
        assert!(speech_regions(&[]).is_empty());
    }

    #[test]
    fn speech_between_pauses_is_found_with_padding() {
        let mut audio = vec![0.0; SAMPLE_RATE * 2];
        audio.extend(tone(3.0, 0.5));
        audio.extend(vec![0.0; SAMPLE_RATE * 2]);
        let regions = speech_regions(&audio);
        assert_eq!(regions.len(), 1);
        let region = &regions[0];
        assert!(region.start <= SAMPLE_RATE * 2 - PAD_SAMPLES + FRAME, "{region:?}");
        assert!(region.end >= SAMPLE_RATE * 5 + PAD_SAMPLES - FRAME, "{region:?}");
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
