//! Chat fan-out benchmark on loopback: lucarne-server against a reference broadcast
//! server on Node's `ws` package (`ws-server.js` beside this crate), in the same run.
//!
//! For each server: viewers join one room in steps while senders post a steady chat
//! rate; at each step, the delay from send to receipt is measured on probe viewers
//! spread through the join order, and the ramp stops once its p95 exceeds 250 ms. Then,
//! for lucarne only, a fresh server's RSS is read before and after idle viewers join a
//! room with 50 messages of history.
//!
//! Fairness and bounds:
//! - Each server runs pinned to CPU 1 and this load generator to CPU 0 (`taskset`), so
//!   both servers get one core and neither competes with the clients.
//! - Both receive the same frames from the same clients. lucarne's senders are ordinary
//!   viewers under its flood limit (one message per 800 ms each). Its idle timeout is
//!   raised because these viewers do not ping (the reference has no timeout at all).
//! - Non-probe viewers read their sockets every 250 ms without decoding, so that the
//!   clients cost far less than the servers; probes read and decode everything at once.
//! - Loopback only; at most `--max-viewers` (19 500: the machine's open-files limit is
//!   20 000) viewers and ~3 minutes in all.
//!
//! With `--redis URL`, lucarne runs its chat hub on that Redis (`--redis` of the server).
//! `--scale` (for `cargo xtask bench scale`) runs the scale figures instead: lucarne's
//! ramp without and with a Redis (a `redis-server` this process starts on a free port,
//! pinned with the clients, and kills), then a fixed load of `--scale-viewers` split
//! over two nodes sharing that Redis, the senders on the first, against the same load
//! on one node without Redis (both nodes pinned to CPU 1, so the two set-ups get the
//! same core; the delay is measured at probes on both nodes).
//!
//! `--cpu MESSAGES` measures what a message costs the server instead: the CPU time of
//! the server process (`/proc/PID/stat`, user + system) while `MESSAGES` chat posts by
//! viewers (the flood limit lifted) reach `--cpu-viewers` viewers, on one node without
//! Redis and on one node on Redis, `--cpu-runs` times each, alternated, the median
//! kept (and redis-server's CPU time in the Redis runs). CPU time, not delay, so it is
//! comparable on a busy machine.
//!
//! Output: a `# ` line per step, then `name: value` summary lines.
//!
//! Run from the workspace root:
//! `cargo build --release -p lucarne-server -p lucarne-bench-chat && target/release/lucarne-bench-chat`

use anyhow::{bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The p95 delay beyond which a step fails.
const LIMIT_MS: f64 = 250.0;
/// Viewer counts tried, in order (capped by `--max-viewers`).
/// Steps grow by about 20 %, so the ratio's resolution is about that.
const STEPS: &[usize] = &[
    250, 500, 1000, 1500, 2000, 2400, 2900, 3500, 4200, 5000, 6000, 7200, 8600, 10_300, 12_400,
    14_900, 17_900, 19_500,
];
/// Each sender posts every `SEND_EVERY` (within lucarne's flood limit of 3 per 2 s), so
/// `--rate` messages per second take `rate × 0.8` senders.
const SEND_EVERY: Duration = Duration::from_millis(800);
/// One viewer in this many is a probe.
const PROBE_EVERY: usize = 40;
/// Measured time per step, and how long late messages are waited for after it.
const WINDOW: Duration = Duration::from_millis(2500);
const GRACE: Duration = Duration::from_millis(1000);
/// Pause between the last join of a step and its measurement.
const SETTLE: Duration = Duration::from_millis(750);
/// Non-probe viewers drain their sockets this often.
const DRAIN_EVERY: Duration = Duration::from_millis(250);
/// Viewers per draining task.
const DRAIN_GROUP: usize = 500;
/// Handshakes in flight at once.
const CONNECTING: usize = 128;
/// A viewer that cannot join within this time fails its step.
const JOIN_TIMEOUT: Duration = Duration::from_secs(20);
/// Time allowed for one server's ramp.
const RAMP_BUDGET: Duration = Duration::from_secs(90);
/// Fixed-load windows measured in `--scale`'s cross-node comparison (the p95 is over all).
const FIXED_WINDOWS: usize = 2;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Lucarne,
    Ws,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Lucarne => "lucarne",
            Kind::Ws => "ws",
        }
    }
}

struct Options {
    root: PathBuf,
    server_bin: PathBuf,
    max_viewers: usize,
    idle_viewers: usize,
    history: usize,
    idle_only: bool,
    only: Option<Kind>,
    /// Chat messages per second in the room.
    rate: f64,
    /// Run lucarne's hub on this Redis.
    redis: Option<String>,
    /// Run the scale figures (see the module doc).
    scale: bool,
    /// Viewers of `--scale`'s cross-node comparison.
    scale_viewers: usize,
    /// Time allowed for one server's ramp.
    ramp_budget: Duration,
    /// `--cpu`: messages per run (0: not this mode).
    cpu_messages: usize,
    /// `--cpu`: viewers each message reaches.
    cpu_viewers: usize,
    /// `--cpu`: runs per set-up.
    cpu_runs: usize,
    /// Extra arguments for lucarne-server.
    server_args: Vec<String>,
}

