//! Child processes the harness starts (WebDriver drivers, Xvfb, lucarne-server,
//! ffmpeg): each runs in its own process group, its output is kept in a bounded
//! log, and the whole group is killed when the handle is dropped.
//!
//! Owns only processes it spawned: killing the group reaches a driver's browser
//! children too, and nothing else. It must not look for or signal other processes.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// The last lines a process wrote on stdout and stderr, for failure messages.
#[derive(Clone, Debug, Default)]
pub struct Log {
    /// Shared with the reader tasks that append to it.
    lines: Arc<Mutex<VecDeque<String>>>,
}

impl Log {
    /// Lines kept; older ones are dropped.
    const KEEP: usize = 400;

    fn push(&self, line: String) {
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() == Self::KEEP {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// The last `n` lines, joined with newlines.
    pub fn tail(&self, n: usize) -> String {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        let skip = lines.len().saturating_sub(n);
        lines
            .iter()
            .skip(skip)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A running child process and its process group.
#[derive(Debug)]
pub struct Spawned {
    /// What it is, for messages ("chromedriver", "lucarne-server").
    name: String,
    /// Kept to reap the process and to know whether it exited.
    child: Child,
    /// Process group id (= the child's pid): signalling it reaches grandchildren.
    pgid: Option<Pid>,
    /// Its stdout + stderr (when captured).
    log: Log,
}

/// How to treat the child's stdout/stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Keep the last lines in a [`Log`] (and offer stdout lines to a watcher).
    Capture,
    /// Discard (chatty drivers).
    Discard,
}

impl Spawned {
    /// Starts `program args` in a new process group.
    ///
    /// With [`Output::Capture`], stdout lines are also sent to the returned
    /// receiver, so a caller can wait for a readiness line.
    pub fn start<I, S>(
        name: &str,
        program: impl AsRef<OsStr>,
        args: I,
        envs: &[(&str, String)],
        output: Output,
    ) -> Result<(Self, mpsc::UnboundedReceiver<String>)>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let program = program.as_ref();
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        match output {
            Output::Capture => cmd.stdout(Stdio::piped()).stderr(Stdio::piped()),
            Output::Discard => cmd.stdout(Stdio::null()).stderr(Stdio::null()),
        };
        let mut child = cmd
            .spawn()
            .with_context(|| format!("could not start {name} ({})", program.to_string_lossy()))?;
        let pgid = child.id().map(|id| Pid::from_raw(id as i32));
        let log = Log::default();
        let (tx, rx) = mpsc::unbounded_channel();
        if let Some(out) = child.stdout.take() {
            pump(out, log.clone(), Some(tx));
        }
        if let Some(err) = child.stderr.take() {
            pump(err, log.clone(), None);
        }
        let spawned = Self {
            name: name.to_owned(),
            child,
            pgid,
            log,
        };
        Ok((spawned, rx))
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// What it is ("chromedriver", "lucarne-server").
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its captured output.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// `Some(status)` once the process has exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("unknown ({e})")),
        }
    }

    /// SIGKILLs the whole group and reaps the child.
    pub async fn kill(mut self) {
        self.signal_group();
        let _ = self.child.wait().await;
    }

    /// Stops it as an operator does: SIGTERM to the group, then (after 10 s) SIGKILL;
    /// reaps the child.
    pub async fn terminate(mut self) {
        if let Some(pgid) = self.pgid {
            let _ = killpg(pgid, Signal::SIGTERM);
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            self.signal_group();
            let _ = self.child.wait().await;
        }
        self.pgid = None;
    }

    fn signal_group(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            // ESRCH (already gone) is fine.
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        // kill_on_drop covers the child itself; tokio reaps it in the background.
        self.signal_group();
    }
}

fn pump<R>(reader: R, log: Log, watcher: Option<mpsc::UnboundedSender<String>>)
where
    R: AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut lines = BufReader::new(reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(w) = &watcher {
                let _ = w.send(line.clone());
            }
            log.push(line);
        }
    });
}

/// Finds `program` on PATH (or accepts an existing path).
pub fn which(program: &str) -> Option<PathBuf> {
    let direct = PathBuf::from(program);
    if program.contains('/') {
        return direct.is_file().then_some(direct);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

/// A TCP port that was free a moment ago on 127.0.0.1 (for programs that cannot
/// listen on port 0 and report the port back).
pub fn free_port() -> Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("no free port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}
