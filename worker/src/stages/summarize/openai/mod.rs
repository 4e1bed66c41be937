//! The `openai` provider: minutes written by a language model behind any OpenAI-compatible
//! chat-completions endpoint (OpenAI, OpenRouter, Ollama, vLLM, a llama.cpp server).
//!
//! Map-reduce, never truncation: the transcript is cut into [`parts`] that fit the model's
//! context beside the prompt and the answer; each part is summarized on its own (several
//! at a time); a part the server still finds too long is halved and tried again. The parts'
//! decisions, action items and open questions are concatenated in time order; their
//! summaries and key points are merged by the model into one summary (in rounds, when even
//! the notes do not fit). Every answer is validated and every citation checked by
//! [`answer`].

pub mod answer;
pub mod client;
pub mod parts;

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use minutes_shared::minutes::{Point, SummarizerInfo};
use minutes_shared::subtitles::clock;
use minutes_shared::Transcript;
use serde_json::Value;

use self::answer::{clip, merge_schema, part_schema, Citations, ListLimits, SUMMARY_CHARS};
use self::client::{ChatClient, ResponseFormat};
use self::parts::{estimate_tokens, Line};
use super::{MinutesContent, SummarizeError, Summarizer, Summary, SummaryFuture};

/// Tries per request whose answer was cut off or did not parse as the schema.
const BAD_ANSWER_TRIES: u32 = 2;

/// Settings of the `openai` provider.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenAiSettings {
    /// Base URL of the API, ending in `/v1` (e.g. `http://127.0.0.1:8080/v1`).
    pub base_url: String,
    /// Model name as the server knows it.
    pub model: String,
    /// Bearer token, when the server wants one.
    pub api_key: Option<String>,
    /// The model's context window in tokens: prompt, transcript part and answer together.
    pub context_tokens: usize,
    /// Longest answer per request, in tokens; also sizes the lists the schema allows.
    pub max_output_tokens: usize,
    /// Time limit of one request.
    pub timeout: Duration,
    /// Tries per request (429, 5xx, timeouts and refused connections are retried).
    pub attempts: u32,
    /// Wait before the first retry; doubles on each further one.
    pub backoff: Duration,
    /// Requests in flight at once while summarizing the parts.
    pub concurrency: usize,
    /// How the JSON answer is requested.
    pub response_format: ResponseFormat,
}

impl Default for OpenAiSettings {
    fn default() -> Self {
        OpenAiSettings {
            base_url: "http://127.0.0.1:8080/v1".into(),
            model: "default".into(),
            api_key: None,
            context_tokens: 8192,
            max_output_tokens: 3072,
            timeout: Duration::from_secs(300),
            attempts: 4,
            backoff: Duration::from_secs(2),
            concurrency: 2,
            response_format: ResponseFormat::JsonSchema,
        }
    }
}

/// Tokens kept free for the chat template's own tokens and the estimate's error.
const MARGIN_TOKENS: usize = 64;

const SYSTEM: &str = "You write the minutes of a meeting from its transcript. Answer with JSON \
only. Use only what the transcript says; never invent names, dates or decisions. Every item \
cites, in its \"at\" field, the [hh:mm:ss] time of the transcript line it comes from, copied \
exactly as written (without the brackets).";

const PART_TASK: &str = "Write the minutes of this part of the meeting as JSON with: \
\"summary\" (two to four sentences on what was discussed), \"key_points\", \"decisions\" \
(what was decided or agreed), \"action_items\" (what someone will do, with \"owner\" and \
\"due\" when the transcript says them, otherwise null) and \"open_questions\" (questions \
left unanswered). Each item has \"text\" and \"at\". Leave a list empty when the \
transcript has nothing for it.";

const MERGE_TASK: &str = "These are notes on consecutive parts of one meeting. Write JSON \
with \"summary\" (one paragraph of three to five sentences on the whole meeting) and \
\"key_points\" (the most important points, each with \"text\" and the \"at\" time of the \
note it comes from).";

/// The `openai` provider.
#[derive(Debug, Clone)]
pub struct OpenAi {
    client: ChatClient,
    settings: OpenAiSettings,
    limits: ListLimits,
}

/// The outcome of summarizing one part of the transcript.
#[derive(Debug, Clone)]
struct PartMinutes {
    content: MinutesContent,
    first: f64,
    last: f64,
}

type PartFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<(PartMinutes, u32, u32)>, SummarizeError>> + Send + 'a>>;

impl OpenAi {
    /// The provider for `settings`; checks that the context leaves room for a transcript.
    pub fn new(settings: OpenAiSettings) -> Result<Self, SummarizeError> {
        let client = ChatClient::new(&settings)?;
        let limits = ListLimits::for_answer(settings.max_output_tokens);
        let provider = OpenAi { client, settings, limits };
        if provider.transcript_budget() < 4 * MARGIN_TOKENS {
            return Err(SummarizeError::Settings(format!(
                "a context of {} tokens leaves no room for the transcript beside an answer of {} \
                 tokens: raise the context or lower the answer size",
                provider.settings.context_tokens, provider.settings.max_output_tokens
            )));
        }
        Ok(provider)
    }

