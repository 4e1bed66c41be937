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
                    .map_err(|e| ResampleError {
                        rate: input_rate,
                        reason: e.to_string(),
                    })?;
            Some(resampler)
        };
        let delay_to_skip = inner.as_ref().map_or(0, |r| r.output_delay());
        let output_block = inner
            .as_ref()
            .map_or_else(Vec::new, |r| vec![vec![0.0; r.output_frames_max()]]);
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
