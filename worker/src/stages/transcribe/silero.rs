//! Speech detection with Silero VAD (the model faster-whisper uses), run by ONNX Runtime.
//!
//! The model reads 16 kHz audio in 32 ms frames (512 samples, with the 64 samples before
//! them as context) and gives each frame a speech probability; an LSTM state carries from
//! frame to frame. The sequence variant of the model (`silero_vad_16k_sequence.onnx` in the
//! PyPI `silero-vad` wheel) takes up to 10,000 frames per call, as faster-whisper runs it.
//! Probabilities become regions with Silero's own rule (`get_speech_timestamps`): speech
//! starts at `threshold`, ends after `min_silence` under `threshold - 0.15`, and each region
//! is padded.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::session::Session;
use ort::value::Tensor;

use super::features::SAMPLE_RATE;
use crate::onnx::{self, OnnxError};

/// Samples per model frame (32 ms).
const FRAME: usize = 512;
/// Samples of the previous frame given as context.
const CONTEXT: usize = 64;
/// Frames per model call (faster-whisper's `encoder_batch_size`).
const FRAMES_PER_CALL: usize = 10_000;
/// Size of each of the two LSTM state tensors `[1, 1, 128]`.
const STATE: usize = 128;

/// How probabilities become speech regions; the defaults are faster-whisper's batched ones.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadOptions {
    /// A frame at or above this probability is speech.
    pub threshold: f32,
    /// Silence shorter than this (ms) does not end a region.
    pub min_silence_ms: u32,
    /// Regions shorter than this (ms) are dropped.
    pub min_speech_ms: u32,
    /// Audio kept on each side of a region (ms).
    pub speech_pad_ms: u32,
}

impl Default for VadOptions {
    fn default() -> Self {
        Self { threshold: 0.5, min_silence_ms: 160, min_speech_ms: 0, speech_pad_ms: 400 }
    }
}

/// A loaded Silero model; one detection runs at a time (the state is per recording).
pub struct SileroVad {
    session: Mutex<Session>,
    model: PathBuf,
}

impl SileroVad {
    /// Loads `model` on the ONNX Runtime library at `library`.
    pub fn load(library: &Path, model: &Path) -> Result<Self, OnnxError> {
        Ok(Self { session: Mutex::new(onnx::session(library, model)?), model: model.into() })
    }

    /// The speech probability of every 32 ms frame of `audio` (16 kHz mono).
    pub fn probabilities(&self, audio: &[f32]) -> Result<Vec<f32>, OnnxError> {
        let failed = |source: ort::Error| OnnxError::Model { path: self.model.clone(), source };
        let frames = audio.len().div_ceil(FRAME);
        let mut probabilities = Vec::with_capacity(frames);
        let mut h = vec![0f32; STATE];
        let mut c = vec![0f32; STATE];
        let mut session = self.session.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut first = 0;
        while first < frames {
            let last = (first + FRAMES_PER_CALL).min(frames);
            let mut input = Vec::with_capacity((last - first) * (CONTEXT + FRAME));
            for frame in first..last {
                let start = frame * FRAME;
                // The first frame has silence as its context, as the model was run in training.
                match start.checked_sub(CONTEXT) {
                    Some(from) => input.extend_from_slice(&audio[from..start]),
                    None => input.extend(std::iter::repeat_n(0.0, CONTEXT)),
                }
                let end = (start + FRAME).min(audio.len());
                input.extend_from_slice(&audio[start..end]);
                input.extend(std::iter::repeat_n(0.0, start + FRAME - end));
            }
            let outputs = session
                .run(ort::inputs![
                    "input" => Tensor::from_array(([last - first, CONTEXT + FRAME], input)).map_err(failed)?,
                    "h" => Tensor::from_array(([1usize, 1, STATE], h.clone())).map_err(failed)?,
                    "c" => Tensor::from_array(([1usize, 1, STATE], c.clone())).map_err(failed)?,
                ])
                .map_err(failed)?;
            let (_, speech) =
                outputs["speech_probs"].try_extract_tensor::<f32>().map_err(failed)?;
            probabilities.extend_from_slice(speech);
            h.copy_from_slice(outputs["hn"].try_extract_tensor::<f32>().map_err(failed)?.1);
            c.copy_from_slice(outputs["cn"].try_extract_tensor::<f32>().map_err(failed)?.1);
            first = last;
        }
        probabilities.truncate(frames);
        Ok(probabilities)
    }

