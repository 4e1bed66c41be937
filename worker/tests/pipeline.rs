//! Integration tests of the worker crate: real fixtures through decode, resample and
//! Whisper, and the `minutes` binary as a user runs it. Needs what the README's test
//! command installs (`minutes models install tiny.en base silero-vad onnxruntime`, into
//! `MINUTES_DATA_DIR`), and for the [`llm`], [`mail`] and [`service`] modules the servers
//! that command starts.

// In a test, a failed expectation is the test failing: say what was expected and stop.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use minutes_shared::failure::FailureCode;
use minutes_shared::transcript::{Segment, TRANSCRIPT_FORMAT_VERSION};
use minutes_shared::wer::{word_error_rate, word_errors};
use minutes_shared::Transcript;
use minutes_worker::audio;
use minutes_worker::models::{resolve_model, Locations};
use minutes_worker::stages::decode::{decode_file, DecodeError, DecodeOptions};
use minutes_worker::stages::transcribe::silero::{SileroVad, VadOptions};
use minutes_worker::stages::transcribe::speech::SpeechDetector;
use minutes_worker::stages::transcribe::{
    ModelOptions, Precision, TranscribeOptions, WhisperModel,
};

#[path = "pipeline/batch.rs"]
mod batch;
#[path = "pipeline/compose.rs"]
mod compose;
#[path = "pipeline/decoder_process.rs"]
mod decoder_process;
#[path = "pipeline/generated_client.rs"]
mod generated_client;
#[path = "pipeline/llm.rs"]
mod llm;
#[path = "pipeline/long_jobs.rs"]
mod long_jobs;
#[path = "pipeline/mail.rs"]
mod mail;
#[path = "pipeline/process_resume.rs"]
mod process_resume;
#[path = "pipeline/recognition.rs"]
mod recognition;
#[path = "pipeline/service.rs"]
mod service;
#[path = "pipeline/service_failures.rs"]
mod service_failures;
#[path = "pipeline/service_flows.rs"]
mod service_flows;
#[path = "pipeline/speakers.rs"]
mod speakers;
#[path = "pipeline/versions.rs"]
mod versions;
#[path = "pipeline/web.rs"]
mod web;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixture(name: &str) -> PathBuf {
    root().join("fixtures").join(name)
}

/// The folder of an installed model ("tiny.en", "base").
fn model_dir_of(name: &str) -> PathBuf {
    resolve_model(name, &Locations::from_env())
        .unwrap_or_else(|e| panic!("{e} (the README's test command installs it)"))
}

fn load_model(name: &str) -> WhisperModel {
    WhisperModel::load(&ModelOptions {
        model_dir: model_dir_of(name),
        precision: Precision::Int8,
        threads: 2,
        lanes: 2,
    })
    .unwrap_or_else(|e| panic!("{e} (the README's test command installs the models)"))
}

/// One model for the whole binary: loading it per test would only cost time.
fn model() -> &'static WhisperModel {
    static MODEL: OnceLock<WhisperModel> = OnceLock::new();
    MODEL.get_or_init(|| load_model("tiny.en"))
}

/// Silero VAD on the installed ONNX Runtime, as `minutes` runs by default.
fn detector() -> &'static SpeechDetector {
    static DETECTOR: OnceLock<SpeechDetector> = OnceLock::new();
    DETECTOR.get_or_init(|| {
        let locations = Locations::from_env();
        let vad = SileroVad::load(&locations.onnxruntime(), &locations.silero_vad())
            .unwrap_or_else(|e| panic!("{e}"));
        SpeechDetector::Silero(std::sync::Arc::new(vad), VadOptions::default())
    })
}

