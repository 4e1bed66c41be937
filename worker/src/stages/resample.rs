//! Resample stage: mono `f32` at any rate to 16 kHz, the rate Whisper was trained on.
//!
//! A streaming, band-limited FFT resampler (rubato's `FftFixedIn`): input is pushed in any
//! block size, output comes out as it is ready, and frequencies above the new Nyquist
//! (8 kHz) are removed rather than folded back as aliases. The resampler's own delay is
//! trimmed so that output sample `n` lines up with input time `n / 16000`.

use rubato::{FftFixedIn, Resampler as _};

/// The rate every later stage works at.
pub const TARGET_RATE: u32 = 16_000;
/// Input frames per FFT block; a larger block filters more sharply but delays more.
const BLOCK: usize = 1024;

/// The resampler could not be built for this rate.
#[derive(Debug, thiserror::Error)]
#[error("cannot resample from {rate} Hz: {reason}")]
pub struct ResampleError {
    rate: u32,
    reason: String,
}

/// Streams mono audio at `input_rate` to [`TARGET_RATE`].
pub struct Resampler {
    inner: Option<FftFixedIn<f32>>,
    input_rate: u32,
    pending: Vec<f32>,
    output_block: Vec<Vec<f32>>,
    delay_to_skip: usize,
    input_frames: u64,
    output_frames: u64,
}

impl Resampler {
    /// A resampler from `input_rate`; at 16 kHz it passes samples through untouched.
    pub fn new(input_rate: u32) -> Result<Self, ResampleError> {
        let inner = if input_rate == TARGET_RATE {
            None
        } else {
            let resampler =
                FftFixedIn::<f32>::new(input_rate as usize, TARGET_RATE as usize, BLOCK, 2, 1)
                    .map_err(|e| ResampleError { rate: input_rate, reason: e.to_string() })?;
            Some(resampler)
        };
        let delay_to_skip = inner.as_ref().map_or(0, |r| r.output_delay());
        let output_block =
            inner.as_ref().map_or_else(Vec::new, |r| vec![vec![0.0; r.output_frames_max()]]);
        Ok(Self {
            inner,
            input_rate,
            pending: Vec::with_capacity(BLOCK),
            output_block,
            delay_to_skip,
            input_frames: 0,
            output_frames: 0,
        })
    }

    /// Resamples `input`, appending what is ready to `output`.
    pub fn push(&mut self, mut input: &[f32], output: &mut Vec<f32>) {
        self.input_frames += input.len() as u64;
        if self.inner.is_none() {
            output.extend_from_slice(input);
            self.output_frames += input.len() as u64;
            return;
        }
        while !input.is_empty() {
            let take = (BLOCK - self.pending.len()).min(input.len());
            self.pending.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.pending.len() == BLOCK {
                self.process_pending(output);
            }
        }
    }

    /// Flushes the tail, so that the output has exactly the length of the input at 16 kHz.
    pub fn finish(mut self, output: &mut Vec<f32>) {
        if self.inner.is_none() {
            return;
        }
        let expected =
            (self.input_frames as f64 * TARGET_RATE as f64 / self.input_rate as f64).round() as u64;
        // Feed silence until the delayed tail has come out.
        let mut guard = 0;
        while self.output_frames < expected && guard < 64 {
            let fill = BLOCK - self.pending.len();
            self.pending.extend(std::iter::repeat_n(0.0, fill));
            self.process_pending(output);
            guard += 1;
        }
        let surplus = self.output_frames.saturating_sub(expected) as usize;
        output.truncate(output.len().saturating_sub(surplus));
    }

    fn process_pending(&mut self, output: &mut Vec<f32>) {
        let Some(resampler) = self.inner.as_mut() else {
            return;
        };
        let produced =
            match resampler.process_into_buffer(&[&self.pending], &mut self.output_block, None) {
                Ok((_, produced)) => produced,
                // The buffers are sized by the resampler itself, so this cannot fail; should it,
                // the block is dropped rather than the recording.
                Err(_) => 0,
            };
        self.pending.clear();
        let block = &self.output_block[0][..produced];
        let skip = self.delay_to_skip.min(block.len());
        self.delay_to_skip -= skip;
        output.extend_from_slice(&block[skip..]);
        self.output_frames += (block.len() - skip) as u64;
    }
}

