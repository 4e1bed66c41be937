//! `minutes`: the command line. This file parses arguments and reports errors; each
//! subcommand lives in its own module.

mod client;
mod diarize;
mod follow;
mod jobs;
mod models;
mod password;
mod process;
mod progress;
mod reprocess;
mod submit;
mod tokens;
mod transcribe;
mod users;
mod wer;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Meeting recordings to transcripts and minutes, on your own machine.
#[derive(Debug, Parser)]
#[command(name = "minutes", version, long_version = env!("MINUTES_LONG_VERSION"), about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Diagnostics (RUST_LOG=debug shows the recognizer's rounds and timings).
    #[command(flatten)]
    log: minutes_shared::logging::LogSettings,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Turn recordings into minutes: PDF, minutes JSON and transcripts.
    Process(Box<process::Args>),
    /// Transcribe a recording (audio or video) with Whisper.
    Transcribe(transcribe::Args),
    /// Who speaks when in a recording, as RTTM (no transcription).
    Diarize(diarize::Args),
    /// Word error rate of a transcript against a reference text.
    Wer(wer::Args),
    /// List and install Whisper models, the speech detector and ONNX Runtime.
    Models(models::Args),
    /// Upload recordings (files or folders) to the service.
    Submit(Box<submit::Args>),
    /// List, show or watch the service's jobs.
    Jobs(jobs::Args),
    /// Run chosen jobs again from a stage, with new options.
    Reprocess(Box<reprocess::Args>),
    /// Queue failed or cancelled jobs again.
    Retry(jobs::IdsArgs),
    /// Stop queued or running jobs.
    Cancel(jobs::IdsArgs),
    /// Manage users (directly in Postgres): add the first admin, list, disable, reset.
    Users(users::Args),
    /// Make, list or revoke your API tokens.
    Tokens(tokens::Args),
    /// Print the completion script of a shell: bash, zsh, fish, elvish or powershell
    /// (e.g. `minutes completions bash > ~/.local/share/bash-completion/completions/minutes`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    // A re-execution of this binary as the decoder process: nothing else runs in it.
    if let Some(code) = minutes_worker::decoder_process::serve_child_if_asked() {
        return code;
    }
    minutes_worker::panic_guard::install_quiet_hook();
    minutes_shared::tls::use_ring();
    let cli = Cli::parse();
    if let Err(error) = cli.log.init() {
        eprintln!("minutes: {error}");
        return ExitCode::FAILURE;
    }
    let outcome = match cli.command {
        Command::Process(args) => process::run(*args),
        Command::Transcribe(args) => transcribe::run(args),
        Command::Diarize(args) => diarize::run(args),
        Command::Wer(args) => wer::run(args),
        Command::Models(args) => models::run(args),
        Command::Submit(args) => submit::run(*args),
        Command::Jobs(args) => jobs::run(args),
        Command::Reprocess(args) => reprocess::run(*args),
        Command::Retry(args) => jobs::act(args, "retry"),
        Command::Cancel(args) => jobs::act(args, "cancel"),
        Command::Users(args) => users::run(args),
        Command::Tokens(args) => tokens::run(args),
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            // Written whole, then sent: a closed pipe (`| head`) is an error, not a panic.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "minutes", &mut script);
            std::io::Write::write_all(&mut std::io::stdout(), &script).map_err(Into::into)
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line, the whole chain of causes, no backtrace.
            eprintln!("minutes: {error:#}");
            ExitCode::FAILURE
        }
    }
}
