//! The supervised decoder process: same samples as decoding in this process, and a file
//! that makes the decoder abort, eat memory or hang costs the child, never the caller.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use minutes_shared::failure::FailureCode;
use minutes_worker::audio;
use minutes_worker::decoder_process::{
    DecoderCommand, DecoderLimits, SupervisedDecoder, SupervisedError,
};
use minutes_worker::stages::decode::DecodeOptions;

use super::{fixture, tempdir};

fn decoder(limits: DecoderLimits) -> SupervisedDecoder {
    SupervisedDecoder {
        command: DecoderCommand::new(env!("CARGO_BIN_EXE_minutes-worker")),
        options: DecodeOptions::default(),
        limits,
    }
}

fn rejection(result: Result<audio::Audio, SupervisedError>) -> (FailureCode, String) {
    match result {
        Err(SupervisedError::Rejected(reason)) => (reason.code, reason.detail),
        Err(other) => panic!("expected a rejection, got {other:?}"),
        Ok(audio) => panic!("expected a rejection, got {} s of audio", audio.duration()),
    }
}

#[test]
fn supervised_decoding_gives_the_samples_of_decoding_in_process() {
    let path = fixture("meeting.flac");
    let mut fractions = Vec::new();
    let supervised = decoder(DecoderLimits::default())
        .load(&path, &mut |f| fractions.push(f), &|| false)
        .expect("the fixture decodes");
    let local = audio::load(&path, DecodeOptions::default(), &mut |_| {}).unwrap();
    assert_eq!(supervised.samples, local.samples);
    assert_eq!(supervised.source, local.source);
    assert!(!fractions.is_empty(), "progress reached the caller");
}

#[test]
fn a_file_that_aborts_the_decoder_is_invalid_media_and_the_caller_lives_on() {
    // Its chunk-offset table claims 4 billion entries: symphonia reserves 32 GiB for it.
    let path = fixture("bad/huge_table.m4a");
    let limits = DecoderLimits { memory_mib: 256, ..DecoderLimits::default() };
    let (code, detail) = rejection(decoder(limits).load(&path, &mut |_| {}, &|| false));
    assert_eq!(code, FailureCode::InvalidMedia);
    assert!(detail.contains("memory limit of 256 MiB"), "{detail}");
    // This process is still here, and its decoder still works.
    let audio = decoder(limits).load(&fixture("meeting.flac"), &mut |_| {}, &|| false).unwrap();
    assert!(audio.duration() > 60.0);
}

/// A FIFO given the first half of a WAV file and then held open without another byte
/// until the returned sender is used: the decoder blocks on its next read, as on a file
/// that makes it loop.
struct StalledFifo {
    path: PathBuf,
    release: std::sync::mpsc::Sender<()>,
    writer: std::thread::JoinHandle<()>,
}

impl StalledFifo {
    fn new(dir: &Path) -> Self {
        let path = dir.join("stalled.wav");
        assert!(Command::new("mkfifo").arg(&path).status().unwrap().success());
        let wav = std::fs::read(fixture("formats/hello_s16_16k.wav")).unwrap();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let writer_path = path.clone();
        let writer = std::thread::spawn(move || {
            // Blocks until the decoder opens the other end.
            let mut fifo = std::fs::OpenOptions::new().write(true).open(&writer_path).unwrap();
            let _ = fifo.write_all(&wav[..wav.len() / 2]);
            let _ = released.recv();
        });
        Self { path, release, writer }
    }

    fn finish(self) {
        let _ = self.release.send(());
        self.writer.join().unwrap();
    }
}

#[test]
fn a_decoder_that_makes_no_progress_is_killed_by_the_watchdog() {
    let fifo = StalledFifo::new(&tempdir());
    let limits = DecoderLimits { watchdog: Duration::from_secs(2), ..DecoderLimits::default() };
    let (code, detail) = rejection(decoder(limits).load(&fifo.path, &mut |_| {}, &|| false));
    assert_eq!(code, FailureCode::InvalidMedia);
    assert!(detail.contains("no progress"), "{detail}");
    fifo.finish();
}

#[test]
fn a_stopped_job_kills_its_decoder() {
    let fifo = StalledFifo::new(&tempdir());
    // The watchdog would take an hour: only the stop can end this.
    let limits = DecoderLimits { watchdog: Duration::from_secs(3600), ..DecoderLimits::default() };
    let asked = std::sync::atomic::AtomicU32::new(0);
    let stop = || asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 5;
    let result = decoder(limits).load(&fifo.path, &mut |_| {}, &stop);
    assert!(matches!(result, Err(SupervisedError::Stopped)), "{result:?}");
    fifo.finish();
}

