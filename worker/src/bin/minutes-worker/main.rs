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
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("minutes-worker: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(daemon::serve(cli.settings, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("minutes-worker: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves at the first SIGTERM (what containers and systemd send) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}
