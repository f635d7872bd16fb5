//! soak: a long broadcast under a steady audience, watching the server for resources
//! that grow without bound and the widget for latency that drifts. Unlike the
//! benchmarks it is pass/fail: the exit code is non-zero when a verdict fails.
//!
//! ```text
//! cargo xtask soak --minutes 30
//! cargo run --release -p lucarne-e2e --bin soak -- [--minutes 30] [--push-viewers 200]
//!     [--chat-viewers 2000] [--posts-per-s 4] [--heart-tappers 40] [--churn-pct 5]
//!     [--sources 250] [--seed 1]
//! ```
//!
//! # What runs
//! - lucarne-server (`LUCARNE_SERVER_BIN`, the release build under xtask) as a child
//!   process with a fresh data directory, no demo stream, RTMP ingest on a free port and
//!   one stream key (`soak-key` → stream `soak`).
//! - ffmpeg publishing a live 30 fps test source over RTMP for the whole run, 320x180
//!   H.264 ultrafast with a tone, every frame carrying the wall-clock barcode of
//!   [`RtmpPublisher::start_clocked_scaled`].
//! - 200 push viewers on `/live/soak/ll` and 2,000 chat viewers on `/chat/soak`, async
//!   tasks in this process ([`lucarne_e2e::crowd`]): the chat posts 4 messages a second
//!   in all (20 posters), 40 viewers tap hearts, 5 % of the room leaves each minute at
//!   random moments and comes back with resume. Viewers connect from 250 loopback
//!   addresses (`--sources`; why in the crowd's module doc).
//! - one headless Chromium on a page of another origin embedding the widget with
//!   `data-src` (video, chat and hearts, as on a stream's page), with bench/measure.js.
//!
//! # What it measures
//! Every [`SAMPLE`] (10 s): the server's RSS, open fds and threads (`/proc/PID/status`,
//! `/proc/PID/fd`) and CPU (`/proc/PID/stat`), and the widget's **glass-to-glass**
//! latency: measure.js reads the barcode ffmpeg drew from the wall clock into each frame
//! the browser presents, so latency = presentation time − capture time, through the
//! encoder, RTMP, remuxing, the push and the decoder. Beside it, the widget's own view:
//! buffered media ahead of the playhead and its playback rate (a player falling behind
//! what it holds has a growing buffer ahead; media reaching it late does not). Every
//! minute it prints `name: value` lines for that minute (server figures, widget latency
//! p50/p95 and frames, push chunks and stalls, chat posts, deliveries and delay,
//! reconnects, errors, and what the load itself costs: this process, ffmpeg and the
//! browser).
//!
//! # How it decides
//! - RSS, fds, threads: [`lucarne_e2e::trend::growth`]: median of the last third of the
//!   run against the median of the middle third, the first third being warm-up; the
//!   tolerances and the reasoning are in that module's doc.
//! - Widget latency: [`lucarne_e2e::trend::drift`]: p50 of the last third at most
//!   [`DRIFT_LIMIT_S`] above the p50 of the first third; a 10 s window with no
//!   presented frame fails too (frozen).
//! - Push: no stall (a viewer silent for more than 3 s), no socket closed by the server.
//! - Chat: no seq gap or duplicate at any viewer, every resume recovered, every post
//!   echoed to its author, and at the end (posting stopped) every viewer connected and
//!   on the room's last seq.
//!
//! Server drops of a chat socket (back-pressure closes the slowest viewer, who resumes)
//! and refused posts are reported but do not fail the run by themselves: what a viewer
//! would notice of them (lost or unechoed messages) is what fails it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use lucarne_e2e::crowd::{
    ChatCrowd, ChatEnd, ChatPlan, Counters, Delays, Problems, PushCrowd, Target, Totals,
};
use lucarne_e2e::procstat::{self, Stat};
use lucarne_e2e::stats::percentile;
use lucarne_e2e::trend::{
    self, Growth, Sample, Tolerance, DRIFT_LIMIT_S, FD_TOLERANCE, RSS_TOLERANCE, THREAD_TOLERANCE,
};
use lucarne_e2e::{
    free_port, workspace, Browser, Engine, Origin, OriginConfig, RtmpPublisher, StaticServer,
};
use serde_json::Value;