impl Options {
    fn senders(&self) -> usize {
        (self.rate * SEND_EVERY.as_secs_f64()).round().max(1.0) as usize
    }
}

fn options() -> Result<Options> {
    let root = std::env::current_dir()?;
    let mut o = Options {
        server_bin: root.join("target/release/lucarne-server"),
        root,
        max_viewers: 19_500,
        idle_viewers: 5_000,
        history: 50,
        idle_only: false,
        only: None,
        rate: 50.0,
        redis: None,
        scale: false,
        scale_viewers: 2000,
        ramp_budget: RAMP_BUDGET,
        cpu_messages: 0,
        cpu_viewers: 200,
        cpu_runs: 3,
        server_args: Vec::new(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().context(format!("{a} needs a value"));
        match a.as_str() {
            "--server-bin" => o.server_bin = PathBuf::from(value()?),
            "--max-viewers" => o.max_viewers = value()?.parse()?,
            "--idle-viewers" => o.idle_viewers = value()?.parse()?,
            "--history" => o.history = value()?.parse()?,
            "--rate" => o.rate = value()?.parse::<f64>()?.clamp(1.0, 500.0),
            "--idle-only" => o.idle_only = true,
            "--redis" => o.redis = Some(value()?.clone()),
            "--scale" => o.scale = true,
            "--cpu" => o.cpu_messages = value()?.parse::<usize>()?.clamp(100, 1_000_000),
            "--cpu-viewers" => o.cpu_viewers = value()?.parse::<usize>()?.clamp(1, 19_000),
            "--cpu-runs" => o.cpu_runs = value()?.parse::<usize>()?.clamp(1, 20),
            "--scale-viewers" => o.scale_viewers = value()?.parse::<usize>()?.max(PROBE_EVERY),
            "--ramp-seconds" => {
                o.ramp_budget = Duration::from_secs(value()?.parse::<u64>()?.clamp(5, 600))
            }
            "--only" => {
                o.only = Some(match value()?.as_str() {
                    "lucarne" => Kind::Lucarne,
                    "ws" => Kind::Ws,
                    other => bail!("--only lucarne|ws, not {other}"),
                })
            }
            _ => bail!(
                "usage: lucarne-bench-chat [--server-bin PATH] [--max-viewers N] [--idle-viewers N]\n\
                 [--rate MSG_PER_S] [--history N] [--idle-only] [--only lucarne|ws]\n\
                 [--redis URL] [--ramp-seconds N] [--scale [--scale-viewers N]]\n\
                 [--cpu MESSAGES [--cpu-viewers N] [--cpu-runs N]]\n\
                 (run from the workspace root)"
            ),
        }
    }
    // The open-files limit here is 20 000 and cannot always be raised.
    o.max_viewers = o.max_viewers.min(19_500);
    o.idle_viewers = o.idle_viewers.min(20_000);
    o.scale_viewers = o.scale_viewers.min(o.max_viewers);
    Ok(o)
}

/// The soft open-files limit of this process.
fn open_files_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            let line = l.lines().find(|l| l.starts_with("Max open files"))?;
            line.split_whitespace().nth(3)?.parse().ok()
        })
        .unwrap_or(1024)
}

fn main() -> Result<()> {
    let mut opts = options()?;
    if !opts.server_bin.exists() {
        bail!(
            "{} not found: cargo build --release -p lucarne-server",
            opts.server_bin.display()
        );
    }
    let pid = std::process::id().to_string();
    // A socket per viewer here and as many in the server (children inherit the limit):
    // raise the open-files limit if it is short, else lower the cap.
    let needed = opts.max_viewers.max(opts.idle_viewers) as u64 + 200;
    if open_files_limit() < needed {
        let _ = std::process::Command::new("prlimit")
            .args(["--pid", &pid, &format!("--nofile={needed}:{needed}")])
            .stderr(Stdio::null())
            .status();
    }
    let limit = open_files_limit();
    if limit < needed {
        let cap = limit.saturating_sub(200) as usize;
        println!("# open-files limit {limit}: viewers capped at {cap}");
        opts.max_viewers = opts.max_viewers.min(cap);
        opts.idle_viewers = opts.idle_viewers.min(cap);
    }
    // Pin before the runtime starts so that every thread inherits it.
    let pinned = std::process::Command::new("taskset")
        .args(["-cp", "0", &pid])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !pinned {
        eprintln!("# taskset unavailable: servers and clients share the cores");
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            if opts.scale {
                scale(opts, pinned).await
            } else if opts.cpu_messages > 0 {
                cpu(opts, pinned).await
            } else {
                run(opts, pinned).await
            }
        })
}

