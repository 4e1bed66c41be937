//! Renderings of a [`Transcript`] as plain text, SRT, WebVTT and JSON.
//!
//! These are what `minutes transcribe --format` prints and what the API serves as
//! `transcript.{txt,srt,vtt,json}`, so both share one implementation.

use std::fmt::Write as _;
use std::str::FromStr;

use crate::transcript::Transcript;

/// An output format for a transcript.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TranscriptFormat {
    /// One segment per line, no times.
    Txt,
    /// SubRip subtitles.
    Srt,
    /// WebVTT subtitles.
    Vtt,
    /// The transcript model as pretty-printed JSON.
    Json,
    /// Who speaks when, as diarization tools read it (NIST RTTM `SPEAKER` lines).
    Rttm,
}

impl TranscriptFormat {
    /// All formats, in the order they are listed to people.
    pub const ALL: [TranscriptFormat; 5] =
        [Self::Txt, Self::Srt, Self::Vtt, Self::Json, Self::Rttm];

    /// Whether a run keeps this rendering as an artifact of its own. RTTM is for
    /// diarization tools, asked for on the command line; the service keeps the turns in
    /// the transcript's JSON.
    pub fn is_stored(self) -> bool {
        self != Self::Rttm
    }

    /// The file extension, which is also the format's name on the command line.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Txt => "txt",
            Self::Srt => "srt",
            Self::Vtt => "vtt",
            Self::Json => "json",
            Self::Rttm => "rttm",
        }
    }

    /// The HTTP content type of a rendering in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Txt => "text/plain; charset=utf-8",
            Self::Srt => "application/x-subrip; charset=utf-8",
            Self::Vtt => "text/vtt; charset=utf-8",
            Self::Json => "application/json",
            Self::Rttm => "text/plain; charset=utf-8",
        }
    }

    /// Renders `transcript` in this format.
    pub fn render(self, transcript: &Transcript) -> String {
        match self {
            Self::Txt => to_txt(transcript),
            Self::Srt => to_srt(transcript),
            Self::Vtt => to_vtt(transcript),
            Self::Json => to_json(transcript),
            Self::Rttm => to_rttm(transcript, "recording"),
        }
    }
}

/// The name given is not a known transcript format.
#[derive(Debug, thiserror::Error)]
#[error("unknown transcript format {0:?} (expected txt, srt, vtt, json or rttm)")]
pub struct UnknownFormat(String);

impl FromStr for TranscriptFormat {
    type Err = UnknownFormat;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|format| format.extension().eq_ignore_ascii_case(name))
            .ok_or_else(|| UnknownFormat(name.to_string()))
    }
}

/// One line per segment, `Name: text` when the speakers are known.
pub fn to_txt(transcript: &Transcript) -> String {
    let mut out = String::new();
    for segment in transcript.segments.iter().filter(|s| !s.text.is_empty()) {
        if let Some(name) = transcript.speaker_name(segment) {
            let _ = write!(out, "{}: ", one_line(name));
        }
        out.push_str(&segment.text);
        out.push('\n');
    }
    out
}

/// RTTM: one `SPEAKER` line per turn, times in seconds; `file` names the recording.
pub fn to_rttm(transcript: &Transcript, file: &str) -> String {
    let field = |text: &str| {
        let field: String = text.split_whitespace().collect::<Vec<_>>().join("_");
        if field.is_empty() {
            String::from("<NA>")
        } else {
            field
        }
    };
    let file = field(file);
    let mut out = String::new();
    for turn in &transcript.turns {
        let _ = writeln!(
            out,
            "SPEAKER {file} 1 {:.3} {:.3} <NA> <NA> {} <NA> <NA>",
            turn.start,
            (turn.end - turn.start).max(0.0),
            field(&turn.speaker)
        );
    }
    out
}

/// A speaker's name on one line (names come from people: a newline would break a cue).
fn one_line(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// SubRip: numbered cues, `hh:mm:ss,mmm --> hh:mm:ss,mmm`.
pub fn to_srt(transcript: &Transcript) -> String {
    let mut out = String::new();
    let cues = transcript.segments.iter().filter(|s| !s.text.is_empty());
    for (index, segment) in cues.enumerate() {
        let _ = writeln!(
            out,
            "{}\n{} --> {}\n{}\n",
            index + 1,
            timestamp(segment.start, ','),
            timestamp(segment.end, ','),
            cue_text(&spoken(transcript, segment, |name| format!("{name}: ")))
        );
    }
    out
}

/// The segment's text after its speaker, written by `label`, when it has one.
fn spoken(
    transcript: &Transcript,
    segment: &crate::transcript::Segment,
    label: impl Fn(&str) -> String,
) -> String {
    match transcript.speaker_name(segment) {
        Some(name) => format!("{}{}", label(&one_line(name)), segment.text),
        None => segment.text.clone(),
    }
}

/// WebVTT: a `WEBVTT` header, then `hh:mm:ss.mmm --> hh:mm:ss.mmm` cues.
pub fn to_vtt(transcript: &Transcript) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for segment in transcript.segments.iter().filter(|s| !s.text.is_empty()) {
        let _ = writeln!(
            out,
            "{} --> {}\n{}\n",
            timestamp(segment.start, '.'),
            timestamp(segment.end, '.'),
            // A voice span names the speaker; `<`, `>` and `&` cannot appear in it.
            cue_text(&spoken(transcript, segment, |name| {
                format!("<v {}>", name.replace(['<', '>', '&'], ""))
            }))
        );
    }
    out
}

