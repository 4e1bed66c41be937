//! Gives a transcript the speakers diarization found: each word the speaker who holds most
//! of it, each segment split where its words change speaker, each segment the speaker who
//! holds most of it, and the speakers' list with their talk time.

use minutes_shared::transcript::{Segment, Speaker, SpeakerTurn, Transcript, Word};

use super::{Diarization, Turn};

/// Seconds under which a run of words is not split off as a turn of its own.
const MIN_RUN: f64 = 0.6;
/// How far (seconds) a word or segment outside every turn looks for the nearest one.
const NEAREST_WITHIN: f64 = 1.0;

/// The label of speaker `index`: "S1" for the first.
pub fn label(index: usize) -> String {
    format!("S{}", index + 1)
}

/// The speaker who holds most of `start..end`, or the nearest within [`NEAREST_WITHIN`].
fn speaker_over(turns: &[Turn], speakers: usize, start: f64, end: f64) -> Option<usize> {
    let mut held = vec![0f64; speakers];
    for turn in turns {
        held[turn.speaker] += (turn.end.min(end) - turn.start.max(start)).max(0.0);
    }
    let best = held.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1));
    if let Some((speaker, &time)) = best {
        if time > 0.0 {
            return Some(speaker);
        }
    }
    turns
        .iter()
        .map(|turn| {
            let gap = (turn.start - end).max(start - turn.end).max(0.0);
            (turn.speaker, gap)
        })
        .filter(|&(_, gap)| gap <= NEAREST_WITHIN)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(speaker, _)| speaker)
}

/// Splits `segment` where its words change speaker (the words already carry theirs).
fn split_at_speaker_changes(segment: Segment) -> Vec<Segment> {
    let Some(words) = segment.words.as_ref().filter(|w| !w.is_empty()) else {
        return vec![segment];
    };
    let mut runs: Vec<Vec<Word>> = Vec::new();
    for word in words {
        match runs.last_mut() {
            Some(run) if run.last().is_some_and(|w| w.speaker == word.speaker) => {
                run.push(word.clone());
            }
            _ => runs.push(vec![word.clone()]),
        }
    }
    // A run too short to be a turn of its own (one word, or under MIN_RUN seconds) is a
    // word whose time fell on the wrong side of a turn boundary: it joins the run before
    // it (or after it, at the start).
    let short = |run: &[Word]| {
        let span = run.last().map_or(0.0, |w| w.end) - run.first().map_or(0.0, |w| w.start);
        run.len() < 2 || span < MIN_RUN
    };
    let mut merged: Vec<Vec<Word>> = Vec::new();
    for mut run in runs {
        match merged.last_mut() {
            Some(previous) if short(&run) => previous.append(&mut run),
            _ => merged.push(run),
        }
    }
    if merged.len() > 1 && short(&merged[0]) {
        let mut first = merged.remove(0);
        first.append(&mut merged[0]);
        merged[0] = first;
    }
    let runs = merged;
    if runs.len() < 2 {
        return vec![segment];
    }
    let count = runs.len();
    runs.into_iter()
        .enumerate()
        .map(|(index, run)| {
            let start = if index == 0 { segment.start } else { run[0].start };
            let end = if index + 1 == count {
                segment.end
            } else {
                run.last().map_or(segment.end, |w| w.end)
            };
            Segment {
                start,
                end: end.max(start),
                text: run.iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" "),
                words: Some(run),
                ..segment.clone()
            }
        })
        .collect()
}

/// Removes the word timings of every segment (after they served to split the lines, when
/// the user did not ask for them).
pub fn drop_words(transcript: &mut Transcript) {
    for segment in &mut transcript.segments {
        segment.words = None;
    }
}

