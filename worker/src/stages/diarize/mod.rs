//! The diarize stage: who speaks when, found offline from the samples.
//!
//! pyannote's recipe with a smaller voice model: a segmentation network finds up to three
//! local speakers in each 10 s chunk ([`segmentation`]); the clean speech of each local
//! speaker is embedded by a d-vector network ([`encoder`]); the embeddings are clustered
//! into the recording's speakers ([`cluster`]); each frame then goes to the speakers the
//! chunks over it agree on, as many as they count talking ([`turns`]). [`assign`] gives
//! the transcript's segments and words their speakers.
//!
//! Memory stays bounded on long recordings: chunks are embedded a group at a time and only
//! the embeddings (1 KiB each) are kept, with one byte per frame and local speaker.

pub mod assign;
mod cluster;
mod encoder;
mod segmentation;
mod torch;
mod turns;

pub use cluster::{ClusterOptions, SpeakerCount};
pub use encoder::{EncoderError, VoiceEncoder};
pub use segmentation::Segmenter;
pub use turns::Turn;

use std::path::Path;

use crate::onnx::OnnxError;
use cluster::Voice;
use segmentation::{Chunk, CHUNK, FRAME_STEP, LOCAL};

/// Sample rate of the audio the stage takes.
const SAMPLE_RATE: f32 = 16_000.0;
/// Seconds of clean speech under which a local speaker is not embedded (too little to
/// know the voice; its frames still count when the speakers are placed).
const MIN_EMBEDDED_SECONDS: f32 = 0.5;
/// Chunks whose local speakers are embedded together.
const EMBED_GROUP: usize = 16;

/// Why diarization failed.
#[derive(Debug, thiserror::Error)]
pub enum DiarizeError {
    /// The segmentation model could not be loaded or run.
    #[error("speaker segmentation failed")]
    Segmentation(#[from] OnnxError),
    /// The voice encoder could not be loaded.
    #[error(transparent)]
    Encoder(#[from] EncoderError),
    /// The progress callback asked to stop.
    #[error("diarization was stopped")]
    Cancelled,
}

/// Who speaks when: turns of speakers numbered from 0, the one who talks most first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Diarization {
    /// The turns in time order of their start (turns of different speakers may overlap).
    pub turns: Vec<Turn>,
    /// How many speakers there are.
    pub speakers: usize,
}

/// The loaded models.
pub struct Diarizer {
    segmenter: Segmenter,
    encoder: VoiceEncoder,
}

impl Diarizer {
    /// Loads the segmentation model (on the ONNX Runtime library at `library`) and the
    /// voice encoder; a missing file is an error that says how to install it.
    pub fn load(library: &Path, segmentation: &Path, encoder: &Path) -> Result<Self, DiarizeError> {
        Ok(Self {
            segmenter: Segmenter::load(library, segmentation)?,
            encoder: VoiceEncoder::load(encoder)?,
        })
    }

    /// The speakers of `audio` (16 kHz mono). `progress` gets the share done and returns
    /// false to stop.
    pub fn diarize(
        &self,
        audio: &[f32],
        options: &ClusterOptions,
        progress: &mut dyn FnMut(f64) -> bool,
    ) -> Result<Diarization, DiarizeError> {
        if audio.is_empty() {
            return Ok(Diarization::default());
        }
        let chunks = self
            .segmenter
            .segment(audio, &mut |done| progress(0.4 * done))?
            .ok_or(DiarizeError::Cancelled)?;
        let mut voices: Vec<Voice> = Vec::new();
        let mut owners: Vec<(usize, usize)> = Vec::new();
        let groups = chunks.len().div_ceil(EMBED_GROUP);
        for (group, first) in (0..chunks.len()).step_by(EMBED_GROUP).enumerate() {
            let mut stretches: Vec<Vec<f32>> = Vec::new();
            let mut stretch_owners = Vec::new();
            for (index, chunk) in chunks.iter().enumerate().skip(first).take(EMBED_GROUP) {
                for local in 0..LOCAL {
                    if let Some(speech) = clean_speech(audio, chunk, local) {
                        stretches.push(speech);
                        stretch_owners.push((index, local));
                    }
                }
            }
            let slices: Vec<&[f32]> = stretches.iter().map(Vec::as_slice).collect();
            for ((embedding, speech), owner) in
                self.encoder.embed_all(&slices).into_iter().zip(&slices).zip(stretch_owners)
            {
                if let Some(embedding) = embedding {
                    voices.push(Voice { embedding, seconds: speech.len() as f32 / SAMPLE_RATE });
                    owners.push(owner);
                }
            }
            if !progress(0.4 + 0.55 * (group + 1) as f64 / groups as f64) {
                return Err(DiarizeError::Cancelled);
            }
        }
        let labels = cluster::cluster(&voices, options);
        let mut speaker_of = vec![[None; LOCAL]; chunks.len()];
        for (&(chunk, local), &label) in owners.iter().zip(&labels) {
            speaker_of[chunk][local] = Some(label);
        }
        let speakers = labels.iter().max().map_or(0, |max| max + 1);
        Ok(turns::place(&chunks, &speaker_of, speakers, audio.len()))
    }
}

/// The samples of `chunk` where local speaker `local` talks alone, when there are enough.
fn clean_speech(audio: &[f32], chunk: &Chunk, local: usize) -> Option<Vec<f32>> {
    let frames: Vec<usize> = chunk
        .active
        .iter()
        .enumerate()
        .filter(|(_, who)| who[local] && who.iter().filter(|&&on| on).count() == 1)
        .map(|(frame, _)| frame)
        .collect();
    let seconds = (frames.len() * FRAME_STEP) as f32 / SAMPLE_RATE;
    if seconds < MIN_EMBEDDED_SECONDS {
        return None;
    }
    let end = (chunk.start + CHUNK).min(audio.len());
    let mut speech = Vec::with_capacity(frames.len() * FRAME_STEP);
    for frame in frames {
        let from = chunk.start + frame * FRAME_STEP;
        let to = (from + FRAME_STEP).min(end);
        if from < to {
            speech.extend_from_slice(&audio[from..to]);
        }
    }
    ((speech.len() as f32) / SAMPLE_RATE >= MIN_EMBEDDED_SECONDS).then_some(speech)
}