const USAGE: &str = "usage: soak [--minutes 30] [--push-viewers 200] [--chat-viewers 2000] \
                     [--posts-per-s 4] [--heart-tappers 40] [--churn-pct 5] [--sources 250] [--seed 1]";

/// How often the server and the widget are sampled.
const SAMPLE: Duration = Duration::from_secs(10);
/// The stream (and chat room) of the soak.
const STREAM: &str = "soak";
/// Its RTMP stream key.
const KEY: &str = "soak-key";

/// Command-line options.
struct Options {
    minutes: u64,
    push_viewers: usize,
    chat_viewers: usize,
    posts_per_s: f64,
    heart_tappers: usize,
    churn_pct: f64,
    sources: u8,
    seed: u64,
}

fn options() -> Result<Options> {
    let mut o = Options {
        minutes: 30,
        push_viewers: 200,
        chat_viewers: 2000,
        posts_per_s: 4.0,
        heart_tappers: 40,
        churn_pct: 5.0,
        sources: 250,
        seed: 1,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value; {USAGE}"))?;
        let bad = || format!("{flag} {value}; {USAGE}");
        match flag.as_str() {
            "--minutes" => o.minutes = value.parse().with_context(bad)?,
            "--push-viewers" => o.push_viewers = value.parse().with_context(bad)?,
            "--chat-viewers" => o.chat_viewers = value.parse().with_context(bad)?,
            "--posts-per-s" => o.posts_per_s = value.parse().with_context(bad)?,
            "--heart-tappers" => o.heart_tappers = value.parse().with_context(bad)?,
            "--churn-pct" => o.churn_pct = value.parse().with_context(bad)?,
            "--sources" => o.sources = value.parse().with_context(bad)?,
            "--seed" => o.seed = value.parse().with_context(bad)?,
            _ => bail!("unknown argument {flag}; {USAGE}"),
        }
    }
    if o.minutes == 0 || o.sources == 0 || o.sources > 250 {
        bail!("--minutes must be at least 1 and --sources within 1..=250; {USAGE}");
    }
    Ok(o)
}

fn main() {
    let result = options().and_then(|o| tokio::runtime::Runtime::new()?.block_on(run(o)));
    match result {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("soak: {e:#}");
            std::process::exit(2);
        }
    }
}

/// CPU ticks (user + system, 1/100 s), resident memory and threads of one process.
#[derive(Clone, Copy, Debug, Default)]
struct ProcUse {
    ticks: u64,
    rss_kb: u64,
    threads: u64,
}

/// Reads `/proc/PID/stat` and `/proc/PID/status`; `None` once the process is gone.
fn proc_use(pid: u32) -> Option<ProcUse> {
    let ticks = Stat::of(pid)?.ticks;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    Some(ProcUse {
        ticks,
        rss_kb: field("VmRSS:")?,
        threads: field("Threads:")?,
    })
}

fn open_fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// CPU ticks and proportional memory (PSS, so shared pages count once) of every
/// process in process group `pgid`: the browser the driver started.
fn group_use(pgid: u32) -> ProcUse {
    let mut total = ProcUse::default();
    for (pid, stat) in procstat::group(pgid) {
        total.ticks += stat.ticks;
        total.threads += 1;
        total.rss_kb += std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Pss:"))?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or(0);
    }
    total
}

/// Percent of one core between two readings `secs` apart.
fn cpu_pct(before: u64, after: u64, secs: f64) -> f64 {
    // Linux reports CPU time in ticks of 1/100 s (USER_HZ).
    after.saturating_sub(before) as f64 / secs.max(1e-3)
}

