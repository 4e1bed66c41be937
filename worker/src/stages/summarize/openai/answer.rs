//! What we ask the model for and how its answer is checked.
//!
//! The model is asked for JSON matching [`part_schema`] (or [`merge_schema`] when merging
//! the parts of a long meeting). Its answer is never trusted: [`parse`] rejects anything
//! that is not that JSON, and [`Citations::resolve`] checks every cited `hh:mm:ss` against
//! the transcript lines the model was shown. An item citing a time that is not a line's
//! start is repaired to the line it quotes (or, failing that, the line that was being spoken
//! at that time); an item that matches no line is dropped. Both are counted.

use std::collections::HashSet;

use minutes_shared::minutes::{ActionItem, Point};
use serde::Deserialize;
use serde_json::{json, Value};

use super::parts::Line;

/// Longest summary paragraph, in characters, whatever the answer budget.
pub const SUMMARY_CHARS: usize = 900;
/// Longest text of one item, in characters, whatever the answer budget.
pub const ITEM_CHARS: usize = 240;
/// Longest owner or due date, in characters.
const SHORT_CHARS: usize = 60;
/// Characters per token assumed when sizing the schema: low on purpose. A model stuck
/// repeating digits spends a token per character or two; sized this way, even a model
/// that fills every field to the brim finishes its JSON within the answer budget.
const WORST_CHARS_PER_TOKEN: usize = 2;

/// How long the summary and items may be and how many items each list may hold; sized
/// from the answer's token budget so that the JSON always fits in it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ListLimits {
    /// Characters of the summary.
    pub summary_chars: usize,
    /// Characters of one item's text.
    pub item_chars: usize,
    /// Key points.
    pub key_points: usize,
    /// Decisions.
    pub decisions: usize,
    /// Action items.
    pub action_items: usize,
    /// Open questions.
    pub open_questions: usize,
}

impl ListLimits {
    /// Limits for an answer of at most `max_output_tokens`: a quarter for the summary, the
    /// rest for items (at least one per list), shared out in the ratio 2:2:3:1.
    pub fn for_answer(max_output_tokens: usize) -> Self {
        let chars = max_output_tokens * WORST_CHARS_PER_TOKEN;
        let summary_chars = (chars / 4).min(SUMMARY_CHARS);
        let item_chars = (chars / 12).clamp(60, ITEM_CHARS);
        // An action item's worst case: text, owner, due, time and the JSON around them.
        let item_tokens = (item_chars + 2 * SHORT_CHARS + 60) / WORST_CHARS_PER_TOKEN;
        let room = max_output_tokens.saturating_sub(summary_chars / WORST_CHARS_PER_TOKEN + 40);
        let items = room / item_tokens;
        let share = |weight: usize| (items * weight / 8).max(1);
        ListLimits {
            summary_chars,
            item_chars,
            key_points: share(2),
            decisions: share(2),
            action_items: share(3),
            open_questions: share(1),
        }
    }
}

fn point_schema(limits: ListLimits) -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["text", "at"],
        "properties": {
            "text": {"type": "string", "maxLength": limits.item_chars},
            "at": {"type": "string", "pattern": "^[0-9][0-9]:[0-5][0-9]:[0-5][0-9]$"}
        }
    })
}

fn list(items: Value, max: usize) -> Value {
    json!({"type": "array", "maxItems": max, "items": items})
}

/// The JSON schema of the answer for one part of the transcript.
pub fn part_schema(limits: ListLimits) -> Value {
    let action_item = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["text", "owner", "due", "at"],
        "properties": {
            "text": {"type": "string", "maxLength": limits.item_chars},
            "owner": {"type": ["string", "null"], "maxLength": SHORT_CHARS},
            "due": {"type": ["string", "null"], "maxLength": SHORT_CHARS},
            "at": {"type": "string", "pattern": "^[0-9][0-9]:[0-5][0-9]:[0-5][0-9]$"}
        }
    });
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["summary", "key_points", "decisions", "action_items", "open_questions"],
        "properties": {
            "summary": {"type": "string", "maxLength": limits.summary_chars},
            "key_points": list(point_schema(limits), limits.key_points),
            "decisions": list(point_schema(limits), limits.decisions),
            "action_items": list(action_item, limits.action_items),
            "open_questions": list(point_schema(limits), limits.open_questions)
        }
    })
}

/// The JSON schema of the answer that merges the parts' summaries.
pub fn merge_schema(limits: ListLimits) -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["summary", "key_points"],
        "properties": {
            "summary": {"type": "string", "maxLength": limits.summary_chars},
            "key_points": list(point_schema(limits), limits.key_points + limits.decisions)
        }
    })
}

/// A cited item as the model wrote it.
#[derive(Debug, Clone, Deserialize)]
pub struct RawPoint {
    /// The statement.
    pub text: String,
    /// `hh:mm:ss`, when the model gave one.
    #[serde(default)]
    pub at: Option<String>,
}

