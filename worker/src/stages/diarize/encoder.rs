//! The voice encoder: a GE2E d-vector network (Resemblyzer's `pretrained.pt`, Apache-2.0:
//! a three-layer LSTM over 40 mel bands, a linear layer, ReLU and L2 norm) run here in
//! plain Rust, so the speaker embeddings need no second runtime.
//!
//! The features are Resemblyzer's: the audio scaled to -30 dBFS, a power mel spectrogram
//! of 25 ms windows every 10 ms (librosa's Slaney filters), cut into 1.6 s partials at 1.3
//! a second; the embedding of a stretch of speech is the normalised mean of its partials'.
//! A stretch is embedded from at most [`MAX_PARTIALS`] partials spread over it (a 1.6 s
//! window, as the diarize stage gives, is one).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use super::torch::{read_state_dict, Tensor, TorchError};

/// Width of an embedding.
pub const EMBEDDING: usize = 256;
const HIDDEN: usize = 256;
const LAYERS: usize = 3;
const MELS: usize = 40;
const N_FFT: usize = 400;
const HOP: usize = 160;
/// Frames of one partial utterance (1.6 s).
const PARTIAL: usize = 160;
/// Partials per second of speech, Resemblyzer's default.
const PARTIAL_RATE: f64 = 1.3;
/// The most partials one stretch of speech is embedded from.
pub const MAX_PARTIALS: usize = 3;
/// Partials run through the LSTM together.
const BATCH: usize = 32;

/// Why the voice encoder cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    /// The weights file is not there.
    #[error("the voice encoder {} is missing: {}", path.display(), crate::onnx::INSTALL_HINT)]
    Missing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// It could not be read.
    #[error("the voice encoder {} cannot be read", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// It is not the checkpoint expected.
    #[error("the voice encoder {} is not the checkpoint expected", path.display())]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: TorchError,
    },
}

/// One LSTM layer: gate weights in PyTorch's order (input, forget, cell, output).
struct Layer {
    /// `4 * HIDDEN` rows of the layer's input width.
    input: Vec<f32>,
    input_width: usize,
    /// `4 * HIDDEN` rows of `HIDDEN`.
    recurrent: Vec<f32>,
    /// Both biases summed.
    bias: Vec<f32>,
}

/// The loaded network and its feature extractor.
pub struct VoiceEncoder {
    layers: Vec<Layer>,
    linear: Vec<f32>,
    linear_bias: Vec<f32>,
    filters: Vec<[f32; N_FFT / 2 + 1]>,
    window: Vec<f32>,
    fft: Arc<dyn Fft<f32>>,
}

