//! bench_golive: glass-to-glass latency of a broadcast from the browser console
//! (`/studio/{stream}`, "Go live") to the widget in another browser, and the same for
//! a broadcast published over RTMP into the same server in the same run. A benchmark,
//! never a pass/fail test: it prints numbers, and fails only when it cannot measure.
//!
//! ```text
//! cargo run --release -p lucarne-e2e --bin bench_golive -- [--seconds 30] [--size 640x360]
//! ```
//!
//! (`cargo xtask bench golive` builds the release server first and sets
//! `LUCARNE_SERVER_BIN` / `LUCARNE_DIST`.) The browser is `LUCARNE_E2E_ENGINE`
//! (default headless Chromium, which records H.264 that the server copies; Firefox
//! records VP8, which the server re-encodes; WebKitGTK's recorder gives no data, so
//! it cannot broadcast).
//!
//! One lucarne-server (release build, no demo stream) with RTMP ingest and two stream
//! keys: `golive` for the console, `rtmp` for ffmpeg.
//!
//! - The camera: the console runs in its own browser, where bench/camera.js replaces
//!   `getUserMedia` before the camera is turned on. It returns a canvas's
//!   `captureStream(30)` (and an oscillator's tone) on which the wall clock is drawn
//!   as the barcode bench/measure.js reads (frame index `round(t·30) mod 480`, t the
//!   unix time the frame was drawn). The console records it with MediaRecorder and
//!   sends it over its WebSocket; the server pipes it through ffmpeg into its own
//!   RTMP ingest, as in production.
//! - The RTMP comparison: [`RtmpPublisher::start_clocked_scaled`], ffmpeg drawing the
//!   same wall-clock barcode on a test source (scaled to the camera's size) and
//!   publishing it over RTMP (x264 ultrafast/zerolatency, 1 s keyframes), as OBS
//!   would. Both barcodes are drawn from the clock of the same machine, so the two
//!   paths are measured with the same ruler. ffmpeg starts first and runs throughout,
//!   so both paths are measured under the same load (console, ffmpeg, server).
//! - The viewer: bench/lucarne.html (the widget as a third-party page embeds it, with
//!   the low-latency push) in a second browser session, so the console's rendering
//!   and the viewer's do not share a process. It is opened on the `golive` stream
//!   while that is offline and waits there 5 s (`OFFLINE_WAIT`; a viewer who came early;
//!   the widget's push socket stays open while offline, so a longer wait measured
//!   the same); then "Go live" is clicked. `golive_ttff_s` is the wall
//!   clock of the viewer's first presented frame minus that of the click (one
//!   machine, one clock). After the first frame the viewer plays `--seconds`, and
//!   measure.js records the latency of every presented frame (presentation time minus
//!   the time its barcode was drawn). Then a fresh tab of the same viewer plays the
//!   `rtmp` stream for `--seconds` the same way. So 2 × `--seconds` of measurement in
//!   all (60 s by default), plus about 20 s of setup. The golive samples start with
//!   the broadcast's first frame, so they include its start; the RTMP viewer joins a
//!   stream already running.
//!
//! Prints `golive_latency_p50_s` (the target is at most 1.0 s), `golive_latency_p95_s`,
//! `golive_ttff_s`, `rtmp_latency_p50_s`, `rtmp_latency_p95_s`,
//! `golive_rtmp_latency_ratio` (golive p50 / rtmp p50), then samples, frames,
//! unreadable frames and stalls of each. Stderr has the console's health line (codec,
//! bit rate, resolution) and how late the stand-in camera drew its frames (that
//! lateness is counted in the latency, like a real camera's capture delay).

use std::time::Duration;

use anyhow::{bail, Context, Result};
use lucarne_e2e::bench_pages::{self, Measurement};
use lucarne_e2e::stats::percentile;
use lucarne_e2e::{
    free_port, studio, wait_until, Browser, Check, Engine, Origin, OriginConfig, RtmpPublisher,
    StaticServer,
};
use serde_json::{json, Value};