fn transcribe_with(model: &WhisperModel, path: &Path, options: &TranscribeOptions) -> Transcript {
    let audio = audio::load(path, DecodeOptions::default(), &mut |_| {})
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    model
        .transcribe(&audio.samples, detector(), options, &mut |_| ControlFlow::Continue(()))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn transcribe(path: &Path, options: &TranscribeOptions) -> Transcript {
    transcribe_with(model(), path, options)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------
// Decoding

/// Every container, codec, sample width, rate and channel layout in fixtures/formats
/// decodes, and to the duration of the clip they were all made from (within 1 %).
#[test]
fn every_format_decodes_to_the_right_duration() {
    let reference =
        audio::load(&fixture("formats/hello_s16_16k.wav"), DecodeOptions::default(), &mut |_| {})
            .expect("reference clip")
            .duration();
    assert!(reference > 2.0, "reference clip is {reference} s");
    let mut checked = 0;
    for entry in std::fs::read_dir(fixture("formats")).expect("fixtures/formats") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "txt") {
            continue;
        }
        let loaded = audio::load(&path, DecodeOptions::default(), &mut |_| {})
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let error = (loaded.duration() - reference).abs() / reference;
        assert!(
            error <= 0.01,
            "{}: {:.3} s against {reference:.3} s ({:.2} %)",
            path.display(),
            loaded.duration(),
            error * 100.0
        );
        let peak = loaded.samples.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        assert!(peak > 0.1, "{}: decoded to near silence (peak {peak})", path.display());
        checked += 1;
    }
    assert!(checked >= 17, "only {checked} format fixtures found");
}

#[test]
fn multichannel_audio_is_mixed_to_mono() {
    let (info, samples) =
        decode_file(&fixture("formats/hello_s16_22k_6ch.wav"), DecodeOptions::default())
            .expect("6-channel wav");
    assert_eq!(info.channels, 6);
    assert_eq!(info.sample_rate, 22_050);
    let expected = info.declared_duration.expect("wav declares its length") * 22_050.0;
    assert!((samples.len() as f64 - expected).abs() <= 1.0);
}

#[test]
fn each_bad_input_gives_its_typed_error() {
    let decode = |name: &str| decode_file(&fixture(name), DecodeOptions::default()).map(|_| ());
    assert!(matches!(decode("bad/empty.mp3"), Err(DecodeError::Empty)));
    assert!(matches!(decode("bad/notes.mp3"), Err(DecodeError::NotMedia)));
    assert!(matches!(decode("bad/video_only.mp4"), Err(DecodeError::NoAudioTrack)));
    assert!(matches!(decode("bad/ac3_audio.mka"), Err(DecodeError::UnsupportedCodec(_))));
    match decode("bad/truncated.flac") {
        Err(DecodeError::Truncated { decoded, declared }) => {
            assert!(decoded > 1.0 && decoded < declared, "{decoded} of {declared}");
        }
        other => panic!("truncated.flac gave {other:?}"),
    }
    let short = DecodeOptions { max_duration: Duration::from_secs(1), ..DecodeOptions::default() };
    assert!(matches!(
        decode_file(&fixture("formats/hello_44k.flac"), short),
        Err(DecodeError::TooLong { .. })
    ));
    // Without a declared length (MP3), the limit is enforced while decoding.
    assert!(matches!(
        decode_file(&fixture("formats/hello_11k.mp3"), short),
        Err(DecodeError::TooLong { .. })
    ));
    assert!(matches!(decode("does-not-exist.wav"), Err(DecodeError::Io(_))));
}

// ---------------------------------------------------------------------------------------
// Transcription

#[test]
fn the_scripted_meeting_transcribes_within_15_percent_wer() {
    let transcript = transcribe(&fixture("meeting.flac"), &TranscribeOptions::default());
    let reference = read(&fixture("meeting.txt"));
    let wer = word_error_rate(&reference, &transcript.text());
    assert!(wer <= 0.15, "WER {:.1} %: {}", wer * 100.0, transcript.text());
    assert_eq!(transcript.language, "en");
    let mut previous_end = 0.0;
    for segment in &transcript.segments {
        assert!(segment.start >= previous_end - 1e-6, "segments overlap: {segment:?}");
        assert!(segment.end >= segment.start && segment.end <= transcript.duration + 1e-6);
        previous_end = segment.end;
    }
}

