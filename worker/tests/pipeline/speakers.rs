//! The diarize stage on real and made recordings: the real two-person call, one voice,
//! silence, a missing model, and `minutes process` giving a PDF with its participants.

use std::path::PathBuf;
use std::sync::OnceLock;

use minutes_worker::audio;
use minutes_worker::models::Locations;
use minutes_worker::stages::decode::DecodeOptions;
use minutes_worker::stages::diarize::{ClusterOptions, Diarization, Diarizer};

use super::{fixture, minutes, pdf, read, tempdir};

fn diarizer() -> &'static Diarizer {
    static DIARIZER: OnceLock<Diarizer> = OnceLock::new();
    DIARIZER.get_or_init(|| {
        let locations = Locations::from_env();
        Diarizer::load(
            &locations.onnxruntime(),
            &locations.segmentation(),
            &locations.voice_encoder(),
        )
        .unwrap_or_else(|e| panic!("{e} (the README's test command installs the models)"))
    })
}

fn diarize(path: &std::path::Path) -> Diarization {
    let audio = audio::load(path, DecodeOptions::default(), &mut |_| {})
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    diarizer()
        .diarize(&audio.samples, &ClusterOptions::default(), &mut |_| true)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The real recordings beside the project (`MINUTES_REAL_DATA`), when they are there.
fn real(name: &str) -> Option<PathBuf> {
    let folder = std::env::var_os("MINUTES_REAL_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| super::root().join("../shared/data/real"));
    let path = folder.join(name);
    if !path.is_file() {
        eprintln!("{} is not there: this check needs the real recordings", path.display());
        return None;
    }
    Some(path)
}

/// Turns from an RTTM file: (start, end, speaker).
fn rttm(text: &str) -> Vec<(f64, f64, String)> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let start: f64 = fields.get(3)?.parse().ok()?;
            let length: f64 = fields.get(4)?.parse().ok()?;
            Some((start, start + length, (*fields.get(7)?).to_string()))
        })
        .collect()
}

/// Diarization error rate, no collar, overlap scored, with the best one-to-one mapping of
/// speakers (every mapping tried: the clips have few speakers), on 10 ms frames; the same
/// definition as pyannote.metrics, which scripts/eval-diarization uses.
fn der(reference: &[(f64, f64, String)], hypothesis: &[(f64, f64, String)]) -> f64 {
    let labels = |turns: &[(f64, f64, String)]| {
        let mut names: Vec<String> = turns.iter().map(|t| t.2.clone()).collect();
        names.sort();
        names.dedup();
        names
    };
    let (ref_names, hyp_names) = (labels(reference), labels(hypothesis));
    let end = reference.iter().chain(hypothesis).map(|t| t.1).fold(0.0, f64::max);
    let frames = (end * 100.0).ceil() as usize;
    let activity = |turns: &[(f64, f64, String)], names: &[String]| {
        let mut on = vec![vec![false; names.len()]; frames];
        for (start, stop, name) in turns {
            let who = names.iter().position(|n| n == name).unwrap_or(0);
            for frame in on
                .iter_mut()
                .take((stop * 100.0).round() as usize)
                .skip((start * 100.0).round() as usize)
            {
                frame[who] = true;
            }
        }
        on
    };
    let (r, h) = (activity(reference, &ref_names), activity(hypothesis, &hyp_names));
    let mut best = f64::INFINITY;
    // Every injective mapping of hypothesis speakers to reference speakers (or to none).
    let mut mapping = vec![usize::MAX; hyp_names.len()];
    fn each(k: usize, mapping: &mut Vec<usize>, refs: usize, visit: &mut dyn FnMut(&[usize])) {
        if k == mapping.len() {
            visit(mapping);
            return;
        }
        for choice in (0..refs).chain([usize::MAX]) {
            if choice != usize::MAX && mapping[..k].contains(&choice) {
                continue;
            }
            mapping[k] = choice;
            each(k + 1, mapping, refs, visit);
        }
    }
    let total: usize = r.iter().map(|f| f.iter().filter(|&&x| x).count()).sum();
    each(0, &mut mapping, ref_names.len(), &mut |mapping| {
        let mut errors = 0usize;
        for (rf, hf) in r.iter().zip(&h) {
            let (n_ref, n_hyp) =
                (rf.iter().filter(|&&x| x).count(), hf.iter().filter(|&&x| x).count());
            let correct = hf
                .iter()
                .enumerate()
                .filter(|&(k, &on)| on && mapping[k] != usize::MAX && rf[mapping[k]])
                .count();
            errors += n_ref.max(n_hyp) - correct;
        }
        best = best.min(errors as f64 / total.max(1) as f64);
    });
    best
}

