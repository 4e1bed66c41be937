//! The offline summarizer: sentence ranking for the summary and key points, phrase rules
//! for decisions, action items (with owner and due date) and open questions.
//!
//! Deterministic and model-free, so it works on any machine and is the fallback when an
//! LLM provider fails. Ranking is centroid scoring: each sentence is a TF-IDF vector of
//! its content words; sentences closest to the meeting's centroid say what the meeting
//! was about. The rules are English phrases; other languages get the ranked summary and
//! key points, and only what the rules recognise.

use std::collections::{BTreeMap, HashSet};
use std::sync::OnceLock;

use minutes_shared::minutes::{ActionItem, Point};
use minutes_shared::Transcript;
use regex::Regex;

use super::MinutesContent;

/// Sentences in the summary paragraph.
const SUMMARY_SENTENCES: usize = 3;
/// Key points listed after the summary.
const KEY_POINTS: usize = 5;
/// Sentences shorter than this (in content words) are never chosen for the summary.
const MIN_CONTENT_WORDS: usize = 3;

/// Capitalised words that start sentences but are not people.
const NOT_NAMES: [&str; 24] = [
    "Yes", "No", "Okay", "Ok", "So", "Great", "Thanks", "Well", "Right", "Good", "Agreed", "Sure",
    "Also", "And", "But", "Then", "Now", "It", "We", "They", "This", "That", "There", "Everyone",
];

/// One sentence of the transcript with the start of the segment it is in.
#[derive(Debug, Clone)]
struct Sentence {
    text: String,
    at: f64,
    words: Vec<String>,
}

/// Writes the minutes' content from `transcript`.
pub fn summarize(transcript: &Transcript) -> MinutesContent {
    let sentences = split_sentences(transcript);
    let decisions: Vec<Point> = sentences
        .iter()
        .filter(|s| is_decision(&s.text) && s.words.len() >= 2)
        .map(|s| Point { text: s.text.clone(), at: s.at })
        .collect();
    let action_items = action_items(&sentences);
    let open_questions: Vec<Point> = sentences
        .iter()
        .filter(|s| is_open_question(&s.text))
        .map(|s| Point { text: s.text.clone(), at: s.at })
        .collect();

    let ranked = rank(&sentences);
    let summary_ids: Vec<usize> = in_time_order(ranked.iter().copied().take(SUMMARY_SENTENCES));
    let summary =
        summary_ids.iter().map(|&i| sentences[i].text.as_str()).collect::<Vec<_>>().join(" ");
    let key_point_ids =
        in_time_order(ranked.iter().copied().skip(SUMMARY_SENTENCES).take(KEY_POINTS));
    let key_points = key_point_ids
        .into_iter()
        .map(|i| Point { text: sentences[i].text.clone(), at: sentences[i].at })
        .collect();
    MinutesContent { summary, key_points, decisions, action_items, open_questions }
}

fn in_time_order(ids: impl Iterator<Item = usize>) -> Vec<usize> {
    let mut ids: Vec<usize> = ids.collect();
    ids.sort_unstable();
    ids
}

/// Splits the transcript into sentences at `.`, `?` and `!` followed by a space. A
/// sentence may run across segments (Whisper cuts at pauses, not at full stops); it cites
/// the segment it starts in.
fn split_sentences(transcript: &Transcript) -> Vec<Sentence> {
    let mut sentences = Vec::new();
    let mut current = String::new();
    let mut started_at = 0.0;
    for segment in &transcript.segments {
        let mut chars = segment.text.trim().chars().peekable();
        if !current.trim().is_empty() {
            current.push(' ');
        }
        while let Some(c) = chars.next() {
            if current.trim().is_empty() {
                started_at = segment.start;
            }
            current.push(c);
            let ends =
                matches!(c, '.' | '?' | '!') && chars.peek().is_none_or(|n| n.is_whitespace());
            if ends {
                push_sentence(&mut sentences, &current, started_at);
                current.clear();
            }
        }
    }
    push_sentence(&mut sentences, &current, started_at);
    sentences
}

fn push_sentence(sentences: &mut Vec<Sentence>, text: &str, at: f64) {
    let text = text.trim();
    if text.is_empty() {
        return;
    }
    let words = content_words(text);
    sentences.push(Sentence { text: text.to_string(), at, words });
}

fn content_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '\'')
        .map(|w| w.trim_matches('\'').to_lowercase())
        .filter(|w| w.chars().count() > 1 && !stopwords().contains(w.as_str()))
        .collect()
}