/// An action item as the model wrote it.
#[derive(Debug, Clone, Deserialize)]
pub struct RawAction {
    /// What has to be done.
    pub text: String,
    /// Who, when said.
    #[serde(default)]
    pub owner: Option<String>,
    /// By when, when said.
    #[serde(default)]
    pub due: Option<String>,
    /// `hh:mm:ss`, when the model gave one.
    #[serde(default)]
    pub at: Option<String>,
}

/// The answer for one part, or for a merge (which leaves the last three lists empty).
#[derive(Debug, Clone, Deserialize)]
pub struct RawAnswer {
    /// The summary paragraph.
    pub summary: String,
    /// Key points.
    #[serde(default)]
    pub key_points: Vec<RawPoint>,
    /// Decisions.
    #[serde(default)]
    pub decisions: Vec<RawPoint>,
    /// Action items.
    #[serde(default)]
    pub action_items: Vec<RawAction>,
    /// Open questions.
    #[serde(default)]
    pub open_questions: Vec<RawPoint>,
}

/// Reads the model's message as the JSON asked for. Tolerates a Markdown code fence
/// around it (models asked for plain JSON mode often add one); nothing else.
pub fn parse(content: &str) -> Result<RawAnswer, String> {
    let trimmed = content.trim();
    let unfenced = trimmed
        .strip_prefix("```json")
        .or_else(|| trimmed.strip_prefix("```"))
        .and_then(|rest| rest.trim_end().strip_suffix("```"))
        .unwrap_or(trimmed);
    let answer: RawAnswer = serde_json::from_str(unfenced.trim()).map_err(|e| {
        let start: String = trimmed.chars().take(120).collect();
        format!("not the JSON asked for ({e}); it began {start:?}")
    })?;
    Ok(answer)
}

/// Resolves cited timestamps against the transcript lines a model was shown, counting
/// what it had to repair or drop.
#[derive(Debug)]
pub struct Citations<'a> {
    lines: &'a [Line],
    /// Items whose citation was changed to the right line.
    pub repaired: u32,
    /// Items that matched no line and were left out.
    pub dropped: u32,
}

/// `hh:mm:ss` to whole seconds.
fn parse_clock(text: &str) -> Option<u64> {
    let parts: Vec<&str> = text.trim().trim_matches(['[', ']']).split(':').collect();
    let [h, m, s] = parts.as_slice() else { return None };
    let (h, m, s): (u64, u64, u64) = (h.parse().ok()?, m.parse().ok()?, s.parse().ok()?);
    (m < 60 && s < 60).then_some(h * 3600 + m * 60 + s)
}

fn words(text: &str) -> HashSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() > 2)
        .map(str::to_lowercase)
        .collect()
}

impl<'a> Citations<'a> {
    /// Citations checked against `lines`.
    pub fn new(lines: &'a [Line]) -> Self {
        Citations { lines, repaired: 0, dropped: 0 }
    }

    /// The start (seconds) of the line `text` cites with `at`, or `None` when the item
    /// must be dropped. Exact: a line starts in that second. Repaired: the line sharing
    /// the most words with the item (at least half of the item's words, and two), else the
    /// line spoken at that time.
    pub fn resolve(&mut self, text: &str, at: Option<&str>) -> Option<f64> {
        let cited = at.and_then(parse_clock);
        if let Some(second) = cited {
            if let Some(line) = self.lines.iter().find(|l| l.start.floor() as u64 == second) {
                return Some(line.start);
            }
        }
        let item_words = words(text);
        let quoted = self
            .lines
            .iter()
            .map(|line| (line, words(&line.text).intersection(&item_words).count()))
            .filter(|(_, shared)| *shared >= 2 && shared * 2 >= item_words.len())
            .max_by_key(|(_, shared)| *shared)
            .map(|(line, _)| line.start);
        let spoken_then = cited.and_then(|second| {
            let second = second as f64;
            self.lines.iter().find(|l| l.start <= second && second < l.end).map(|l| l.start)
        });
        match quoted.or(spoken_then) {
            Some(start) => {
                self.repaired += 1;
                Some(start)
            }
            None => {
                self.dropped += 1;
                None
            }
        }
    }

    /// The points of `raw` whose citations resolve, with text trimmed and clipped.
    pub fn points(&mut self, raw: &[RawPoint]) -> Vec<Point> {
        raw.iter()
            .filter(|p| !p.text.trim().is_empty())
            .filter_map(|p| {
                let at = self.resolve(&p.text, p.at.as_deref())?;
                Some(Point { text: clip(&p.text, ITEM_CHARS), at })
            })
            .collect()
    }

    /// The action items of `raw` whose citations resolve.
    pub fn actions(&mut self, raw: &[RawAction]) -> Vec<ActionItem> {
        let optional = |value: &Option<String>| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty() && !v.eq_ignore_ascii_case("null"))
                .map(|v| clip(v, SHORT_CHARS))
        };
        raw.iter()
            .filter(|a| !a.text.trim().is_empty())
            .filter_map(|a| {
                let at = self.resolve(&a.text, a.at.as_deref())?;
                Some(ActionItem {
                    text: clip(&a.text, ITEM_CHARS),
                    owner: optional(&a.owner),
                    due: optional(&a.due),
                    at,
                })
            })
            .collect()
    }
}