/// `ct2rs`'s own `generate` cuts audio every 30 s and loses the words spoken at the cut.
/// The boundary fixture speaks one sentence from 26 s to 32 s: all of it must survive,
/// once (tiny.en may still mishear a word, so one error is allowed, no more).
#[test]
fn a_sentence_across_the_30_second_mark_keeps_every_word() {
    let transcript = transcribe(&fixture("boundary.flac"), &TranscribeOptions::default());
    let crossing = read(&fixture("boundary.crossing.txt"));
    let last: String = transcript
        .segments
        .iter()
        .filter(|s| s.end > 27.0)
        .map(|s| s.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let errors = word_errors(&crossing, &last);
    assert!(
        errors.substitutions + errors.deletions + errors.insertions <= 1,
        "{errors:?}: {last:?}"
    );
    for word in ["marketing", "department", "moves"] {
        assert!(last.to_lowercase().contains(word), "{word:?} lost at the cut: {last:?}");
    }
    let whole = word_errors(&read(&fixture("boundary.txt")), &transcript.text());
    assert!(whole.insertions <= 1, "words repeated: {whole:?}");
    assert!(whole.rate() <= 0.15, "{whole:?}: {}", transcript.text());
}

#[test]
fn silence_and_noise_give_no_text() {
    for name in ["silence.wav", "noise.flac"] {
        let transcript = transcribe(&fixture(name), &TranscribeOptions::default());
        assert!(transcript.segments.is_empty(), "{name} gave {:?}", transcript.text());
        assert!(transcript.duration > 9.0);
    }
}

#[test]
fn word_timestamps_lie_inside_their_segments_and_increase() {
    let options = TranscribeOptions { word_timestamps: true, ..TranscribeOptions::default() };
    let transcript = transcribe(&fixture("formats/hello_s16_16k.wav"), &options);
    let words: Vec<_> =
        transcript.segments.iter().flat_map(|s| s.words.clone().unwrap_or_default()).collect();
    assert!(words.len() >= 8, "{words:?}");
    let mut previous = 0.0;
    for (segment, word) in
        transcript.segments.iter().flat_map(|s| s.words.iter().flatten().map(move |w| (s, w)))
    {
        assert!(
            word.start >= segment.start - 1e-6 && word.end <= segment.end + 1e-6,
            "{word:?} outside {segment:?}"
        );
        assert!(word.start >= previous - 1e-6, "{word:?} starts before the previous word");
        assert!(word.probability > 0.0 && word.probability <= 1.0);
        previous = word.start;
    }
    let joined: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
    assert!(word_error_rate(&read(&fixture("formats/hello.txt")), &joined.join(" ")) <= 0.3);
}

#[test]
fn progress_rises_to_one_and_cancelling_stops_the_work() {
    let audio = audio::load(&fixture("meeting.flac"), DecodeOptions::default(), &mut |_| {})
        .expect("meeting");
    let options = TranscribeOptions { batch_size: 1, ..TranscribeOptions::default() };
    let mut seen = Vec::new();
    model()
        .transcribe(&audio.samples, detector(), &options, &mut |f| {
            seen.push(f);
            ControlFlow::Continue(())
        })
        .expect("transcribe");
    assert!(seen.len() >= 3, "{seen:?}");
    assert!(seen.windows(2).all(|w| w[1] >= w[0]), "{seen:?}");
    assert_eq!(seen.last().copied(), Some(1.0));

    let mut calls = 0;
    let outcome = model().transcribe(&audio.samples, detector(), &options, &mut |_| {
        calls += 1;
        ControlFlow::Break(())
    });
    assert!(matches!(outcome, Err(minutes_worker::stages::transcribe::TranscribeError::Cancelled)));
    assert_eq!(calls, 1, "work went on after the cancel");
}

#[test]
fn an_english_only_model_refuses_another_language() {
    let options = TranscribeOptions { language: Some("de".into()), ..TranscribeOptions::default() };
    let audio = vec![0.0f32; 16_000];
    let outcome =
        model().transcribe(&audio, detector(), &options, &mut |_| ControlFlow::Continue(()));
    assert!(outcome.is_err());
}

// ---------------------------------------------------------------------------------------
// The command line

fn minutes(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_minutes"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run minutes")
}