impl VoiceEncoder {
    /// Loads the checkpoint at `path`.
    pub fn load(path: &Path) -> Result<Self, EncoderError> {
        if !path.is_file() {
            return Err(EncoderError::Missing { path: path.into() });
        }
        let bytes = std::fs::read(path)
            .map_err(|source| EncoderError::Read { path: path.into(), source })?;
        let bad = |source: TorchError| EncoderError::Checkpoint { path: path.into(), source };
        let mut tensors = read_state_dict(&bytes, &["model_state"]).map_err(bad)?;
        let mut take = |name: &str, shape: &[usize]| -> Result<Vec<f32>, EncoderError> {
            match tensors.remove(name) {
                Some(Tensor { shape: found, values }) if found == shape => Ok(values),
                Some(Tensor { shape: found, .. }) => Err(bad(TorchError::Unsupported(format!(
                    "{name} has shape {found:?}, expected {shape:?}"
                )))),
                None => Err(bad(TorchError::Unsupported(format!("no {name}")))),
            }
        };
        let mut layers = Vec::with_capacity(LAYERS);
        for layer in 0..LAYERS {
            let input_width = if layer == 0 { MELS } else { HIDDEN };
            let input = take(&format!("lstm.weight_ih_l{layer}"), &[4 * HIDDEN, input_width])?;
            let recurrent = take(&format!("lstm.weight_hh_l{layer}"), &[4 * HIDDEN, HIDDEN])?;
            let bias_ih = take(&format!("lstm.bias_ih_l{layer}"), &[4 * HIDDEN])?;
            let bias_hh = take(&format!("lstm.bias_hh_l{layer}"), &[4 * HIDDEN])?;
            let bias = bias_ih.iter().zip(&bias_hh).map(|(a, b)| a + b).collect();
            layers.push(Layer { input, input_width, recurrent, bias });
        }
        let linear = take("linear.weight", &[EMBEDDING, HIDDEN])?;
        let linear_bias = take("linear.bias", &[EMBEDDING])?;
        let window = (0..N_FFT)
            .map(|i| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / N_FFT as f32).cos())
            .collect();
        let fft = FftPlanner::new().plan_fft_forward(N_FFT);
        Ok(Self { layers, linear, linear_bias, filters: slaney_filters(), window, fft })
    }

    /// The embeddings of several stretches (16 kHz mono; `None` for a silent one), their
    /// partials batched through the network.
    pub fn embed_all(&self, stretches: &[&[f32]]) -> Vec<Option<[f32; EMBEDDING]>> {
        let mut partials: Vec<Vec<f32>> = Vec::new();
        let mut owners: Vec<usize> = Vec::new();
        for (index, speech) in stretches.iter().enumerate() {
            for partial in self.partials(speech) {
                partials.push(partial);
                owners.push(index);
            }
        }
        let mut sums = vec![[0f32; EMBEDDING]; stretches.len()];
        let mut counts = vec![0usize; stretches.len()];
        for (batch, owners) in partials.chunks(BATCH).zip(owners.chunks(BATCH)) {
            for (embedding, &owner) in self.forward(batch).iter().zip(owners) {
                for (sum, value) in sums[owner].iter_mut().zip(embedding) {
                    *sum += value;
                }
                counts[owner] += 1;
            }
        }
        sums.into_iter()
            .zip(counts)
            .map(|(mut sum, count)| (count > 0 && normalise(&mut sum)).then_some(sum))
            .collect()
    }

    /// The mel frames of the partials of `speech`, each `PARTIAL * MELS` values.
    fn partials(&self, speech: &[f32]) -> Vec<Vec<f32>> {
        let energy = speech.iter().map(|s| f64::from(*s) * f64::from(*s)).sum::<f64>();
        let rms = (energy / speech.len().max(1) as f64).sqrt();
        if rms < 1e-6 {
            return Vec::new();
        }
        let gain = (10f64.powf(-30.0 / 20.0) / rms) as f32;
        let mut mel = self.mel(speech, gain);
        let frames = mel.len() / MELS;
        let step = (16_000.0 / PARTIAL_RATE / HOP as f64).round() as usize;
        let mut starts: Vec<usize> =
            (0..(frames + step + 1).saturating_sub(PARTIAL).max(1)).step_by(step).collect();
        // The last partial is kept when it covers three quarters of its frames.
        if starts.len() > 1 {
            if let Some(&last) = starts.last() {
                if (frames - last.min(frames)) * 4 < PARTIAL * 3 {
                    starts.pop();
                }
            }
        }
        if starts.len() > MAX_PARTIALS {
            let n = starts.len() - 1;
            starts = (0..MAX_PARTIALS).map(|i| starts[i * n / (MAX_PARTIALS - 1)]).collect();
        }
        let needed = starts.last().map_or(0, |last| last + PARTIAL);
        mel.resize(needed.max(frames) * MELS, 0.0);
        starts.iter().map(|&start| mel[start * MELS..(start + PARTIAL) * MELS].to_vec()).collect()
    }

    /// Power mel spectrogram of `speech * gain`, centred frames with reflected edges.
    fn mel(&self, speech: &[f32], gain: f32) -> Vec<f32> {
        let pad = N_FFT / 2;
        let n = speech.len();
        let at = |i: isize| -> f32 {
            // Reflect padding as numpy's "reflect" (the edge sample not repeated).
            let mut i = i;
            if n < 2 {
                return speech.first().copied().unwrap_or(0.0) * gain;
            }
            let last = n as isize - 1;
            while i < 0 || i > last {
                i = if i < 0 { -i } else { 2 * last - i };
            }
            speech[i as usize] * gain
        };
        let frames = 1 + n / HOP;
        let mut out = Vec::with_capacity(frames * MELS);
        let mut buffer = vec![Complex::new(0f32, 0f32); N_FFT];
        let mut power = [0f32; N_FFT / 2 + 1];
        for frame in 0..frames {
            let start = (frame * HOP) as isize - pad as isize;
            for (i, slot) in buffer.iter_mut().enumerate() {
                *slot = Complex::new(at(start + i as isize) * self.window[i], 0.0);
            }
            self.fft.process(&mut buffer);
            for (p, c) in power.iter_mut().zip(&buffer) {
                *p = c.norm_sqr();
            }
            for filter in &self.filters {
                out.push(filter.iter().zip(&power).map(|(w, p)| w * p).sum());
            }
        }
        out
    }

    /// The embeddings of a batch of partials.
    fn forward(&self, partials: &[Vec<f32>]) -> Vec<[f32; EMBEDDING]> {
        let batch = partials.len();
        // Time-major input: step t holds `batch` rows.
        let mut input: Vec<f32> = Vec::with_capacity(PARTIAL * batch * MELS);
        for t in 0..PARTIAL {
            for partial in partials {
                input.extend_from_slice(&partial[t * MELS..(t + 1) * MELS]);
            }
        }
        let mut hidden = vec![0f32; batch * HIDDEN];
        for layer in &self.layers {
            let width = layer.input_width;
            // Input projections of every step at once: (PARTIAL*batch) x 4H.
            let rows = PARTIAL * batch;
            let mut projected = vec![0f32; rows * 4 * HIDDEN];
            for row in projected.chunks_exact_mut(4 * HIDDEN) {
                row.copy_from_slice(&layer.bias);
            }
            gemm_transposed(&input, &layer.input, &mut projected, rows, width, 4 * HIDDEN);
            let mut cell = vec![0f32; batch * HIDDEN];
            hidden.iter_mut().for_each(|h| *h = 0.0);
            let mut output = vec![0f32; rows * HIDDEN];
            for t in 0..PARTIAL {
                let gates = &mut projected[t * batch * 4 * HIDDEN..(t + 1) * batch * 4 * HIDDEN];
                gemm_transposed(&hidden, &layer.recurrent, gates, batch, HIDDEN, 4 * HIDDEN);
                for b in 0..batch {
                    let g = &gates[b * 4 * HIDDEN..(b + 1) * 4 * HIDDEN];
                    for j in 0..HIDDEN {
                        let i = sigmoid(g[j]);
                        let f = sigmoid(g[HIDDEN + j]);
                        let c = g[2 * HIDDEN + j].tanh();
                        let o = sigmoid(g[3 * HIDDEN + j]);
                        let state = f * cell[b * HIDDEN + j] + i * c;
                        cell[b * HIDDEN + j] = state;
                        hidden[b * HIDDEN + j] = o * state.tanh();
                    }
                }
                output[t * batch * HIDDEN..(t + 1) * batch * HIDDEN].copy_from_slice(&hidden);
            }
            input = output;
        }
        let mut embeddings = vec![0f32; batch * EMBEDDING];
        for row in embeddings.chunks_exact_mut(EMBEDDING) {
            row.copy_from_slice(&self.linear_bias);
        }
        gemm_transposed(&hidden, &self.linear, &mut embeddings, batch, HIDDEN, EMBEDDING);
        embeddings
            .chunks_exact(EMBEDDING)
            .map(|row| {
                let mut embedding = [0f32; EMBEDDING];
                for (out, value) in embedding.iter_mut().zip(row) {
                    *out = value.max(0.0);
                }
                normalise(&mut embedding);
                embedding
            })
            .collect()
    }
}

