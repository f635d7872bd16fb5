//! bench_ingest: glass-to-glass latency of a broadcast published over RTMP, and the
//! server CPU it costs. A benchmark, never a pass/fail test: it prints numbers.
//!
//! ```text
//! cargo run --release -p lucarne-e2e --bin bench_ingest -- [--seconds 60] [--streams 1]
//! ```
//!
//! Starts lucarne-server (release build, no demo stream) with RTMP ingest, and ffmpeg
//! publishing a 30 fps test source whose every frame carries a barcode of the wall-clock
//! time it was generated (H.264 ultrafast/zerolatency, 1 s keyframe interval, no
//! B-frames, AAC). Then:
//!
//! 1. server CPU (10 s of /proc/PID/stat, percent of one core) while `--streams`
//!    publishers are live and nobody watches, minus the same before they started
//!    (the demo loop), divided by the number of streams: `ingest_cpu_pct_per_stream`;
//! 2. bench/lucarne.html plays the first stream in headless Chromium for `--seconds`;
//!    bench/measure.js reads the barcode of every presented frame: latency = now -
//!    capture time, from ffmpeg's source to the screen.
//!
//! For comparison in the same run, the same page plays the built-in demo stream (the
//! origin's own clock, no encoder or RTMP in the path) for the same time:
//! `demo_latency_p50_s` and `ingest_overhead_s`.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use lucarne_e2e::bench_pages::{self, Measurement};
use lucarne_e2e::stats::percentile;
use lucarne_e2e::{free_port, Browser, Origin, OriginConfig, RtmpPublisher, StaticServer};

const USAGE: &str = "usage: bench_ingest [--seconds 60] [--streams 1]";

fn main() -> Result<()> {
    tokio::runtime::Runtime::new()?.block_on(run())
}

async fn run() -> Result<()> {
    let mut seconds = 60u64;
    let mut streams = 1usize;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value; {USAGE}"))?;
        match flag.as_str() {
            "--seconds" => seconds = value.parse().context("--seconds")?,
            "--streams" => streams = value.parse().context("--streams")?,
            _ => bail!("unknown argument {flag}; {USAGE}"),
        }
    }
    let streams = streams.max(1);

    bench_pages::ensure_deps().await?;
    let rtmp_port = free_port()?;
    let mut config = OriginConfig::from_env()?;
    config.extra_args = vec!["--rtmp-listen".into(), format!("127.0.0.1:{rtmp_port}")];
    for i in 0..streams {
        config.extra_args.push("--stream-key".into());
        config.extra_args.push(format!("bench-{i}=studio-{i}"));
    }
    let origin = Origin::start_with(config).await?;
    let pid = origin.pid().context("server pid")?;
    let pages = StaticServer::start(bench_pages::dir()).await?;

    // What the origin spends with the demo loop alone, to subtract.
    let baseline = cpu_percent(pid, Duration::from_secs(10)).await?;
    let publishers: Vec<RtmpPublisher> = (0..streams)
        .map(|i| {
            RtmpPublisher::start_clocked(&format!("rtmp://127.0.0.1:{rtmp_port}/live/bench-{i}"))
        })
        .collect::<Result<_>>()?;
    wait_live(&origin, streams).await?;
    // Let the encoders settle, then measure what the origin spends on them.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cpu = cpu_percent(pid, Duration::from_secs(10)).await?;
    eprintln!(
        "bench: server CPU, no viewer: {baseline:.2} % with the demo loop only, \
         {cpu:.2} % with {streams} live stream(s) as well"
    );

    let browser = Browser::launch_from_env().await?;
    eprintln!(
        "bench: {seconds} s per stream in {}",
        browser.engine().name()
    );
    let ingest = measure(&browser, &pages, &origin, "studio-0", seconds).await?;
    browser.fresh_tab().await?;
    let demo = measure(&browser, &pages, &origin, "demo", seconds).await?;
    let _ = browser.close().await;
    for p in publishers {
        p.kill().await;
    }

    let p = |m: &Measurement, q: f64| percentile(&m.samples, q);
    let fmt = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.3}"));
    println!("== ingest bench: {seconds} s, {streams} stream(s), RTMP from ffmpeg on loopback ==");
    println!("ingest_latency_p50_s: {}", fmt(p(&ingest, 50.0)));
    println!("ingest_latency_p95_s: {}", fmt(p(&ingest, 95.0)));
    println!(
        "ingest_cpu_pct_per_stream: {:.2}",
        (cpu - baseline).max(0.0) / streams as f64
    );
    println!("ingest_samples: {}", ingest.samples.len());
    println!("ingest_stalls: {}", ingest.stalls);
    println!("ingest_ttff_s: {}", fmt(ingest.ttff_s));
    println!("demo_latency_p50_s: {}", fmt(p(&demo, 50.0)));
    println!(
        "ingest_overhead_s: {}",
        fmt(p(&ingest, 50.0).zip(p(&demo, 50.0)).map(|(a, b)| a - b))
    );
    Ok(())
}

/// Waits until every channel says it is live.
async fn wait_live(origin: &Origin, streams: usize) -> Result<()> {
    let start = Instant::now();
    for i in 0..streams {
        let url = format!("{}/api/streams/studio-{i}", origin.url());
        loop {
            let body = reqwest::get(&url).await?.text().await?;
            if body.contains("\"state\":\"live\"") {
                break;
            }
            if start.elapsed() > Duration::from_secs(30) {
                bail!(
                    "studio-{i} never went live: {body}\n{}",
                    origin.log_tail(20)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// CPU time (user + system) of `pid` over `window`, as a percentage of one core.
async fn cpu_percent(pid: u32, window: Duration) -> Result<f64> {
    let ticks = || -> Result<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // Fields after the command name (which may contain spaces) start after ')'.
        let rest = stat.rsplit(')').next().context("stat format")?;
        let f: Vec<&str> = rest.split_whitespace().collect();
        Ok(f[11].parse::<u64>()? + f[12].parse::<u64>()?)
    };
    // Linux reports CPU time in clock ticks of 1/100 s (USER_HZ).
    let (t0, w0) = (ticks()?, Instant::now());
    tokio::time::sleep(window).await;
    let (t1, w1) = (ticks()?, Instant::now());
    Ok((t1 - t0) as f64 / 100.0 / (w1 - w0).as_secs_f64() * 100.0)
}

/// Plays `stream` in bench/lucarne.html for `seconds` and returns what measure.js saw.
async fn measure(
    browser: &Browser,
    pages: &StaticServer,
    origin: &Origin,
    stream: &str,
    seconds: u64,
) -> Result<Measurement> {
    let url = format!(
        "{}/lucarne.html?server={}&stream={stream}",
        pages.url(),
        origin.url()
    );
    eprintln!("bench: {stream}: {url}");
    browser.goto(&url).await?;
    if bench_pages::wait_first_frame(browser, stream, Duration::from_secs(30))
        .await?
        .is_none()
    {
        bail!("{stream}: no frame after 30 s");
    }
    let m = bench_pages::play_for(browser, stream, seconds).await?;
    eprintln!(
        "bench: {stream}: {} samples, p50 {:?}",
        m.samples.len(),
        percentile(&m.samples, 50.0)
    );
    Ok(m)
}