const USAGE: &str = "usage: bench_golive [--seconds 30] [--size 640x360]";
/// The console's secret (the broadcaster token).
const TOKEN: &str = "bench-broadcaster-token";
/// Page loads, sockets, the camera opening, a stream going live.
const READY: Duration = Duration::from_secs(30);
/// How long the viewer waits on the offline stream before "Go live" is clicked.
const OFFLINE_WAIT: Duration = Duration::from_secs(5);
/// From "Go live" (or a page load) to the viewer's first frame, at most.
const FIRST_FRAME: Duration = Duration::from_secs(30);

struct Options {
    /// Playback measured per path, after its first frame.
    seconds: u64,
    /// The camera's (and the RTMP source's) size.
    width: u32,
    height: u32,
}

fn parse_args() -> Result<Options> {
    let mut o = Options {
        seconds: 30,
        width: 640,
        height: 360,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value; {USAGE}"))?;
        match flag.as_str() {
            "--seconds" => o.seconds = value.parse().context("--seconds")?,
            "--size" => {
                let (w, h) = value
                    .split_once('x')
                    .with_context(|| format!("--size WIDTHxHEIGHT; {USAGE}"))?;
                o.width = w.parse().context("--size width")?;
                o.height = h.parse().context("--size height")?;
                if !o.width.is_multiple_of(2)
                    || !o.height.is_multiple_of(2)
                    || o.width < 120
                    || o.height < 68
                {
                    bail!("--size: even numbers, at least 120x68");
                }
            }
            _ => bail!("unknown argument {flag}; {USAGE}"),
        }
    }
    Ok(o)
}

/// What one run measured.
struct Report {
    golive: Measurement,
    rtmp: Measurement,
    ttff_s: Option<f64>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let opts = parse_args()?;
    let engine = Engine::from_env()?;
    if engine == Engine::Webkit {
        bail!(
            "cannot measure in WebKit: WebKitGTK's MediaRecorder hands the console no data, \
             so it cannot go live (see tests/e2e/tests/studio.rs); use LUCARNE_E2E_ENGINE=chromium or firefox"
        );
    }
    let rtmp_port = free_port()?;
    let mut config = OriginConfig::from_env()?;
    config.extra_args = [
        "--no-demo",
        "--rtmp-listen",
        &format!("127.0.0.1:{rtmp_port}"),
        "--stream-key",
        "bench-golive=golive",
        "--stream-key",
        "bench-rtmp=rtmp",
        "--broadcaster-token",
        TOKEN,
    ]
    .map(str::to_owned)
    .into();
    let origin = Origin::start_with(config).await?;
    let pages = StaticServer::start(bench_pages::dir()).await?;
    // First, and for the whole run: both paths are measured with it running.
    let publisher = RtmpPublisher::start_clocked_scaled(
        &format!("rtmp://127.0.0.1:{rtmp_port}/live/bench-rtmp"),
        opts.width,
        opts.height,
    )?;
    let console = Browser::launch_with_fake_media(engine).await?;
    let viewer = match Browser::launch(engine).await {
        Ok(b) => b,
        Err(e) => {
            let _ = console.close().await;
            return Err(e);
        }
    };
    eprintln!(
        "bench: golive: {} s per path in {}, camera {}x{}, pages on {}",
        opts.seconds,
        engine.name(),
        opts.width,
        opts.height,
        pages.url()
    );
    let result = run(&opts, &origin, &pages, &console, &viewer).await;
    let _ = console.close().await;
    let _ = viewer.close().await;
    let publisher_log = publisher.log_tail(10);
    publisher.kill().await;
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench: server log:\n{}", origin.log_tail(40));
            eprintln!("bench: RTMP publisher log:\n{publisher_log}");
            return Err(e.context("the go-live bench could not measure"));
        }
    };
    print_summary(&opts, &report);
    Ok(())
}

