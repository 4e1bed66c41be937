//! The minutes of a meeting: what the summarize stage produces and the render and notify
//! stages consume, stored as `minutes.json` beside the PDF.
//!
//! Every point cites the start time of the transcript segment it came from (`at`, in
//! seconds), so a reader can jump to the moment it was said. The JSON shape is versioned
//! like the transcript's.

use serde::{Deserialize, Serialize};

use crate::transcript::{Segment, Transcript};

/// Version of the serialized minutes; bump it when a field changes meaning.
pub const MINUTES_FORMAT_VERSION: u32 = 1;

/// Minutes of one recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Minutes {
    /// Format version, [`MINUTES_FORMAT_VERSION`] when written by this build.
    pub version: u32,
    /// Meeting title (given, or made from the file name).
    pub title: String,
    /// Meeting date, `YYYY-MM-DD`.
    pub date: String,
    /// Duration of the recording in seconds.
    pub duration: f64,
    /// ISO 639-1 language of the transcript.
    pub language: String,
    /// The uploaded file's name, as the person knows it.
    pub source_filename: String,
    /// One paragraph saying what the meeting was about.
    pub summary: String,
    /// The main points, in the order they were made.
    pub key_points: Vec<Point>,
    /// What was decided.
    pub decisions: Vec<Point>,
    /// What someone has to do.
    pub action_items: Vec<ActionItem>,
    /// Questions raised and not settled.
    pub open_questions: Vec<Point>,
    /// Which summarizer wrote these minutes.
    pub summarizer: SummarizerInfo,
    /// How far to trust the transcript (absent in minutes made before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<Quality>,
    /// Who took part, the one who talks most first (empty when the speakers are not known).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub participants: Vec<Participant>,
    /// The transcript the minutes were made from.
    pub transcript: Vec<Segment>,
}

/// A speaker of the meeting and how much they talk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Participant {
    /// The label the transcript's segments carry ("S1", …).
    pub speaker: String,
    /// The name a person gave them, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Seconds they talk.
    pub talk_time: f64,
    /// Their share of all the talk time, from 0 to 1.
    pub share: f64,
}

impl Participant {
    /// The participants of `transcript`, from its speakers.
    pub fn of(transcript: &Transcript) -> Vec<Participant> {
        let total: f64 = transcript.speakers.iter().map(|s| s.talk_time).sum();
        transcript
            .speakers
            .iter()
            .map(|speaker| Participant {
                speaker: speaker.id.clone(),
                name: speaker.name.clone(),
                talk_time: speaker.talk_time,
                share: if total > 0.0 { speaker.talk_time / total } else { 0.0 },
            })
            .collect()
    }

    /// The name to show: the given name, or the label.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.speaker)
    }
}

impl Minutes {
    /// The name to show for the speaker of `segment`, when it has one.
    pub fn speaker_name<'a>(&'a self, segment: &'a Segment) -> Option<&'a str> {
        let id = segment.speaker.as_deref()?;
        let participant = self.participants.iter().find(|p| p.speaker == id);
        Some(participant.map_or(id, Participant::display_name))
    }
}

/// A short note on how the transcript was made and how sure the model was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    /// The speech-recognition model.
    pub model: String,
    /// The languages spoken, the most spoken first.
    pub languages: Vec<LanguageShare>,
    /// Share of the recording the transcript covers (0 to 1).
    pub speech_share: f64,
    /// Share of transcript lines the model was unsure of (0 to 1): check their words.
    pub low_confidence_share: f64,
}

/// A language and its share of the transcript's speech time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LanguageShare {
    /// ISO 639-1 code.
    pub language: String,
    /// Share of the speech time (0 to 1).
    pub share: f64,
}

impl Quality {
    /// The note for `transcript`.
    pub fn of(transcript: &Transcript) -> Self {
        let spoken: f64 = transcript.segments.iter().map(|s| (s.end - s.start).max(0.0)).sum();
        let unsure = transcript.segments.iter().filter(|s| s.is_low_confidence()).count();
        Quality {
            model: transcript.model.clone(),
            languages: transcript
                .languages()
                .into_iter()
                .map(|(language, share)| LanguageShare { language, share })
                .collect(),
            speech_share: (spoken / transcript.duration.max(1e-9)).min(1.0),
            low_confidence_share: unsure as f64 / transcript.segments.len().max(1) as f64,
        }
    }

    /// One line for people: "tiny.en; English 92 %, German 8 %; speech 71 % of the
    /// recording; 3 % of lines unsure".
    pub fn describe(&self) -> String {
        let percent = |share: f64| (share * 100.0).round() as u32;
        let languages: Vec<String> = self
            .languages
            .iter()
            .map(|l| format!("{} {} %", language_name(&l.language), percent(l.share)))
            .collect();
        let mut parts = vec![format!("model {}", self.model)];
        if !languages.is_empty() {
            parts.push(languages.join(", "));
        }
        parts.push(format!("speech {} % of the recording", percent(self.speech_share)));
        parts.push(format!("{} % of lines marked unsure", percent(self.low_confidence_share)));
        parts.join("; ")
    }
}

/// The English name of a language code, for the languages people use most; else the code.
pub fn language_name(code: &str) -> String {
    let name = match code {
        "en" => "English",
        "de" => "German",
        "fr" => "French",
        "es" => "Spanish",
        "it" => "Italian",
        "nl" => "Dutch",
        "pt" => "Portuguese",
        "pl" => "Polish",
        "sv" => "Swedish",
        "da" => "Danish",
        "no" => "Norwegian",
        "fi" => "Finnish",
        "cs" => "Czech",
        "ru" => "Russian",
        "uk" => "Ukrainian",
        "tr" => "Turkish",
        "ar" => "Arabic",
        "zh" => "Chinese",
        "ja" => "Japanese",
        "ko" => "Korean",
        "hi" => "Hindi",
        _ => return code.to_string(),
    };
    name.to_string()
}

/// A statement from the meeting and when it was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// The statement.
    pub text: String,
    /// Start of the transcript segment it comes from, in seconds.
    pub at: f64,
}

/// Something someone has to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionItem {
    /// What has to be done.
    pub text: String,
    /// Who does it, when a name was said.
    pub owner: Option<String>,
    /// By when, as said ("Friday", "end of the month", "15 March").
    pub due: Option<String>,
    /// Start of the transcript segment it comes from, in seconds.
    pub at: f64,
}

/// The summarizer that produced a set of minutes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummarizerInfo {
    /// Provider name: `extractive` or `openai`.
    pub provider: String,
    /// The language model used, for LLM providers.
    pub model: Option<String>,
    /// Why the configured provider was replaced by `extractive`, when it was.
    pub fallback_reason: Option<String>,
    /// In how many parts the transcript was sent to a language model (0 for `extractive`;
    /// more than 1 when it was longer than the model's context and was map-reduced).
    #[serde(default)]
    pub parts: u32,
    /// Items whose cited timestamp was missing or wrong and was repaired to the segment
    /// they quote.
    #[serde(default)]
    pub repaired_citations: u32,
    /// Items dropped because the timestamp they cite could not be found or repaired.
    #[serde(default)]
    pub dropped_items: u32,
}

impl SummarizerInfo {
    /// The offline summarizer, as configured (no fallback, no model).
    pub fn extractive() -> Self {
        SummarizerInfo {
            provider: "extractive".into(),
            model: None,
            fallback_reason: None,
            parts: 0,
            repaired_citations: 0,
            dropped_items: 0,
        }
    }
}
