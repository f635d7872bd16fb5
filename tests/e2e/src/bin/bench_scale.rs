//! bench_scale: the media half of `cargo xtask bench scale` (the chat half is
//! `lucarne-bench-chat --scale`). A benchmark, never a pass/fail test: it prints numbers.
//!
//! ```text
//! cargo run --release -p lucarne-e2e --bin bench_scale -- [--clients 50]
//!     [--follow-seconds 10] [--seconds 30]
//! ```
//!
//! - `cdn_origin_requests_per_part`: the release server plays the demo stream behind the
//!   real nginx with `deploy/nginx.conf` ([`lucarne_e2e::cluster::Nginx`], as the CDN
//!   test and the cluster e2e tests run it); `--clients` HTTP clients follow the live
//!   edge as hls.js's low-latency mode does (a blocking playlist reload for the
//!   playlist's preload hint, then that part). nginx's access log says, per part, how
//!   many requests it could not answer from its cache: those went to the origin.
//! - `hlsjs_llhls_latency_p50_s`: hls.js (npm, `bench/hlsjs.html?llhls=1`:
//!   `lowLatencyMode`, the playlist's `PART-HOLD-BACK` as target) plays the server's
//!   LL-HLS playlist for `--seconds` after its first frame; latency is read from each
//!   presented frame by bench/measure.js, as `bench playback` does. The page counts
//!   the parts and whole segments hls.js loaded (stderr: `loaded`).
//! - `lucarne_llhls_latency_p50_s`: the widget (`bench/lucarne.html?llhls=1`: the HLS
//!   playlist and no low-latency push, so it follows the LL-HLS parts) on the same
//!   playlist, in the same browser engine, measured the same way, one after the other.
//!
//! Environment: `LUCARNE_SERVER_BIN` (the release server), `LUCARNE_DIST`,
//! `LUCARNE_E2E_ENGINE` (Chromium by default), as the other benchmarks.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use lucarne_e2e::bench_pages;
use lucarne_e2e::cdn::{self, PartTally};
use lucarne_e2e::cluster::Nginx;
use lucarne_e2e::process::free_port;
use lucarne_e2e::stats::percentile;
use lucarne_e2e::{Browser, Origin, StaticServer};

const USAGE: &str = "usage: bench_scale [--clients 50] [--follow-seconds 10] [--seconds 30]";

struct Options {
    /// LL-HLS clients behind nginx.
    clients: usize,
    /// How long they follow the live edge.
    follow: Duration,
    /// hls.js playback measured after its first frame.
    seconds: u64,
}

fn parse_args() -> Result<Options> {
    let mut o = Options {
        clients: 50,
        follow: Duration::from_secs(10),
        seconds: 30,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("{flag} needs a value; {USAGE}"))
        };
        match flag.as_str() {
            "--clients" => o.clients = value()?.parse::<usize>()?.clamp(1, 500),
            "--follow-seconds" => {
                o.follow = Duration::from_secs(value()?.parse::<u64>()?.clamp(2, 120))
            }
            "--seconds" => o.seconds = value()?.parse::<u64>()?.clamp(5, 300),
            _ => bail!("unknown argument {flag}; {USAGE}"),
        }
    }
    Ok(o)
}

#[tokio::main]
async fn main() -> Result<()> {
    let opts = parse_args()?;
    let started = Instant::now();
    bench_pages::ensure_deps().await?;
    let origin = Origin::start().await?;

    let cdn = cdn_origin_requests_per_part(&origin, &opts).await;
    if let Err(e) = &cdn {
        eprintln!("bench_scale: cdn: {e:#}");
    }
    let hlsjs = llhls_latency(&origin, "hlsjs", opts.seconds).await;
    if let Err(e) = &hlsjs {
        eprintln!("bench_scale: hls.js: {e:#}");
    }
    let lucarne = llhls_latency(&origin, "lucarne", opts.seconds).await;
    if let Err(e) = &lucarne {
        eprintln!("bench_scale: lucarne: {e:#}");
    }
    eprintln!(
        "bench_scale: media scale time {:.0} s",
        started.elapsed().as_secs_f64()
    );

    let fmt = |v: &Result<f64>, digits: usize| match v {
        Ok(v) => format!("{v:.digits$}"),
        Err(_) => "n/a".to_owned(),
    };
    println!("cdn_origin_requests_per_part: {}", fmt(&cdn, 2));
    println!("hlsjs_llhls_latency_p50_s: {}", fmt(&hlsjs, 3));
    println!("lucarne_llhls_latency_p50_s: {}", fmt(&lucarne, 3));
    Ok(())
}

/// The origin's requests per distinct part with `opts.clients` clients behind nginx.
async fn cdn_origin_requests_per_part(origin: &Origin, opts: &Options) -> Result<f64> {
    let nginx = Nginx::start(free_port()?, &[origin.port()]).await?;
    let received = cdn::follow_many(&nginx.url(), "demo", opts.clients, opts.follow).await?;
    // Let nginx write its log.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let tally = PartTally::read(&nginx.access_tail(usize::MAX), "demo");
    if tally.parts() == 0 {
        bail!("no part in nginx's access log: {}", nginx.log_tail(20));
    }
    eprintln!(
        "bench_scale: cdn: {} clients received {received} parts in {} s: {} distinct parts, \
         {} part requests, {} to the origin ({:.2} per part)",
        opts.clients,
        opts.follow.as_secs(),
        tally.parts(),
        tally.client_requests(),
        tally.to_origin(),
        tally.per_part()
    );
    Ok(tally.per_part())
}

/// `page` (`hlsjs`: hls.js in lowLatencyMode; `lucarne`: the widget without its push)
/// on the origin's LL-HLS playlist: p50 latency of the presented frames over `seconds`
/// after the first one.
async fn llhls_latency(origin: &Origin, page: &str, seconds: u64) -> Result<f64> {
    let pages = StaticServer::start(bench_pages::dir()).await?;
    let browser = Browser::launch_from_env().await?;
    let url = format!(
        "{}/{page}.html?server={}&llhls=1",
        pages.url(),
        origin.url()
    );
    eprintln!("bench_scale: {page} in {}: {url}", browser.engine().name());
    let result = play(&browser, page, &url, seconds).await;
    let _ = browser.close().await;
    result
}

async fn play(browser: &Browser, page: &str, url: &str, seconds: u64) -> Result<f64> {
    browser.goto(url).await?;
    let start = Instant::now();
    loop {
        let m = bench_pages::read(browser).await?;
        if m.as_ref().is_some_and(|m| m.ttff_s.is_some()) {
            break;
        }
        if start.elapsed() > Duration::from_secs(30) {
            bail!("no frame after 30 s: {m:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Wall time is the point of a playback benchmark.
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let m = bench_pages::read(browser).await?.unwrap_or_default();
    if !m.errors.is_empty() {
        eprintln!("bench_scale: {page}: page errors: {:?}", m.errors);
    }
    for key in ["hls_state", "config", "loaded"] {
        if let Some(v) = m.raw.get(key) {
            eprintln!("bench_scale: {page}: {key} {v}");
        }
    }
    eprintln!(
        "bench_scale: {page}: {} samples, p95 {:?} s, {} stalls, {} unreadable frames",
        m.samples.len(),
        percentile(&m.samples, 95.0),
        m.stalls,
        m.unreadable
    );
    percentile(&m.samples, 50.0).context("no readable frame")
}
