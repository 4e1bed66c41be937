//! `minutes diarize FILE`: who speaks when, as RTTM, without transcribing.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context as _};
use minutes_shared::subtitles::to_rttm;
use minutes_shared::Transcript;
use minutes_worker::pipeline::write_atomically;
use minutes_worker::settings::RecognitionArgs;
use minutes_worker::stages::diarize::assign;

use crate::progress::Progress;

/// Arguments of `minutes diarize`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The recording: WAV, FLAC, MP3, Ogg (Vorbis/Opus), WebM/MKV, M4A/MP4/MOV.
    file: PathBuf,
    /// Write the RTTM here instead of standard output.
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Print one JSON line of timings to standard error (for benchmarks).
    #[arg(long)]
    timings: bool,
    #[command(flatten)]
    recognition: RecognitionArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let file = &args.file;
    let name = file.display().to_string();
    if !file.is_file() {
        bail!("{name}: no such file");
    }
    let Some(diarizer) = args.recognition.diarizer()? else {
        bail!("--speakers off: there is nothing to do");
    };
    let bar = Progress::new();
    bar.stage("decoding");
    let audio = args
        .recognition
        .decoder()?
        .load(file, &mut |f| bar.set(f), &|| false)
        .with_context(|| name.clone())?;
    bar.stage("finding the speakers");
    let started = Instant::now();
    let options = args.recognition.diarization.cluster_options();
    let diarization = diarizer
        .diarize(&audio.samples, &options, &mut |fraction| {
            bar.set(fraction);
            true
        })
        .with_context(|| name.clone())?;
    let seconds = started.elapsed().as_secs_f64();
    bar.finish(&format!(
        "{} speakers in {:.1} s of audio, found in {seconds:.1} s",
        diarization.speakers,
        audio.duration()
    ));
    if args.timings {
        eprintln!(
            "{{\"audio_seconds\":{:.3},\"diarize_seconds\":{seconds:.3},\"speakers\":{}}}",
            audio.duration(),
            diarization.speakers
        );
    }
    let mut transcript = Transcript {
        version: minutes_shared::transcript::TRANSCRIPT_FORMAT_VERSION,
        language: String::new(),
        duration: audio.duration(),
        model: String::new(),
        segments: Vec::new(),
        speakers: Vec::new(),
        turns: Vec::new(),
    };
    assign::attach(&mut transcript, &diarization);
    let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let rendered = to_rttm(&transcript, &stem);
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