fn turns_of(diarization: &Diarization) -> Vec<(f64, f64, String)> {
    diarization.turns.iter().map(|t| (t.start, t.end, format!("S{}", t.speaker + 1))).collect()
}

/// The real two-person call: two speakers, diarization error rate at most 10 % (no
/// collar, overlap scored), against its reference RTTM.
#[test]
fn the_real_call_has_two_speakers_and_a_der_of_at_most_ten_percent() {
    let (Some(audio), Some(reference)) = (real("sample.wav"), real("sample.rttm")) else {
        return;
    };
    let diarization = diarize(&audio);
    assert_eq!(diarization.speakers, 2, "{:?}", diarization.turns);
    let error = der(&rttm(&read(&reference)), &turns_of(&diarization));
    eprintln!("real call: DER {:.1} %", error * 100.0);
    assert!(error <= 0.10, "DER {:.1} % on the real call", error * 100.0);
}

/// The DER helper scores a perfect answer 0 and a swapped-speaker answer 0 too (labels are
/// mapped), and a missed speaker as the share of talk it held.
#[test]
fn the_der_helper_maps_labels_and_counts_misses() {
    let reference = vec![(0.0, 1.0, "a".to_string()), (1.0, 3.0, "b".to_string())];
    let swapped = vec![(0.0, 1.0, "x".to_string()), (1.0, 3.0, "y".to_string())];
    assert!(der(&reference, &swapped) < 1e-9);
    let missed = vec![(1.0, 3.0, "y".to_string())];
    assert!((der(&reference, &missed) - 1.0 / 3.0).abs() < 0.01);
}

/// One voice with pauses is one speaker; silence is no speaker and no error.
#[test]
fn one_voice_is_one_speaker_and_silence_is_none() {
    let one = diarize(&fixture("speakers/one_voice.flac"));
    assert_eq!(one.speakers, 1, "{:?}", one.turns);
    let silence = diarize(&fixture("silence.wav"));
    assert_eq!(silence.speakers, 0, "{:?}", silence.turns);
    assert!(silence.turns.is_empty());
}

/// A missing diarization model is a clear error when the command starts, naming the file
/// and how to install it, before any decoding or transcription.
#[test]
fn a_missing_voice_encoder_is_a_clear_error_at_start_up() {
    let output = minutes(&[
        "transcribe",
        fixture("meeting.flac").to_str().expect("utf-8"),
        "--voice-encoder",
        "/nonexistent/pretrained.pt",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/pretrained.pt"), "{stderr}");
    assert!(stderr.contains("minutes models install"), "{stderr}");
    assert!(stderr.contains("--speakers off"), "{stderr}");
    assert!(!stderr.contains("transcribed"), "it failed before transcribing: {stderr}");
}

/// `minutes process` of the real call: a PDF with a Participants section and two speakers
/// in the transcript, and the transcript files naming them.
#[test]
fn processing_the_real_call_gives_participants_and_two_speakers() {
    let Some(audio) = real("sample.wav") else { return };
    let out = tempdir();
    let output = minutes(&[
        "process",
        audio.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = pdf::tool("pdftotext", &[out.join("sample.pdf").to_str().expect("utf-8"), "-"]);
    assert!(text.contains("Participants"), "{text}");
    assert!(text.contains("S1:") && text.contains("S2:"), "{text}");
    let txt = read(&out.join("sample.transcript.txt"));
    let speakers: std::collections::BTreeSet<&str> =
        txt.lines().filter_map(|line| line.split_once(": ").map(|(who, _)| who)).collect();
    assert_eq!(speakers.into_iter().collect::<Vec<_>>(), ["S1", "S2"], "{txt}");
    let minutes: minutes_shared::Minutes =
        serde_json::from_str(&read(&out.join("sample.minutes.json"))).expect("minutes JSON");
    assert_eq!(minutes.participants.len(), 2);
    let shares: f64 = minutes.participants.iter().map(|p| p.share).sum();
    assert!((shares - 1.0).abs() < 1e-6, "shares add up to {shares}");
}
