//! `minutes-api`: serves the HTTP API.

use std::net::SocketAddr;

use anyhow::Context as _;
use clap::Parser;

/// The minutes HTTP API.
#[derive(Debug, Parser)]
#[command(name = "minutes-api", version, about)]
struct Settings {
    /// Address to listen on.
    #[arg(long, env = "MINUTES_API_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::parse();
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    eprintln!("minutes-api listening on http://{}", listener.local_addr()?);
    axum::serve(listener, minutes_api::router())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("server failed")
}

/// Resolves on Ctrl-C or SIGTERM (what containers send), so the server drains and exits.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
