//! Which speech detector finds where people speak: Silero VAD (the default) or the energy
//! detector, and the choice as a setting.

use std::ops::Range;
use std::sync::Arc;

use super::energy;
use super::silero::{SileroVad, VadOptions};
use super::TranscribeError;

/// The detector a transcription uses.
#[derive(Clone)]
pub enum SpeechDetector {
    /// Loudness above an adaptive noise floor; needs nothing installed.
    Energy,
    /// Silero VAD through ONNX Runtime.
    Silero(Arc<SileroVad>, VadOptions),
}

impl std::fmt::Debug for SpeechDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind().as_str())
    }
}

impl SpeechDetector {
    /// The setting this detector answers to.
    pub fn kind(&self) -> DetectorKind {
        match self {
            Self::Energy => DetectorKind::Energy,
            Self::Silero(..) => DetectorKind::Silero,
        }
    }

    /// Sample ranges of speech in `audio` (16 kHz mono), in order, not overlapping.
    pub fn regions(&self, audio: &[f32]) -> Result<Vec<Range<usize>>, TranscribeError> {
        match self {
            Self::Energy => Ok(energy::speech_regions(audio)),
            Self::Silero(vad, options) => {
                vad.speech_regions(audio, options).map_err(TranscribeError::SpeechDetection)
            }
        }
    }
}

/// The name of a detector, as flags and settings spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DetectorKind {
    /// Silero VAD.
    #[default]
    Silero,
    /// The energy detector.
    Energy,
}

impl DetectorKind {
    /// `silero` or `energy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Silero => "silero",
            Self::Energy => "energy",
        }
    }
}

impl std::str::FromStr for DetectorKind {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "silero" => Ok(Self::Silero),
            "energy" => Ok(Self::Energy),
            other => Err(format!("unknown speech detector {other:?} (expected silero or energy)")),
        }
    }
}
