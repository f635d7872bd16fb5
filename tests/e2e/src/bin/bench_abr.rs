//! bench_abr: adaptive bitrate, lucarne vs hls.js, on the same three-rendition live
//! stream through links that follow the same bandwidth schedule, at the same time. A
//! benchmark, never a pass/fail test: it prints numbers.
//!
//! ```text
//! cargo run --release -p lucarne-e2e --bin bench_abr -- [--schedule 4000:20,1000:20,400:15,4000:25]
//! ```
//!
//! ffmpeg broadcasts [`HlsSource::Ladder`] (960×540 at 2.5 Mbit/s, 640×360 at
//! 800 kbit/s, 320×180 at 250 kbit/s, `-var_stream_map`, 2 s segments) on a static
//! origin. Each player reaches it through its own [`Throttle`] — a link of its own, so
//! neither player's downloads take bandwidth from the other's — and both links are set
//! to each step's rate at the same instant. lucarne (bench/abr-lucarne.html: the widget
//! from lucarne-server, 960 px wide) and hls.js (bench/abr-hlsjs.html: npm's
//! `hls.min.js`, default config) play in two browsers of the engine chosen by
//! `LUCARNE_E2E_ENGINE` (default Chromium, headless). Both links run the first step's
//! rate until both players show a first frame; then the schedule starts, and the run is
//! measured from its start to its end, the same wall-clock window for both.
//!
//! Measured in each page by bench/abr.js, the same way for both: the rendition
//! playing (lucarne: `detail.height` of its `lucarne:status` events; hls.js: the level
//! of `LEVEL_SWITCHED`), mapped to its `BANDWIDTH` in the master playlist; stalls,
//! `waiting` to `playing` or to the time advancing again. The `<video>`'s own
//! `videoHeight` changes are a cross-check (printed to stderr, as `picture_kbps`).
//! See [`lucarne_e2e::abr_bench`] for the arithmetic.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use lucarne_e2e::abr_bench::{self, Record, Step};
use lucarne_e2e::{
    bench_pages, Browser, FfmpegHls, HlsSource, Origin, OriginConfig, StaticServer, Throttle,
};

const USAGE: &str = "usage: bench_abr [--schedule kbps:seconds,kbps:seconds,...]";
/// How long each player gets to show its first frame.
const FIRST_FRAME: Duration = Duration::from_secs(40);

fn parse_args() -> Result<Vec<Step>> {
    let mut args = std::env::args().skip(1);
    let mut schedule = abr_bench::SCHEDULE.to_vec();
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--schedule" => {
                let text = args
                    .next()
                    .with_context(|| format!("--schedule needs a value; {USAGE}"))?;
                schedule = abr_bench::parse_schedule(&text)?;
            }
            _ => bail!("unknown argument {flag}; {USAGE}"),
        }
    }
    Ok(schedule)
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// One player: its name, browser, link and what its page recorded.
struct Player {
    name: &'static str,
    browser: Browser,
    link: Throttle,
}

#[tokio::main]
async fn main() -> Result<()> {
    let schedule = parse_args()?;
    let started = Instant::now();
    bench_pages::ensure_deps().await?;
    let hlsjs = bench_pages::dir().join("node_modules/hls.js/dist/hls.min.js");
    if !hlsjs.is_file() {
        bail!("{} missing (npm ci in bench/)", hlsjs.display());
    }
    let ts_module = abr_bench::ts_module_bytes_br(&OriginConfig::from_env()?.dist)?;

    let origin = Origin::start().await?;
    let mut stream = FfmpegHls::start(HlsSource::Ladder).await?;
    // A window as long as the players' hold-back and more, as on a stream that has been
    // live for a while.
    stream.wait_for_segments(5, Duration::from_secs(30)).await?;
    let master = stream.dir().join(stream.path().trim_start_matches('/'));
    let ladder = abr_bench::parse_ladder(
        &std::fs::read_to_string(&master)
            .with_context(|| format!("reading {}", master.display()))?,
    )?;
    let upstream = SocketAddr::from(([127, 0, 0, 1], stream.server().port()));
    let first_bps = schedule[0].kbps * 1000;
    let pages = StaticServer::start(bench_pages::dir()).await?;

    let mut players = Vec::new();
    for name in ["lucarne", "hlsjs"] {
        let link = Throttle::start(upstream, first_bps).await?;
        let browser = Browser::launch_from_env().await?;
        players.push(Player {
            name,
            browser,
            link,
        });
    }
    let engine = players[0].browser.engine().name();
    eprintln!(
        "bench abr: {engine}; ladder (height, BANDWIDTH) {ladder:?}; schedule {}",
        abr_bench::describe_schedule(&schedule)
    );
    let urls: Vec<String> = players
        .iter()
        .map(|p| {
            let stream_url = format!("{}{}", p.link.url(), stream.path());
            match p.name {
                "lucarne" => format!(
                    "{}/abr-lucarne.html?server={}&stream={stream_url}",
                    pages.url(),
                    origin.url()
                ),
                _ => format!("{}/abr-hlsjs.html?stream={stream_url}", pages.url()),
            }
        })
        .collect();
    // Both pages load at once, so both start on the same stream and link conditions.
    let (a, b) = tokio::join!(
        players[0].browser.goto(&urls[0]),
        players[1].browser.goto(&urls[1])
    );
    a?;
    b?;
    wait_first_frames(&players).await?;

    // The schedule, on both links at the same instants.
    let t0 = unix_now();
    let run = Instant::now();
    let mut at = Duration::ZERO;
    for step in &schedule {
        for p in &players {
            p.link.set_bps(step.kbps * 1000);
        }
        let mut line = format!(
            "bench abr: {:>3} s: link {} kbit/s for {} s;",
            at.as_secs(),
            step.kbps,
            step.seconds
        );
        for p in &players {
            let now = abr_bench::read(&p.browser).await?.unwrap_or_default();
            let height = now.levels.last().map_or(0, |&(_, h)| h);
            line.push_str(&format!(" {} plays {height}p", p.name));
        }
        eprintln!("{line}");
        at += Duration::from_secs(step.seconds);
        tokio::time::sleep_until(tokio::time::Instant::from_std(run + at)).await;
    }
    let t1 = unix_now();

    let mut records = Vec::new();
    for p in players {
        let record = abr_bench::read(&p.browser).await?.unwrap_or_default();
        let delivered = p.link.delivered();
        let _ = p.browser.close().await;
        records.push((p.name, record, delivered));
    }
    let mut figures = Vec::new();
    for (name, record, delivered) in &records {
        figures.push(report(
            name, record, *delivered, &ladder, &schedule, t0, t1,
        )?);
    }
    eprintln!(
        "bench abr: run of {:.0} s (schedule {:.0} s) in {engine}",
        started.elapsed().as_secs_f64(),
        t1 - t0
    );
    print_summary(&schedule, engine, &figures[0], &figures[1], ts_module);
    Ok(())
}