async fn run(opts: Options, pinned: bool) -> Result<()> {
    let started = Instant::now();
    ensure_node_modules(&opts.root).await?;
    println!(
        "# chat fan-out on loopback: {} msg/s in one room ({} senders), p95 limit {LIMIT_MS} ms, \
         servers {}",
        opts.senders() as f64 / SEND_EVERY.as_secs_f64(),
        opts.senders(),
        if pinned {
            "on CPU 1, clients on CPU 0"
        } else {
            "unpinned"
        }
    );

    if let Some(url) = &opts.redis {
        println!("# lucarne's hub on Redis at {url}");
    }
    let rss = idle_rss(&opts, pinned).await?;
    if opts.idle_only {
        println!("lucarne_rss_per_viewer_kb: {rss:.1}");
        return Ok(());
    }
    let skipped = || RampResult {
        max_viewers: 0,
        p95_at_max: f64::NAN,
        capped: false,
    };
    let lucarne = match opts.only {
        Some(Kind::Ws) => skipped(),
        _ => ramp(&opts, Kind::Lucarne, opts.redis.as_deref(), pinned).await?,
    };
    let ws = match opts.only {
        Some(Kind::Lucarne) => skipped(),
        _ => ramp(&opts, Kind::Ws, None, pinned).await?,
    };

    let ratio = lucarne.max_viewers as f64 / ws.max_viewers.max(1) as f64;
    println!("# total time {:.0} s", started.elapsed().as_secs_f64());
    println!("lucarne_max_viewers: {}", lucarne.max_viewers);
    println!("ws_max_viewers: {}", ws.max_viewers);
    println!("viewers_ratio: {ratio:.2}");
    println!("lucarne_p95_ms: {:.1}", lucarne.p95_at_max);
    println!("ws_p95_ms: {:.1}", ws.p95_at_max);
    println!("lucarne_reached_cap: {}", lucarne.capped);
    println!("lucarne_rss_per_viewer_kb: {rss:.1}");
    Ok(())
}

async fn ensure_node_modules(root: &Path) -> Result<()> {
    let dir = root.join("bench/chat");
    if dir.join("node_modules/ws/package.json").exists() {
        return Ok(());
    }
    eprintln!("# installing the reference server's dependencies (npm ci)");
    let ok = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--silent"])
        .current_dir(&dir)
        .status()
        .await
        .context("running npm")?
        .success();
    if !ok {
        bail!("npm ci failed in {}", dir.display());
    }
    Ok(())
}

/// A server child process, killed when dropped.
struct ServerProc {
    child: Child,
    port: u16,
    _data: Option<TempDir>,
}

impl ServerProc {
    /// The server's pid: the child of the `timeout` wrapper.
    fn pid(&self) -> u32 {
        let wrapper = self.child.id().unwrap_or(0);
        std::fs::read_to_string(format!("/proc/{wrapper}/task/{wrapper}/children"))
            .ok()
            .and_then(|c| c.split_whitespace().next()?.parse().ok())
            .unwrap_or(wrapper)
    }

    fn rss_kb(&self) -> Result<u64> {
        let pid = self.pid();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS")
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        // Killing the `timeout` wrapper would orphan the server: kill the server itself.
        let pid = self.pid().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status();
    }
}

/// CPU time (user + system) of a process so far, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may contain spaces).
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

/// Busy and total jiffies of CPU `n` (all processes, softirq included).
fn core_jiffies(n: usize) -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let name = format!("cpu{n} ");
    stat.lines()
        .find(|l| l.starts_with(&name))
        .map(|l| {
            let v: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            let total: u64 = v.iter().sum();
            // idle + iowait
            let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
            (total - idle, total)
        })
        .unwrap_or((0, 1))
}

/// A directory removed on drop (the server's data dir).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn start_server(
    opts: &Options,
    kind: Kind,
    redis: Option<&str>,
    pinned: bool,
) -> Result<ServerProc> {
    // `timeout` bounds the child's life even if this process is killed.
    let mut cmd = Command::new("timeout");
    cmd.args(["--signal=KILL", "400"]);
    if pinned {
        cmd.args(["taskset", "-c", "1"]);
    }
    let mut data = None;
    match kind {
        Kind::Lucarne => {
            let dir = std::env::temp_dir().join(format!(
                "lucarne-bench-{}-{}",
                std::process::id(),
                Instant::now().elapsed().as_nanos()
            ));
            cmd.arg(&opts.server_bin).args([
                "--listen",
                "127.0.0.1:0",
                "--no-demo",
                "--broadcaster-token",
                "bench",
                "--chat-idle-timeout-secs",
                "3600",
                // The bench's room is not a stream's, and every simulated viewer is a
                // new identity from 127.0.0.1: both are refused by default.
                "--free-rooms",
                "--new-viewers-per-ip",
                "0",
                "--data-dir",
            ]);
            cmd.arg(&dir).env("RUST_LOG", "warn");
            if let Some(url) = redis {
                cmd.args(["--redis", url]);
            }
            cmd.args(&opts.server_args);
            data = Some(TempDir(dir));
        }
        Kind::Ws => {
            cmd.arg("node")
                .arg(opts.root.join("bench/chat/ws-server.js"))
                .env("PORT", "0");
        }
    }
    let mut child = cmd
        .current_dir(&opts.root)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting the {} server", kind.name()))?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let port = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(rest) = line.split("listening on ").nth(1) {
                let port = rest.rsplit(':').next().unwrap_or(rest).trim();
                return Ok::<u16, anyhow::Error>(port.parse()?);
            }
        }
        bail!("{} server exited before listening", kind.name())
    })
    .await
    .context("server start timed out")??;
    // Keep draining its output so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(ServerProc {
        child,
        port,
        _data: data,
    })
}

