//! The render stage against poppler: PDFs read back as text, fonts and page images.

use super::*;
use minutes_shared::minutes::{Minutes, SummarizerInfo};
use minutes_worker::stages::render::{render_pdf, Paper, RenderOptions};
use minutes_worker::stages::summarize::{assemble, extractive, MeetingInfo};

/// Where PDFs and page images are kept for a person to look at (ignored by git).
fn artifacts() -> PathBuf {
    let dir = root().join("artifacts");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

fn minutes_of(transcript: &Transcript, title: &str) -> Minutes {
    let info = MeetingInfo {
        title: title.into(),
        date: "2026-11-22".into(),
        source_filename: "meeting.flac".into(),
    };
    let summarizer = SummarizerInfo::extractive();
    assemble(&info, transcript, extractive::summarize(transcript), summarizer)
}

fn write_pdf(name: &str, minutes: &Minutes) -> PathBuf {
    let options = RenderOptions { paper: Paper::A4, created_unix: 1_795_000_000 };
    let bytes = render_pdf(minutes, &options).expect("render");
    assert!(bytes.starts_with(b"%PDF-"));
    let path = artifacts().join(name);
    std::fs::write(&path, bytes).expect("write pdf");
    path
}

pub(super) fn tool(program: &str, args: &[&str]) -> String {
    let output = Command::new(program).args(args).output().unwrap_or_else(|e| {
        panic!("{program}: {e} (the README's test command installs poppler-utils)")
    });
    assert!(output.status.success(), "{program}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The meeting fixture, transcribed by Whisper and summarized offline, renders to a
/// PDF whose text has every section, in order, and the transcript in order.
#[test]
fn minutes_of_the_meeting_render_with_every_section_in_order() {
    let transcript = transcribe(&fixture("meeting.flac"), &TranscribeOptions::default());
    let minutes = minutes_of(&transcript, "Weekly planning: mobile app");
    let path = write_pdf("meeting.pdf", &minutes);
    let path = path.to_str().expect("utf-8");
    let text = tool("pdftotext", &["-layout", path, "-"]);
    let mut position = 0;
    for needle in [
        "Weekly planning: mobile app",
        "2026-11-22",
        "Summary",
        "Key points",
        "Decisions",
        "Action items",
        "Owner",
        "Due",
        "Open questions",
        "Transcript",
        "[00:00:",
    ] {
        let found = text[position..]
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing or out of order in:\n{text}"));
        position += found + needle.len();
    }
    // Every transcript segment appears, in order (pdftotext may wrap long lines).
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let appendix = &flat[flat.rfind("Transcript").expect("appendix")..];
    let mut position = 0;
    for segment in &minutes.transcript {
        let start: String = segment.text.split_whitespace().take(4).collect::<Vec<_>>().join(" ");
        let found = appendix[position..]
            .find(&start)
            .unwrap_or_else(|| panic!("segment {start:?} missing or out of order"));
        position += found;
    }
    assert!(text.contains("page 1 of"), "footer missing");
    let info = tool("pdfinfo", &[path]);
    assert!(info.contains("Title:") && info.contains("Weekly planning: mobile app"), "{info}");
    assert!(info.contains("CreationDate:") && info.contains("2026"), "{info}");
    // A person can look at the pages.
    let prefix = artifacts().join("meeting-page");
    tool(
        "pdftoppm",
        &["-png", "-r", "60", "-f", "1", "-l", "2", path, prefix.to_str().expect("utf-8")],
    );
}

#[test]
fn the_font_is_embedded_as_a_subset() {
    let lines = vec!["Short meeting. We decided to ship on Friday.".to_string()];
    let path = write_pdf("subset.pdf", &minutes_of(&scripted_transcript(&lines, 5.0), "Subset"));
    let fonts = tool("pdffonts", &[path.to_str().expect("utf-8")]);
    let rows: Vec<&str> = fonts.lines().skip(2).collect();
    assert!(!rows.is_empty(), "{fonts}");
    for row in rows {
        assert!(row.contains("DejaVu"), "{fonts}");
        // pdffonts columns: name type encoding emb sub uni
        let flags: Vec<&str> = row.split_whitespace().rev().take(4).collect();
        assert_eq!(flags[3], "yes", "not embedded: {row}");
        assert_eq!(flags[2], "yes", "not a subset: {row}");
    }
    let size = std::fs::metadata(&path).expect("pdf").len();
    assert!(size < 300_000, "a subset font keeps the PDF small, got {size} bytes");
}

#[test]
fn accented_latin_greek_and_cyrillic_survive_and_missing_glyphs_are_visible() {
    let lines = vec![
        "Zoë and François décidèrent: ça marche.".to_string(),
        "Η ομάδα συμφώνησε στο σχέδιο.".to_string(),
        "Команда согласилась с планом.".to_string(),
        "会議は金曜日です。".to_string(),
    ];
    let minutes = minutes_of(&scripted_transcript(&lines, 4.0), "Ünïcödé — Ωμέγα — Привет");
    let path = write_pdf("scripts.pdf", &minutes);
    let text = tool("pdftotext", &[path.to_str().expect("utf-8"), "-"]);
    for expected in [
        "Zoë and François décidèrent",
        "Η ομάδα συμφώνησε",
        "Команда согласилась",
        "Ünïcödé — Ωμέγα — Привет",
    ] {
        assert!(text.contains(expected), "{expected:?} lost:\n{text}");
    }
    assert!(text.contains('\u{FFFD}'), "a glyph the font lacks must show as a replacement");
}

#[test]
fn a_three_hour_transcript_renders_on_many_pages() {
    let sentence = "We reviewed the numbers for the quarter and agreed to revisit the \
                    hiring plan when the budget is final.";
    let lines: Vec<String> = (0..2160).map(|i| format!("Item {i}. {sentence}")).collect();
    let minutes = minutes_of(&scripted_transcript(&lines, 5.0), "Three hours");
    let path = write_pdf("three-hours.pdf", &minutes);
    let info = tool("pdfinfo", &[path.to_str().expect("utf-8")]);
    let pages: usize = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("page count");
    assert!(pages > 50, "{pages} pages");
    let last = tool("pdftotext", &["-f", &pages.to_string(), path.to_str().expect("utf-8"), "-"]);
    assert!(last.contains(&format!("page {pages} of {pages}")), "{last}");
    assert!(last.contains("Item 2159."), "the last segment is on the last page");
}

/// Lines the model was unsure of are printed in grey with `(?)`, under a legend that says
/// what it means, and the minutes' quality note is on the first page.
#[test]
fn unsure_lines_are_marked_and_the_quality_note_is_printed() {
    let mut transcript = scripted_transcript(
        &["We agreed to ship in March.", "Something the model barely heard.", "Thanks all."],
        4.0,
    );
    for (segment, logprob) in transcript.segments.iter_mut().zip([-0.1f32, -1.3, -0.2]) {
        segment.avg_logprob = Some(logprob);
        segment.language = "en".into();
    }
    transcript.model = "whisper-tiny.en".into();
    let minutes = minutes_of(&transcript, "Unsure lines");
    let quality = minutes.quality.clone().expect("the minutes carry a quality note");
    assert!((quality.low_confidence_share - 1.0 / 3.0).abs() < 1e-9, "{quality:?}");
    let path = write_pdf("unsure-lines.pdf", &minutes);
    let text = tool("pdftotext", &["-layout", path.to_str().unwrap(), "-"]);
    assert!(text.contains("Something the model barely heard. (?)"), "{text}");
    assert!(!text.contains("Thanks all. (?)"), "{text}");
    assert!(text.contains("unsure of: check their words"), "{text}");
    assert!(text.contains("model whisper-tiny.en; English 100 %"), "{text}");
    assert!(text.contains("33 % of lines marked unsure"), "{text}");
}
