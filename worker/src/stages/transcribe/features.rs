//! Whisper's input features: an 80- (or 128-) band log-mel spectrogram of 16 kHz audio.
//!
//! Matches the reference extractor (OpenAI's `whisper.audio.log_mel_spectrogram`, which
//! faster-whisper reimplements): 25 ms Hann windows every 10 ms with centred reflect
//! padding, the power spectrum through Slaney-normalised mel filters, `log10`, a floor
//! 8 decades under the maximum, then `(x + 4) / 4`. A window is always 30 s (3000 frames);
//! shorter audio is padded with silence before the transform, as the model was trained.

use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

/// Samples per second of the input.
pub const SAMPLE_RATE: usize = 16_000;
/// FFT size and window length (25 ms).
const N_FFT: usize = 400;
/// Hop between frames (10 ms).
pub const HOP: usize = 160;
/// Samples in one model window (30 s).
pub const WINDOW_SAMPLES: usize = 30 * SAMPLE_RATE;
/// Frames in one model window.
pub const WINDOW_FRAMES: usize = WINDOW_SAMPLES / HOP;
const N_BINS: usize = N_FFT / 2 + 1;

/// Computes log-mel windows; built once per model (the filters depend on the band count).
pub struct FeatureExtractor {
    n_mels: usize,
    filters: Vec<f32>,
    window: Vec<f32>,
    fft: Arc<dyn Fft<f32>>,
}

impl FeatureExtractor {
    /// An extractor producing `n_mels` bands.
    pub fn new(n_mels: usize) -> Self {
        let window = (0..N_FFT)
            .map(|n| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * n as f32 / N_FFT as f32).cos())
            .collect();
        Self {
            n_mels,
            filters: mel_filters(n_mels, SAMPLE_RATE as f32, N_FFT),
            window,
            fft: FftPlanner::new().plan_fft_forward(N_FFT),
        }
    }

    /// Number of mel bands per frame.
    pub fn n_mels(&self) -> usize {
        self.n_mels
    }

    /// Appends the `[n_mels, 3000]` features (row-major, band by band) of `audio`, which
    /// must be at most 30 s, to `out`.
    pub fn window_features(&self, audio: &[f32], out: &mut Vec<f32>) {
        let audio = &audio[..audio.len().min(WINDOW_SAMPLES)];
        // Pad to exactly 30 s, then reflect-pad half a window on both sides (centred STFT).
        let half = N_FFT / 2;
        let mut padded = Vec::with_capacity(WINDOW_SAMPLES + N_FFT);
        let mut signal = audio.to_vec();
        signal.resize(WINDOW_SAMPLES, 0.0);
        padded.extend((1..=half).rev().map(|i| signal[i]));
        padded.extend_from_slice(&signal);
        padded.extend((0..half).map(|i| signal[WINDOW_SAMPLES - 2 - i]));

        let mut mel = vec![0.0f32; self.n_mels * WINDOW_FRAMES];
        let mut buffer = vec![Complex::new(0.0f32, 0.0); N_FFT];
        let mut scratch = vec![Complex::new(0.0f32, 0.0); self.fft.get_inplace_scratch_len()];
        let mut power = [0.0f32; N_BINS];
        for frame in 0..WINDOW_FRAMES {
            let start = frame * HOP;
            for (i, slot) in buffer.iter_mut().enumerate() {
                *slot = Complex::new(padded[start + i] * self.window[i], 0.0);
            }
            self.fft.process_with_scratch(&mut buffer, &mut scratch);
            for (bin, value) in power.iter_mut().enumerate() {
                *value = buffer[bin].norm_sqr();
            }
            for band in 0..self.n_mels {
                let weights = &self.filters[band * N_BINS..(band + 1) * N_BINS];
                let energy: f32 = weights.iter().zip(power.iter()).map(|(w, p)| w * p).sum();
                mel[band * WINDOW_FRAMES + frame] = energy.max(1e-10).log10();
            }
        }
        let max = mel.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let floor = max - 8.0;
        out.extend(mel.into_iter().map(|v| (v.max(floor) + 4.0) / 4.0));
    }
}

fn hz_to_mel(hz: f32) -> f32 {
    const F_SP: f32 = 200.0 / 3.0;
    const MIN_LOG_HZ: f32 = 1000.0;
    let log_step = 6.4f32.ln() / 27.0;
    if hz < MIN_LOG_HZ {
        hz / F_SP
    } else {
        MIN_LOG_HZ / F_SP + (hz / MIN_LOG_HZ).ln() / log_step
    }
}

fn mel_to_hz(mel: f32) -> f32 {
    const F_SP: f32 = 200.0 / 3.0;
    const MIN_LOG_HZ: f32 = 1000.0;
    let min_log_mel = MIN_LOG_HZ / F_SP;
    let log_step = 6.4f32.ln() / 27.0;
    if mel < min_log_mel {
        mel * F_SP
    } else {
        MIN_LOG_HZ * (log_step * (mel - min_log_mel)).exp()
    }
}

/// librosa's `filters.mel(sr, n_fft, n_mels, fmin=0, fmax=sr/2, htk=False, norm="slaney")`,
/// row-major `[n_mels, n_fft/2 + 1]`.
fn mel_filters(n_mels: usize, sample_rate: f32, n_fft: usize) -> Vec<f32> {
    let bins = n_fft / 2 + 1;
    let fft_freqs: Vec<f32> = (0..bins).map(|i| i as f32 * sample_rate / n_fft as f32).collect();
    let (mel_min, mel_max) = (hz_to_mel(0.0), hz_to_mel(sample_rate / 2.0));
    let mel_points: Vec<f32> = (0..n_mels + 2)
        .map(|i| mel_to_hz(mel_min + (mel_max - mel_min) * i as f32 / (n_mels + 1) as f32))
        .collect();
    let mut weights = vec![0.0f32; n_mels * bins];
    for band in 0..n_mels {
        let (left, centre, right) = (mel_points[band], mel_points[band + 1], mel_points[band + 2]);
        let norm = 2.0 / (right - left);
        for (bin, &freq) in fft_freqs.iter().enumerate() {
            let lower = (freq - left) / (centre - left);
            let upper = (right - freq) / (right - centre);
            weights[band * bins + bin] = lower.min(upper).max(0.0) * norm;
        }
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slaney_mel_scale_round_trips() {
        for hz in [0.0, 440.0, 1000.0, 4321.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 0.05, "{hz}");
        }
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-4);
    }

    #[test]
    fn a_tone_lights_the_band_that_holds_its_frequency() {
        let extractor = FeatureExtractor::new(80);
        let tone: Vec<f32> = (0..SAMPLE_RATE)
            .map(|n| (2.0 * std::f32::consts::PI * 1000.0 * n as f32 / SAMPLE_RATE as f32).sin())
            .collect();
        let mut features = Vec::new();
        extractor.window_features(&tone, &mut features);
        assert_eq!(features.len(), 80 * WINDOW_FRAMES);
        let frame = 50;
        let loudest = (0..80)
            .max_by(|&a, &b| {
                features[a * WINDOW_FRAMES + frame].total_cmp(&features[b * WINDOW_FRAMES + frame])
            })
            .unwrap_or(0);
        let centre = mel_to_hz(hz_to_mel(8000.0) * (loudest + 1) as f32 / 81.0);
        assert!((centre - 1000.0).abs() < 80.0, "band centre {centre} Hz");
        // The padded silence after 1 s sits at the floor, 8 decades under the peak.
        let silent = features[loudest * WINDOW_FRAMES + 2000];
        assert!(silent < features[loudest * WINDOW_FRAMES + frame] - 1.9);
    }
}