/// Resamples a whole buffer at once.
pub fn resample(input: &[f32], input_rate: u32) -> Result<Vec<f32>, ResampleError> {
    let mut resampler = Resampler::new(input_rate)?;
    let mut output = Vec::with_capacity(
        (input.len() as u64 * TARGET_RATE as u64 / input_rate.max(1) as u64) as usize + 16,
    );
    resampler.push(input, &mut output);
    resampler.finish(&mut output);
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(frequency: f32, rate: u32, seconds: f32, amplitude: f32) -> Vec<f32> {
        (0..(rate as f32 * seconds) as usize)
            .map(|n| {
                amplitude * (2.0 * std::f32::consts::PI * frequency * n as f32 / rate as f32).sin()
            })
            .collect()
    }

    /// Amplitude of the `frequency` component (Goertzel-style correlation), ignoring the edges.
    fn amplitude_at(signal: &[f32], frequency: f32) -> f32 {
        let body = &signal[signal.len() / 10..signal.len() * 9 / 10];
        let (mut re, mut im) = (0.0f64, 0.0f64);
        for (n, &s) in body.iter().enumerate() {
            let phase =
                2.0 * std::f64::consts::PI * frequency as f64 * n as f64 / TARGET_RATE as f64;
            re += s as f64 * phase.cos();
            im += s as f64 * phase.sin();
        }
        (2.0 * (re * re + im * im).sqrt() / body.len() as f64) as f32
    }

    fn rms(signal: &[f32]) -> f32 {
        let body = &signal[signal.len() / 10..signal.len() * 9 / 10];
        (body.iter().map(|s| s * s).sum::<f32>() / body.len() as f32).sqrt()
    }

    #[test]
    fn a_1khz_sine_keeps_its_frequency_and_amplitude() {
        for rate in [44_100, 8_000, 48_000, 22_050, 96_000] {
            let output =
                resample(&sine(1000.0, rate, 2.0, 0.5), rate).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(output.len(), 32_000, "length at {rate} Hz");
            let amplitude = amplitude_at(&output, 1000.0);
            assert!((amplitude - 0.5).abs() < 0.01, "amplitude {amplitude} at {rate} Hz");
            // Nothing but the 1 kHz tone: its power is all the power there is.
            let total = rms(&output) * 2f32.sqrt();
            assert!((total - amplitude).abs() < 0.01, "other components at {rate} Hz");
        }
    }

    #[test]
    fn a_12khz_tone_at_48khz_is_removed_not_aliased() {
        let output =
            resample(&sine(12_000.0, 48_000, 2.0, 0.5), 48_000).unwrap_or_else(|e| panic!("{e}"));
        // Folded back, 12 kHz would appear at 4 kHz.
        assert!(amplitude_at(&output, 4000.0) < 0.005);
        assert!(rms(&output) < 0.005, "rms {}", rms(&output));
    }

    #[test]
    fn streaming_in_odd_blocks_equals_one_push() {
        let input = sine(440.0, 44_100, 1.0, 0.3);
        let whole = resample(&input, 44_100).unwrap_or_else(|e| panic!("{e}"));
        let mut resampler = Resampler::new(44_100).unwrap_or_else(|e| panic!("{e}"));
        let mut streamed = Vec::new();
        for block in input.chunks(777) {
            resampler.push(block, &mut streamed);
        }
        resampler.finish(&mut streamed);
        assert_eq!(whole.len(), streamed.len());
        assert!(whole.iter().zip(&streamed).all(|(a, b)| (a - b).abs() < 1e-6));
    }

    #[test]
    fn sixteen_khz_passes_through_untouched() {
        let input = sine(300.0, 16_000, 0.5, 0.2);
        assert_eq!(resample(&input, 16_000).unwrap_or_else(|e| panic!("{e}")), input);
    }
}