    /// Sample ranges of speech in `audio`, in order, not overlapping.
    pub fn speech_regions(
        &self,
        audio: &[f32],
        options: &VadOptions,
    ) -> Result<Vec<Range<usize>>, OnnxError> {
        Ok(regions_from_probabilities(&self.probabilities(audio)?, audio.len(), options))
    }
}

/// Silero's `get_speech_timestamps` without its maximum-length split (the window planner
/// cuts long regions at their quietest moment).
pub fn regions_from_probabilities(
    probabilities: &[f32],
    audio_len: usize,
    options: &VadOptions,
) -> Vec<Range<usize>> {
    let ms = |ms: u32| SAMPLE_RATE * ms as usize / 1000;
    let (min_silence, min_speech, pad) =
        (ms(options.min_silence_ms), ms(options.min_speech_ms), ms(options.speech_pad_ms));
    let negative = (options.threshold - 0.15).max(0.01);
    let mut regions: Vec<Range<usize>> = Vec::new();
    let mut start: Option<usize> = None;
    let mut silence_from: Option<usize> = None;
    for (frame, &probability) in probabilities.iter().enumerate() {
        let at = frame * FRAME;
        if probability >= options.threshold {
            silence_from = None;
            if start.is_none() {
                start = Some(at);
            }
            continue;
        }
        let Some(open) = start else { continue };
        if probability >= negative {
            continue;
        }
        let quiet = *silence_from.get_or_insert(at);
        if at - quiet < min_silence {
            continue;
        }
        if quiet - open > min_speech {
            regions.push(open..quiet);
        }
        start = None;
        silence_from = None;
    }
    if let Some(open) = start {
        if audio_len.saturating_sub(open) > min_speech {
            regions.push(open..audio_len);
        }
    }
    pad_regions(&mut regions, pad, audio_len);
    regions
}

/// Pads every region by `pad` samples on both sides; a gap too small for two pads is
/// shared half and half, so regions never overlap.
fn pad_regions(regions: &mut [Range<usize>], pad: usize, audio_len: usize) {
    for i in 0..regions.len() {
        if i == 0 {
            regions[i].start = regions[i].start.saturating_sub(pad);
        }
        if i + 1 < regions.len() {
            let gap = regions[i + 1].start - regions[i].end;
            if gap < 2 * pad {
                regions[i].end += gap / 2;
                regions[i + 1].start -= gap - gap / 2;
            } else {
                regions[i].end += pad;
                regions[i + 1].start -= pad;
            }
        } else {
            regions[i].end = (regions[i].end + pad).min(audio_len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(pattern: &str) -> Vec<f32> {
        pattern.chars().map(|c| if c == '#' { 0.9 } else { 0.05 }).collect()
    }

    #[test]
    fn short_pauses_stay_inside_a_region_and_long_ones_split() {
        let options = VadOptions { speech_pad_ms: 0, ..VadOptions::default() };
        // 160 ms is 5 frames of 32 ms: a 3-frame pause is bridged, a 10-frame one is not.
        let probabilities = frames("..#####...#####..........#####..........");
        let regions =
            regions_from_probabilities(&probabilities, probabilities.len() * FRAME, &options);
        assert_eq!(regions, vec![2 * FRAME..15 * FRAME, 25 * FRAME..30 * FRAME]);
    }

    #[test]
    fn padding_never_makes_regions_overlap() {
        let options = VadOptions { min_silence_ms: 0, ..VadOptions::default() };
        let probabilities = frames("#####.#####");
        let len = probabilities.len() * FRAME;
        let regions = regions_from_probabilities(&probabilities, len, &options);
        assert_eq!(regions.len(), 2);
        assert_eq!(regions[0].start, 0);
        assert_eq!(regions[0].end, regions[1].start);
        assert_eq!(regions[1].end, len);
    }

    #[test]
    fn silence_has_no_regions() {
        let regions =
            regions_from_probabilities(&frames("........"), 8 * FRAME, &VadOptions::default());
        assert!(regions.is_empty());
    }
}
