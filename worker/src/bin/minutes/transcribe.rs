//! `minutes transcribe FILE`: a recording to a transcript in txt, srt, vtt, json or rttm,
//! with its speakers unless `--speakers off`.

use std::io::Write as _;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context as _};
use minutes_shared::subtitles::{to_rttm, TranscriptFormat};

use crate::progress::Progress;
use minutes_worker::pipeline::write_atomically;
use minutes_worker::settings::RecognitionArgs;
use minutes_worker::stages::diarize::assign;

/// Arguments of `minutes transcribe`; every option can also come from the environment.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The recording: WAV, FLAC, MP3, Ogg (Vorbis/Opus), WebM/MKV, M4A/MP4/MOV.
    file: PathBuf,
    /// Output format; by default taken from --out's extension, else txt.
    #[arg(long, short, env = "MINUTES_FORMAT")]
    format: Option<TranscriptFormat>,
    /// Write the transcript here instead of standard output.
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Print one JSON line of timings to standard error (for benchmarks).
    #[arg(long)]
    timings: bool,
    #[command(flatten)]
    recognition: RecognitionArgs,
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
    args.recognition.check()?;
    let bar = Progress::new();

    let run_started = Instant::now();
    bar.stage("decoding");
    let audio = args
        .recognition
        .decoder()?
        .load(file, &mut |f| bar.set(f), &|| false)
        .with_context(|| name.clone())?;
    let decode_seconds = run_started.elapsed().as_secs_f64();

    bar.stage("loading model");
    let model = args.recognition.load_model()?;
    let detector = args.recognition.speech_detector()?;
    let diarizer = args.recognition.diarizer()?;
    let load_seconds = run_started.elapsed().as_secs_f64() - decode_seconds;

    // Diarization splits lines where their words change speaker, so it needs word times;
    // they are dropped again afterwards when they were not asked for.
    let mut transcribe_options = args.recognition.transcribe_options();
    let keep_words = transcribe_options.word_timestamps;
    transcribe_options.word_timestamps |= diarizer.is_some();
    bar.stage("transcribing");
    let started = Instant::now();
    let transcript = model
        .transcribe(&audio.samples, &detector, &transcribe_options, &mut |fraction| {
            bar.set(fraction);
            ControlFlow::Continue(())
        })
        .with_context(|| name.clone())?;
    let transcribe_seconds = started.elapsed().as_secs_f64();
    let mut transcript = transcript;
    let started = Instant::now();
    if let Some(diarizer) = &diarizer {
        bar.stage("finding the speakers");
        let options = args.recognition.diarization.cluster_options();
        let diarization = diarizer
            .diarize(&audio.samples, &options, &mut |fraction| {
                bar.set(fraction);
                true
            })
            .with_context(|| name.clone())?;
        assign::attach(&mut transcript, &diarization);
        if !keep_words {
            assign::drop_words(&mut transcript);
        }
    }
    let diarize_seconds = started.elapsed().as_secs_f64();
    bar.finish(&format!(
        "transcribed {:.1} s of audio in {:.1} s ({:.1}x real time)",
        audio.duration(),
        transcribe_seconds,
        audio.duration() / transcribe_seconds.max(1e-9)
    ));
    if args.timings {
        eprintln!(
            "{{\"audio_seconds\":{:.3},\"decode_seconds\":{decode_seconds:.3},\"load_seconds\":{load_seconds:.3},\"transcribe_seconds\":{transcribe_seconds:.3},\"diarize_seconds\":{diarize_seconds:.3}}}",
            audio.duration()
        );
    }

    let rendered = match format {
        TranscriptFormat::Rttm => {
            let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned());
            to_rttm(&transcript, &stem.unwrap_or_default())
        }
        format => format.render(&transcript),
    };
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