/// Gives `transcript` the speakers of `diarization`.
pub fn attach(transcript: &mut Transcript, diarization: &Diarization) {
    let (turns, speakers) = (&diarization.turns, diarization.speakers);
    let mut talk = vec![0f64; speakers];
    for turn in turns {
        talk[turn.speaker] += turn.end - turn.start;
    }
    transcript.speakers = talk
        .iter()
        .enumerate()
        .map(|(index, &talk_time)| Speaker { id: label(index), name: None, talk_time })
        .collect();
    transcript.turns = turns
        .iter()
        .map(|turn| SpeakerTurn { start: turn.start, end: turn.end, speaker: label(turn.speaker) })
        .collect();
    let segments = std::mem::take(&mut transcript.segments);
    for mut segment in segments {
        if let Some(words) = segment.words.as_mut() {
            for word in words.iter_mut() {
                word.speaker = speaker_over(turns, speakers, word.start, word.end).map(label);
            }
        }
        for mut part in split_at_speaker_changes(segment) {
            part.speaker = speaker_over(turns, speakers, part.start, part.end).map(label);
            transcript.segments.push(part);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(start: f64, end: f64, text: &str) -> Word {
        Word { start, end, text: text.into(), probability: 0.9, speaker: None }
    }

    #[test]
    fn a_segment_whose_words_change_speaker_is_split_there() {
        let diarization = Diarization {
            turns: vec![
                Turn { start: 0.0, end: 2.0, speaker: 0 },
                Turn { start: 2.1, end: 4.0, speaker: 1 },
            ],
            speakers: 2,
        };
        let mut transcript = Transcript {
            version: 3,
            language: "en".into(),
            duration: 4.0,
            model: "tiny".into(),
            segments: vec![Segment {
                start: 0.0,
                end: 4.0,
                text: "Are you there? Yes I am.".into(),
                words: Some(vec![
                    word(0.0, 0.5, "Are"),
                    word(0.5, 1.0, "you"),
                    word(1.0, 1.9, "there?"),
                    word(2.2, 2.6, "Yes"),
                    word(2.6, 3.0, "I"),
                    word(3.0, 3.5, "am."),
                ]),
                ..Segment::default()
            }],
            speakers: Vec::new(),
            turns: Vec::new(),
        };
        attach(&mut transcript, &diarization);
        let lines: Vec<(Option<&str>, &str)> =
            transcript.segments.iter().map(|s| (s.speaker.as_deref(), s.text.as_str())).collect();
        assert_eq!(lines, [(Some("S1"), "Are you there?"), (Some("S2"), "Yes I am.")]);
        assert_eq!(transcript.speakers.len(), 2);
        assert!((transcript.speakers[0].talk_time - 2.0).abs() < 1e-9);
        assert_eq!(transcript.turns.len(), 2);
    }

    #[test]
    fn one_word_over_a_turn_boundary_is_not_split_off() {
        let diarization = Diarization {
            turns: vec![
                Turn { start: 0.0, end: 1.0, speaker: 0 },
                Turn { start: 1.0, end: 3.0, speaker: 1 },
            ],
            speakers: 2,
        };
        let mut transcript = Transcript {
            version: 3,
            language: "en".into(),
            duration: 3.0,
            model: "tiny".into(),
            segments: vec![Segment {
                start: 0.0,
                end: 1.2,
                text: "Neither did I.".into(),
                words: Some(vec![
                    word(0.0, 0.4, "Neither"),
                    word(0.4, 0.8, "did"),
                    word(1.0, 1.2, "I."),
                ]),
                ..Segment::default()
            }],
            speakers: Vec::new(),
            turns: Vec::new(),
        };
        attach(&mut transcript, &diarization);
        assert_eq!(transcript.segments.len(), 1, "{:?}", transcript.segments);
        assert_eq!(transcript.segments[0].speaker.as_deref(), Some("S1"));
        drop_words(&mut transcript);
        assert!(transcript.segments[0].words.is_none());
    }

    #[test]
    fn no_turns_leave_the_segments_without_speakers() {
        let mut transcript = Transcript {
            version: 3,
            language: "en".into(),
            duration: 4.0,
            model: "tiny".into(),
            segments: vec![Segment {
                start: 0.0,
                end: 1.0,
                text: "Hm.".into(),
                ..Segment::default()
            }],
            speakers: Vec::new(),
            turns: Vec::new(),
        };
        attach(&mut transcript, &Diarization::default());
        assert_eq!(transcript.segments[0].speaker, None);
        assert!(transcript.speakers.is_empty());
    }
}
