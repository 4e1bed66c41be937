//! Summarize stage: a transcript to the content of the minutes (summary, key points,
//! decisions, action items, open questions), each point citing its segment's start time.
//!
//! Providers are chosen by settings. [`extractive`] is the offline default: deterministic,
//! no network, no model. Whatever the provider, [`assemble`] puts its output together with
//! the meeting's facts into a [`Minutes`].

pub mod extractive;

use minutes_shared::minutes::{ActionItem, Minutes, Point, SummarizerInfo, MINUTES_FORMAT_VERSION};
use minutes_shared::Transcript;

/// What a summarizer writes: the body of the minutes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MinutesContent {
    /// One paragraph saying what the meeting was about.
    pub summary: String,
    /// Main points in time order.
    pub key_points: Vec<Point>,
    /// Decisions in time order.
    pub decisions: Vec<Point>,
    /// Action items in time order.
    pub action_items: Vec<ActionItem>,
    /// Open questions in time order.
    pub open_questions: Vec<Point>,
}

/// Facts about the meeting that do not come from the transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct MeetingInfo {
    /// Title shown on the minutes.
    pub title: String,
    /// Date of the meeting, `YYYY-MM-DD`.
    pub date: String,
    /// The recording's file name as the person knows it.
    pub source_filename: String,
}

/// The complete minutes from a summarizer's content and the meeting's facts.
pub fn assemble(
    info: &MeetingInfo,
    transcript: &Transcript,
    content: MinutesContent,
    summarizer: SummarizerInfo,
) -> Minutes {
    Minutes {
        version: MINUTES_FORMAT_VERSION,
        title: info.title.clone(),
        date: info.date.clone(),
        duration: transcript.duration,
        language: transcript.language.clone(),
        source_filename: info.source_filename.clone(),
        summary: content.summary,
        key_points: content.key_points,
        decisions: content.decisions,
        action_items: content.action_items,
        open_questions: content.open_questions,
        summarizer,
        transcript: transcript.segments.clone(),
    }
}
