//! The decoder process: `<program> __decode-child FILE ...` decodes one file and streams
//! its 16 kHz samples to stdout in [`protocol`](super::protocol) frames.
//!
//! Before it opens the file it fences itself in: it dies with its parent
//! (`PR_SET_PDEATHSIG`), may map only a bounded amount of memory beyond what the program
//! maps at start (`RLIMIT_AS`), may use a bounded amount of CPU time (`RLIMIT_CPU`), and can
//! neither dump core nor write files. A decoder that runs into a limit dies here, alone.

use std::cell::Cell;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use minutes_shared::failure::{FailureCode, FailureReason};
use rustix::process::{self, Resource, Rlimit, Signal};

use super::protocol::{write_frame, Frame, Outcome};
use crate::audio::{self, LoadError};
use crate::stages::decode::{DecodeError, DecodeOptions};

/// The first argument that selects the decoder role of a binary.
pub const ROLE: &str = "__decode-child";

/// Samples per frame: 1 s of audio, 64 KiB on the pipe.
const FRAME_SAMPLES: usize = 16_000;

/// What the supervisor passes to the decoder process.
#[derive(Debug, Parser)]
#[command(name = ROLE, no_binary_name = true)]
pub(super) struct ChildArgs {
    /// The recording.
    pub file: PathBuf,
    /// Longest recording accepted, in seconds.
    #[arg(long)]
    pub max_duration_secs: u64,
    /// Corrupt packets in a row tolerated.
    #[arg(long)]
    pub max_consecutive_errors: u32,
    /// Memory the decoder may map beyond the program's own, in MiB.
    #[arg(long)]
    pub memory_mib: u64,
    /// CPU seconds the decoder may use.
    #[arg(long)]
    pub cpu_secs: u64,
    /// The supervisor's process id: if it is already gone, there is nobody to talk to.
    #[arg(long)]
    pub parent_pid: u32,
}

/// Runs the decoder role when the process was started as one; `None` otherwise.
pub fn serve_if_asked() -> Option<ExitCode> {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some(std::ffi::OsStr::new(ROLE)) {
        return None;
    }
    let args = match ChildArgs::try_parse_from(args) {
        Ok(args) => args,
        Err(error) => {
            // The supervisor reads the decoder's stderr into its log.
            let _ = error.print();
            return Some(ExitCode::from(2));
        }
    };
    Some(run(&args))
}

fn run(args: &ChildArgs) -> ExitCode {
    crate::panic_guard::install_quiet_hook();
    if let Err(error) = fence(args) {
        let _ = writeln!(io::stderr(), "cannot limit the decoder process: {error}");
        return ExitCode::from(3);
    }
    let options = DecodeOptions {
        max_duration: Duration::from_secs(args.max_duration_secs),
        max_consecutive_errors: args.max_consecutive_errors,
    };
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let mut pending: Vec<f32> = Vec::with_capacity(FRAME_SAMPLES);
    // Progress goes out with the next samples frame: one writer, no interleaving.
    let progress = Cell::new(None);
    let result = audio::stream(
        &args.file,
        options,
        &mut |block| {
            pending.extend_from_slice(block);
            if pending.len() >= FRAME_SAMPLES {
                send(&mut out, &Frame::Samples(std::mem::take(&mut pending)));
                if let Some(fraction) = progress.take() {
                    send(&mut out, &Frame::Progress(fraction));
                }
            }
        },
        &mut |fraction| progress.set(Some(fraction)),
    );
    if !pending.is_empty() {
        send(&mut out, &Frame::Samples(pending));
    }
    let outcome = match result {
        Ok(source) => Outcome::Decoded(source),
        Err(LoadError::Decode(DecodeError::Io(error))) => Outcome::Unreadable(error.to_string()),
        Err(LoadError::Decode(error)) => {
            Outcome::Rejected(FailureReason::new(error.failure_code(), error.to_string()))
        }
        Err(LoadError::Resample(error)) => {
            Outcome::Rejected(FailureReason::new(FailureCode::InvalidMedia, error.to_string()))
        }
    };
    send(&mut out, &Frame::Outcome(outcome));
    ExitCode::SUCCESS
}

/// Writes one frame now. A write fails only when the supervisor is gone or is killing this
/// process: there is nothing left to do but leave.
fn send(out: &mut impl Write, frame: &Frame) {
    if write_frame(out, frame).and_then(|()| out.flush()).is_err() {
        std::process::exit(4);
    }
}

/// Applies the limits of `args` to this process.
fn fence(args: &ChildArgs) -> io::Result<()> {
    process::set_parent_process_death_signal(Some(Signal::KILL))?;
    // The parent may have died before the line above: then this process was re-parented.
    if process::getppid().map(|pid| pid.as_raw_pid() as u32) != Some(args.parent_pid) {
        std::process::exit(5);
    }
    let baseline = mapped_bytes()?;
    let memory = baseline.saturating_add(args.memory_mib.saturating_mul(1 << 20));
    set_limit(Resource::As, memory, memory)?;
    // The kernel sends SIGXCPU at the soft limit and SIGKILL at the hard one.
    set_limit(Resource::Cpu, args.cpu_secs, args.cpu_secs.saturating_add(1))?;
    set_limit(Resource::Core, 0, 0)?;
    set_limit(Resource::Fsize, 0, 0)?;
    Ok(())
}

/// The bytes this process maps now (`VmSize`): the program and its libraries.
fn mapped_bytes() -> io::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmSize:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no VmSize in /proc/self/status"))
}

fn set_limit(resource: Resource, soft: u64, hard: u64) -> io::Result<()> {
    Ok(process::setrlimit(resource, Rlimit { current: Some(soft), maximum: Some(hard) })?)
}