fn parse_time(stamp: &str) -> f64 {
    let stamp = stamp.trim().replace(',', ".");
    let parts: Vec<f64> = stamp.split(':').map(|p| p.parse().unwrap_or(f64::NAN)).collect();
    assert_eq!(parts.len(), 3, "bad timestamp {stamp:?}");
    parts[0] * 3600.0 + parts[1] * 60.0 + parts[2]
}

/// Checks cue times: each `a --> b` has a <= b, starts never go back, all within `duration`.
fn assert_cues_valid(text: &str, duration: f64) -> usize {
    let mut previous_start = 0.0;
    let mut cues = 0;
    for line in text.lines().filter(|l| l.contains("-->")) {
        let (start, end) = line.split_once("-->").expect("arrow");
        let (start, end) = (parse_time(start), parse_time(end));
        assert!(start <= end, "{line}");
        assert!(start >= previous_start, "times go back at {line}");
        assert!(end <= duration + 0.01, "{line} is past the end ({duration} s)");
        previous_start = start;
        cues += 1;
    }
    cues
}

#[test]
fn cli_output_formats_parse_and_stay_within_the_recording() {
    let file = fixture("meeting.flac");
    let file = file.to_str().expect("utf-8 path");
    let json = minutes(&["transcribe", file, "--format", "json"]);
    assert!(json.status.success(), "{}", String::from_utf8_lossy(&json.stderr));
    let transcript: Transcript = serde_json::from_slice(&json.stdout).expect("json output parses");
    assert!(transcript.duration > 60.0);

    let srt = minutes(&["transcribe", file, "--format", "srt"]);
    let srt = String::from_utf8(srt.stdout).expect("utf-8 srt");
    assert!(srt.starts_with("1\n"), "{srt}");
    assert_eq!(assert_cues_valid(&srt, transcript.duration), transcript.segments.len());

    let dir = tempdir();
    let out = dir.join("meeting.vtt");
    let vtt = minutes(&["transcribe", file, "--out", out.to_str().expect("utf-8")]);
    assert!(vtt.status.success());
    assert!(vtt.stdout.is_empty(), "--out must keep stdout empty");
    assert!(vtt.stderr.is_empty(), "no progress bar when stderr is not a terminal");
    let vtt = read(&out);
    assert!(vtt.starts_with("WEBVTT\n\n"), "format taken from the extension: {vtt}");
    assert!(assert_cues_valid(&vtt, transcript.duration) >= 5);

    let txt = minutes(&["transcribe", file]);
    let txt = String::from_utf8(txt.stdout).expect("utf-8");
    assert_eq!(txt.lines().count(), transcript.segments.len());
}