/// What the widget page reported since the last read.
#[derive(Debug, Default)]
struct WidgetRead {
    samples: Vec<f64>,
    frames: u64,
    stalls: u64,
    unreadable: u64,
    errors: Vec<String>,
    status: Option<String>,
    heap_mb: Option<f64>,
    /// Buffered media ahead of the playhead (end of the last range − currentTime), s.
    ahead_s: Option<f64>,
    /// `video.playbackRate` (the widget speeds up to catch up with live).
    rate: Option<f64>,
}

/// Takes measure.js's latency samples so far (emptying its array, so the page does not
/// accumulate a run's worth) and its counters.
const READ_WIDGET_JS: &str = r#"
var r = window.__lucarneBench;
if (!r) return null;
var host = document.querySelector('.lucarne-host');
var video = host && host.shadowRoot ? host.shadowRoot.querySelector('video') : null;
var b = video ? video.buffered : null;
return {
  ahead: b && b.length ? b.end(b.length - 1) - video.currentTime : null,
  rate: video ? video.playbackRate : null,
  samples: r.samples.splice(0, r.samples.length),
  frames: r.frames, stalls: r.stalls, unreadable: r.unreadable, errors: r.errors.slice(0, 20),
  status: host ? host.getAttribute('data-status') : null,
  heap: performance.memory ? performance.memory.usedJSHeapSize : null,
};
"#;

async fn read_widget(browser: &Browser) -> Result<WidgetRead> {
    let v = browser.execute(READ_WIDGET_JS, vec![]).await?;
    if v.is_null() {
        return Ok(WidgetRead::default());
    }
    let u = |k: &str| v[k].as_u64().unwrap_or(0);
    Ok(WidgetRead {
        samples: v["samples"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default(),
        frames: u("frames"),
        stalls: u("stalls"),
        unreadable: u("unreadable"),
        errors: v["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e.as_str().unwrap_or("?").to_owned())
                    .collect()
            })
            .unwrap_or_default(),
        status: v["status"].as_str().map(str::to_owned),
        heap_mb: v["heap"].as_f64().map(|b| b / 1e6),
        ahead_s: v["ahead"].as_f64(),
        rate: v["rate"].as_f64(),
    })
}

/// The page the browser plays: the widget embedded from the server's origin, and
/// measure.js watching its `<video>`.
fn soak_page(server: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>lucarne soak</title><script src="measure.js"></script></head>
<body>
<h1>soak</h1>
<script>
lucarneMeasure.start(function () {{
  var host = document.querySelector('.lucarne-host');
  return host && host.shadowRoot && host.shadowRoot.querySelector('video');
}});
</script>
<script async src="{server}/lucarne.js" data-src="{server}/s/{STREAM}"></script>
</body>
</html>
"#
    )
}