/// `text` trimmed, at most `max` characters.
pub fn clip(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut clipped: String = text.chars().take(max.saturating_sub(1)).collect();
    clipped.push('…');
    clipped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines() -> Vec<Line> {
        vec![
            Line { start: 3.4, end: 9.0, text: "We decided to ship on March 15.".into() },
            Line { start: 9.0, end: 15.0, text: "Ben will write the release notes.".into() },
            Line { start: 15.0, end: 21.0, text: "Who owns the budget?".into() },
        ]
    }

    fn point(text: &str, at: Option<&str>) -> RawPoint {
        RawPoint { text: text.into(), at: at.map(String::from) }
    }

    #[test]
    fn exact_citations_resolve_to_the_line_start() {
        let lines = lines();
        let mut citations = Citations::new(&lines);
        let points = citations.points(&[point("Ship on March 15", Some("00:00:03"))]);
        assert_eq!(points[0].at, 3.4);
        assert_eq!((citations.repaired, citations.dropped), (0, 0));
    }

    #[test]
    fn wrong_or_missing_citations_are_repaired_from_the_quoted_line() {
        let lines = lines();
        let mut citations = Citations::new(&lines);
        let points = citations.points(&[
            point("Ben will write the release notes", Some("00:07:00")),
            point("Who owns the budget", None),
            point("The team agreed to ship", Some("00:00:12")),
        ]);
        let times: Vec<f64> = points.iter().map(|p| p.at).collect();
        assert_eq!(times, vec![9.0, 15.0, 9.0], "quoted line, quoted line, line spoken at 12 s");
        assert_eq!((citations.repaired, citations.dropped), (3, 0));
    }

    #[test]
    fn items_matching_no_line_are_dropped_and_counted() {
        let lines = lines();
        let mut citations = Citations::new(&lines);
        let points = citations.points(&[
            point("Invent a new product line", Some("01:00:00")),
            point("Nothing at all", Some("not a time")),
            point("   ", Some("00:00:03")),
        ]);
        assert!(points.is_empty());
        assert_eq!((citations.repaired, citations.dropped), (0, 2), "blank items are skipped");
    }

    #[test]
    fn answers_parse_with_or_without_a_code_fence_and_reject_other_text() {
        let json = r#"{"summary":"S","key_points":[],"decisions":[{"text":"D","at":"00:00:03"}],
            "action_items":[{"text":"A","owner":null,"due":"Friday","at":"00:00:09"}],
            "open_questions":[]}"#;
        assert_eq!(parse(json).map(|a| a.decisions.len()), Ok(1));
        let fenced = format!("```json\n{json}\n```");
        assert_eq!(
            parse(&fenced).map(|a| a.action_items[0].due.clone()),
            Ok(Some("Friday".into()))
        );
        assert!(parse("Sure! Here are your minutes.").is_err());
        assert!(parse(r#"{"summary": "cut off"#).is_err());
    }

    #[test]
    fn list_limits_grow_with_the_answer_budget_and_never_reach_zero() {
        for tokens in [768, 1024, 1536, 2048, 3072, 4096, 16384] {
            let l = ListLimits::for_answer(tokens);
            let point = (l.item_chars + 60) / 2;
            let action = (l.item_chars + 180) / 2;
            let worst = l.summary_chars / 2
                + 40
                + (l.key_points + l.decisions + l.open_questions) * point
                + l.action_items * action;
            assert!(worst <= tokens, "{tokens}: {l:?} may need {worst} tokens");
            assert!(l.summary_chars >= 128 && l.item_chars >= 60, "{l:?}");
        }
        let small = ListLimits::for_answer(256);
        assert_eq!((small.key_points, small.action_items), (1, 1));
        let large = ListLimits::for_answer(4096);
        assert!(large.action_items > large.open_questions && large.key_points >= 4, "{large:?}");
    }

    #[test]
    fn action_items_keep_owner_and_due_and_drop_null_words() {
        let lines = lines();
        let mut citations = Citations::new(&lines);
        let raw = RawAction {
            text: "Write the release notes".into(),
            owner: Some("Ben".into()),
            due: Some("null".into()),
            at: Some("00:00:09".into()),
        };
        let items = citations.actions(&[raw]);
        assert_eq!(items[0].owner.as_deref(), Some("Ben"));
        assert_eq!(items[0].due, None);
        assert_eq!(items[0].at, 9.0);
    }

    #[test]
    fn long_texts_are_clipped_with_an_ellipsis() {
        let clipped = clip(&"x".repeat(500), 10);
        assert_eq!(clipped.chars().count(), 10);
        assert!(clipped.ends_with('…'));
    }
}