#[test]
fn cli_bad_input_is_one_clear_line_and_a_failure_exit() {
    for (name, reason) in [
        ("bad/notes.mp3", "not a recognised audio or video file"),
        ("bad/empty.mp3", "empty"),
        ("bad/truncated.flac", "truncated"),
        ("bad/video_only.mp4", "no audio track"),
        ("missing.wav", "no such file"),
    ] {
        let path = fixture(name);
        let output = minutes(&["transcribe", path.to_str().expect("utf-8")]);
        assert!(!output.status.success(), "{name} succeeded");
        assert_eq!(output.status.code(), Some(1), "{name}: exit code");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{name}: {stderr}");
        assert!(stderr.contains(name) && stderr.contains(reason), "{name}: {stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");
        assert!(output.stdout.is_empty());
    }
    let output = minutes(&["transcribe", "x.wav", "--model", "/nonexistent"]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("no such file"));
    let path = fixture("formats/hello_44k.flac");
    let output = minutes(&["transcribe", path.to_str().expect("utf-8"), "--model", "/nonexistent"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no usable Whisper model in /nonexistent"), "{stderr}");
}

fn tempdir() -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("minutes-test-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A transcript with one segment per line, `spacing` seconds apart.
fn scripted_transcript(lines: &[impl AsRef<str>], spacing: f64) -> Transcript {
    Transcript {
        version: TRANSCRIPT_FORMAT_VERSION,
        language: "en".into(),
        duration: lines.len() as f64 * spacing,
        model: "script".into(),
        segments: lines
            .iter()
            .enumerate()
            .map(|(i, line)| Segment {
                start: i as f64 * spacing,
                end: i as f64 * spacing + spacing * 0.9,
                text: line.as_ref().to_string(),
                words: None,
                ..Segment::default()
            })
            .collect(),
        speakers: Vec::new(),
        turns: Vec::new(),
    }
}

#[path = "pipeline/pdf.rs"]
mod pdf;

/// `minutes process` writes every output per recording, reports a bad file in one line and
/// carries on with the next, and fails overall when any file failed.
#[test]
fn cli_process_writes_minutes_and_survives_a_bad_file() {
    let out = tempdir();
    let good = fixture("meeting.flac");
    let bad = fixture("bad/notes.mp3");
    let second = fixture("formats/hello_browser.webm");
    let output = minutes(&[
        "process",
        good.to_str().expect("utf-8"),
        bad.to_str().expect("utf-8"),
        second.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
        "--title",
        "Planning",
        "--date",
        "2026-11-22",
        "--email",
        "team@example.com",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("notes.mp3: not a recognised audio or video file"), "{stderr}");
    assert!(stderr.contains("1 of 3 recordings failed"), "{stderr}");
    for stem in ["meeting", "hello_browser"] {
        for suffix in [
            ".pdf",
            ".minutes.json",
            ".transcript.txt",
            ".transcript.srt",
            ".transcript.vtt",
            ".transcript.json",
        ] {
            let path = out.join(format!("{stem}{suffix}"));
            assert!(path.is_file(), "{} missing; stderr: {stderr}", path.display());
        }
        assert!(stderr.contains(&format!("{stem}.pdf (decode")), "{stderr}");
    }
    assert!(!out.join("notes.pdf").exists());
    let written: minutes_shared::Minutes =
        serde_json::from_slice(&std::fs::read(out.join("meeting.minutes.json")).expect("read"))
            .expect("minutes json parses");
    assert_eq!(written.title, "Planning");
    assert_eq!(written.date, "2026-11-22");
    assert!(!written.decisions.is_empty() && !written.action_items.is_empty());
    let pdf = std::fs::read(out.join("meeting.pdf")).expect("pdf");
    assert!(pdf.starts_with(b"%PDF-"));
    let eml = std::fs::read_to_string(out.join("meeting.eml")).expect("the .eml is written");
    let head = eml.split("\r\n\r\n").next().expect("headers");
    assert!(head.contains("Subject: Minutes: Planning"), "{head}");
    assert!(head.contains("To: team@example.com"), "{head}");
    assert!(eml.contains("filename=\"meeting.pdf\""), "the PDF is attached");
    assert!(stderr.contains("notify"), "{stderr}");
    // Bug fixed: the reason was searched in the raw quoted-printable text, where a long
    // checkout path moves a soft line break into the phrase; read the decoded body instead.
    let failure_raw = std::fs::read(out.join("notes.failed.eml")).expect("failure email");
    let failure = mail_parser::MessageParser::default()
        .parse(&failure_raw)
        .expect("the failure email parses");
    assert_eq!(failure.subject(), Some("Minutes failed: Planning"));
    let failure_text = failure.body_text(0).expect("a plain-text part");
    assert!(
        failure_text.contains("notes.mp3: not a recognised audio or video file"),
        "{failure_text}"
    );

    let wrong_date = minutes(&["process", good.to_str().expect("utf-8"), "--date", "22/11/2026"]);
    assert_eq!(wrong_date.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&wrong_date.stderr).contains("expected YYYY-MM-DD"));
}