fn micros(origin: Instant) -> u64 {
    origin.elapsed().as_micros() as u64
}

/// Opens a WebSocket (small read buffer: there are thousands of them here).
async fn connect(port: u16, room: &str) -> Result<Ws> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    tcp.set_nodelay(true)?;
    let req = format!("ws://127.0.0.1:{port}/chat/{room}").into_client_request()?;
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (ws, _) =
        tokio_tungstenite::client_async_with_config(req, MaybeTlsStream::Plain(tcp), Some(config))
            .await?;
    Ok(ws)
}

/// Connects a viewer; for lucarne says hello and waits for the welcome.
async fn join(port: u16, kind: Kind, room: &str, hello: &str) -> Result<Ws> {
    tokio::time::timeout(JOIN_TIMEOUT, join_inner(port, kind, room, hello))
        .await
        .context("join timed out")?
}

async fn join_inner(port: u16, kind: Kind, room: &str, hello: &str) -> Result<Ws> {
    let mut ws = connect(port, room).await?;
    if kind == Kind::Lucarne {
        ws.send(Message::text(hello)).await?;
        loop {
            match tokio::time::timeout(Duration::from_secs(30), ws.next()).await? {
                Some(Ok(Message::Text(t))) if t.as_str().starts_with("{\"type\":\"welcome\"") => {
                    break
                }
                Some(Ok(_)) => {}
                other => bail!("no welcome: {other:?}"),
            }
        }
    }
    Ok(ws)
}

const HELLO: &str = r#"{"type":"hello","protocolVersion":1}"#;

/// Connects `n` viewers with bounded concurrency.
async fn join_many(port: u16, kind: Kind, room: &str, n: usize) -> Result<Vec<Ws>> {
    let mut out = Vec::with_capacity(n);
    let mut set = tokio::task::JoinSet::new();
    let mut started = 0;
    while out.len() < n {
        while started < n && set.len() < CONNECTING {
            let room = room.to_owned();
            set.spawn(async move { join(port, kind, &room, HELLO).await });
            started += 1;
        }
        match set.join_next().await {
            Some(r) => out.push(r??),
            None => break,
        }
    }
    Ok(out)
}

/// Reads every viewer of the group now and then, without decoding; counts the sockets
/// the server closed.
fn drain(group: Vec<Ws>, closed: Arc<Mutex<usize>>, stop: Arc<tokio::sync::Notify>) {
    tokio::spawn(async move {
        let mut group = group;
        let mut buf = vec![0u8; 64 * 1024];
        let mut tick = tokio::time::interval(DRAIN_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.notified() => return,
            }
            let before = group.len();
            group.retain_mut(|ws| {
                let MaybeTlsStream::Plain(tcp) = ws.get_mut() else {
                    return false;
                };
                loop {
                    match tcp.try_read(&mut buf) {
                        Ok(0) => return false,
                        Ok(_) => continue,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                        Err(_) => return false,
                    }
                }
            });
            if group.len() < before {
                *closed.lock().unwrap() += before - group.len();
            }
        }
    });
}

/// Delay samples: (send time, delay), in µs on the bench's clock.
type Samples = Arc<Mutex<Vec<(u64, u64)>>>;

/// A probe: reads and decodes every frame at once and records delays.
fn probe(mut ws: Ws, origin: Instant, samples: Samples, stop: Arc<tokio::sync::Notify>) {
    tokio::spawn(async move {
        loop {
            let msg = tokio::select! {
                m = ws.next() => m,
                _ = stop.notified() => return,
            };
            let Some(Ok(Message::Text(t))) = msg else {
                match msg {
                    Some(Ok(_)) => continue,
                    _ => return,
                }
            };
            let now = micros(origin);
            // The text starts with the send time: `"text":"<µs> ...`.
            if let Some(sent) = t
                .as_str()
                .split("\"text\":\"")
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .and_then(|n| n.parse::<u64>().ok())
            {
                samples
                    .lock()
                    .unwrap()
                    .push((sent, now.saturating_sub(sent)));
            }
        }
    });
}

/// A sender: posts every `SEND_EVERY`, logs send times, drains what it receives.
fn sender(
    mut ws: Ws,
    (i, senders): (usize, usize),
    origin: Instant,
    sent: Samples,
    stop: Arc<tokio::sync::Notify>,
) {
    tokio::spawn(async move {
        // Spread the senders over the period.
        let offset = SEND_EVERY.mul_f64(i as f64 / senders as f64);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + offset, SEND_EVERY);
        let mut buf = vec![0u8; 64 * 1024];
        let mut n = 0u64;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.notified() => return,
            }
            let at = micros(origin);
            let text = format!(
                r#"{{"type":"chat","text":"{at} hello from the benchmark","clientId":"s{i}-{n}"}}"#
            );
            n += 1;
            if ws.send(Message::text(text)).await.is_err() {
                eprintln!("# sender {i} lost its connection");
                return;
            }
            sent.lock().unwrap().push((at, 0));
            if let MaybeTlsStream::Plain(tcp) = ws.get_mut() {
                while matches!(tcp.try_read(&mut buf), Ok(n) if n > 0) {}
            }
        }
    });
}

