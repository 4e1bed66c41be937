//! The diarize stage: who speaks when, found offline from the samples.
//!
//! pyannote's recipe with a smaller voice model: a segmentation network finds up to three
//! local speakers in each 10 s chunk ([`segmentation`]); each local speaker's voice is the
//! mean d-vector ([`encoder`]) of the 1.6 s windows where they talk alone, the windows on
//! one grid for the whole recording so that overlapping chunks share them (the voice
//! encoder is most of the stage's time); the voices are clustered
//! into the recording's speakers ([`cluster`]); each frame then goes to the speakers the
//! chunks over it agree on, as many as they count talking ([`turns`]). [`assign`] gives
//! the transcript's segments and words their speakers.
//!
//! Memory stays bounded on long recordings: windows are embedded a batch at a time and only
//! a sum per voice (1 KiB each) is kept, with one byte per frame and local speaker.

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
use encoder::{normalise, EMBEDDING};
use segmentation::{Chunk, CHUNK, FRAME_STEP, LOCAL};

/// Sample rate of the audio the stage takes.
const SAMPLE_RATE: f32 = 16_000.0;
/// Samples of one embedding window (1.6 s, one partial of the voice encoder).
const WINDOW: usize = 25_600;
/// Samples between embedding windows (0.8 s: each moment is in two of them; windows that
/// tile the recording without overlap lose the short turns of a conversation).
const WINDOW_HOP: usize = 12_800;
/// Share of a window's frames a local speaker must hold alone for the window to be theirs.
const CLEAN_SHARE: f32 = 0.6;
/// Windows embedded together.
const EMBED_BATCH: usize = 32;

/// A chunk's local speaker: the chunk's index and the speaker's number in it.
type LocalSpeaker = (usize, usize);

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
        let (voices, owners) = self.embed_voices(audio, &chunks, progress)?;
        let labels = cluster::cluster(&voices, options);
        let mut speaker_of = vec![[None; LOCAL]; chunks.len()];
        for (&(chunk, local), &label) in owners.iter().zip(&labels) {
            speaker_of[chunk][local] = Some(label);
        }
        let speakers = labels.iter().max().map_or(0, |max| max + 1);
        Ok(turns::place(&chunks, &speaker_of, speakers, audio.len()))
    }

    /// The voices of the chunks' local speakers: each the mean embedding of the 1.6 s
    /// windows (on a grid shared by all chunks, so overlapping chunks reuse them) where
    /// that speaker talks alone; and which chunk and local speaker each voice is.
    fn embed_voices(
        &self,
        audio: &[f32],
        chunks: &[Chunk],
        progress: &mut dyn FnMut(f64) -> bool,
    ) -> Result<(Vec<Voice>, Vec<LocalSpeaker>), DiarizeError> {
        let windows = audio.len().saturating_sub(WINDOW) / WINDOW_HOP + 1;
        let mut sums = vec![[0f32; EMBEDDING]; chunks.len() * LOCAL];
        let mut counts = vec![0usize; chunks.len() * LOCAL];
        let mut batch: Vec<(usize, Vec<usize>)> = Vec::new();
        let mut flush = |batch: &mut Vec<(usize, Vec<usize>)>| {
            let slices: Vec<&[f32]> = batch
                .iter()
                .map(|(w, _)| &audio[w * WINDOW_HOP..(w * WINDOW_HOP + WINDOW).min(audio.len())])
                .collect();
            for (embedding, (_, voices)) in
                self.encoder.embed_all(&slices).into_iter().zip(batch.iter())
            {
                let Some(embedding) = embedding else { continue };
                for &voice in voices {
                    for (sum, value) in sums[voice].iter_mut().zip(&embedding) {
                        *sum += value;
                    }
                    counts[voice] += 1;
                }
            }
            batch.clear();
        };
        for window in 0..windows {
            let (from, to) = (window * WINDOW_HOP, window * WINDOW_HOP + WINDOW);
            let mut voices = Vec::new();
            for (index, chunk) in chunks.iter().enumerate() {
                if chunk.start > from || chunk.start + CHUNK < to {
                    continue;
                }
                let first = (from - chunk.start) / FRAME_STEP;
                let last = ((to - chunk.start) / FRAME_STEP).min(chunk.active.len());
                let frames = &chunk.active[first.min(last)..last];
                for local in 0..LOCAL {
                    let alone = frames
                        .iter()
                        .filter(|who| who[local] && who.iter().filter(|&&on| on).count() == 1)
                        .count();
                    if !frames.is_empty() && alone as f32 >= CLEAN_SHARE * frames.len() as f32 {
                        voices.push(index * LOCAL + local);
                    }
                }
            }
            if !voices.is_empty() {
                batch.push((window, voices));
            }
            if batch.len() == EMBED_BATCH {
                flush(&mut batch);
                if !progress(0.4 + 0.55 * (window + 1) as f64 / windows as f64) {
                    return Err(DiarizeError::Cancelled);
                }
            }
        }
        flush(&mut batch);
        let mut voices = Vec::new();
        let mut owners = Vec::new();
        for (voice, (mut sum, count)) in sums.into_iter().zip(counts).enumerate() {
            if count > 0 && normalise(&mut sum) {
                let seconds = (count * WINDOW_HOP) as f32 / SAMPLE_RATE;
                voices.push(Voice { embedding: sum, seconds });
                owners.push((voice / LOCAL, voice % LOCAL));
            }
        }
        Ok((voices, owners))
    }
}
