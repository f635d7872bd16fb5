//! The real lucarne-server, run as a subprocess exactly as it is deployed:
//! started, read for its "listening on" line, killed (the origin goes away) and
//! started again on the same port.
//!
//! Owns the server process, its log and its data directory (`--data-dir`, where the
//! chat database lives): a temporary directory that outlives restarts, so chat history
//! survives them as it would in production, and is removed with the [`Origin`], so
//! tests leave nothing in the tree. It never builds anything: when the
//! binary or the widget build (dist/) is missing it fails and says to run
//! `cargo xtask test`, which builds both.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use tempfile::TempDir;

use crate::process::{Log, Output, Spawned};
use crate::workspace::{env_path, root};

/// How long the server gets to print its listening line.
const READY: Duration = Duration::from_secs(30);

/// What the server is started with.
#[derive(Clone, Debug)]
pub struct OriginConfig {
    /// `LUCARNE_SERVER_BIN`, default `<workspace>/target/debug/lucarne-server`.
    pub bin: PathBuf,
    /// `LUCARNE_DIST`, default `<workspace>/dist`: the built widget.
    pub dist: PathBuf,
    /// `<workspace>/static`: loader, CSS, demo pages.
    pub pages: PathBuf,
    /// `<workspace>/media`: the demo clip.
    pub media: PathBuf,
    /// More command-line arguments, after the harness's own (e.g.
    /// `--embed-origin http://127.0.0.1:PORT` so a page on another origin may chat).
    /// Empty by default.
    pub extra_args: Vec<String>,
}

impl OriginConfig {
    /// Reads the environment and checks that everything exists.
    pub fn from_env() -> Result<Self> {
        let ws = root();
        let config = Self {
            bin: env_path("LUCARNE_SERVER_BIN", || {
                ws.join("target/debug/lucarne-server")
            }),
            dist: env_path("LUCARNE_DIST", || ws.join("dist")),
            pages: ws.join("static"),
            media: ws.join("media"),
            extra_args: Vec::new(),
        };
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<()> {
        const HOW: &str = "run `cargo xtask test`, which builds the server and the widget \
                           and then runs these tests (or set LUCARNE_SERVER_BIN / LUCARNE_DIST)";
        if !self.bin.is_file() {
            bail!(
                "lucarne-server binary not found at {}: {HOW}",
                self.bin.display()
            );
        }
        if !self.dist.is_dir() {
            bail!(
                "widget build (dist) not found at {}: {HOW}",
                self.dist.display()
            );
        }
        if !self.media.join("demo.mp4").is_file() {
            bail!(
                "demo clip missing at {}: run media/make-demo-clip.sh",
                self.media.join("demo.mp4").display()
            );
        }
        Ok(())
    }
}

/// A running (or stopped) lucarne-server.
#[derive(Debug)]
pub struct Origin {
    /// How to start it again.
    config: OriginConfig,
    /// The port it got the first time; restarts reuse it so pages keep their URLs.
    port: u16,
    /// `None` while stopped.
    process: Option<Spawned>,
    /// Output of the latest run (kept after a stop for failure messages).
    log: Log,
    /// `--data-dir`: the same across restarts, deleted when the Origin is dropped.
    data_dir: TempDir,
}

impl Origin {
    /// Starts the server from [`OriginConfig::from_env`] on a free port.
    pub async fn start() -> Result<Self> {
        Self::start_with(OriginConfig::from_env()?).await
    }

