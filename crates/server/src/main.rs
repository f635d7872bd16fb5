//! `lucarne-server` binary: parses the command line and runs [`lucarne_server::Server`].
//!
//! SIGTERM (what systemd and container runtimes send) and SIGINT (Ctrl-C) stop it
//! gracefully through [`Server::shutdown`]: `/readyz` answers 503 for
//! `--drain-delay-secs` (5 s) so load balancers take the node out, then live broadcasts
//! end with their replays written, chat viewers are told to come back (1001), the chat
//! store is flushed, push sockets are closed (1001). A second signal during that stops
//! at once.
//!
//! `lucarne-server token --stream STREAM [--ttl-secs N]` prints a playback token for a
//! private stream (see `lucarne_server::access`) and exits.

use anyhow::Context;
use clap::Parser;
use lucarne_server::{Config, Server};

/// `lucarne-server token`: mints a playback token for a private stream.
#[derive(Debug, clap::Parser)]
#[command(name = "lucarne-server token")]
struct TokenArgs {
    /// The stream the token opens.
    #[arg(long)]
    stream: String,
    /// How long the token is valid, in seconds.
    #[arg(long, default_value_t = 3600)]
    ttl_secs: u64,
    /// The secret the server checks tokens with.
    #[arg(long, env = "LUCARNE_PLAYBACK_SECRET", hide_env_values = true)]
    playback_secret: String,
}

fn token(args: TokenArgs) -> anyhow::Result<()> {
    if args.playback_secret.len() < lucarne_server::access::MIN_SECRET_BYTES {
        anyhow::bail!(
            "the playback secret must be at least {} bytes",
            lucarne_server::access::MIN_SECRET_BYTES
        );
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_secs();
    let expiry = now.saturating_add(args.ttl_secs);
    println!(
        "{}",
        lucarne_server::access::mint(args.playback_secret.as_bytes(), &args.stream, expiry)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some("token") {
        return token(TokenArgs::parse_from(std::env::args().skip(1)));
    }
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
