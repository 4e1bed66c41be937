//! The energy speech detector: frames louder than an adaptive noise floor are speech.
//!
//! The fallback when Silero VAD (see [`super::silero`]) is not installed or not wanted: an
//! energy detector with an adaptive noise floor marks speech, short pauses are bridged, and
//! silence and steady noise are dropped. It knows loudness, not voices, so music or a
//! noisy room pass for speech (the README's transcription section has the figures).

use std::ops::Range;

use super::features::SAMPLE_RATE;

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

/// Frame level in dB relative to full scale (a full-scale sine is about -3 dB).
pub fn level_db(frame: &[f32]) -> f32 {
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
}
