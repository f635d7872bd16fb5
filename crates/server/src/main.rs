//! `lucarne-server` binary: parses the command line and runs [`lucarne_server::Server`].
//!
//! SIGTERM (what systemd and container runtimes send) and SIGINT (Ctrl-C) stop it
//! gracefully through [`Server::shutdown`]: `/readyz` answers 503 for
//! `--drain-delay-secs` (5 s) so load balancers take the node out, then live broadcasts
//! end with their replays written, chat viewers are told to come back (1001), the chat
//! store is flushed, push sockets are closed (1001). A second signal during that stops
//! at once.

use anyhow::Context;
use clap::Parser;
use lucarne_server::{Config, Server};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "lucarne_server=info,tower_http=warn".into()),
        )
        .init();
    let config = Config::parse();
    let server = Server::start(config)
        .await
        .context("starting lucarne-server")?;
    // Test harnesses wait for this exact line.
    println!("lucarne-server listening on http://{}", server.local_addr());
    if let Some(rtmp) = server.rtmp_addr() {
        println!("lucarne-server rtmp ingest on rtmp://{rtmp}/live");
    }
    let (stopped, stop) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        stop_signal().await;
        let _ = stopped.send(());
        stop_signal().await;
        tracing::warn!("second stop signal: exiting now");
        std::process::exit(130);
    });
    server
        .run_until(async { stop.await.unwrap_or(()) })
        .await
        .context("serving")?;
    Ok(())
}

/// The next SIGTERM or SIGINT.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
                }
                return;
            }
            Err(e) => tracing::warn!("cannot listen for SIGTERM: {e}"),
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
