//! Decode and resample composed: a recording on disk to 16 kHz mono samples, streaming so
//! that memory holds only the output (4 bytes per sample: 230 MB per hour).
//!
//! [`stream`] hands the 16 kHz samples to a sink as they are made; it is what the decoder
//! process ([`crate::decoder_process`]) runs. [`load`] collects them in this process, for
//! tests and tools that decode files they made themselves.

use std::path::Path;

use crate::stages::decode::{AudioDecoder, DecodeError, DecodeOptions, SourceInfo};
use crate::stages::resample::{ResampleError, Resampler, TARGET_RATE};

/// 16 kHz mono audio and what it was decoded from.
#[derive(Debug, Clone)]
pub struct Audio {
    /// Samples at [`TARGET_RATE`].
    pub samples: Vec<f32>,
    /// The source track.
    pub source: SourceInfo,
}

impl Audio {
    /// Duration in seconds.
    pub fn duration(&self) -> f64 {
        self.samples.len() as f64 / TARGET_RATE as f64
    }
}

/// Why a recording could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The decoded rate cannot be converted.
    #[error(transparent)]
    Resample(#[from] ResampleError),
}

/// Decodes `path`, resamples it to 16 kHz and hands the samples to `sink` block by block.
/// `progress` receives the fraction decoded when the container declares a duration.
///
/// Nothing is reserved from what the header declares: a header can claim any length, and
/// the decoded length is checked against the maximum as it grows instead.
pub fn stream(
    path: &Path,
    options: DecodeOptions,
    sink: &mut dyn FnMut(&[f32]),
    progress: &mut dyn FnMut(f64),
) -> Result<SourceInfo, LoadError> {
    let mut decoder = AudioDecoder::open(path, options)?;
    let mut block = Vec::new();
    let mut resampler: Option<Resampler> = None;
    let mut last_report = 0.0;
    while let Some(chunk) = decoder.next_chunk()? {
        if chunk.samples.is_empty() {
            continue;
        }
        let resampler = match resampler.as_mut() {
            Some(resampler) => resampler,
            // The rate is known for sure only once a packet is decoded.
            None => resampler.insert(Resampler::new(chunk.sample_rate)?),
        };
        resampler.push(chunk.samples, &mut block);
        if !block.is_empty() {
            sink(&block);
            block.clear();
        }
        if let Some(fraction) = decoder.progress() {
            if fraction - last_report >= 0.01 {
                last_report = fraction;
                progress(fraction);
            }
        }
    }
    if let Some(resampler) = resampler {
        resampler.finish(&mut block);
        if !block.is_empty() {
            sink(&block);
        }
    }
    progress(1.0);
    Ok(decoder.info().clone())
}

/// Decodes `path` and resamples it to 16 kHz in this process.
pub fn load(
    path: &Path,
    options: DecodeOptions,
    progress: &mut dyn FnMut(f64),
) -> Result<Audio, LoadError> {
    let mut samples = Vec::new();
    let source = stream(path, options, &mut |block| samples.extend_from_slice(block), progress)?;
    Ok(Audio { samples, source })
}