/// One measurement window.
struct Measure {
    p50: f64,
    p95: f64,
    p99: f64,
    /// Percent of one core, over the window.
    server_cpu: f64,
    client_cpu: f64,
    /// How busy the server's core was (any process, softirq included), percent.
    core1_busy: f64,
}

async fn measure(
    server_pid: u32,
    origin: Instant,
    samples: &Samples,
    sent: &Samples,
    probes: usize,
) -> Measure {
    let me = std::process::id();
    let before = (cpu_ticks(server_pid), cpu_ticks(me));
    let core_before = core_jiffies(1);
    let from = micros(origin);
    tokio::time::sleep(WINDOW).await;
    let to = micros(origin);
    // Clock ticks are 1/100 s: ticks per second of window = percent of one core.
    let cpu = |before: u64, pid: u32| (cpu_ticks(pid) - before) as f64 / WINDOW.as_secs_f64();
    let (server_cpu, client_cpu) = (cpu(before.0, server_pid), cpu(before.1, me));
    let core_after = core_jiffies(1);
    let core1_busy = 100.0 * (core_after.0 - core_before.0) as f64
        / (core_after.1 - core_before.1).max(1) as f64;
    tokio::time::sleep(GRACE).await;
    let s = samples.lock().unwrap();
    let sent = sent.lock().unwrap();
    let at = |p| percentile_ms(&s, &sent, probes, from, to, p);
    Measure {
        p50: at(0.5),
        p95: at(0.95),
        p99: at(0.99),
        server_cpu,
        client_cpu,
        core1_busy,
    }
}

struct RampResult {
    max_viewers: usize,
    p95_at_max: f64,
    capped: bool,
}

/// p95 of the delays of messages sent in `[from, to)`, counting a message a probe never
/// got as infinitely late.
fn percentile_ms(
    samples: &[(u64, u64)],
    sent: &[(u64, u64)],
    probes: usize,
    from: u64,
    to: u64,
    p: f64,
) -> f64 {
    let expected = sent.iter().filter(|(t, _)| (from..to).contains(t)).count() * probes;
    let mut delays: Vec<u64> = samples
        .iter()
        .filter(|(t, _)| (from..to).contains(t))
        .map(|&(_, d)| d)
        .collect();
    if expected == 0 {
        return f64::INFINITY;
    }
    delays.sort_unstable();
    let rank = ((expected as f64 * p).ceil() as usize).max(1) - 1;
    delays
        .get(rank)
        .map_or(f64::INFINITY, |&d| d as f64 / 1000.0)
}

