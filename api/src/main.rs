//! `minutes-api`: serves the HTTP API until SIGTERM or SIGINT.

use anyhow::Context as _;
use clap::Parser;
use minutes_api::settings::ApiSettings;
use minutes_api::Application;

/// The minutes HTTP API: uploads, jobs, progress, downloads.
#[derive(Debug, Parser)]
#[command(name = "minutes-api", version, about)]
struct Cli {
    #[command(flatten)]
    settings: ApiSettings,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let app = Application::build(cli.settings).await?;
    // Tests and operators read this line to find the port.
    eprintln!("minutes-api listening on http://{}", app.address()?);
    app.run_until(shutdown_signal()).await.context("server failed")
}

/// Resolves on Ctrl-C or SIGTERM (what containers send), so the server drains and exits.
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
        _ = tokio::signal::ctrl_c() => {},
        () = terminate => {},
    }
}