/// `c += a · bᵀ` for row-major `a` (m × k) and `b` (n × k), through ndarray's matrix
/// product (matrixmultiply's kernels, on both cores).
fn gemm_transposed(a: &[f32], b: &[f32], c: &mut [f32], m: usize, k: usize, n: usize) {
    use ndarray::{ArrayView2, ArrayViewMut2};
    let (Ok(a), Ok(b), Ok(mut c)) = (
        ArrayView2::from_shape((m, k), &a[..m * k]),
        ArrayView2::from_shape((n, k), &b[..n * k]),
        ArrayViewMut2::from_shape((m, n), &mut c[..m * n]),
    ) else {
        return;
    };
    ndarray::linalg::general_mat_mul(1.0, &a, &b.t(), 1.0, &mut c);
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Scales `v` to unit length; false when it is all zeros.
pub fn normalise(v: &mut [f32]) -> bool {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm <= f32::EPSILON {
        return false;
    }
    v.iter_mut().for_each(|x| *x /= norm);
    true
}

/// librosa's Slaney mel filters (`htk=False`, `norm="slaney"`) for 16 kHz and 400 points.
fn slaney_filters() -> Vec<[f32; N_FFT / 2 + 1]> {
    const LINEAR: f64 = 200.0 / 3.0;
    let log_step = 6.4f64.ln() / 27.0;
    let break_mel = 1000.0 / LINEAR;
    let to_mel = |hz: f64| {
        if hz >= 1000.0 {
            break_mel + (hz / 1000.0).ln() / log_step
        } else {
            hz / LINEAR
        }
    };
    let to_hz = |mel: f64| {
        if mel >= break_mel {
            1000.0 * (log_step * (mel - break_mel)).exp()
        } else {
            mel * LINEAR
        }
    };
    let top = to_mel(8000.0);
    let points: Vec<f64> =
        (0..MELS + 2).map(|i| to_hz(top * i as f64 / (MELS + 1) as f64)).collect();
    (0..MELS)
        .map(|m| {
            let mut filter = [0f32; N_FFT / 2 + 1];
            let scale = 2.0 / (points[m + 2] - points[m]);
            for (bin, weight) in filter.iter_mut().enumerate() {
                let hz = bin as f64 * 8000.0 / (N_FFT / 2) as f64;
                let rising = (hz - points[m]) / (points[m + 1] - points[m]);
                let falling = (points[m + 2] - hz) / (points[m + 2] - points[m + 1]);
                *weight = (rising.min(falling).max(0.0) * scale) as f32;
            }
            filter
        })
        .collect()
}
