//! The transcript: what the transcribe stage produces and every later stage consumes.
//!
//! Times are seconds from the start of the recording (`f64`, so a 6-hour file keeps
//! millisecond precision). The JSON shape is part of the stored artifact format, so it is
//! versioned: [`Transcript::from_json`] rejects a version it does not know instead of
//! misreading it, and brings older versions up to date.

use serde::{Deserialize, Serialize};

/// Version of the serialized transcript; bump it when a field changes meaning.
/// Version 2 added each segment's language and the model's confidence; version 3 the
/// speakers (who speaks each segment and word, and the turns diarization found).
pub const TRANSCRIPT_FORMAT_VERSION: u32 = 3;

/// A full transcript of one recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    /// Format version, [`TRANSCRIPT_FORMAT_VERSION`] when written by this build.
    pub version: u32,
    /// ISO 639-1 code of the main spoken language (forced, or the one detected for most of
    /// the speech); each segment has its own.
    pub language: String,
    /// Duration of the decoded audio, in seconds.
    pub duration: f64,
    /// Name of the model directory that produced the text.
    pub model: String,
    /// Segments in time order, never overlapping.
    pub segments: Vec<Segment>,
    /// The speakers diarization found, the one who speaks most first; empty when it did not
    /// run (or found no speech).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub speakers: Vec<Speaker>,
    /// Who speaks when, as diarization found it (turns of different speakers may overlap).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub turns: Vec<SpeakerTurn>,
}

/// A speaker of the recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Speaker {
    /// The label segments carry: "S1", "S2", … in order of talk time.
    pub id: String,
    /// The name a person gave this speaker, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Seconds this speaker talks (overlapping speech counts for each speaker in it).
    pub talk_time: f64,
}

impl Speaker {
    /// The name to show: the given name, or the label.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

/// A stretch of time one speaker talks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeakerTurn {
    /// Start time in seconds.
    pub start: f64,
    /// End time in seconds.
    pub end: f64,
    /// The speaker's label ([`Speaker::id`]).
    pub speaker: String,
}

/// A stretch of speech, usually one sentence or phrase.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Segment {
    /// Start time in seconds.
    pub start: f64,
    /// End time in seconds, `>= start`.
    pub end: f64,
    /// The recognised text, trimmed.
    pub text: String,
    /// ISO 639-1 code of the language this segment was recognised in.
    #[serde(default)]
    pub language: String,
    /// The average log-probability of this segment's words, each word's probability the
    /// mean of its tokens' when the text is aligned to the audio: near 0 the model was sure,
    /// under [`LOW_CONFIDENCE_LOGPROB`] a person should check the words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avg_logprob: Option<f32>,
    /// The model's probability that the window this segment came from held no speech.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_speech_prob: Option<f32>,
    /// Word timings, present only when they were asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub words: Option<Vec<Word>>,
    /// The label of the speaker who holds most of this segment, when diarization ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker: Option<String>,
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
    /// The label of the speaker of this word, when diarization ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker: Option<String>,
}

/// Why stored transcript JSON cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum TranscriptError {
    /// Not transcript JSON.
    #[error("not a transcript: {0}")]
    Json(#[from] serde_json::Error),
    /// Written by a newer build.
    #[error("transcript format version {0} is newer than this build reads ({TRANSCRIPT_FORMAT_VERSION})")]
    NewerVersion(u32),
}

/// Average log-probability under which a segment is marked as one to check (its words'
/// geometric mean probability is under one half).
pub const LOW_CONFIDENCE_LOGPROB: f32 = -0.7;

impl Segment {
    /// Whether the model was unsure of this segment: a person should check its words.
    pub fn is_low_confidence(&self) -> bool {
        self.avg_logprob.is_some_and(|p| p < LOW_CONFIDENCE_LOGPROB)
    }
}

impl Transcript {
    /// Reads stored transcript JSON of this or an older format version.
    pub fn from_json(bytes: &[u8]) -> Result<Self, TranscriptError> {
        let mut transcript: Transcript = serde_json::from_slice(bytes)?;
        if transcript.version > TRANSCRIPT_FORMAT_VERSION {
            return Err(TranscriptError::NewerVersion(transcript.version));
        }
        // Version 1 had one language for the whole file.
        for segment in &mut transcript.segments {
            if segment.language.is_empty() {
                segment.language.clone_from(&transcript.language);
            }
        }
        transcript.version = TRANSCRIPT_FORMAT_VERSION;
        Ok(transcript)
    }

    /// The languages spoken, the most spoken first, with their share of the speech time.
    pub fn languages(&self) -> Vec<(String, f64)> {
        let mut totals: Vec<(String, f64)> = Vec::new();
        let mut all = 0.0;
        for segment in &self.segments {
            let length = (segment.end - segment.start).max(0.0);
            all += length;
            match totals.iter_mut().find(|(language, _)| *language == segment.language) {
                Some((_, total)) => *total += length,
                None => totals.push((segment.language.clone(), length)),
            }
        }
        totals.sort_by(|a, b| b.1.total_cmp(&a.1));
        totals.into_iter().map(|(language, total)| (language, total / all.max(1e-9))).collect()
    }

    /// The speaker labelled `id`.
    pub fn speaker(&self, id: &str) -> Option<&Speaker> {
        self.speakers.iter().find(|speaker| speaker.id == id)
    }

    /// The name to show for the speaker of `segment`, when it has one.
    pub fn speaker_name<'a>(&'a self, segment: &'a Segment) -> Option<&'a str> {
        let id = segment.speaker.as_deref()?;
        Some(self.speaker(id).map_or(id, Speaker::display_name))
    }

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