async fn run(
    opts: &Options,
    origin: &Origin,
    pages: &StaticServer,
    console: &Browser,
    viewer: &Browser,
) -> Result<Report> {
    // The console, unlocked, its camera the stand-in.
    console
        .goto(&format!("{}/studio/golive", origin.url()))
        .await?;
    let camera_js = std::fs::read_to_string(bench_pages::dir().join("camera.js"))
        .context("reading bench/camera.js")?;
    console
        .execute(
            &format!("{camera_js}\nreturn lucarneCamera.install(arguments[0]);"),
            vec![json!({ "width": opts.width, "height": opts.height })],
        )
        .await
        .context("installing the camera stand-in (bench/camera.js)")?;
    studio::type_secret(console, TOKEN).await?;
    studio::wait_for(console, "the console to unlock", READY, |c| {
        c["unlocked"] == true
    })
    .await?;
    studio::click(console, "camera-on").await?;
    studio::wait_for(
        console,
        "the stand-in camera's preview to play, and Go live to be enabled",
        READY,
        |c| {
            c["previewWidth"].as_u64().unwrap_or(0) > 0
                && c["previewTime"].as_f64().unwrap_or(0.0) > 0.0
                && c["goLive"] == true
        },
    )
    .await?;

    // The viewer, waiting on the offline stream.
    let golive_url = format!(
        "{}/lucarne.html?server={}&stream=golive",
        pages.url(),
        origin.url()
    );
    eprintln!("bench: golive: viewer on {golive_url}");
    viewer.goto(&golive_url).await?;
    let opened = now_ms(viewer).await?;
    wait_until(
        "the viewer's widget to say offline",
        READY,
        move || async move {
            let m = bench_pages::read(viewer).await?;
            let statuses = m.as_ref().map(|m| m.raw["statuses"].clone());
            Ok(match statuses {
                Some(s)
                    if s.as_array()
                        .is_some_and(|a| a.iter().any(|s| s == "offline")) =>
                {
                    Check::Done(())
                }
                s => Check::NotYet(format!("statuses {s:?}")),
            })
        },
    )
    .await?;

    // A viewer who came a little early: the widget has settled into waiting (its
    // playlist polls backing off, its push socket open) before the broadcast starts.
    let waited = Duration::from_secs_f64((now_ms(viewer).await? - opened).max(0.0) / 1000.0);
    tokio::time::sleep(OFFLINE_WAIT.saturating_sub(waited)).await;
    let clicked_ms = studio::click(console, "go-live").await?;
    eprintln!(
        "bench: golive: Go live clicked; the viewer had waited {:.2} s on the offline stream",
        (clicked_ms - opened) / 1000.0
    );
    let first = wait_first_frame_while_live(console, viewer).await?;
    let origin_ms = viewer
        .execute("return performance.timeOrigin;", vec![])
        .await?
        .as_f64()
        .context("performance.timeOrigin")?;
    let ttff_s = first
        .ttff_s
        .map(|t| (origin_ms + t * 1000.0 - clicked_ms) / 1000.0);
    let live = studio::state(console).await?;
    eprintln!(
        "bench: golive: first frame {} s after Go live; console: {} ({})",
        fmt(ttff_s),
        live["status"],
        live["health"]
    );
    let golive = bench_pages::play_for(viewer, "golive", opts.seconds).await?;
    let live = studio::state(console).await?;
    eprintln!(
        "bench: golive: console after {} s: live {}, {}",
        opts.seconds, live["live"], live["health"]
    );
    report_camera(console).await?;

    // The RTMP path, in a fresh tab of the same viewer.
    wait_live(origin, "rtmp").await?;
    viewer.fresh_tab().await?;
    let rtmp_url = format!(
        "{}/lucarne.html?server={}&stream=rtmp",
        pages.url(),
        origin.url()
    );
    eprintln!("bench: rtmp: viewer on {rtmp_url}");
    viewer.goto(&rtmp_url).await?;
    if bench_pages::wait_first_frame(viewer, "rtmp", FIRST_FRAME)
        .await?
        .is_none()
    {
        bail!("the widget showed no frame of the RTMP stream within {FIRST_FRAME:?}");
    }
    let rtmp = bench_pages::play_for(viewer, "rtmp", opts.seconds).await?;

    for (name, m) in [("golive", &golive), ("rtmp", &rtmp)] {
        if m.samples.is_empty() {
            bail!(
                "{name}: no frame read: {} frames presented, {} unreadable \
                 (the barcode did not survive the path?)",
                m.frames,
                m.unreadable
            );
        }
    }
    Ok(Report {
        golive,
        rtmp,
        ttff_s,
    })
}

