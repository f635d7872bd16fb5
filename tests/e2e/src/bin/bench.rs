//! bench: the side-by-side playback benchmark, lucarne vs hls.js, on
//! lucarne-server's demo stream, in one headless browser. A benchmark, never a
//! pass/fail test: it prints numbers.
//!
//! Time to first frame is the median of `--ttff-trials` page loads, each in a new
//! browser, the players taking turns going first (a warm browser would favour the
//! second player).
//!
//! ```text
//! cargo run --release -p lucarne-e2e --bin bench -- playback [--seconds 60]
//!     [--only lucarne|hlsjs] [--hlsjs-params 'liveSyncDuration=1.2&maxLiveSyncPlaybackRate=1.2']
//!     [--hlsjs-origin server|ffmpeg]
//! ```
//!
//! Starts lucarne-server (see [`lucarne_e2e::Origin`]), serves `bench/` from
//! another origin, opens `lucarne.html?server=...` then `hlsjs.html?server=...`
//! (a fresh tab each, `--seconds` of playback after the first frame each), reads
//! `window.__lucarneBench` from bench/measure.js, and prints one `name: value`
//! per line. `--hlsjs-origin ffmpeg` plays hls.js against ffmpeg's HLS of the
//! same clip instead (a reference origin, for tuning hls.js without the server).
//!
//! Code size = brotli (quality 11) of the files a page must download to play:
//! lucarne's loader, widget JS, wasm and CSS; hls.js's `hls.light.min.js`.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use lucarne_e2e::bench_pages::{self, Measurement};
use lucarne_e2e::stats::{brotli_size, percentile};
use lucarne_e2e::{workspace, Browser, FfmpegHls, HlsSource, Origin, OriginConfig, StaticServer};

/// Command-line options.
struct Options {
    /// Playback measured per player, after its first frame.
    seconds: u64,
    /// Run only this player ("lucarne" or "hlsjs").
    only: Option<String>,
    /// Extra query parameters for hlsjs.html (config overrides).
    hlsjs_params: Option<String>,
    /// Where hls.js gets the stream: "server" (lucarne-server) or "ffmpeg".
    hlsjs_origin: String,
    /// Time-to-first-frame trials per player, each in a new browser.
    ttff_trials: usize,
}

const USAGE: &str = "usage: bench playback [--seconds 60] [--only lucarne|hlsjs] \
                     [--hlsjs-params 'k=v&k=v'] [--hlsjs-origin server|ffmpeg] [--ttff-trials 5]";

fn parse_args() -> Result<Options> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("playback") => {}
        _ => bail!("{USAGE}"),
    }
    let mut o = Options {
        seconds: 60,
        only: None,
        hlsjs_params: None,
        hlsjs_origin: "server".into(),
        ttff_trials: 5,
    };
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("{flag} needs a value; {USAGE}"))
        };
        match flag.as_str() {
            "--seconds" => o.seconds = value()?.parse().context("--seconds")?,
            "--only" => o.only = Some(value()?),
            "--hlsjs-params" => o.hlsjs_params = Some(value()?),
            "--hlsjs-origin" => o.hlsjs_origin = value()?,
            "--ttff-trials" => o.ttff_trials = value()?.parse().context("--ttff-trials")?,
            _ => bail!("unknown argument {flag}; {USAGE}"),
        }
    }
    if !matches!(o.only.as_deref(), None | Some("lucarne" | "hlsjs")) {
        bail!("--only takes lucarne or hlsjs");
    }
    if !matches!(o.hlsjs_origin.as_str(), "server" | "ffmpeg") {
        bail!("--hlsjs-origin takes server or ffmpeg");
    }
    Ok(o)
}