    /// Starts the server with `config` on a free port.
    pub async fn start_with(config: OriginConfig) -> Result<Self> {
        let data_dir = tempfile::Builder::new()
            .prefix("lucarne-e2e-data-")
            .tempdir()
            .context("creating the server's data directory")?;
        let (process, port) = spawn(&config, 0, data_dir.path()).await?;
        let log = process.log().clone();
        Ok(Self {
            config,
            port,
            process: Some(process),
            log,
            data_dir,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `ws://127.0.0.1:PORT`.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(Spawned::pid)
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's `--data-dir` (kept across [`Origin::restart`]).
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// The last `n` lines the server wrote.
    pub fn log_tail(&self, n: usize) -> String {
        self.log.tail(n)
    }

    /// SIGKILLs the server: connections drop, new ones are refused.
    pub async fn stop(&mut self) {
        if let Some(p) = self.process.take() {
            p.kill().await;
        }
    }

    /// Starts the server again on the same port (stopping it first if needed).
    pub async fn restart(&mut self) -> Result<()> {
        self.stop().await;
        // The port was just released; a few attempts cover the rare case where
        // the kernel has not let go of it yet.
        let mut last = None;
        for _ in 0..5 {
            match spawn(&self.config, self.port, self.data_dir.path()).await {
                Ok((process, port)) => {
                    if port != self.port {
                        bail!(
                            "restarted server listens on {port}, asked for {}",
                            self.port
                        );
                    }
                    self.log = process.log().clone();
                    self.process = Some(process);
                    return Ok(());
                }
                Err(e) => {
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        Err(last.unwrap_or_else(|| anyhow!("restart failed")))
    }
}

/// Starts the binary on `port` (0 = any) with `data_dir` and waits for
/// `lucarne-server listening on http://127.0.0.1:PORT` on stdout.
async fn spawn(config: &OriginConfig, port: u16, data_dir: &Path) -> Result<(Spawned, u16)> {
    let listen = format!("127.0.0.1:{port}");
    let args = [
        "--listen".as_ref(),
        listen.as_ref(),
        "--dist".as_ref(),
        config.dist.as_os_str(),
        "--pages".as_ref(),
        config.pages.as_os_str(),
        "--media".as_ref(),
        config.media.as_os_str(),
        "--data-dir".as_ref(),
        data_dir.as_os_str(),
    ];
    let args = args.iter().copied().chain(
        config
            .extra_args
            .iter()
            .map(|a| std::ffi::OsStr::new(a.as_str())),
    );
    let (mut process, mut stdout) =
        Spawned::start("lucarne-server", &config.bin, args, &[], Output::Capture)?;
    let start = Instant::now();
    loop {
        let remaining = READY.saturating_sub(start.elapsed());
        match tokio::time::timeout(remaining, stdout.recv()).await {
            Ok(Some(line)) => {
                if let Some(port) = parse_listening(&line) {
                    return Ok((process, port));
                }
            }
            Ok(None) => {
                // stdout closed: the server exited (or closed stdout) before announcing.
                tokio::time::sleep(Duration::from_millis(100)).await;
                let status = process.exited().unwrap_or_else(|| "still running".into());
                bail!(
                    "lucarne-server ({status}) closed stdout without printing \
                     'lucarne-server listening on http://127.0.0.1:PORT'; its output:\n{}",
                    process.log().tail(40)
                );
            }
            Err(_) => bail!(
                "lucarne-server did not print 'lucarne-server listening on http://...' within \
                 {READY:?}; its output:\n{}",
                process.log().tail(40)
            ),
        }
    }
}

/// The port in a `lucarne-server listening on http://127.0.0.1:PORT` line
/// (log decorations around it are tolerated).
pub fn parse_listening(line: &str) -> Option<u16> {
    let rest = line.split("lucarne-server listening on http://").nth(1)?;
    let authority: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '[' | ']'))
        .collect();
    authority.rsplit(':').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_listening_line() {
        assert_eq!(
            parse_listening("lucarne-server listening on http://127.0.0.1:41234"),
            Some(41234)
        );
        assert_eq!(
            parse_listening("2026-11-25T12:00:00Z INFO lucarne-server listening on http://127.0.0.1:8080/ (demo)"),
            Some(8080)
        );
        assert_eq!(parse_listening("starting up"), None);
    }
}
