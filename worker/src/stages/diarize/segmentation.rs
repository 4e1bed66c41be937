//! Local speaker segmentation: pyannote's `segmentation-3.0` (MIT) through ONNX Runtime.
//!
//! The network looks at 10 s of audio and says, for each of its 589 frames (one every
//! 16.9 ms), which of up to three local speakers talk: its seven outputs are the powerset
//! classes (nobody, each speaker alone, each pair). The recording is cut into 10 s chunks
//! every [`STEP`] samples; each chunk's local speakers are numbered on their own, and the
//! clustering decides which of them are the same person.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::session::Session;
use ort::value::Tensor;

use crate::onnx::{self, OnnxError};

/// Samples of one chunk (10 s at 16 kHz).
pub const CHUNK: usize = 160_000;
/// Samples between chunk starts (2 s: each moment is seen by five chunks).
pub const STEP: usize = 32_000;
/// Frames the network gives for one chunk.
pub const FRAMES: usize = 589;
/// Samples between frames.
pub const FRAME_STEP: usize = 270;
/// Samples one frame sees; its centre is half of this after its start.
pub const FRAME_SPAN: usize = 991;
/// Local speakers per chunk.
pub const LOCAL: usize = 3;
/// Chunks sent to the network at once.
const BATCH: usize = 8;

/// The speakers of each powerset class.
const POWERSET: [[bool; LOCAL]; 7] = [
    [false, false, false],
    [true, false, false],
    [false, true, false],
    [false, false, true],
    [true, true, false],
    [true, false, true],
    [false, true, true],
];

/// One chunk's activity: where it starts and, per frame, which local speakers talk.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// First sample of the chunk.
    pub start: usize,
    /// `FRAMES` rows of who talks.
    pub active: Vec<[bool; LOCAL]>,
}

/// The loaded segmentation model.
pub struct Segmenter {
    session: Mutex<Session>,
    model: PathBuf,
}

impl Segmenter {
    /// Loads `model` on the ONNX Runtime library at `library`. Diarization runs after
    /// transcription, when the cores are free: the network uses all of them.
    pub fn load(library: &Path, model: &Path) -> Result<Self, OnnxError> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let session = onnx::session_with_threads(library, model, threads)?;
        Ok(Self { session: Mutex::new(session), model: model.into() })
    }

    /// The chunk starts for `samples` samples: every [`STEP`], and one more ending at the
    /// end of the recording when the steps do not reach it.
    pub fn chunk_starts(samples: usize) -> Vec<usize> {
        if samples <= CHUNK {
            return vec![0];
        }
        let mut starts: Vec<usize> = (0..=samples - CHUNK).step_by(STEP).collect();
        if starts.last().is_some_and(|last| last + CHUNK < samples) {
            starts.push(samples - CHUNK);
        }
        starts
    }

    /// The activity of every chunk of `audio`; `progress` gets the share done and returns
    /// false to stop (then `Ok(None)`).
    pub fn segment(
        &self,
        audio: &[f32],
        progress: &mut dyn FnMut(f64) -> bool,
    ) -> Result<Option<Vec<Chunk>>, OnnxError> {
        let failed = |source: ort::Error| OnnxError::Model { path: self.model.clone(), source };
        let starts = Self::chunk_starts(audio.len());
        let mut chunks = Vec::with_capacity(starts.len());
        let mut session = self.session.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for group in starts.chunks(BATCH) {
            let mut input = Vec::with_capacity(group.len() * CHUNK);
            for &start in group {
                let end = (start + CHUNK).min(audio.len());
                input.extend_from_slice(&audio[start..end]);
                input.extend(std::iter::repeat_n(0.0, start + CHUNK - end));
            }
            let outputs = session
                .run(ort::inputs![
                    "input_values" => Tensor::from_array(([group.len(), 1, CHUNK], input)).map_err(failed)?,
                ])
                .map_err(failed)?;
            let (shape, logits) = outputs["logits"].try_extract_tensor::<f32>().map_err(failed)?;
            let frames = usize::try_from(shape.get(1).copied().unwrap_or(0)).unwrap_or(0);
            for (index, &start) in group.iter().enumerate() {
                let rows = logits.get(index * frames * 7..(index + 1) * frames * 7).unwrap_or(&[]);
                let active = rows
                    .chunks_exact(7)
                    .map(|row| {
                        let best = row
                            .iter()
                            .enumerate()
                            .max_by(|a, b| a.1.total_cmp(b.1))
                            .map_or(0, |(class, _)| class);
                        POWERSET[best]
                    })
                    .collect();
                chunks.push(Chunk { start, active });
            }
            if !progress(chunks.len() as f64 / starts.len() as f64) {
                return Ok(None);
            }
        }
        Ok(Some(chunks))
    }
}