#[tokio::main]
async fn main() -> Result<()> {
    let opts = parse_args()?;
    let run_lucarne = opts.only.as_deref() != Some("hlsjs");
    let run_hlsjs = opts.only.as_deref() != Some("lucarne");

    bench_pages::ensure_deps().await?;
    let need_server = run_lucarne || opts.hlsjs_origin == "server";
    let origin = if need_server {
        Some(Origin::start().await?)
    } else {
        None
    };
    let reference = if run_hlsjs && opts.hlsjs_origin == "ffmpeg" {
        let clip = workspace::root().join("media/demo.mp4");
        Some(FfmpegHls::start_at(HlsSource::LiveClip(clip), "live/demo").await?)
    } else {
        None
    };
    let pages = StaticServer::start(bench_pages::dir()).await?;
    let browser = Browser::launch_from_env().await?;
    eprintln!(
        "bench: {} s of playback per player in {}, pages on {}",
        opts.seconds,
        browser.engine().name(),
        pages.url()
    );

    let mut lucarne: Option<Measurement> = None;
    let mut hlsjs: Option<Measurement> = None;
    let mut first = true;
    if let (true, Some(origin)) = (run_lucarne, &origin) {
        let url = format!("{}/lucarne.html?server={}", pages.url(), origin.url());
        lucarne = Some(measure(&browser, "lucarne", &url, opts.seconds, first).await?);
        first = false;
    }
    if run_hlsjs {
        let url = hlsjs_page_url(&opts, &pages, reference.as_ref(), origin.as_ref())
            .context("no origin for hls.js")?;
        hlsjs = Some(measure(&browser, "hlsjs", &url, opts.seconds, first).await?);
    }
    let _ = browser.close().await;

    // Time to first frame depends on what the browser has already warmed up (media
    // pipeline, caches), so each trial gets a brand-new browser, and the players take
    // turns going first. The median of the trials is reported.
    let mut trials: Vec<(&str, Vec<f64>)> = vec![("lucarne", Vec::new()), ("hlsjs", Vec::new())];
    let lucarne_url = origin
        .as_ref()
        .map(|o| format!("{}/lucarne.html?server={}", pages.url(), o.url()));
    let hlsjs_url = hlsjs_page_url(&opts, &pages, reference.as_ref(), origin.as_ref());
    for trial in 0..opts.ttff_trials {
        let mut order = [
            (0, lucarne_url.clone().filter(|_| run_lucarne)),
            (1, hlsjs_url.clone().filter(|_| run_hlsjs)),
        ];
        if trial % 2 == 1 {
            order.swap(0, 1);
        }
        for (i, url) in order {
            let Some(url) = url else { continue };
            let browser = Browser::launch_from_env().await?;
            let ttff = first_frame(&browser, &url).await;
            let _ = browser.close().await;
            match ttff? {
                Some(t) => trials[i].1.push(t),
                None => eprintln!("bench: {}: ttff trial {trial}: no frame", trials[i].0),
            }
        }
    }
    for (name, t) in &trials {
        eprintln!("bench: {name}: ttff trials {t:?}");
    }
    if let Some(m) = lucarne.as_mut() {
        m.ttff_s = percentile(&trials[0].1, 50.0).or(m.ttff_s);
    }
    if let Some(m) = hlsjs.as_mut() {
        m.ttff_s = percentile(&trials[1].1, 50.0).or(m.ttff_s);
    }

    // The bench page embeds video only, so the loader fetches the video-only build;
    // the build with chat and hearts is reported beside it.
    let lucarne_code = if run_lucarne {
        Some(lucarne_code_bytes("lucarne_player")?)
    } else {
        None
    };
    let widget_code = lucarne_code_bytes("lucarne_widget").ok();
    let hlsjs_code = brotli_size(&std::fs::read(bench_pages::hlsjs_light())?);
    print_summary(
        &opts,
        lucarne.as_ref(),
        hlsjs.as_ref(),
        lucarne_code,
        hlsjs_code,
        widget_code,
    );
    Ok(())
}

/// The hls.js page's URL, against lucarne-server or the ffmpeg reference origin.
fn hlsjs_page_url(
    opts: &Options,
    pages: &StaticServer,
    reference: Option<&FfmpegHls>,
    origin: Option<&Origin>,
) -> Option<String> {
    let server = match (reference, origin) {
        (Some(r), _) => r.server().url(),
        (None, Some(o)) => o.url(),
        (None, None) => return None,
    };
    let mut url = format!("{}/hlsjs.html?server={server}", pages.url());
    if let Some(p) = &opts.hlsjs_params {
        url.push('&');
        url.push_str(p.trim_start_matches(['?', '&']));
    }
    Some(url)
}

/// Loads `url` and returns its first frame time (seconds since navigation start).
async fn first_frame(browser: &Browser, url: &str) -> Result<Option<f64>> {
    browser.goto(url).await?;
    Ok(
        bench_pages::wait_first_frame(browser, "ttff trial", Duration::from_secs(20))
            .await?
            .and_then(|m| m.ttff_s),
    )
}