/// The page's wall clock, unix milliseconds.
async fn now_ms(browser: &Browser) -> Result<f64> {
    browser
        .execute("return Date.now();", vec![])
        .await?
        .as_f64()
        .context("Date.now()")
}

/// Waits for the viewer's first frame after Go live; gives up early, saying why,
/// when the console reports an error.
async fn wait_first_frame_while_live(console: &Browser, viewer: &Browser) -> Result<Measurement> {
    wait_until(
        "the viewer's first frame after Go live",
        FIRST_FRAME,
        move || async move {
            if let Some(m) = bench_pages::read(viewer).await? {
                if m.ttff_s.is_some() {
                    return Ok(Check::Done(m));
                }
            }
            let c = studio::state(console).await?;
            if c["statusKind"] == "error" {
                bail!("the console could not go live: {}", c["status"]);
            }
            Ok(Check::NotYet(format!(
                "console: live {}, {} ({})",
                c["live"], c["status"], c["health"]
            )))
        },
    )
    .await
}

/// Says on stderr how the stand-in camera kept time (from bench/camera.js).
async fn report_camera(console: &Browser) -> Result<()> {
    let cam: Value = console
        .execute("return window.__lucarneCamera || null;", vec![])
        .await?;
    let late: Vec<f64> = cam["late_ms"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    eprintln!(
        "bench: golive: camera drew {} frames, skipped {}, late p50 {} ms p95 {} ms (of the first {} drawn), errors {}",
        cam["drawn"],
        cam["skipped"],
        fmt(percentile(&late, 50.0)),
        fmt(percentile(&late, 95.0)),
        late.len(),
        cam["errors"]
    );
    Ok(())
}

/// Waits until `stream` says it is live.
async fn wait_live(origin: &Origin, stream: &str) -> Result<()> {
    let url = &format!("{}/api/streams/{stream}", origin.url());
    wait_until(&format!("{stream} to be live"), READY, move || async move {
        let body = reqwest::get(url).await?.text().await?;
        Ok(if body.contains("\"state\":\"live\"") {
            Check::Done(())
        } else {
            Check::NotYet(body)
        })
    })
    .await
}

fn fmt(v: Option<f64>) -> String {
    v.map_or("n/a".to_owned(), |v| format!("{v:.3}"))
}

fn print_summary(opts: &Options, r: &Report) {
    let p = |m: &Measurement, q: f64| percentile(&m.samples, q);
    let (g50, r50) = (p(&r.golive, 50.0), p(&r.rtmp, 50.0));
    println!(
        "== go-live bench: {} s per path, camera {}x{}, console -> widget vs RTMP -> widget ==",
        opts.seconds, opts.width, opts.height
    );
    println!("golive_latency_p50_s: {}", fmt(g50));
    println!("golive_latency_p95_s: {}", fmt(p(&r.golive, 95.0)));
    println!("golive_ttff_s: {}", fmt(r.ttff_s));
    println!("rtmp_latency_p50_s: {}", fmt(r50));
    println!("rtmp_latency_p95_s: {}", fmt(p(&r.rtmp, 95.0)));
    println!(
        "golive_rtmp_latency_ratio: {}",
        fmt(g50.zip(r50).filter(|(_, b)| *b > 0.0).map(|(a, b)| a / b))
    );
    for (name, m) in [("golive", &r.golive), ("rtmp", &r.rtmp)] {
        println!("{name}_samples: {}", m.samples.len());
        println!("{name}_frames: {}", m.frames);
        println!("{name}_unreadable_frames: {}", m.unreadable);
        println!("{name}_stalls: {}", m.stalls);
    }
}
