//! Summarize stage: a transcript to the content of the minutes (summary, key points,
//! decisions, action items, open questions), each point citing its segment's start time.
//!
//! Providers implement [`Summarizer`] and are chosen by settings: [`Extractive`] is the
//! offline default (deterministic, no network, no model); [`openai`] asks any
//! OpenAI-compatible chat-completions endpoint. [`summarize_or_fall_back`] runs the
//! configured provider and, when it fails for good, the extractive one, recording in the
//! minutes that it did (in general words: the error itself goes to the job's events). Whatever the provider, [`assemble`] puts its output together with the
//! meeting's facts into a [`Minutes`].

pub mod extractive;
pub mod openai;

use std::future::Future;
use std::pin::Pin;

use minutes_shared::minutes::{
    ActionItem, Minutes, Participant, Point, Quality, SummarizerInfo, MINUTES_FORMAT_VERSION,
};
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

/// What a provider produced: the content and how it was made.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The body of the minutes.
    pub content: MinutesContent,
    /// Provider, model, parts and citation repairs, as recorded in the minutes.
    pub info: SummarizerInfo,
}

/// Why a provider could not summarize. Every variant says enough for a person to act on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SummarizeError {
    /// The settings cannot work (bad URL, a context too small for the answer).
    #[error("summarizer settings: {0}")]
    Settings(String),
    /// No connection could be made, after every retry.
    #[error("cannot reach {url}: {message}")]
    Unreachable {
        /// The endpoint.
        url: String,
        /// The last connection error.
        message: String,
    },
    /// No answer within the time limit, after every retry.
    #[error("no answer from {url} within {seconds} s")]
    Timeout {
        /// The endpoint.
        url: String,
        /// The per-request limit.
        seconds: u64,
    },
    /// The server answered with an error status (after every retry when it was 429 or 5xx).
    #[error("{url} answered HTTP {status}: {message}")]
    Status {
        /// The endpoint.
        url: String,
        /// HTTP status code.
        status: u16,
        /// The start of the server's error message.
        message: String,
    },
    /// The prompt did not fit the model's context even as a single transcript line.
    #[error("the model's context is too small: {0}")]
    ContextExceeded(String),
    /// The answer was not the JSON asked for (not JSON, wrong shape, cut off).
    #[error("unusable answer: {0}")]
    BadAnswer(String),
}

/// A future that a [`Summarizer`] returns; boxed so that providers can be chosen at run time.
pub type SummaryFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Summary, SummarizeError>> + Send + 'a>>;

/// A way of writing minutes from a transcript.
pub trait Summarizer: Send + Sync {
    /// Provider and model, as the minutes will name them.
    fn describe(&self) -> SummarizerInfo;
    /// Writes the minutes' content for `transcript`.
    fn summarize<'a>(&'a self, transcript: &'a Transcript) -> SummaryFuture<'a>;
}

/// The offline provider: [`extractive::summarize`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Extractive;

impl Summarizer for Extractive {
    fn describe(&self) -> SummarizerInfo {
        SummarizerInfo::extractive()
    }

    fn summarize<'a>(&'a self, transcript: &'a Transcript) -> SummaryFuture<'a> {
        let summary = Summary { content: extractive::summarize(transcript), info: self.describe() };
        Box::pin(std::future::ready(Ok(summary)))
    }
}

/// What [`summarize_or_fall_back`] wrote, and the chosen provider's error when the
/// extractive summarizer wrote the minutes instead.
#[derive(Debug, Clone, PartialEq)]
pub struct Summarized {
    /// The minutes' content and how it was made.
    pub summary: Summary,
    /// Why the chosen provider did not write them (for the job's events and the log: it
    /// names endpoints and quotes servers, which the minutes must not).
    pub failure: Option<SummarizeError>,
}

impl SummarizeError {
    /// What happened in words fit for the minutes: no endpoint, status or server text.
    pub fn for_people(&self) -> &'static str {
        match self {
            SummarizeError::Settings(_) => "it is not set up correctly",
            SummarizeError::Unreachable { .. } => "it could not be reached",
            SummarizeError::Timeout { .. } => "it did not answer in time",
            SummarizeError::Status { .. } => "it answered with an error",
            SummarizeError::ContextExceeded(_) => "the meeting did not fit its context",
            SummarizeError::BadAnswer(_) => "its answer could not be used",
        }
    }
}

/// Runs `summarizer`; when it fails, writes the extractive minutes instead. The minutes
/// record the failed provider and what happened in general words
/// ([`SummarizeError::for_people`]); the error itself is returned for the caller to log.
pub async fn summarize_or_fall_back(
    summarizer: &dyn Summarizer,
    transcript: &Transcript,
) -> Summarized {
    match summarizer.summarize(transcript).await {
        Ok(summary) => Summarized { summary, failure: None },
        Err(error) => {
            let wanted = summarizer.describe();
            let mut info = SummarizerInfo::extractive();
            let model = wanted.model.map(|m| format!(" ({m})")).unwrap_or_default();
            info.fallback_reason =
                Some(format!("{}{model}: {}", wanted.provider, error.for_people()));
            let summary = Summary { content: extractive::summarize(transcript), info };
            Summarized { summary, failure: Some(error) }
        }
    }
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
        quality: Some(Quality::of(transcript)),
        participants: Participant::of(transcript),
        transcript: transcript.segments.clone(),
    }
}

/// A title made from a file name: "weekly_sync-2026" -> "Weekly sync 2026".
pub fn title_from_file_name(stem: &str) -> String {
    let spaced: String = stem.chars().map(|c| if c == '_' || c == '-' { ' ' } else { c }).collect();
    let spaced = spaced.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => "Meeting".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_come_from_file_names() {
        assert_eq!(title_from_file_name("weekly_sync-2026"), "Weekly sync 2026");
        assert_eq!(title_from_file_name("__"), "Meeting");
    }
}
