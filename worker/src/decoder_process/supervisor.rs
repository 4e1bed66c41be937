//! The supervisor: starts the decoder process on one file, collects its samples, and ends
//! it when it must: no frame for the watchdog period, too many samples, the job stopped.
//!
//! Reading the pipe happens on a helper thread that hands frames over a small bounded
//! channel, so the supervisor can wait on "a frame, or 100 ms" and check the stop flag
//! and the watchdog in between. A process that died is explained from its exit status
//! (an abort on an allocation over the memory limit, the CPU limit's signal, a crash).

use std::io::{self, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use minutes_shared::failure::{FailureCode, FailureReason};
use rustix::process::Signal;

use super::child::ROLE;
use super::protocol::{read_frame, Frame, Outcome};
use crate::audio::Audio;
use crate::stages::decode::DecodeOptions;
use crate::stages::resample::TARGET_RATE;

/// How often the stop flag and the watchdog are looked at while no frame comes.
const POLL: Duration = Duration::from_millis(100);
/// The end of the decoder's stderr kept for the log.
const STDERR_TAIL: usize = 4096;

/// The program to run as the decoder: a binary of this crate, which answers to the
/// decoder role ([`super::serve_child_if_asked`]) before anything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecoderCommand {
    program: PathBuf,
}

impl DecoderCommand {
    /// `program`, e.g. the path of the `minutes-worker` binary.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self { program: program.into() }
    }

    /// The binary this process runs.
    pub fn current() -> io::Result<Self> {
        Ok(Self::new(std::env::current_exe()?))
    }
}

/// What one decoder process may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderLimits {
    /// Memory it may map beyond the program's own, in MiB.
    pub memory_mib: u64,
    /// CPU time it may use.
    pub cpu: Duration,
    /// Longest time without a frame before it is taken to hang and killed.
    pub watchdog: Duration,
}

impl DecoderLimits {
    /// Default memory beyond the program's own, in MiB.
    pub const MEMORY_MIB: u64 = 2048;
    /// Default CPU seconds per file.
    pub const CPU_SECS: u64 = 900;
    /// Default seconds without a frame before the decoder is killed.
    pub const WATCHDOG_SECS: u64 = 60;
}

impl Default for DecoderLimits {
    fn default() -> Self {
        Self {
            memory_mib: Self::MEMORY_MIB,
            cpu: Duration::from_secs(Self::CPU_SECS),
            watchdog: Duration::from_secs(Self::WATCHDOG_SECS),
        }
    }
}

/// Why a supervised decode gave no audio.
#[derive(Debug, thiserror::Error)]
pub enum SupervisedError {
    /// The recording cannot be decoded (its own fault, or it made the decoder crash, hang
    /// or run out of a limit): the job fails with this reason.
    #[error("{}", .0.detail)]
    Rejected(FailureReason),
    /// The local copy could not be read: try again later.
    #[error("reading the local copy failed: {0}")]
    Unreadable(String),
    /// The decoder process could not be started or talked to.
    #[error("the decoder process failed: {0}")]
    Process(#[source] io::Error),
    /// The caller asked to stop; the process was killed.
    #[error("stopped")]
    Stopped,
}

/// Decodes files in a child process under limits.
#[derive(Debug, Clone)]
pub struct SupervisedDecoder {
    /// The program run as the decoder.
    pub command: DecoderCommand,
    /// Duration and corruption limits, applied by the decoder itself.
    pub options: DecodeOptions,
    /// What the decoder process may use.
    pub limits: DecoderLimits,
}

impl SupervisedDecoder {
    /// Decodes `path` to 16 kHz mono. `progress` receives the fraction decoded; `stop` is
    /// asked every [`POLL`], and when it says yes the decoder is killed.
    pub fn load(
        &self,
        path: &Path,
        progress: &mut dyn FnMut(f64),
        stop: &dyn Fn() -> bool,
    ) -> Result<Audio, SupervisedError> {
        let mut child = self.spawn(path).map_err(SupervisedError::Process)?;
        let (stdout, stderr) = match (child.stdout.take(), child.stderr.take()) {
            (Some(stdout), Some(stderr)) => (stdout, stderr),
            _ => return Err(SupervisedError::Process(io::Error::other("no pipes to the decoder"))),
        };
        let stderr = std::thread::spawn(move || tail(stderr));
        let (frames, receiver) = mpsc::sync_channel(4);
        let reader = std::thread::spawn(move || {
            let mut stdout = BufReader::with_capacity(1 << 16, stdout);
            loop {
                let frame = read_frame(&mut stdout);
                let end = !matches!(frame, Ok(Some(_)));
                if frames.send(frame).is_err() || end {
                    break;
                }
            }
        });
        let mut running = Running { child, reader: Some(reader), stderr: Some(stderr) };

        let max_samples = (self.options.max_duration.as_secs() + 2) * TARGET_RATE as u64;
        let mut samples: Vec<f32> = Vec::new();
        let mut last_frame = Instant::now();
        let outcome = loop {
            match receiver.recv_timeout(POLL) {
                Ok(Ok(Some(Frame::Samples(block)))) => {
                    last_frame = Instant::now();
                    if samples.len() as u64 + block.len() as u64 > max_samples {
                        running.kill();
                        return Err(rejected(
                            FailureCode::TooLong,
                            "the recording is longer than the maximum",
                        ));
                    }
                    samples.extend_from_slice(&block);
                }
                Ok(Ok(Some(Frame::Progress(fraction)))) => {
                    last_frame = Instant::now();
                    progress(fraction.clamp(0.0, 1.0));
                }
                Ok(Ok(Some(Frame::Outcome(outcome)))) => break Some(outcome),
                // The stream ended (or broke) without an outcome: the process died.
                Ok(Ok(None)) | Ok(Err(_)) | Err(RecvTimeoutError::Disconnected) => break None,
                Err(RecvTimeoutError::Timeout) => {}
            }
            if stop() {
                running.kill();
                return Err(SupervisedError::Stopped);
            }
            if last_frame.elapsed() >= self.limits.watchdog {
                running.kill();
                return Err(rejected(
                    FailureCode::InvalidMedia,
                    format!(
                        "the decoder made no progress on this file for {} s and was stopped",
                        self.limits.watchdog.as_secs()
                    ),
                ));
            }
        };
        let (status, stderr) = running.finish(self.limits.watchdog);
        match outcome {
            Some(Outcome::Decoded(source)) => Ok(Audio { samples, source }),
            Some(Outcome::Rejected(reason)) => Err(SupervisedError::Rejected(reason)),
            Some(Outcome::Unreadable(detail)) => Err(SupervisedError::Unreadable(detail)),
            None => {
                let why = explain(status, &stderr, &self.limits);
                tracing::warn!(status = ?status, stderr = %stderr.trim(), "the decoder process died");
                Err(rejected(FailureCode::InvalidMedia, why))
            }
        }
    }

