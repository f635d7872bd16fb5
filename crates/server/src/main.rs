//! `lucarne-server` binary: parses the command line and runs [`lucarne_server::Server`].

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
    tokio::select! {
        r = server.wait() => r.context("serving")?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
