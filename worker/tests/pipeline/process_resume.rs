//! `minutes process` runs the one pipeline over a folder of artifacts per recording
//! (`OUT/.minutes/`): killed part-way, the next run resumes at the first missing artifact;
//! changed inputs redo only what they change; `--fresh` starts over.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{fixture, minutes, tempdir};

/// The artifact folder of the one recording processed into `out`, once its transcript is
/// stored.
fn folder_with_transcript(out: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(out.join(".minutes")).ok()?;
    entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|dir| dir.join("transcript.json").is_file())
}

/// The line `minutes process` prints for a finished recording.
fn finished_line(stderr: &str) -> String {
    stderr.lines().find(|line| line.contains(": minutes in ")).unwrap_or_default().to_string()
}

/// Issue 14: `minutes process` killed (SIGKILL) while the summarizer is waiting for an
/// endpoint that never answers has its transcript stored; the next run (extractive)
/// resumes from it without decoding or transcribing again, a third run with the same
/// settings redoes nothing, and `--fresh` does everything again.
#[test]
fn a_killed_minutes_process_resumes_at_the_first_missing_artifact() {
    let out = tempdir();
    let recording = fixture("meeting.flac");
    let (recording, out_arg) = (recording.to_str().expect("utf-8"), out.to_str().expect("utf-8"));
    // Accepts connections and never answers: the summarizer waits until it is killed.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/v1", silent.local_addr().expect("address"));
    let common =
        ["process", recording, "--out", out_arg, "--title", "Planning", "--date", "2026-11-22"];
    let mut first = Command::new(env!("CARGO_BIN_EXE_minutes"))
        .args(common)
        .args(["--summarizer", "openai", "--llm-url", &url, "--llm-timeout-secs", "3600"])
        .stderr(Stdio::null())
        .spawn()
        .expect("start minutes process");
    let started = Instant::now();
    let folder = loop {
        if let Some(folder) = folder_with_transcript(&out) {
            break folder;
        }
        assert!(first.try_wait().expect("poll").is_none(), "the first run ended by itself");
        assert!(started.elapsed() < Duration::from_secs(600), "no transcript after 600 s");
        std::thread::sleep(Duration::from_millis(20));
    };
    first.kill().expect("SIGKILL");
    first.wait().expect("reap");
    assert!(!folder.join("minutes.json").exists(), "killed while the summarizer waited");
    assert!(!out.join("meeting.pdf").exists());
    let transcript = std::fs::read(folder.join("transcript.json")).expect("stored transcript");
    let stored_at = std::fs::metadata(folder.join("transcript.json")).and_then(|m| m.modified());

    let second = minutes(&common);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{stderr}");
    let line = finished_line(&stderr);
    assert!(line.contains("kept from the last run: transcribe, summarize "), "{line}");
    assert!(!line.contains("decode") && !line.contains("transcribe "), "nothing decoded: {line}");
    assert_eq!(std::fs::read(folder.join("transcript.json")).expect("read"), transcript);
    let still = std::fs::metadata(folder.join("transcript.json")).and_then(|m| m.modified());
    assert_eq!(still.ok(), stored_at.ok(), "the stored transcript was not rewritten");
    for suffix in [".pdf", ".minutes.json", ".transcript.txt", ".transcript.json"] {
        assert!(out.join(format!("meeting{suffix}")).is_file(), "meeting{suffix} missing");
    }
    assert_eq!(
        std::fs::read(out.join("meeting.transcript.json")).expect("copied transcript"),
        transcript
    );
    let written: minutes_shared::Minutes =
        serde_json::from_slice(&std::fs::read(out.join("meeting.minutes.json")).expect("read"))
            .expect("minutes json parses");
    assert_eq!(written.summarizer.provider, "extractive");

    let third = minutes(&common);
    let line = finished_line(&String::from_utf8_lossy(&third.stderr));
    assert!(third.status.success());
    assert!(line.contains("kept from the last run: transcribe, summarize, render)"), "{line}");

    let fresh = minutes(&[&common[..], &["--fresh"]].concat());
    let line = finished_line(&String::from_utf8_lossy(&fresh.stderr));
    assert!(fresh.status.success());
    assert!(line.contains("(decode ") && !line.contains("kept"), "{line}");
    drop(silent);
}
