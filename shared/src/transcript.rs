//! The transcript: what the transcribe stage produces and every later stage consumes.
//!
//! Times are seconds from the start of the recording (`f64`, so a 6-hour file keeps
//! millisecond precision). The JSON shape is part of the stored artifact format, so it is
//! versioned: readers reject a version they do not know instead of misreading it.

use serde::{Deserialize, Serialize};

/// Version of the serialized transcript; bump it when a field changes meaning.
pub const TRANSCRIPT_FORMAT_VERSION: u32 = 1;

/// A full transcript of one recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    /// Format version, [`TRANSCRIPT_FORMAT_VERSION`] when written by this build.
    pub version: u32,
    /// ISO 639-1 code of the spoken language (forced or detected).
    pub language: String,
    /// Duration of the decoded audio, in seconds.
    pub duration: f64,
    /// Name of the model directory that produced the text.
    pub model: String,
    /// Segments in time order, never overlapping.
    pub segments: Vec<Segment>,
}

/// A stretch of speech, usually one sentence or phrase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// Start time in seconds.
    pub start: f64,
    /// End time in seconds, `>= start`.
    pub end: f64,
    /// The recognised text, trimmed.
    pub text: String,
    /// Word timings, present only when they were asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub words: Option<Vec<Word>>,
}

/// One word with its timing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Word {
    /// Start time in seconds.
    pub start: f64,
    /// End time in seconds.
    pub end: f64,
    /// The word as written, with its punctuation.
    pub text: String,
    /// The model's mean token probability for this word, from 0 to 1.
    pub probability: f32,
}

impl Transcript {
    /// The text of every segment joined by single spaces.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            if segment.text.is_empty() {
                continue;
            }
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&segment.text);
        }
        out
    }
}
