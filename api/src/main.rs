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
    minutes_shared::tls::use_ring();
    let cli = Cli::parse();
    cli.settings.log.init()?;
    let app = Application::build(cli.settings).await?;
    // Tests and operators read this line to find the port.
    tracing::info!("listening on http://{}", app.address()?);
    app.run_until(minutes_shared::shutdown::signal()).await.context("server failed")
}