/// The transcript model as pretty-printed JSON.
pub fn to_json(transcript: &Transcript) -> String {
    // Serializing plain structs of strings and numbers cannot fail; NaN times would be
    // written as null by serde_json rather than failing.
    serde_json::to_string_pretty(transcript).unwrap_or_else(|_| String::from("{}")) + "\n"
}

/// A cue must not contain a blank line (it would end the cue) or the `-->` arrow.
fn cue_text(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
        .replace("-->", "->")
}

/// `hh:mm:ss<sep>mmm`, rounding to the nearest millisecond; negative times clamp to zero.
pub fn timestamp(seconds: f64, millis_separator: char) -> String {
    let total_ms =
        if seconds.is_finite() && seconds > 0.0 { (seconds * 1000.0).round() as u64 } else { 0 };
    let (hours, rest) = (total_ms / 3_600_000, total_ms % 3_600_000);
    let (minutes, rest) = (rest / 60_000, rest % 60_000);
    let (secs, millis) = (rest / 1000, rest % 1000);
    format!("{hours:02}:{minutes:02}:{secs:02}{millis_separator}{millis:03}")
}

/// `hh:mm:ss`, the form the minutes cite transcript times in.
pub fn clock(seconds: f64) -> String {
    timestamp(seconds, '.').chars().take(8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcript::{Segment, Speaker, SpeakerTurn, TRANSCRIPT_FORMAT_VERSION};

    fn sample() -> Transcript {
        Transcript {
            version: TRANSCRIPT_FORMAT_VERSION,
            language: "en".into(),
            duration: 4000.0,
            model: "tiny".into(),
            segments: vec![
                Segment {
                    start: 0.0,
                    end: 1.5,
                    text: "Hello.".into(),
                    words: None,
                    ..Segment::default()
                },
                Segment {
                    start: 1.5,
                    end: 1.5,
                    text: String::new(),
                    words: None,
                    ..Segment::default()
                },
                Segment {
                    start: 3661.25,
                    end: 3662.0,
                    text: "a --> b\n\nc".into(),
                    words: None,
                    ..Segment::default()
                },
            ],
            speakers: Vec::new(),
            turns: Vec::new(),
        }
    }

    fn with_speakers() -> Transcript {
        let mut transcript = sample();
        transcript.segments[0].speaker = Some("S1".into());
        transcript.segments[2].speaker = Some("S2".into());
        transcript.speakers = vec![
            Speaker { id: "S1".into(), name: Some("Sarah\nChen".into()), talk_time: 1.5 },
            Speaker { id: "S2".into(), name: None, talk_time: 0.75 },
        ];
        transcript.turns = vec![
            SpeakerTurn { start: 0.0, end: 1.5, speaker: "S1".into() },
            SpeakerTurn { start: 3661.25, end: 3662.0, speaker: "S2".into() },
        ];
        transcript
    }

    #[test]
    fn speakers_are_named_in_every_format() {
        let transcript = with_speakers();
        let txt = to_txt(&transcript);
        assert!(txt.starts_with("Sarah Chen: Hello.\nS2: a --> b"), "{txt}");
        assert!(to_srt(&transcript).contains("\nSarah Chen: Hello.\n"));
        assert!(to_vtt(&transcript).contains("\n<v Sarah Chen>Hello.\n"));
        let rttm = to_rttm(&transcript, "my call");
        assert_eq!(
            rttm.lines().next(),
            Some("SPEAKER my_call 1 0.000 1.500 <NA> <NA> S1 <NA> <NA>")
        );
        assert_eq!(rttm.lines().count(), 2);
        let back: Transcript =
            serde_json::from_str(&to_json(&transcript)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, transcript);
    }

    #[test]
    fn timestamps_carry_hours_and_round_millis() {
        assert_eq!(timestamp(3661.2504, ','), "01:01:01,250");
        assert_eq!(timestamp(-1.0, '.'), "00:00:00.000");
        assert_eq!(timestamp(f64::NAN, '.'), "00:00:00.000");
        assert_eq!(clock(3723.4), "01:02:03");
    }

    #[test]
    fn srt_numbers_cues_and_skips_empty_segments() {
        let srt = to_srt(&sample());
        assert!(srt.starts_with("1\n00:00:00,000 --> 00:00:01,500\nHello.\n\n2\n01:01:01,250"));
        assert!(!srt.contains("a --> b"), "an arrow in the text would break the cue");
        assert!(!srt.contains("\n\nc"), "a blank line in the text would end the cue");
    }

    #[test]
    fn vtt_has_header_and_dot_separator() {
        let vtt = to_vtt(&sample());
        assert!(vtt.starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello.\n"));
    }

    #[test]
    fn json_round_trips() {
        let json = to_json(&sample());
        let back: Transcript = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, sample());
    }

    #[test]
    fn format_names_parse_case_insensitively() {
        assert_eq!("SRT".parse::<TranscriptFormat>().ok(), Some(TranscriptFormat::Srt));
        assert!("doc".parse::<TranscriptFormat>().is_err());
    }
}