/// Waits until both pages have played a first frame (or [`FIRST_FRAME`] is over, when
/// the one that did not is reported and the run goes on: it then plays nothing).
async fn wait_first_frames(players: &[Player]) -> Result<()> {
    let start = Instant::now();
    loop {
        let mut waiting = Vec::new();
        for p in players {
            let record = abr_bench::read(&p.browser).await?;
            if record.as_ref().and_then(|r| r.first_frame).is_none() {
                waiting.push(p.name);
            }
        }
        if waiting.is_empty() {
            eprintln!(
                "bench abr: both playing {:.1} s after the pages loaded",
                start.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if start.elapsed() > FIRST_FRAME {
            eprintln!("bench abr: no first frame after {FIRST_FRAME:?}: {waiting:?}");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// One player's figures over the run.
struct Figures {
    kbps: Option<f64>,
    stall_s: f64,
    switches: usize,
}

/// Computes a player's figures and writes what is behind them to stderr.
fn report(
    name: &str,
    record: &Record,
    delivered: u64,
    ladder: &[(u32, u64)],
    schedule: &[Step],
    t0: f64,
    t1: f64,
) -> Result<Figures> {
    let figures = Figures {
        kbps: abr_bench::mean_kbps(&record.levels, ladder, t0, t1)?,
        stall_s: abr_bench::stalled_s(&record.stalls, t0, t1),
        switches: abr_bench::switches(&record.levels, t0, t1),
    };
    let relative = |changes: &[(f64, u32)]| -> String {
        changes
            .iter()
            .map(|&(t, h)| format!("{:+.1}s {h}p", t - t0))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let picture = abr_bench::mean_kbps(&record.resizes, ladder, t0, t1)
        .ok()
        .flatten();
    eprintln!(
        "bench abr: {name}{}: heights {}",
        record
            .version
            .as_deref()
            .map_or(String::new(), |v| format!(" {v}")),
        relative(&record.levels)
    );
    eprintln!(
        "bench abr: {name}: picture heights (videoHeight) {}; picture_kbps {}",
        relative(&record.resizes),
        fmt(picture)
    );
    eprintln!(
        "bench abr: {name}: stalls {}; frozen (polled) {:.1} s; link delivered {:.1} MB",
        record
            .stalls
            .iter()
            .map(|&(from, to)| match to {
                Some(to) => format!("{:+.1}s {:.2}s", from - t0, to - from),
                None => format!("{:+.1}s open", from - t0),
            })
            .collect::<Vec<_>>()
            .join(", "),
        record.frozen_s,
        delivered as f64 / 1e6
    );
    // Buffer ahead of the playhead, step by step: what a player has to ride out a drop.
    let mut from = t0;
    let mut ahead = Vec::new();
    for step in schedule {
        let to = from + step.seconds as f64;
        ahead.push(format!(
            "{} kbit/s {}",
            step.kbps,
            abr_bench::mean_within(&record.ahead, from, to)
                .map_or("n/a".to_owned(), |s| format!("{s:.1} s"))
        ));
        from = to;
    }
    eprintln!(
        "bench abr: {name}: mean buffer ahead of the playhead by step: {}",
        ahead.join(", ")
    );
    if !record.errors.is_empty() {
        eprintln!("bench abr: {name}: page errors {:?}", record.errors);
    }
    Ok(figures)
}

fn fmt(v: Option<f64>) -> String {
    v.map_or("n/a".to_owned(), |v| format!("{v:.0}"))
}

fn print_summary(
    schedule: &[Step],
    engine: &str,
    lucarne: &Figures,
    hlsjs: &Figures,
    ts_module: usize,
) {
    println!(
        "== abr bench: {engine}, schedule {} ==",
        abr_bench::describe_schedule(schedule)
    );
    println!("lucarne_abr_kbps: {}", fmt(lucarne.kbps));
    println!("hlsjs_abr_kbps: {}", fmt(hlsjs.kbps));
    let ratio = match (lucarne.kbps, hlsjs.kbps) {
        (Some(l), Some(h)) if h > 0.0 => format!("{:.3}", l / h),
        _ => "n/a".to_owned(),
    };
    println!("abr_kbps_ratio: {ratio}");
    println!("lucarne_abr_stall_s: {:.2}", lucarne.stall_s);
    println!("hlsjs_abr_stall_s: {:.2}", hlsjs.stall_s);
    println!("lucarne_abr_switches: {}", lucarne.switches);
    println!("hlsjs_abr_switches: {}", hlsjs.switches);
    println!("lucarne_ts_module_bytes_br: {ts_module}");
}