    /// The prompt text around the transcript, as sent.
    fn frame(&self, task: &str, schema: &Value) -> String {
        match self.settings.response_format {
            ResponseFormat::JsonSchema => task.to_string(),
            ResponseFormat::JsonObject => {
                format!("{task}\nThe JSON must match this schema: {schema}")
            }
        }
    }

    /// Tokens left for transcript lines (or notes) in one request.
    fn transcript_budget(&self) -> usize {
        let frame = estimate_tokens(SYSTEM)
            + estimate_tokens(&self.frame(PART_TASK, &part_schema(self.limits)))
            + 40;
        self.settings
            .context_tokens
            .saturating_sub(self.settings.max_output_tokens + frame + MARGIN_TOKENS)
    }

    async fn ask(
        &self,
        task: &str,
        schema: &Value,
        material: &str,
    ) -> Result<answer::RawAnswer, SummarizeError> {
        let user = format!("{material}\n\n{}", self.frame(task, schema));
        // Models sample: an answer cut off at max_tokens (a loop) or not parsing as the
        // schema is often fine when asked again, so one more try before giving up.
        let mut tries = 0;
        loop {
            tries += 1;
            let answer = match self.client.complete(SYSTEM, &user, schema).await {
                Ok(content) => answer::parse(&content).map_err(SummarizeError::BadAnswer),
                Err(error) => Err(error),
            };
            match answer {
                Err(SummarizeError::BadAnswer(_)) if tries < BAD_ANSWER_TRIES => continue,
                other => return other,
            }
        }
    }

    /// Summarizes `part`, halving it when the server says it does not fit.
    fn summarize_part(&self, part: Vec<Line>) -> PartFuture<'_> {
        Box::pin(async move {
            let first = part.first().map_or(0.0, |l| l.start);
            let last = part.last().map_or(0.0, |l| l.end);
            let material = format!(
                "Transcript from {} to {}:\n{}",
                clock(first),
                clock(last),
                part.iter().map(Line::render).collect::<Vec<_>>().join("\n")
            );
            match self.ask(PART_TASK, &part_schema(self.limits), &material).await {
                Ok(raw) => {
                    let mut citations = Citations::new(&part);
                    let content = MinutesContent {
                        summary: clip(&raw.summary, SUMMARY_CHARS),
                        key_points: citations.points(&raw.key_points),
                        decisions: citations.points(&raw.decisions),
                        action_items: citations.actions(&raw.action_items),
                        open_questions: citations.points(&raw.open_questions),
                    };
                    let outcome = PartMinutes { content, first, last };
                    Ok(vec![(outcome, citations.repaired, citations.dropped)])
                }
                Err(SummarizeError::ContextExceeded(_)) if part.len() > 1 => {
                    let (left, right) = part.split_at(part.len() / 2);
                    let mut outcomes = self.summarize_part(left.to_vec()).await?;
                    outcomes.extend(self.summarize_part(right.to_vec()).await?);
                    Ok(outcomes)
                }
                Err(error) => Err(error),
            }
        })
    }

    /// One summary and key points from the parts' notes, merging in rounds when the notes
    /// do not fit one request.
    async fn merge(
        &self,
        mut notes: Vec<PartMinutes>,
        citations: &mut Citations<'_>,
    ) -> Result<(String, Vec<Point>), SummarizeError> {
        let schema = merge_schema(self.limits);
        loop {
            let budget = self.transcript_budget();
            let mut batches: Vec<Vec<PartMinutes>> = Vec::new();
            let mut used = 0;
            for note in notes {
                let cost = estimate_tokens(&render_note(&note));
                match batches.last_mut() {
                    Some(batch) if used + cost <= budget => batch.push(note),
                    _ => {
                        batches.push(vec![note]);
                        used = 0;
                    }
                }
                used += cost;
            }
            let mut merged = Vec::new();
            for batch in &batches {
                let material = batch.iter().map(render_note).collect::<Vec<_>>().join("\n\n");
                let raw = self.ask(MERGE_TASK, &schema, &material).await?;
                let content = MinutesContent {
                    summary: clip(&raw.summary, SUMMARY_CHARS),
                    key_points: citations.points(&raw.key_points),
                    ..MinutesContent::default()
                };
                let first = batch.first().map_or(0.0, |n| n.first);
                let last = batch.last().map_or(0.0, |n| n.last);
                merged.push(PartMinutes { content, first, last });
            }
            if merged.len() == 1 || merged.len() == batches.iter().map(Vec::len).sum::<usize>() {
                // One merged note, or no progress possible (each note alone fills a request):
                // keep the merged notes' text together rather than loop.
                let summary = merged.iter().map(|n| n.content.summary.as_str()).collect::<Vec<_>>();
                let summary = clip(&summary.join(" "), SUMMARY_CHARS * 2);
                let key_points = merged.into_iter().flat_map(|n| n.content.key_points).collect();
                return Ok((summary, key_points));
            }
            notes = merged;
        }
    }

    async fn summarize_transcript(
        &self,
        transcript: &Transcript,
    ) -> Result<Summary, SummarizeError> {
        let mut info = self.describe();
        let lines = parts::lines(transcript);
        if lines.is_empty() {
            return Ok(Summary { content: MinutesContent::default(), info });
        }
        let split = parts::split(&lines, self.transcript_budget());
        let outcomes: Vec<Vec<(PartMinutes, u32, u32)>> = stream::iter(split)
            .map(|part| self.summarize_part(part))
            .buffered(self.settings.concurrency.max(1))
            .try_collect()
            .await?;
        let outcomes: Vec<(PartMinutes, u32, u32)> = outcomes.into_iter().flatten().collect();
        info.parts = outcomes.len() as u32;
        info.repaired_citations = outcomes.iter().map(|o| o.1).sum();
        info.dropped_items = outcomes.iter().map(|o| o.2).sum();
        let notes: Vec<PartMinutes> = outcomes.into_iter().map(|o| o.0).collect();

        let mut content = MinutesContent::default();
        for note in &notes {
            content.decisions.extend(note.content.decisions.iter().cloned());
            content.action_items.extend(note.content.action_items.iter().cloned());
            content.open_questions.extend(note.content.open_questions.iter().cloned());
        }
        dedup_by_text(&mut content.decisions, |p| &p.text);
        dedup_by_text(&mut content.action_items, |a| &a.text);
        dedup_by_text(&mut content.open_questions, |p| &p.text);
        if let [only] = notes.as_slice() {
            content.summary = only.content.summary.clone();
            content.key_points = only.content.key_points.clone();
        } else {
            let mut citations = Citations::new(&lines);
            let (summary, key_points) = self.merge(notes, &mut citations).await?;
            content.summary = summary;
            content.key_points = key_points;
            dedup_by_text(&mut content.key_points, |p| &p.text);
            info.repaired_citations += citations.repaired;
            info.dropped_items += citations.dropped;
        }
        Ok(Summary { content, info })
    }
}