/// Opens `url` in a fresh tab, waits for the first frame, lets it play for
/// `seconds`, and returns what measure.js recorded.
async fn measure(
    browser: &Browser,
    name: &str,
    url: &str,
    seconds: u64,
    first: bool,
) -> Result<Measurement> {
    if !first {
        browser.fresh_tab().await?;
    }
    eprintln!("bench: {name}: {url}");
    browser.goto(url).await?;
    if bench_pages::wait_first_frame(browser, name, Duration::from_secs(30))
        .await?
        .is_none()
    {
        return Ok(bench_pages::read(browser).await?.unwrap_or_default());
    }
    let m = bench_pages::play_for(browser, name, seconds).await?;
    for key in ["statuses", "hls_state", "config"] {
        if let Some(v) = m.raw.get(key) {
            eprintln!("bench: {name}: {key} {v}");
        }
    }
    Ok(m)
}

/// Brotli size of the widget files a page downloads: the loader, the widget JS
/// and wasm, the CSS if there is one. Looked up in dist/ (then static/).
fn lucarne_code_bytes(build: &str) -> Result<usize> {
    let config = OriginConfig::from_env()?;
    let dir = config.dist.clone();
    let mut total = 0;
    for name in [
        "lucarne.js".to_owned(),
        format!("{build}.js"),
        format!("{build}_bg.wasm"),
    ] {
        let path = dir.join(&name);
        let bytes = std::fs::read(&path).with_context(|| {
            format!(
                "{} missing: build the widget (cargo xtask dist)",
                path.display()
            )
        })?;
        let br = brotli_size(&bytes);
        eprintln!(
            "bench: code {}: {} bytes, {br} brotli",
            path.display(),
            bytes.len()
        );
        total += br;
    }
    Ok(total)
}

fn fmt(v: Option<f64>) -> String {
    v.map_or("n/a".to_owned(), |v| format!("{v:.3}"))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn print_summary(
    opts: &Options,
    lucarne: Option<&Measurement>,
    hlsjs: Option<&Measurement>,
    lucarne_code: Option<usize>,
    hlsjs_code: usize,
    widget_code: Option<usize>,
) {
    let p = |m: Option<&Measurement>, q: f64| m.and_then(|m| percentile(&m.samples, q));
    let ttff = |m: Option<&Measurement>| m.and_then(|m| m.ttff_s);
    let count = |m: Option<&Measurement>, f: fn(&Measurement) -> u64| {
        m.map_or("n/a".to_owned(), |m| f(m).to_string())
    };
    let l50 = p(lucarne, 50.0);
    let h50 = p(hlsjs, 50.0);
    println!(
        "== playback bench: {} s per player, hls.js from {} ==",
        opts.seconds, opts.hlsjs_origin
    );
    println!("lucarne_latency_p50_s: {}", fmt(l50));
    println!("lucarne_latency_p95_s: {}", fmt(p(lucarne, 95.0)));
    println!("hlsjs_latency_p50_s: {}", fmt(h50));
    println!("hlsjs_latency_p95_s: {}", fmt(p(hlsjs, 95.0)));
    println!("latency_ratio: {}", fmt(ratio(l50, h50)));
    println!("lucarne_ttff_s: {}", fmt(ttff(lucarne)));
    println!("hlsjs_ttff_s: {}", fmt(ttff(hlsjs)));
    println!("ttff_ratio: {}", fmt(ratio(ttff(lucarne), ttff(hlsjs))));
    println!("lucarne_stalls: {}", count(lucarne, |m| m.stalls));
    println!("hlsjs_stalls: {}", count(hlsjs, |m| m.stalls));
    println!(
        "lucarne_code_bytes_br: {}",
        lucarne_code.map_or("n/a".to_owned(), |b| b.to_string())
    );
    println!("hlsjs_code_bytes_br: {hlsjs_code}");
    println!(
        "lucarne_widget_bytes_br: {}",
        widget_code.map_or("n/a".to_owned(), |b| b.to_string())
    );
    println!(
        "lucarne_samples: {}",
        count(lucarne, |m| m.samples.len() as u64)
    );
    println!(
        "hlsjs_samples: {}",
        count(hlsjs, |m| m.samples.len() as u64)
    );
    println!("lucarne_frames: {}", count(lucarne, |m| m.frames));
    println!("hlsjs_frames: {}", count(hlsjs, |m| m.frames));
    println!(
        "lucarne_unreadable_frames: {}",
        count(lucarne, |m| m.unreadable)
    );
    println!(
        "hlsjs_unreadable_frames: {}",
        count(hlsjs, |m| m.unreadable)
    );
}
