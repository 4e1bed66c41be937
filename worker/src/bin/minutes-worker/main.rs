//! `minutes-worker`: the daemon that runs queued jobs. Parses settings, waits for SIGTERM or
//! SIGINT, and reports a failure to start as one log line (with its causes) and exit status 1.

use std::process::ExitCode;

use clap::Parser;
use minutes_worker::service::daemon;
use minutes_worker::service::settings::WorkerSettings;

/// Runs minutes jobs from the queue: decode, transcribe, summarize, render, email.
#[derive(Debug, Parser)]
#[command(name = "minutes-worker", version, about)]
struct Cli {
    #[command(flatten)]
    settings: WorkerSettings,
}

fn main() -> ExitCode {
    // A re-execution of this binary as the decoder process: nothing else runs in it.
    if let Some(code) = minutes_worker::decoder_process::serve_child_if_asked() {
        return code;
    }
    minutes_worker::panic_guard::install_quiet_hook();
    minutes_shared::tls::use_ring();
    let cli = Cli::parse();
    if let Err(error) = cli.settings.log.init() {
        // Before logging exists, the one place a line goes straight to stderr.
        eprintln!("minutes-worker: {error}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(daemon::serve(cli.settings, minutes_shared::shutdown::signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` writes the error with its causes, `: `-separated.
            tracing::error!(error = format!("{:#}", anyhow::Error::new(error)), "cannot serve");
            ExitCode::FAILURE
        }
    }
}