/// Seek out of range: a Matroska file whose numbers send the demuxer to an impossible
/// offset was reported as "reading the local copy failed" (a local fault, retried eight
/// times); it is the file's fault, rejected at once as corrupt.
#[test]
fn seek_out_of_range_is_a_corrupt_file_not_a_local_read_failure() {
    let path = fixture("bad/seek_out_of_range.mkv");
    let (code, detail) =
        rejection(decoder(DecoderLimits::default()).load(&path, &mut |_| {}, &|| false));
    assert_eq!(code, FailureCode::Corrupt, "{detail}");
}

/// A small deterministic random source (xorshift64*), so a fuzz run can be repeated.
struct Mutator(u64);

impl Mutator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// One of: flip a few bytes, write an extreme 32-bit value (a size, a count, a rate),
    /// cut the file, or repeat a stretch of it.
    fn mutate(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = input.to_vec();
        // Headers and tables sit near the start: aim most changes there.
        let near_start = |m: &mut Self, len: usize| {
            let window = if m.below(4) == 0 { len } else { len.min(4096) };
            m.below(window)
        };
        match self.below(4) {
            0 => {
                for _ in 0..=self.below(16) {
                    let at = near_start(self, out.len());
                    out[at] ^= 1 << self.below(8);
                }
            }
            1 => {
                let value: u32 = [0, 1, 0x7fff_ffff, 0xffff_ffff, 0x8000_0000][self.below(5)];
                let at = near_start(self, out.len().saturating_sub(4));
                let bytes =
                    if self.below(2) == 0 { value.to_be_bytes() } else { value.to_le_bytes() };
                out[at..at + 4].copy_from_slice(&bytes);
            }
            2 => out.truncate(self.below(out.len())),
            _ => {
                let start = near_start(self, out.len());
                let end = (start + 1 + self.below(2048)).min(out.len());
                let stretch = out[start..end].to_vec();
                for _ in 0..=self.below(64) {
                    out.splice(end..end, stretch.iter().copied());
                }
            }
        }
        out
    }
}

/// R16 fuzz: mutants of every format fixture through the decoder process. Each ends
/// decoded or rejected with a reason, inside the watchdog (30 s) and the memory limit
/// (2 GiB); none takes this process with it. `MINUTES_FUZZ_CASES` and `MINUTES_FUZZ_SEED`
/// make longer or different runs (`scripts/reliability` runs a longer one).
#[test]
fn r16_mutated_recordings_end_decoded_or_rejected_never_hung_or_crashing_the_caller() {
    let cases: usize =
        std::env::var("MINUTES_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(120);
    let seed: u64 = std::env::var("MINUTES_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x006d_696e_7574_6573);
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(fixture("formats"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e != "txt"))
        .collect();
    fixtures.sort();
    let inputs: Vec<Vec<u8>> = fixtures.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let limits = DecoderLimits {
        memory_mib: 2048,
        cpu: Duration::from_secs(30),
        watchdog: Duration::from_secs(30),
    };
    let decoder = decoder(limits);
    let dir = tempdir();
    let mut mutator = Mutator(seed | 1);
    let (mut decoded, mut rejected) = (0, std::collections::BTreeMap::<String, usize>::new());
    let mut slowest = Duration::ZERO;
    for case in 0..cases {
        let which = case % inputs.len();
        let mutant = mutator.mutate(&inputs[which]);
        let path = dir.join(format!(
            "case-{case}.{}",
            fixtures[which].extension().unwrap().to_string_lossy()
        ));
        std::fs::write(&path, &mutant).unwrap();
        let started = std::time::Instant::now();
        match decoder.load(&path, &mut |_| {}, &|| false) {
            Ok(_) => decoded += 1,
            Err(SupervisedError::Rejected(reason)) => {
                *rejected.entry(reason.code.to_string()).or_default() += 1
            }
            Err(other) => panic!("case {case} (seed {seed}, {}): {other}", path.display()),
        }
        slowest = slowest.max(started.elapsed());
        let _ = std::fs::remove_file(&path);
    }
    println!(
        "r16 fuzz: {cases} cases, {decoded} decoded, rejected {rejected:?}, slowest {slowest:?}"
    );
    assert_eq!(decoded + rejected.values().sum::<usize>(), cases);
}