/// Sentence indices, most central first; ties keep time order. Ordered maps, so that
/// every floating-point sum adds in the same order on every run (with hash maps, near-equal
/// scores swapped places from one run to the next).
fn rank(sentences: &[Sentence]) -> Vec<usize> {
    let count = sentences.len() as f64;
    let mut document_frequency: BTreeMap<&str, f64> = BTreeMap::new();
    for sentence in sentences {
        let unique: HashSet<&str> = sentence.words.iter().map(String::as_str).collect();
        for word in unique {
            *document_frequency.entry(word).or_default() += 1.0;
        }
    }
    let vectors: Vec<BTreeMap<&str, f64>> = sentences
        .iter()
        .map(|sentence| {
            let mut weights: BTreeMap<&str, f64> = BTreeMap::new();
            for word in &sentence.words {
                let df = document_frequency.get(word.as_str()).copied().unwrap_or(1.0);
                *weights.entry(word.as_str()).or_default() += (1.0 + count / df).ln();
            }
            weights
        })
        .collect();
    let mut centroid: BTreeMap<&str, f64> = BTreeMap::new();
    for vector in &vectors {
        for (word, weight) in vector {
            *centroid.entry(word).or_default() += weight;
        }
    }
    let norm = |v: &BTreeMap<&str, f64>| v.values().map(|x| x * x).sum::<f64>().sqrt();
    let centroid_norm = norm(&centroid).max(f64::MIN_POSITIVE);
    let mut scored: Vec<(usize, f64)> = vectors
        .iter()
        .enumerate()
        .filter(|(i, _)| sentences[*i].words.len() >= MIN_CONTENT_WORDS)
        .map(|(i, v)| {
            let dot: f64 = v.iter().map(|(w, x)| x * centroid.get(w).copied().unwrap_or(0.0)).sum();
            (i, dot / (norm(v).max(f64::MIN_POSITIVE) * centroid_norm))
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.into_iter().map(|(i, _)| i).collect()
}

#[allow(clippy::expect_used, reason = "constant patterns, each one exercised by the tests")]
fn regex(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("a constant pattern compiles"))
}

fn is_decision(text: &str) -> bool {
    static DECISION: OnceLock<Regex> = OnceLock::new();
    regex(
        &DECISION,
        r"(?i)\b(we (have |'ve )?decided|decided to|we (have )?agreed|agreed (to|on|that)|let'?s go with|let us go with|we('ll| will| are going to| are|'re) go(ing)? with|the decision is|we('re| are) going to go with|approved)\b",
    )
    .is_match(text)
}

fn is_open_question(text: &str) -> bool {
    static QUESTION: OnceLock<Regex> = OnceLock::new();
    static REQUEST: OnceLock<Regex> = OnceLock::new();
    let marked = regex(
        &QUESTION,
        r"(?i)\b(open question|question is|not sure (whether|if)|unclear|we don'?t know|still need to decide|to be decided|tbd)\b",
    )
    .is_match(text);
    let request = regex(&REQUEST, r"(?i)^(\w+, )?(can|could|would|will) you\b").is_match(text);
    marked || (text.ends_with('?') && !request && content_words(text).len() >= MIN_CONTENT_WORDS)
}

/// The action items in time order. An announcement alone ("Action item for me.") takes
/// the sentence after it as its task, cited at the announcement's time.
fn action_items(sentences: &[Sentence]) -> Vec<ActionItem> {
    let mut items = Vec::new();
    let mut index = 0;
    while index < sentences.len() {
        let sentence = &sentences[index];
        index += 1;
        if is_decision(&sentence.text) {
            continue;
        }
        let Some(mut item) = action_item(sentence) else { continue };
        if item.text.is_empty() {
            let Some(next) = sentences.get(index) else { continue };
            index += 1;
            let task = action_item(next).map_or_else(|| capitalised(&next.text), |i| i.text);
            item = ActionItem {
                text: task,
                due: item.due.or_else(|| due_date(&next.text)),
                owner: item.owner,
                at: item.at,
            };
        }
        items.push(item);
    }
    items
}

fn capitalised(text: &str) -> String {
    let mut chars = text.trim().chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// The action item in `sentence`, if it is one: who (a name said with it), what, by when.
fn action_item(sentence: &Sentence) -> Option<ActionItem> {
    static ACTION: OnceLock<Regex> = OnceLock::new();
    static NAMED: OnceLock<Regex> = OnceLock::new();
    static ADDRESSED: OnceLock<Regex> = OnceLock::new();
    static PREFIX: OnceLock<Regex> = OnceLock::new();
    let text = &sentence.text;
    let requested = regex(
        &ACTION,
        r"(?i)(\baction item\b|\bto-?do\b|\bi('ll| will| am going to|'m going to)\s|\bwe('ll| will)\s(?:need|have|send|prepare|update|fix|write|review|check|follow)|\b(can|could|would) you\s|\bplease\s|\b(needs?|has|have) to\s)",
    )
    .is_match(text);
    // "David, please post ..." / "Maria, can you ..." / "Sarah will ...".
    let addressed = regex(
        &ADDRESSED,
        r"^(?:(?:Yes|Okay|So|Great|Thanks|Right),?\s+)?([A-Z][a-z]+),\s+(?:please|can you|could you|would you|will you)\b",
    )
    .captures(text);
    let named = regex(&NAMED, r"^([A-Z][a-z]+) (?:will|is going to|should|needs to|has to)\s")
        .captures(text);
    let owner = addressed
        .or(named)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().to_string())
        .filter(|name| !NOT_NAMES.contains(&name.as_str()));
    if !requested && owner.is_none() {
        return None;
    }
    // "Action item for me: update ..." -> "Update ..."; a bare announcement becomes empty.
    let clean = regex(&PREFIX, r"(?i)^action item( for [a-z]+)?\s*([:,.-]\s*|$)").replace(text, "");
    Some(ActionItem { text: capitalised(&clean), owner, due: due_date(text), at: sentence.at })
}

/// The deadline said in `text`, as said: a weekday, a relative day, an end of period, or
/// a calendar date.
fn due_date(text: &str) -> Option<String> {
    static DUE: OnceLock<Regex> = OnceLock::new();
    let months =
        "January|February|March|April|May|June|July|August|September|October|November|December";
    let pattern = format!(
        r"(?i)\b(end of (?:the |this |next )?(?:day|week|month|quarter|year|sprint)|(?:next|this) (?:week|month|quarter|monday|tuesday|wednesday|thursday|friday)|tomorrow(?: morning| afternoon| evening)?|today|tonight|(?:\d{{1,2}}(?:st|nd|rd|th)?|(?:first|second|third|fourth|fifth|tenth|fifteenth|twentieth|thirtieth)) of (?:{months})|(?:{months}) \d{{1,2}}(?:st|nd|rd|th)?|monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b"
    );
    static PATTERN: OnceLock<String> = OnceLock::new();
    let pattern = PATTERN.get_or_init(|| pattern);
    regex(&DUE, pattern).find(text).map(|m| m.as_str().to_string())
}

fn stopwords() -> &'static HashSet<&'static str> {
    static WORDS: OnceLock<HashSet<&'static str>> = OnceLock::new();
    WORDS.get_or_init(|| {
        "a about above after again all also am an and any are as at be because been before \
         being below between both but by can could did do does doing down during each few \
         for from further had has have having he her here hers him his how i i'll i'm i've \
         if in into is it it's its itself just let's me more most my no nor not now of off \
         on once only or other our ours out over own same she should so some such than that \
         that's the their them then there these they this those through to too under until \
         up very was we we'll we're we've were what when where which while who whom why \
         will with would yes you you're your yours okay ok um uh yeah well right thanks \
         thank everyone all good morning great"
            .split_whitespace()
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use minutes_shared::transcript::{Segment, TRANSCRIPT_FORMAT_VERSION};

    /// The scripted meeting of fixtures/meeting.txt, one segment per line, 5 s apart.
    fn meeting() -> Transcript {
        let lines = include_str!("../../../../fixtures/meeting.txt");
        Transcript {
            version: TRANSCRIPT_FORMAT_VERSION,
            language: "en".into(),
            duration: 62.3,
            model: "script".into(),
            segments: lines
                .lines()
                .enumerate()
                .map(|(i, line)| Segment {
                    start: i as f64 * 5.0,
                    end: i as f64 * 5.0 + 4.5,
                    text: line.into(),
                    words: None,
                    ..Segment::default()
                })
                .collect(),
            speakers: Vec::new(),
            turns: Vec::new(),
        }
    }

    #[test]
    fn decisions_are_found_with_their_times() {
        let content = summarize(&meeting());
        let decisions: Vec<(&str, f64)> =
            content.decisions.iter().map(|d| (d.text.as_str(), d.at)).collect();
        assert_eq!(
            decisions,
            vec![
                ("We decided to move the release to the fifteenth of March.", 20.0),
                ("Let's go with one more tester for now.", 40.0),
            ]
        );
    }

    #[test]
    fn action_items_carry_owner_and_due_date() {
        let content = summarize(&meeting());
        let items: Vec<(Option<&str>, Option<&str>, f64)> = content
            .action_items
            .iter()
            .map(|a| (a.owner.as_deref(), a.due.as_deref(), a.at))
            .collect();
        assert_eq!(
            items,
            vec![
                (None, Some("Thursday"), 15.0),
                (None, Some("Friday"), 25.0),
                (None, Some("tomorrow morning"), 30.0),
                (Some("David"), Some("this week"), 40.0),
                (None, Some("end of the month"), 45.0),
            ],
            "{:#?}",
            content.action_items
        );
        assert_eq!(
            content.action_items[4].text,
            "Update the customer survey before the end of the month."
        );
    }

    #[test]
    fn open_questions_and_summary_come_from_the_meeting() {
        let content = summarize(&meeting());
        assert_eq!(content.open_questions.len(), 1, "{:?}", content.open_questions);
        assert!(content.open_questions[0].text.starts_with("One open question is whether"));
        assert!(!content.summary.is_empty());
        assert!(content.key_points.len() <= KEY_POINTS && !content.key_points.is_empty());
        let times: Vec<f64> = content.key_points.iter().map(|p| p.at).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "key points in time order: {times:?}");
        assert!(!content.key_points.iter().any(|p| content.summary.contains(&p.text)));
    }

    #[test]
    fn same_input_same_minutes_on_every_run() {
        // Regression: key points used to swap places between runs, because scores were
        // summed in hash-map order and near-equal ones came out in either order.
        let first = summarize(&meeting());
        for _ in 0..50 {
            assert_eq!(summarize(&meeting()), first);
        }
    }

    #[test]
    fn an_empty_transcript_gives_empty_minutes() {
        let empty = Transcript { segments: Vec::new(), ..meeting() };
        assert_eq!(summarize(&empty), MinutesContent::default());
    }

    #[test]
    fn due_dates_in_their_usual_forms() {
        for (text, due) in [
            ("send it by March 3rd", Some("March 3rd")),
            ("ship before the 2nd of June please", Some("2nd of June")),
            ("done by end of quarter", Some("end of quarter")),
            ("no date here", None),
        ] {
            assert_eq!(due_date(text).as_deref(), due, "{text}");
        }
    }

    /// Regression: Whisper split "Action item for me, update the survey ..." into two
    /// segments at the comma, and the item lost its task.
    #[test]
    fn a_sentence_split_across_segments_stays_one_sentence() {
        let mut transcript = meeting();
        transcript.segments = vec![
            Segment {
                start: 48.0,
                end: 49.5,
                text: "Action item for me,".into(),
                words: None,
                ..Segment::default()
            },
            Segment {
                start: 49.5,
                end: 53.0,
                text: "update the customer survey before the end of the month.".into(),
                words: None,
                ..Segment::default()
            },
        ];
        let content = summarize(&transcript);
        assert_eq!(content.action_items.len(), 1, "{:?}", content.action_items);
        let item = &content.action_items[0];
        assert_eq!(item.text, "Update the customer survey before the end of the month.");
        assert_eq!(item.at, 48.0);
        assert_eq!(item.due.as_deref(), Some("end of the month"));
    }

    /// Regression: Whisper wrote "Action item for me. Update the customer survey ...":
    /// the announcement and its task ended up in two sentences.
    #[test]
    fn an_announced_action_item_takes_the_next_sentence() {
        let mut transcript = meeting();
        transcript.segments = vec![Segment {
            start: 45.0,
            end: 50.0,
            text: "Action item for me. Update the customer survey before the end of the month."
                .into(),
            words: None,
            ..Segment::default()
        }];
        let content = summarize(&transcript);
        assert_eq!(content.action_items.len(), 1, "{:?}", content.action_items);
        let item = &content.action_items[0];
        assert_eq!(item.text, "Update the customer survey before the end of the month.");
        assert_eq!((item.at, item.due.as_deref()), (45.0, Some("end of the month")));
    }
}