/// Waits until the stream says it is live.
async fn wait_live(origin: &Origin, publisher: &RtmpPublisher) -> Result<()> {
    let url = format!("{}/api/streams/{STREAM}", origin.url());
    let start = Instant::now();
    loop {
        let body = reqwest::get(&url).await?.text().await?;
        if body.contains("\"state\":\"live\"") {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(30) {
            bail!(
                "{STREAM} never went live: {body}\nserver:\n{}\nffmpeg:\n{}",
                origin.log_tail(20),
                publisher.log_tail(20)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Everything sampled over the run, for the verdicts.
#[derive(Debug, Default)]
struct Series {
    rss_mb: Vec<Sample>,
    fds: Vec<Sample>,
    threads: Vec<Sample>,
    latency: Vec<Sample>,
    /// Server CPU per sample window, percent of one core.
    cpu: Vec<f64>,
    /// Load generator costs per sample window: (this process, ffmpeg, browser) CPU %.
    load_cpu: Vec<(f64, f64, f64)>,
    /// Largest memory seen: (this process RSS, ffmpeg RSS, browser PSS), MB.
    load_mem_max: (f64, f64, f64),
    /// 10 s windows in which the widget presented no frame.
    frozen_windows: u64,
    /// Page errors (measure.js and media errors), distinct.
    page_errors: Vec<String>,
    /// Widget `waiting` events after its first frame.
    widget_stalls: u64,
    /// Presented frames whose barcode did not read.
    unreadable: u64,
}

/// The readings one sample starts from.
#[derive(Clone, Copy, Debug, Default)]
struct Marks {
    at: Option<Instant>,
    server: ProcUse,
    me: ProcUse,
    ffmpeg: ProcUse,
    browser: ProcUse,
    frames: u64,
}

async fn run(o: Options) -> Result<bool> {
    check_fd_limit(o.push_viewers + o.chat_viewers)?;
    let page_dir = tempfile::Builder::new()
        .prefix("lucarne-soak-page-")
        .tempdir()?;
    std::fs::copy(
        workspace::root().join("bench/measure.js"),
        page_dir.path().join("measure.js"),
    )
    .context("copying bench/measure.js")?;
    let pages = StaticServer::start(page_dir.path()).await?;

    let rtmp_port = free_port()?;
    let mut config = OriginConfig::from_env()?;
    config.extra_args = [
        "--no-demo",
        "--rtmp-listen",
        &format!("127.0.0.1:{rtmp_port}"),
        "--stream-key",
        &format!("{KEY}={STREAM}"),
        "--embed-origin",
        &pages.url(),
    ]
    .map(str::to_owned)
    .into();
    let origin = Origin::start_with(config).await?;
    let pid = origin.pid().context("server pid")?;
    let publisher = RtmpPublisher::start_clocked_scaled(
        &format!("rtmp://127.0.0.1:{rtmp_port}/live/{KEY}"),
        320,
        180,
    )?;
    wait_live(&origin, &publisher).await?;
    eprintln!("soak: {STREAM} is live; server pid {pid}, {}", origin.url());

    let counters = Arc::new(Counters::default());
    let delays = Arc::new(Delays::default());
    let problems = Arc::new(Problems::default());
    let target = Target {
        server: format!("127.0.0.1:{}", origin.port()).parse()?,
        stream: STREAM.into(),
        sources: o.sources,
    };
    let push = PushCrowd::join(&target, o.push_viewers, counters.clone()).await?;
    eprintln!("soak: {} push viewers receiving", o.push_viewers);
    let plan = ChatPlan {
        viewers: o.chat_viewers,
        posts_per_s: o.posts_per_s,
        heart_tappers: o.heart_tappers,
        churn_per_min: o.churn_pct / 100.0,
        seed: o.seed,
    };
    let posters = plan.posters();
    let chat = ChatCrowd::join(
        &target,
        plan,
        counters.clone(),
        delays.clone(),
        problems.clone(),
    )
    .await?;
    eprintln!(
        "soak: {} chat viewers in the room ({posters} posting, {} tapping hearts)",
        o.chat_viewers, o.heart_tappers
    );

    std::fs::write(page_dir.path().join("soak.html"), soak_page(&origin.url()))?;
    let browser = Browser::launch(Engine::Chromium).await?;
    let page = format!("{}/soak.html", pages.url());
    browser.goto(&page).await?;
    let start = Instant::now();
    loop {
        let v = browser
            .execute(
                "return window.__lucarneBench ? window.__lucarneBench.ttff_s : null;",
                vec![],
            )
            .await?;
        if let Some(t) = v.as_f64() {
            eprintln!("soak: the widget shows its first frame after {t:.2} s; {page}");
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = browser.close().await;
            bail!(
                "the widget showed no frame in 60 s on {page}\nserver:\n{}",
                origin.log_tail(20)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = read_widget(&browser).await?;

    let outcome = soak(
        &o, pid, &publisher, &browser, &push, &chat, &counters, &delays,
    )
    .await;
    // Stop the load in every case, then judge.
    let (series, end, server_gone) = match outcome {
        Ok(v) => v,
        Err(e) => {
            let _ = browser.close().await;
            bail!("{e:#}\nserver:\n{}", origin.log_tail(30));
        }
    };
    let silent_at_end = push.silent();
    let _ = browser.close().await;
    chat.stop().await;
    push.stop().await;
    publisher.kill().await;
    Ok(report(
        &o,
        &series,
        &counters.totals(),
        end,
        silent_at_end,
        server_gone,
        &problems,
    ))
}

/// The soak proper: samples every [`SAMPLE`], prints every minute, and ends with the
/// chat's quiet check.
#[allow(clippy::too_many_arguments)]
async fn soak(
    o: &Options,
    pid: u32,
    publisher: &RtmpPublisher,
    browser: &Browser,
    push: &PushCrowd,
    chat: &ChatCrowd,
    counters: &Counters,
    delays: &Delays,
) -> Result<(Series, ChatEnd, Option<String>)> {
    let duration = Duration::from_secs(o.minutes * 60);
    let me = std::process::id();
    let ffmpeg = publisher.pid();
    let browser_group = browser.driver_pid();
    let read_all = |at: Instant, frames: u64| Marks {
        at: Some(at),
        server: proc_use(pid).unwrap_or_default(),
        me: proc_use(me).unwrap_or_default(),
        ffmpeg: ffmpeg.and_then(proc_use).unwrap_or_default(),
        browser: browser_group.map(group_use).unwrap_or_default(),
        frames,
    };
    let start = Instant::now();
    let mut series = Series::default();
    let mut window = read_all(start, 0);
    let mut minute = window;
    let mut minute_totals = counters.totals();
    let mut minute_latency: Vec<f64> = Vec::new();
    let mut minute_push_silent = 0;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + SAMPLE, SAMPLE);
    let mut server_gone = None;
    while start.elapsed() < duration {
        tick.tick().await;
        let now = Instant::now();
        let t = (now - start).as_secs_f64();
        let Some(server) = proc_use(pid) else {
            server_gone = Some(format!("the server process ({pid}) is gone at {t:.0} s"));
            break;
        };
        let fds = open_fds(pid).unwrap_or(0);
        let widget = read_widget(browser).await?;
        let marks = read_all(now, widget.frames);
        let secs = (now - window.at.unwrap_or(start)).as_secs_f64();
        series.rss_mb.push(Sample {
            t,
            v: server.rss_kb as f64 / 1024.0,
        });
        series.fds.push(Sample { t, v: fds as f64 });
        series.threads.push(Sample {
            t,
            v: server.threads as f64,
        });
        series
            .cpu
            .push(cpu_pct(window.server.ticks, server.ticks, secs));
        series.load_cpu.push((
            cpu_pct(window.me.ticks, marks.me.ticks, secs),
            cpu_pct(window.ffmpeg.ticks, marks.ffmpeg.ticks, secs),
            cpu_pct(window.browser.ticks, marks.browser.ticks, secs),
        ));
        let mb = |kb: u64| kb as f64 / 1024.0;
        let m = &mut series.load_mem_max;
        *m = (
            m.0.max(mb(marks.me.rss_kb)),
            m.1.max(mb(marks.ffmpeg.rss_kb)),
            m.2.max(mb(marks.browser.rss_kb)),
        );
        // The samples were taken over the window: stamp them at its middle.
        let mid = t - secs / 2.0;
        series
            .latency
            .extend(widget.samples.iter().map(|&v| Sample { t: mid, v }));
        minute_latency.extend(&widget.samples);
        if widget.frames <= window.frames {
            series.frozen_windows += 1;
            eprintln!(
                "soak: the widget presented no frame in the last {secs:.0} s (status {:?})",
                widget.status
            );
        }
        for e in &widget.errors {
            if !series.page_errors.contains(e) {
                series.page_errors.push(e.clone());
            }
        }
        series.widget_stalls = widget.stalls;
        minute_push_silent = minute_push_silent.max(push.silent());
        series.unreadable = widget.unreadable;
        window = marks;

        let whole_minutes = (t / 60.0).round() as u64;
        let at_minute = (t - whole_minutes as f64 * 60.0).abs() < SAMPLE.as_secs_f64() / 2.0;
        if at_minute && whole_minutes > 0 {
            let totals = counters.totals();
            let d = totals - minute_totals;
            let secs = (now - minute.at.unwrap_or(start)).as_secs_f64();
            let (delay_p95, _) = delays.take(95.0);
            println!("# minute {whole_minutes}/{} ({t:.0} s)", o.minutes);
            println!("soak_rss_mb: {:.1}", server.rss_kb as f64 / 1024.0);
            println!("soak_fds: {fds}");
            println!("soak_threads: {}", server.threads);
            println!(
                "soak_cpu_pct: {:.1}",
                cpu_pct(minute.server.ticks, server.ticks, secs)
            );
            println!(
                "soak_widget_latency_p50_s: {}",
                fmt3(percentile(&minute_latency, 50.0))
            );
            println!(
                "soak_widget_latency_p95_s: {}",
                fmt3(percentile(&minute_latency, 95.0))
            );
            println!(
                "soak_widget_frames: {}",
                marks.frames.saturating_sub(minute.frames)
            );
            println!(
                "soak_widget_status: {}",
                widget.status.as_deref().unwrap_or("(none)")
            );
            println!("soak_widget_buffer_ahead_s: {}", fmt3(widget.ahead_s));
            println!("soak_widget_playback_rate: {}", fmt3(widget.rate));
            println!(
                "soak_widget_js_heap_mb: {}",
                widget.heap_mb.map_or("n/a".into(), |h| format!("{h:.1}"))
            );
            println!("soak_push_viewers: {}", totals.push_connected);
            println!("soak_push_chunks: {}", d.push_chunks);
            println!("soak_push_mb: {:.1}", d.push_bytes as f64 / 1e6);
            println!("soak_push_stalls: {}", d.push_stalls);
            println!("soak_push_silent_max: {minute_push_silent}");
            println!("soak_chat_viewers: {}", chat.connected());
            println!("soak_chat_posted: {}", d.chat_posted);
            println!("soak_chat_delivered: {}", d.chat_delivered);
            println!(
                "soak_chat_delay_p95_ms: {}",
                delay_p95.map_or("n/a".into(), |v| v.to_string())
            );
            println!("soak_chat_reconnects: {}", d.chat_churned);
            println!("soak_hearts_sent: {}", d.hearts_sent);
            println!("soak_errors: {}", errors(&d));
            println!(
                "soak_client_cpu_pct: {:.1}",
                cpu_pct(minute.me.ticks, marks.me.ticks, secs)
            );
            println!("soak_client_rss_mb: {:.1}", mb(marks.me.rss_kb));
            println!(
                "soak_ffmpeg_cpu_pct: {:.1}",
                cpu_pct(minute.ffmpeg.ticks, marks.ffmpeg.ticks, secs)
            );
            println!(
                "soak_browser_cpu_pct: {:.1}",
                cpu_pct(minute.browser.ticks, marks.browser.ticks, secs)
            );
            println!("soak_browser_pss_mb: {:.1}", mb(marks.browser.rss_kb));
            minute = marks;
            minute_totals = totals;
            minute_latency.clear();
            minute_push_silent = 0;
        }
    }
    // The end-of-run check: no more posts or churn; every viewer must catch up.
    chat.quiet();
    let end = chat.settle(Duration::from_secs(30)).await;
    Ok((series, end, server_gone))
}

/// Events a viewer would notice, or that should not happen on loopback.
fn errors(d: &Totals) -> u64 {
    d.push_connect_failures
        + d.push_closed
        + d.push_stalls
        + d.chat_connect_failures
        + d.chat_not_recovered
        + d.chat_lost
        + d.chat_duplicates
        + d.chat_bad_frames
}

fn fmt3(v: Option<f64>) -> String {
    v.map_or("n/a".to_owned(), |v| format!("{v:.3}"))
}

/// Prints the summary and returns the verdict.
fn report(
    o: &Options,
    s: &Series,
    t: &Totals,
    end: ChatEnd,
    silent_at_end: usize,
    server_gone: Option<String>,
    problems: &Problems,
) -> bool {
    let duration = (o.minutes * 60) as f64;
    let mut failures: Vec<String> = Vec::new();
    if let Some(gone) = server_gone {
        failures.push(gone);
    }
    println!(
        "== soak: {} min, {} push viewers, {} chat viewers ==",
        o.minutes, o.push_viewers, o.chat_viewers
    );
    let mut judge = |name: &str, unit: &str, samples: &[Sample], tol: Tolerance| match trend::growth(
        samples, duration, tol,
    ) {
        Some(g) => {
            print_growth(name, unit, &g);
            if g.unbounded() {
                failures.push(format!(
                    "{name} grows: {:.1} -> {:.1} {unit} between the middle and last thirds \
                         (allowed +{:.1})",
                    g.middle, g.last, g.allowed
                ));
            }
        }
        None => failures.push(format!("{name}: too few samples to judge")),
    };
    judge("rss", "mb", &s.rss_mb, RSS_TOLERANCE);
    judge("fds", "", &s.fds, FD_TOLERANCE);
    judge("threads", "", &s.threads, THREAD_TOLERANCE);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    println!("soak_cpu_pct_mean: {:.1}", mean(&s.cpu));
    println!(
        "soak_cpu_pct_max: {:.1}",
        s.cpu.iter().copied().fold(0.0, f64::max)
    );

    match trend::drift(&s.latency, duration) {
        Some(d) => {
            println!("soak_widget_latency_first_p50_s: {:.3}", d.first_p50);
            println!("soak_widget_latency_last_p50_s: {:.3}", d.last_p50);
            println!("soak_widget_latency_drift_s: {:.3}", d.increase());
            if d.increase() > DRIFT_LIMIT_S {
                failures.push(format!(
                    "widget latency drifts: p50 {:.3} s -> {:.3} s (limit +{DRIFT_LIMIT_S} s)",
                    d.first_p50, d.last_p50
                ));
            }
        }
        None => failures
            .push("the widget's latency could not be read in the first or last third".into()),
    }
    let all: Vec<f64> = s.latency.iter().map(|x| x.v).collect();
    println!(
        "soak_widget_latency_p50_s: {}",
        fmt3(percentile(&all, 50.0))
    );
    println!(
        "soak_widget_latency_p95_s: {}",
        fmt3(percentile(&all, 95.0))
    );
    println!("soak_widget_latency_samples: {}", all.len());
    println!("soak_widget_frozen_windows: {}", s.frozen_windows);
    println!("soak_widget_stalls: {}", s.widget_stalls);
    println!("soak_widget_unreadable_frames: {}", s.unreadable);
    if s.frozen_windows > 0 {
        failures.push(format!(
            "the widget froze: {} windows of 10 s without a frame",
            s.frozen_windows
        ));
    }
    for e in &s.page_errors {
        println!("# page error: {e}");
    }

    println!("soak_push_chunks_total: {}", t.push_chunks);
    println!("soak_push_mb_total: {:.1}", t.push_bytes as f64 / 1e6);
    println!("soak_push_stalls_total: {}", t.push_stalls);
    println!("soak_push_closed_total: {}", t.push_closed);
    if t.push_stalls > 0 || silent_at_end > 0 || t.push_closed > 0 || t.push_connect_failures > 0 {
        failures.push(format!(
            "push viewers: {} stalls, {silent_at_end} silent at the end, {} sockets closed by the \
             server, {} failed connects",
            t.push_stalls, t.push_closed, t.push_connect_failures
        ));
    }

    println!("soak_chat_posted_total: {}", t.chat_posted);
    println!("soak_chat_acked_total: {}", t.chat_acked);
    println!("soak_chat_delivered_total: {}", t.chat_delivered);
    println!("soak_chat_lost_total: {}", t.chat_lost);
    println!("soak_chat_duplicates_total: {}", t.chat_duplicates);
    println!("soak_chat_reconnects_total: {}", t.chat_churned);
    println!("soak_chat_resumed_total: {}", t.chat_resumed);
    println!("soak_chat_not_recovered_total: {}", t.chat_not_recovered);
    println!("soak_chat_dropped_by_server_total: {}", t.chat_dropped);
    println!("soak_chat_refused_total: {}", t.chat_refused);
    println!(
        "soak_chat_connect_failures_total: {}",
        t.chat_connect_failures
    );
    println!("soak_chat_join_refused_total: {}", t.chat_join_refused);
    println!("soak_chat_end_last_seq: {}", end.last_seq);
    println!("soak_chat_end_connected: {}", end.connected);
    println!("soak_chat_end_behind: {}", end.behind);
    println!("soak_chat_end_unacked: {}", end.unacked);
    println!("soak_hearts_sent_total: {}", t.hearts_sent);
    println!("soak_hearts_frames_total: {}", t.hearts_frames);
    if t.chat_lost > 0 || t.chat_duplicates > 0 || t.chat_not_recovered > 0 {
        failures.push(format!(
            "chat ordering: {} messages lost, {} duplicated, {} resumes not recovered",
            t.chat_lost, t.chat_duplicates, t.chat_not_recovered
        ));
    }
    if end.behind > 0 || end.unacked > 0 || end.connected < o.chat_viewers {
        failures.push(format!(
            "chat at the end: {} of {} viewers connected, {} behind seq {}, {} posts never echoed",
            end.connected, o.chat_viewers, end.behind, end.last_seq, end.unacked
        ));
    }
    if t.chat_connect_failures > 0 || t.chat_bad_frames > 0 {
        failures.push(format!(
            "chat: {} failed joins, {} undecodable frames",
            t.chat_connect_failures, t.chat_bad_frames
        ));
    }
    for (what, n) in problems.list() {
        println!("# seen {n}x: {what}");
    }

    let (me, ff, br): (Vec<f64>, Vec<f64>, Vec<f64>) = s.load_cpu.iter().fold(
        (Vec::new(), Vec::new(), Vec::new()),
        |(mut a, mut b, mut c), &(x, y, z)| {
            a.push(x);
            b.push(y);
            c.push(z);
            (a, b, c)
        },
    );
    println!("soak_client_cpu_pct_mean: {:.1}", mean(&me));
    println!("soak_client_rss_mb_max: {:.1}", s.load_mem_max.0);
    println!("soak_ffmpeg_cpu_pct_mean: {:.1}", mean(&ff));
    println!("soak_ffmpeg_rss_mb_max: {:.1}", s.load_mem_max.1);
    println!("soak_browser_cpu_pct_mean: {:.1}", mean(&br));
    println!("soak_browser_pss_mb_max: {:.1}", s.load_mem_max.2);

    for f in &failures {
        println!("# FAILED: {f}");
    }
    println!(
        "soak_result: {}",
        if failures.is_empty() { "pass" } else { "fail" }
    );
    failures.is_empty()
}

fn print_growth(name: &str, unit: &str, g: &Growth) {
    let suffix = if unit.is_empty() {
        String::new()
    } else {
        format!("_{unit}")
    };
    println!("soak_{name}{suffix}_middle: {:.1}", g.middle);
    println!("soak_{name}{suffix}_last: {:.1}", g.last);
    println!("soak_{name}{suffix}_growth: {:.1}", g.rise);
    println!("soak_{name}{suffix}_allowed: {:.1}", g.allowed);
    println!("soak_{name}{suffix}_slope_per_min: {:.2}", g.slope_per_min);
}

/// Fails early when this process (and so the server, which inherits it) may not open a
/// socket per viewer.
fn check_fd_limit(viewers: usize) -> Result<()> {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft: Option<u64> = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3)?.parse().ok());
    let needed = viewers as u64 + 1000;
    match soft {
        Some(n) if n < needed => bail!(
            "the open-files limit is {n}; {viewers} viewers need {needed} in this process and \
             as many in the server: raise it (ulimit -n {needed})"
        ),
        _ => Ok(()),
    }
}
