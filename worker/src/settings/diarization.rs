//! The diarization flags (part of the recognition settings): whether and how the speakers
//! are found, and where the two models are.

use std::path::PathBuf;

pub use minutes_shared::options::Speakers;

use crate::models::Locations;
use crate::stages::diarize::{ClusterOptions, DiarizeError, Diarizer, SpeakerCount};

/// Diarization flags; every one can also come from the environment.
#[derive(Debug, Clone, clap::Args)]
pub struct DiarizationArgs {
    /// Who speaks when: `auto` finds the speakers, a number fixes how many, `off` skips
    /// diarization (the transcript then has no speakers).
    #[arg(long, env = "MINUTES_SPEAKERS", default_value = "auto")]
    pub speakers: Speakers,
    /// With --speakers auto, find at least this many speakers.
    #[arg(long, env = "MINUTES_MIN_SPEAKERS", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=20))]
    pub min_speakers: u8,
    /// With --speakers auto, find at most this many speakers.
    #[arg(long, env = "MINUTES_MAX_SPEAKERS", default_value_t = 20, value_parser = clap::value_parser!(u8).range(1..=20))]
    pub max_speakers: u8,
    /// Cosine distance between two voices under which they are taken for one speaker
    /// (higher merges more).
    #[arg(long, env = "MINUTES_SPEAKER_THRESHOLD", default_value_t = 0.1)]
    pub speaker_threshold: f32,
    /// The speaker-segmentation model (ONNX); by default the installed pyannote one.
    #[arg(long, env = "MINUTES_SEGMENTATION_MODEL")]
    pub segmentation_model: Option<PathBuf>,
    /// The voice encoder (Resemblyzer's `pretrained.pt`); by default the installed one.
    #[arg(long, env = "MINUTES_VOICE_ENCODER")]
    pub voice_encoder: Option<PathBuf>,
}

impl DiarizationArgs {
    /// Whether diarization runs.
    pub fn enabled(&self) -> bool {
        self.speakers != Speakers::Off
    }

    /// How the voices are clustered.
    pub fn cluster_options(&self) -> ClusterOptions {
        let count = match self.speakers {
            Speakers::Exactly(n) => SpeakerCount::exactly(usize::from(n)),
            Speakers::Auto | Speakers::Off => {
                let max = usize::from(self.max_speakers.max(1));
                SpeakerCount { min: usize::from(self.min_speakers).min(max), max }
            }
        };
        ClusterOptions { threshold: self.speaker_threshold, count, ..ClusterOptions::default() }
    }

    /// The models, loaded; `None` when diarization is off.
    pub fn load(
        &self,
        locations: &Locations,
        onnxruntime: &std::path::Path,
    ) -> Result<Option<Diarizer>, DiarizeError> {
        if !self.enabled() {
            return Ok(None);
        }
        let segmentation =
            self.segmentation_model.clone().unwrap_or_else(|| locations.segmentation());
        let encoder = self.voice_encoder.clone().unwrap_or_else(|| locations.voice_encoder());
        Diarizer::load(onnxruntime, &segmentation, &encoder).map(Some)
    }
}