async fn ramp(opts: &Options, kind: Kind, redis: Option<&str>, pinned: bool) -> Result<RampResult> {
    let server = start_server(opts, kind, redis, pinned).await?;
    let port = server.port;
    let origin = Instant::now();
    let stop = Arc::new(tokio::sync::Notify::new());
    let samples: Samples = Arc::default();
    let sent: Samples = Arc::default();
    let closed = Arc::new(Mutex::new(0usize));
    let room = "bench";

    let senders = opts.senders();
    for i in 0..senders {
        let hello = format!(r#"{{"type":"hello","protocolVersion":1,"name":"sender {i}"}}"#);
        let ws = join(port, kind, room, &hello).await?;
        sender(ws, (i, senders), origin, sent.clone(), stop.clone());
    }

    let mut viewers = senders;
    let mut probes = 0;
    let mut best = RampResult {
        max_viewers: 0,
        p95_at_max: f64::NAN,
        capped: false,
    };
    let ramp_started = Instant::now();
    for &target in STEPS.iter().filter(|&&s| s <= opts.max_viewers) {
        if ramp_started.elapsed() > opts.ramp_budget {
            println!("# {}: time budget spent", kind.name());
            break;
        }
        let add = target.saturating_sub(viewers);
        let joined = match join_many(port, kind, room, add).await {
            Ok(j) => j,
            Err(e) => {
                println!(
                    "# {}: joining failed at {target} viewers: {e:#}",
                    kind.name()
                );
                break;
            }
        };
        let mut passive = Vec::with_capacity(joined.len());
        for (k, ws) in joined.into_iter().enumerate() {
            if (viewers + k).is_multiple_of(PROBE_EVERY) {
                probe(ws, origin, samples.clone(), stop.clone());
                probes += 1;
            } else {
                passive.push(ws);
            }
        }
        viewers = target;
        while !passive.is_empty() {
            let group = passive.split_off(passive.len().saturating_sub(DRAIN_GROUP));
            drain(group, closed.clone(), stop.clone());
        }
        // Let the joins settle, then measure; a window over the limit is measured again
        // so that one pause (a GC, a burst of handshakes) does not end the ramp.
        tokio::time::sleep(SETTLE).await;
        let mut m = measure(server.pid(), origin, &samples, &sent, probes).await;
        let mut tries = 1;
        if m.p95 > LIMIT_MS {
            m = measure(server.pid(), origin, &samples, &sent, probes).await;
            tries = 2;
        }
        let dropped = *closed.lock().unwrap();
        println!(
            "# {:<7} viewers {target:>6}  probes {probes:>4}  delay p50 {:>7.1} ms  p95 {:>7.1} ms  \
             p99 {:>7.1} ms  windows {tries}  dropped {dropped}  cpu: server {:.0}%, clients {:.0}%, core 1 {:.0}%",
            kind.name(),
            m.p50,
            m.p95,
            m.p99,
            m.server_cpu,
            m.client_cpu,
            m.core1_busy,
        );
        if m.p95 > LIMIT_MS {
            break;
        }
        let p95 = m.p95;
        best.max_viewers = target;
        best.p95_at_max = p95;
        best.capped = target == opts.max_viewers.min(*STEPS.last().unwrap());
    }
    stop.notify_waiters();
    drop(server);
    Ok(best)
}

/// Server RSS growth per idle viewer (lucarne), in a room with `--history` messages.
async fn idle_rss(opts: &Options, pinned: bool) -> Result<f64> {
    let server = start_server(opts, Kind::Lucarne, opts.redis.as_deref(), pinned).await?;
    let port = server.port;
    let mut host = join(
        port,
        Kind::Lucarne,
        "idle",
        r#"{"type":"hello","protocolVersion":1,"authToken":"bench"}"#,
    )
    .await?;
    for i in 0..opts.history {
        let text = format!(
            r#"{{"type":"chat","text":"message {i}: a typical line of chat, about this long","clientId":"h{i}"}}"#
        );
        host.send(Message::text(text)).await?;
    }
    // Wait for the last echo: the history is in place.
    let last = format!("\"clientId\":\"h{}\"", opts.history.saturating_sub(1));
    if opts.history > 0 {
        loop {
            match tokio::time::timeout(Duration::from_secs(10), host.next()).await? {
                Some(Ok(Message::Text(t))) if t.as_str().contains(&last) => break,
                Some(Ok(_)) => {}
                other => bail!("history setup: {other:?}"),
            }
        }
    }
    // Warm up the allocator and the room with a few viewers first.
    let warm = join_many(port, Kind::Lucarne, "idle", 100).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = server.rss_kb()?;
    let idle = join_many(port, Kind::Lucarne, "idle", opts.idle_viewers).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = server.rss_kb()?;
    let per = (after.saturating_sub(before)) as f64 / opts.idle_viewers.max(1) as f64;
    println!(
        "# lucarne idle: RSS {before} kB -> {after} kB with {} idle viewers",
        opts.idle_viewers
    );
    drop((warm, idle, host));
    Ok(per)
}

/// `--scale`: lucarne's ramp without and with Redis, then the cross-node comparison.
async fn scale(opts: Options, pinned: bool) -> Result<()> {
    let started = Instant::now();
    println!(
        "# scale: {} msg/s in one room ({} senders), p95 limit {LIMIT_MS} ms, ramps of at most \
         {} s, nodes {}",
        opts.senders() as f64 / SEND_EVERY.as_secs_f64(),
        opts.senders(),
        opts.ramp_budget.as_secs(),
        if pinned {
            "on CPU 1, clients and Redis on CPU 0"
        } else {
            "unpinned"
        }
    );
    let local = ramp(&opts, Kind::Lucarne, None, pinned).await?;
    let redis = RedisProc::start(pinned).await?;
    println!("# lucarne's hub on Redis at {}", redis.url());
    let on_redis = ramp(&opts, Kind::Lucarne, Some(&redis.url()), pinned).await?;
    drop(redis);

    let n = opts.scale_viewers;
    let one = {
        let node = start_server(&opts, Kind::Lucarne, None, pinned).await?;
        fixed_load(&opts, &[&node], n, "one node").await?
    };
    let cross = {
        // A fresh Redis: nothing left from the ramp's room.
        let redis = RedisProc::start(pinned).await?;
        let a = start_server(&opts, Kind::Lucarne, Some(&redis.url()), pinned).await?;
        let b = start_server(&opts, Kind::Lucarne, Some(&redis.url()), pinned).await?;
        fixed_load(&opts, &[&a, &b], n, "two nodes on Redis").await?
    };

    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    println!("# chat scale time {:.0} s", started.elapsed().as_secs_f64());
    println!("chat_local_max_viewers: {}", local.max_viewers);
    println!("chat_redis_max_viewers: {}", on_redis.max_viewers);
    println!(
        "redis_viewers_ratio: {:.2}",
        ratio(on_redis.max_viewers as f64, local.max_viewers as f64)
    );
    println!("chat_local_p95_ms_at_max: {:.1}", local.p95_at_max);
    println!("chat_redis_p95_ms_at_max: {:.1}", on_redis.p95_at_max);
    println!("chat_one_node_p95_ms: {one:.1}");
    println!("chat_cross_node_p95_ms: {cross:.1}");
    println!("cross_node_p95_ratio: {:.2}", ratio(cross, one));
    Ok(())
}

/// `n` viewers split evenly over `nodes`, the senders on the first, for
/// [`FIXED_WINDOWS`] windows: returns the p95 delay over every probe, in ms (a message a
/// probe never got counts as infinitely late).
async fn fixed_load(opts: &Options, nodes: &[&ServerProc], n: usize, label: &str) -> Result<f64> {
    let origin = Instant::now();
    let stop = Arc::new(tokio::sync::Notify::new());
    let sent: Samples = Arc::default();
    let closed = Arc::new(Mutex::new(0usize));
    let room = "scale";
    let senders = opts.senders();
    for i in 0..senders {
        let hello = format!(r#"{{"type":"hello","protocolVersion":1,"name":"sender {i}"}}"#);
        let ws = join(nodes[0].port, Kind::Lucarne, room, &hello).await?;
        sender(ws, (i, senders), origin, sent.clone(), stop.clone());
    }
    // Per node: its probes' samples and how many probes it has.
    let mut per_node: Vec<(Samples, usize)> = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let share = n / nodes.len() + usize::from(i < n % nodes.len());
        let joined = join_many(node.port, Kind::Lucarne, room, share).await?;
        let samples: Samples = Arc::default();
        let mut probes = 0;
        let mut passive = Vec::with_capacity(joined.len());
        for (k, ws) in joined.into_iter().enumerate() {
            if k.is_multiple_of(PROBE_EVERY) {
                probe(ws, origin, samples.clone(), stop.clone());
                probes += 1;
            } else {
                passive.push(ws);
            }
        }
        while !passive.is_empty() {
            let group = passive.split_off(passive.len().saturating_sub(DRAIN_GROUP));
            drain(group, closed.clone(), stop.clone());
        }
        per_node.push((samples, probes));
    }
    tokio::time::sleep(SETTLE).await;
    let from = micros(origin);
    tokio::time::sleep(WINDOW * FIXED_WINDOWS as u32).await;
    let to = micros(origin);
    tokio::time::sleep(GRACE).await;
    stop.notify_waiters();

    let sent = sent.lock().unwrap().clone();
    let mut all = Vec::new();
    let mut probes = 0;
    let mut each = Vec::new();
    for (samples, p) in &per_node {
        let s = samples.lock().unwrap();
        each.push(format!(
            "p95 {:.1} ms over {p} probes",
            percentile_ms(&s, &sent, *p, from, to, 0.95)
        ));
        all.extend_from_slice(&s);
        probes += p;
    }
    let at = |q| percentile_ms(&all, &sent, probes, from, to, q);
    let (p50, p95, p99) = (at(0.5), at(0.95), at(0.99));
    println!(
        "# {label}: {n} viewers, delay p50 {p50:.1} ms  p95 {p95:.1} ms  p99 {p99:.1} ms  \
         dropped {}; per node: {}",
        *closed.lock().unwrap(),
        each.join(", ")
    );
    Ok(p95)
}

/// A `redis-server` on a free loopback port, nothing persisted, pinned with the clients;
/// killed when dropped (and by `timeout` if this process dies first).
struct RedisProc(ServerProc);

impl RedisProc {
    async fn start(pinned: bool) -> Result<RedisProc> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut cmd = Command::new("timeout");
        cmd.args(["--signal=KILL", "400"]);
        if pinned {
            cmd.args(["taskset", "-c", "0"]);
        }
        let child = cmd
            .arg("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting redis-server (apt-get install redis-server)")?;
        let redis = RedisProc(ServerProc {
            child,
            port,
            _data: None,
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if redis.answers().await {
                return Ok(redis);
            }
            if Instant::now() > deadline {
                bail!("redis-server did not answer PING on port {port}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.0.port)
    }

    async fn answers(&self) -> bool {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.0.port)).await else {
            return false;
        };
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").await.is_ok()
            && tokio::time::timeout(Duration::from_secs(1), s.read_exact(&mut buf))
                .await
                .is_ok_and(|r| r.is_ok())
            && &buf == b"+PONG\r\n"
    }
}

/// Senders in `--cpu`; each posts its share of the messages.
const CPU_SENDERS: usize = 20;
/// Messages per second over all senders in `--cpu` (paced, so both set-ups get the same
/// load and the same batching chances).
const CPU_RATE: f64 = 1000.0;

/// `--cpu`: the server's CPU time per message, without and with Redis (see the module
/// doc).
async fn cpu(mut opts: Options, pinned: bool) -> Result<()> {
    opts.server_args = ["--chat-burst", "1000000", "--chat-window-ms", "1"]
        .map(String::from)
        .to_vec();
    let n = opts.cpu_messages;
    println!(
        "# server CPU per message: {n} posts at {CPU_RATE} msg/s by {CPU_SENDERS} viewers to {} \
         viewers, {} runs each, server {}",
        opts.cpu_viewers,
        opts.cpu_runs,
        if pinned { "on CPU 1" } else { "unpinned" }
    );
    let (mut local, mut shared, mut in_redis) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..opts.cpu_runs {
        let (ms, _) = cpu_run(&opts, None, pinned).await?;
        println!("# run {run}: one node without Redis: {ms:.0} ms of CPU");
        local.push(ms);
        let redis = RedisProc::start(pinned).await?;
        let (ms, redis_ms) = cpu_run(&opts, Some((&redis.url(), redis.0.pid())), pinned).await?;
        println!(
            "# run {run}: one node on Redis: {ms:.0} ms of CPU, redis-server {redis_ms:.0} ms"
        );
        shared.push(ms);
        in_redis.push(redis_ms);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let per = |ms: f64| ms * 10_000.0 / n as f64;
    let (l, r) = (median(&mut local), median(&mut shared));
    println!("cpu_ms_per_10k_messages_local: {:.0}", per(l));
    println!("cpu_ms_per_10k_messages_redis: {:.0}", per(r));
    println!("cpu_redis_over_local: {:.2}", r / l);
    println!(
        "cpu_ms_per_10k_messages_in_redis_server: {:.0}",
        per(median(&mut in_redis))
    );
    Ok(())
}

/// One `--cpu` run: a fresh server, its viewers, then the posts; the server's CPU time
/// (ms) from the first post until a probe viewer has seen the last.
async fn cpu_run(opts: &Options, redis: Option<(&str, u32)>, pinned: bool) -> Result<(f64, f64)> {
    let server = start_server(opts, Kind::Lucarne, redis.map(|r| r.0), pinned).await?;
    let room = "cpu";
    let viewers = join_many(server.port, Kind::Lucarne, room, opts.cpu_viewers).await?;
    let stop = Arc::new(tokio::sync::Notify::new());
    let closed = Arc::new(Mutex::new(0));
    let mut viewers = viewers.into_iter();
    loop {
        let group: Vec<Ws> = viewers.by_ref().take(DRAIN_GROUP).collect();
        if group.is_empty() {
            break;
        }
        drain(group, closed.clone(), stop.clone());
    }
    let mut probe = join(server.port, Kind::Lucarne, room, HELLO).await?;
    let mut senders = Vec::new();
    for i in 0..CPU_SENDERS {
        let hello = format!(r#"{{"type":"hello","protocolVersion":1,"name":"sender {i}"}}"#);
        senders.push(join(server.port, Kind::Lucarne, room, &hello).await?);
    }
    tokio::time::sleep(SETTLE).await;
    let pid = server.pid();
    let before = cpu_ticks(pid);
    let redis_before = redis.map_or(0, |r| cpu_ticks(r.1));
    let each = n_each(opts.cpu_messages);
    let every = Duration::from_secs_f64(CPU_SENDERS as f64 / CPU_RATE);
    for (i, mut ws) in senders.into_iter().enumerate() {
        let stop = stop.clone();
        tokio::spawn(async move {
            let offset = every.mul_f64(i as f64 / CPU_SENDERS as f64);
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + offset, every);
            let mut buf = vec![0u8; 64 * 1024];
            for k in 0..each {
                tick.tick().await;
                let text = format!(
                    r#"{{"type":"chat","text":"{k} hello from the benchmark","clientId":"c{i}-{k}"}}"#
                );
                if ws.send(Message::text(text)).await.is_err() {
                    eprintln!("# sender {i} lost its connection");
                    return;
                }
                if let MaybeTlsStream::Plain(tcp) = ws.get_mut() {
                    while matches!(tcp.try_read(&mut buf), Ok(n) if n > 0) {}
                }
            }
            // Keep the socket open until the run ends.
            stop.notified().await;
        });
    }
    let total = each * CPU_SENDERS;
    let mut seen = 0;
    let deadline = Duration::from_secs_f64(total as f64 / CPU_RATE * 3.0 + 30.0);
    tokio::time::timeout(deadline, async {
        while seen < total {
            match probe.next().await {
                Some(Ok(Message::Text(t))) if t.as_str().starts_with("{\"type\":\"chat\"") => {
                    seen += 1
                }
                Some(Ok(_)) => {}
                other => bail!("probe lost: {other:?}"),
            }
        }
        Ok(())
    })
    .await
    .with_context(|| format!("the probe saw {seen} of {total} messages in time"))??;
    let ticks = cpu_ticks(pid) - before;
    let redis_ticks = redis.map_or(0, |r| cpu_ticks(r.1) - redis_before);
    stop.notify_waiters();
    if *closed.lock().unwrap() > 0 {
        bail!("the server closed viewers during the run");
    }
    // Clock ticks are 1/100 s.
    let ms = |ticks: u64| ticks as f64 * 10.0 * opts.cpu_messages as f64 / total as f64;
    Ok((ms(ticks), ms(redis_ticks)))
}

fn n_each(messages: usize) -> usize {
    messages.div_ceil(CPU_SENDERS)
}
