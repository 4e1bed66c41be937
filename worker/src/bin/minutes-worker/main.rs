//! `minutes-worker`: the daemon that runs queued jobs. Parses settings, waits for SIGTERM or
//! SIGINT, and reports a failure to start as one line and exit status 1.

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
    minutes_worker::panic_guard::install_quiet_hook();
    minutes_shared::tls::use_ring();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("minutes-worker: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(daemon::serve(cli.settings, minutes_shared::shutdown::signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("minutes-worker: {error}");
            ExitCode::FAILURE
        }
    }
}