    fn spawn(&self, path: &Path) -> io::Result<Child> {
        Command::new(&self.command.program)
            .arg(ROLE)
            .arg(path)
            .arg("--max-duration-secs")
            .arg(self.options.max_duration.as_secs().to_string())
            .arg("--max-consecutive-errors")
            .arg(self.options.max_consecutive_errors.to_string())
            .arg("--memory-mib")
            .arg(self.limits.memory_mib.to_string())
            .arg("--cpu-secs")
            .arg(self.limits.cpu.as_secs().max(1).to_string())
            .arg("--parent-pid")
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
    }
}

fn rejected(code: FailureCode, detail: impl Into<String>) -> SupervisedError {
    SupervisedError::Rejected(FailureReason::new(code, detail))
}

/// A decoder process and the threads reading it; killed and reaped when dropped.
struct Running {
    child: Child,
    reader: Option<JoinHandle<()>>,
    stderr: Option<JoinHandle<String>>,
}

impl Running {
    fn kill(&mut self) {
        let _ = self.child.kill();
    }

    /// Waits (at most `patience`) for the process to exit after its last frame, killing it
    /// past that, and returns its status and the end of its stderr.
    fn finish(&mut self, patience: Duration) -> (Option<ExitStatus>, String) {
        let deadline = Instant::now() + patience;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Ok(None) | Err(_) => {
                    self.kill();
                    break self.child.wait().ok();
                }
            }
        };
        let stderr = self.stderr.take().and_then(|h| h.join().ok()).unwrap_or_default();
        (status, stderr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        if let Some(stderr) = self.stderr.take() {
            let _ = stderr.join();
        }
    }
}

/// The last [`STDERR_TAIL`] bytes of `stream`, as text.
fn tail(mut stream: impl Read) -> String {
    let mut kept: Vec<u8> = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(read @ 1..) = stream.read(&mut buffer) {
        kept.extend_from_slice(&buffer[..read]);
        if kept.len() > 2 * STDERR_TAIL {
            kept.drain(..kept.len() - STDERR_TAIL);
        }
    }
    let start = kept.len().saturating_sub(STDERR_TAIL);
    String::from_utf8_lossy(&kept[start..]).into_owned()
}

/// Says for people why the decoder process ended without an outcome.
fn explain(status: Option<ExitStatus>, stderr: &str, limits: &DecoderLimits) -> String {
    let out_of_memory = stderr.contains("memory allocation of");
    let (abort, cpu, kill) = (Signal::ABORT.as_raw(), Signal::XCPU.as_raw(), Signal::KILL.as_raw());
    let (segv, bus) = (Signal::SEGV.as_raw(), Signal::BUS.as_raw());
    match status.and_then(|s| s.signal()) {
        Some(signal) if signal == abort && out_of_memory => format!(
            "decoding this file needed more than the decoder's memory limit of {} MiB",
            limits.memory_mib
        ),
        Some(signal) if signal == cpu || signal == kill => format!(
            "decoding this file used more than the decoder's CPU limit of {} s",
            limits.cpu.as_secs()
        ),
        Some(signal) if signal == abort => "the decoder aborted on this file".into(),
        Some(signal) if signal == segv || signal == bus => {
            "the decoder crashed on this file".into()
        }
        Some(signal) => format!("the decoder was ended by signal {signal} on this file"),
        None => match status.and_then(|s| s.code()) {
            Some(code) => format!("the decoder stopped on this file (exit status {code})"),
            None => "the decoder stopped on this file".into(),
        },
    }
}
