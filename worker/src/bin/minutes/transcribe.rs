//! `minutes transcribe FILE`: a recording to a transcript in txt, srt, vtt or json.

use std::io::{IsTerminal as _, Write as _};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use indicatif::{ProgressBar, ProgressStyle};
use minutes_shared::subtitles::TranscriptFormat;
use minutes_worker::audio;
use minutes_worker::stages::decode::DecodeOptions;
use minutes_worker::stages::transcribe::{
    ModelOptions, Precision, TranscribeOptions, WhisperModel,
};

/// Where the README's set-up puts the default model, relative to the working directory.
const DEFAULT_MODEL_DIR: &str = "models/whisper-tiny.en";

/// Arguments of `minutes transcribe`; every option can also come from the environment.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The recording: WAV, FLAC, MP3, Ogg (Vorbis/Opus), WebM/MKV, M4A/MP4/MOV.
    file: PathBuf,
    /// Output format; by default taken from --out's extension, else txt.
    #[arg(long, short, env = "MINUTES_FORMAT")]
    format: Option<TranscriptFormat>,
    /// Spoken language (ISO 639-1, e.g. en, de); detected when omitted.
    #[arg(long, short, env = "MINUTES_LANGUAGE")]
    language: Option<String>,
    /// CTranslate2 Whisper model directory (any faster-whisper model).
    #[arg(long, short, env = "MINUTES_MODEL_DIR", default_value = DEFAULT_MODEL_DIR)]
    model: PathBuf,
    /// Write the transcript here instead of standard output.
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Beam width (1 = greedy, faster and a little less accurate).
    #[arg(long, env = "MINUTES_BEAM_SIZE", default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=16))]
    beam_size: u16,
    /// 30-second windows decoded together.
    #[arg(long, env = "MINUTES_BATCH_SIZE", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    batch_size: u16,
    /// Numeric precision: int8, float32 or default (as saved).
    #[arg(long, env = "MINUTES_COMPUTE_TYPE", default_value = "int8")]
    compute_type: Precision,
    /// CPU threads; 0 uses every core.
    #[arg(long, env = "MINUTES_THREADS", default_value_t = 0)]
    threads: usize,
    /// Batches decoded side by side (each by a model replica with threads/lanes threads);
    /// 0 picks min(threads, 4).
    #[arg(long, env = "MINUTES_DECODE_LANES", default_value_t = 0)]
    lanes: usize,
    /// Time every word (json output carries them).
    #[arg(long, env = "MINUTES_WORD_TIMESTAMPS")]
    words: bool,
    /// Print one JSON line of timings to standard error (for benchmarks).
    #[arg(long)]
    timings: bool,
    /// Longest recording accepted, in minutes.
    #[arg(long, env = "MINUTES_MAX_DURATION_MINUTES", default_value_t = 360)]
    max_duration_minutes: u64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let format = match (args.format, &args.out) {
        (Some(format), _) => format,
        (None, Some(out)) => out
            .extension()
            .and_then(|e| e.to_str())
            .and_then(|e| e.parse().ok())
            .unwrap_or(TranscriptFormat::Txt),
        (None, None) => TranscriptFormat::Txt,
    };
    let file = &args.file;
    let name = file.display().to_string();
    if !file.is_file() {
        bail!("{name}: no such file");
    }
    if !args.model.join("model.bin").is_file() {
        bail!(
            "no Whisper model in {}: pass --model DIR or set MINUTES_MODEL_DIR (scripts/demo fetches the default model)",
            args.model.display()
        );
    }
    let bar = Progress::new();

    let run_started = Instant::now();
    bar.stage("decoding");
    let decode_options = DecodeOptions {
        max_duration: Duration::from_secs(args.max_duration_minutes.saturating_mul(60)),
        ..DecodeOptions::default()
    };
    let audio = audio::load(file, decode_options, &mut |fraction| bar.set(fraction))
        .with_context(|| name.clone())?;

    let decode_seconds = run_started.elapsed().as_secs_f64();
    bar.stage("loading model");
    let threads = if args.threads == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        args.threads
    };
    let model = WhisperModel::load(&ModelOptions {
        model_dir: args.model.clone(),
        precision: args.compute_type,
        threads,
        lanes: if args.lanes == 0 { threads.min(4) } else { args.lanes },
    })?;

    let load_seconds = run_started.elapsed().as_secs_f64() - decode_seconds;
    bar.stage("transcribing");
    let options = TranscribeOptions {
        language: args.language.clone(),
        beam_size: usize::from(args.beam_size),
        batch_size: usize::from(args.batch_size),
        word_timestamps: args.words,
    };
    let started = Instant::now();
    let transcript = model
        .transcribe(&audio.samples, &options, &mut |fraction| {
            bar.set(fraction);
            ControlFlow::Continue(())
        })
        .with_context(|| name.clone())?;
    let transcribe_seconds = started.elapsed().as_secs_f64();
    bar.finish(audio.duration(), started.elapsed());
    if args.timings {
        eprintln!(
            "{{\"audio_seconds\":{:.3},\"decode_seconds\":{decode_seconds:.3},\"load_seconds\":{load_seconds:.3},\"transcribe_seconds\":{transcribe_seconds:.3}}}",
            audio.duration()
        );
    }

    let rendered = format.render(&transcript);
    match &args.out {
        Some(out) => write_atomically(out, rendered.as_bytes())
            .with_context(|| format!("{}: cannot write", out.display()))?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(rendered.as_bytes()).context("cannot write to standard output")?;
            stdout.flush().context("cannot write to standard output")?;
        }
    }
    Ok(())
}

/// Writes beside the target and renames, so a reader never sees half a transcript.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = path.with_file_name(format!(".{file_name}.partial"));
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}

/// A progress bar on a terminal; nothing at all when standard error is a pipe or file.
struct Progress(Option<ProgressBar>);

impl Progress {
    fn new() -> Self {
        if !std::io::stderr().is_terminal() {
            return Self(None);
        }
        let bar = ProgressBar::new(1000);
        let style =
            ProgressStyle::with_template("{msg:>14} [{bar:40}] {percent:>3}% {elapsed_precise}")
                .map(|s| s.progress_chars("=> "))
                .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        Self(Some(bar))
    }

    fn stage(&self, name: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(name.to_string());
            bar.set_position(0);
        }
    }

    fn set(&self, fraction: f64) {
        if let Some(bar) = &self.0 {
            bar.set_position((fraction.clamp(0.0, 1.0) * 1000.0) as u64);
        }
    }

    fn finish(&self, audio_seconds: f64, took: Duration) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
            eprintln!(
                "transcribed {:.1} s of audio in {:.1} s ({:.1}x real time)",
                audio_seconds,
                took.as_secs_f64(),
                audio_seconds / took.as_secs_f64().max(1e-9)
            );
        }
    }
}