/// A part's notes as the merge request shows them.
fn render_note(note: &PartMinutes) -> String {
    let mut text =
        format!("From {} to {}: {}", clock(note.first), clock(note.last), note.content.summary);
    for point in note.content.key_points.iter().chain(&note.content.decisions) {
        text.push_str(&format!("\n[{}] {}", clock(point.at), point.text));
    }
    text
}

/// Keeps the first of the items whose texts are equal when case and punctuation are
/// ignored (the same decision stated in two overlapping parts).
fn dedup_by_text<T>(items: &mut Vec<T>, text: impl Fn(&T) -> &String) {
    let mut seen = HashSet::new();
    items.retain(|item| {
        let key: String = text(item)
            .chars()
            .filter(|c| c.is_alphanumeric() || c.is_whitespace())
            .flat_map(char::to_lowercase)
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        seen.insert(key)
    });
}

impl Summarizer for OpenAi {
    fn describe(&self) -> SummarizerInfo {
        SummarizerInfo {
            provider: "openai".into(),
            model: Some(self.settings.model.clone()),
            ..SummarizerInfo::extractive()
        }
    }

    fn summarize<'a>(&'a self, transcript: &'a Transcript) -> SummaryFuture<'a> {
        Box::pin(self.summarize_transcript(transcript))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_differing_only_in_case_and_punctuation_are_dropped() {
        let mut points = vec![
            Point { text: "Ship on March 15.".into(), at: 1.0 },
            Point { text: "ship on  march 15".into(), at: 9.0 },
            Point { text: "Hire a designer".into(), at: 12.0 },
        ];
        dedup_by_text(&mut points, |p| &p.text);
        let times: Vec<f64> = points.iter().map(|p| p.at).collect();
        assert_eq!(times, vec![1.0, 12.0]);
    }

    #[test]
    fn a_context_too_small_for_the_answer_is_a_settings_error() {
        let settings =
            OpenAiSettings { context_tokens: 1024, max_output_tokens: 1000, ..Default::default() };
        assert!(matches!(OpenAi::new(settings), Err(SummarizeError::Settings(_))));
        let settings = OpenAiSettings { base_url: "127.0.0.1:8080".into(), ..Default::default() };
        assert!(matches!(OpenAi::new(settings), Err(SummarizeError::Settings(_))));
    }

    #[test]
    fn the_transcript_budget_leaves_room_for_prompt_and_answer() {
        let provider = OpenAi::new(OpenAiSettings::default()).unwrap_or_else(|e| panic!("{e}"));
        let budget = provider.transcript_budget();
        assert!(budget > 4000 && budget < 8192 - 3072, "{budget}");
    }
}
