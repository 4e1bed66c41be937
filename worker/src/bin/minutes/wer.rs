//! `minutes wer REFERENCE HYPOTHESIS`: how far a transcript is from what was said.

use std::path::PathBuf;

use anyhow::Context as _;
use minutes_shared::wer::word_errors;

/// Arguments of `minutes wer`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Text file with what was really said.
    reference: PathBuf,
    /// Text file with the transcript to score.
    hypothesis: PathBuf,
    /// Print the counts as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let read = |path: &PathBuf| {
        std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))
    };
    let errors = word_errors(&read(&args.reference)?, &read(&args.hypothesis)?);
    if args.json {
        println!(
            "{{\"wer\":{:.6},\"substitutions\":{},\"deletions\":{},\"insertions\":{},\"reference_words\":{}}}",
            errors.rate(),
            errors.substitutions,
            errors.deletions,
            errors.insertions,
            errors.reference_words
        );
    } else {
        println!(
            "WER {:.2}% ({} substitutions, {} deletions, {} insertions over {} words)",
            errors.rate() * 100.0,
            errors.substitutions,
            errors.deletions,
            errors.insertions,
            errors.reference_words
        );
    }
    Ok(())
}
