//! ladder: lucarne's own rendition ladder, end to end (issue 13, items 2 and 6). A
//! broadcaster publishes 640×360 over RTMP to lucarne-server started with
//! `--ladder 360,180`; the server's ffmpeg makes a 320×180 rendition and
//! `index.m3u8` becomes a multivariant playlist of the source and it. The widget, on a
//! page on another origin, reaches the stream through a [`Throttle`] (a link whose rate
//! the test changes while the page plays) and adapts: on a fast link it plays the
//! source (360 high), and when the link falls below the source's bitrate it steps down
//! to 180. The playing height is what the page is told: `detail.height` of the
//! widget's `lucarne:status` events.
//!
//! Over the low-latency push too (the page also gives `data-ll`): the widget starts on
//! the source's push, steps down to the 180p rung's push when the link falls, and back
//! to the source's when it rises; the page records every WebSocket the widget opens,
//! so the test sees the pushes it switched between.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use lucarne_e2e::process::{Output, Spawned};
use lucarne_e2e::wait::POLL;
use lucarne_e2e::{
    free_port, run_scenario, serial, Browser, Origin, OriginConfig, Probe, StaticServer, Throttle,
    Watch,
};
use serde_json::Value;

const MBIT: u64 = 1_000_000;
/// Page load, widget download, first frame.
const READY: Duration = Duration::from_secs(30);

/// The origin with its ladder, the broadcaster, the slow link to the origin, the page.
struct Setup {
    origin: Origin,
    publisher: Spawned,
    link: Throttle,
    _pages: StaticServer,
    _dir: tempfile::TempDir,
    page: String,
}

/// A broadcaster of 640×360 noise at about 1.5 Mbit/s (noise, so the source weighs
/// its bitrate and a slow link cannot carry it), 25 fps, a keyframe a second, AAC.
fn publish(url: &str) -> Result<Spawned> {
    let args: Vec<String> = [
        "-hide_banner",
        "-loglevel",
        "warning",
        "-re",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=640x360:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-vf",
        "noise=alls=40:allf=t",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-tune",
        "zerolatency",
        "-b:v",
        "1500k",
        "-maxrate",
        "1500k",
        "-bufsize",
        "1500k",
        "-g",
        "25",
        "-bf",
        "0",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "64k",
        "-f",
        "flv",
        url,
    ]
    .map(str::to_owned)
    .into();
    let (process, _) = Spawned::start("ffmpeg", "ffmpeg", args, &[], Output::Capture)?;
    Ok(process)
}

/// Records every WebSocket the page opens (`window.__sockets`: URLs in order).
const SOCKET_SPY: &str = "<script>window.__sockets = []; (() => { const W = window.WebSocket; \
    window.WebSocket = function (url, protocols) { window.__sockets.push(String(url)); \
    return protocols === undefined ? new W(url) : new W(url, protocols); }; \
    window.WebSocket.prototype = W.prototype; \
    for (const k of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) window.WebSocket[k] = W[k]; \
    })();</script>";

impl Setup {
    /// The origin with its ladder, a link of `bps`, and the page: with `push`, it also
    /// gives the widget the low-latency push (through the same link).
    async fn start(bps: u64, push: bool) -> Result<Self> {
        let rtmp = free_port()?;
        let mut config = OriginConfig::from_env()?;
        config.extra_args = [
            "--stream-key",
            "e2e-key=studio",
            "--rtmp-listen",
            &format!("127.0.0.1:{rtmp}"),
            "--ladder",
            "360,180",
            "--ladder-preset",
            "ultrafast",
        ]
        .map(str::to_owned)
        .into();
        let origin = Origin::start_with(config).await?;
        let publisher = publish(&format!("rtmp://127.0.0.1:{rtmp}/live/e2e-key"))?;
        // The ladder is up once the multivariant playlist lists the 180p rendition,
        // and the source has a few segments (the widget starts behind the edge).
        let index = format!("{}/live/studio/index.m3u8", origin.url());
        let source = format!("{}/live/studio/source.m3u8", origin.url());
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let master = text(&index).await.unwrap_or_default();
            let segments = text(&source)
                .await
                .unwrap_or_default()
                .lines()
                .filter(|l| l.ends_with(".m4s") && !l.starts_with('#'))
                .count();
            if master.contains("180p/index.m3u8") && segments >= 4 {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "no ladder in 40 s: index.m3u8 {master:?}; server log: {}",
                origin.log_tail(40)
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let upstream = SocketAddr::from(([127, 0, 0, 1], origin.port()));
        let link = Throttle::start(upstream, bps).await?;
        let dir = tempfile::tempdir()?;
        // The listener goes before the loader, so no event is missed.
        let ll = if push {
            format!(" data-ll=\"{}/live/studio/ll\"", link.url())
        } else {
            String::new()
        };
        let html = format!(
            "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>Ladder</title>\n\
             <script>window.__heights = []; document.addEventListener('lucarne:status', \
             e => window.__heights.push(e.detail.height));</script>{SOCKET_SPY}</head>\n<body>\n\
             <h1>A broadcast with its ladder</h1>\n\
             <script src=\"{}/lucarne.js\" data-stream=\"{}/live/studio/index.m3u8\"{ll}></script>\n\
             </body>\n</html>\n",
            origin.url(),
            link.url(),
        );
        std::fs::write(dir.path().join("ladder.html"), html)?;
        let pages = StaticServer::start(dir.path()).await?;
        let page = format!("{}/ladder.html", pages.url());
        Ok(Self {
            origin,
            publisher,
            link,
            _pages: pages,
            _dir: dir,
            page,
        })
    }

    fn artifacts(&self) -> Vec<(&'static str, String)> {
        vec![
            ("server.log", self.origin.log_tail(200)),
            ("publisher.log", self.publisher.log().tail(50)),
        ]
    }
}

async fn text(url: &str) -> Result<String> {
    let r = reqwest::get(url).await?;
    ensure!(r.status().is_success(), "{url}: {}", r.status());
    Ok(r.text().await?)
}

/// Every `detail.height` the page was told, in order.
async fn heights(browser: &Browser) -> Result<Vec<u64>> {
    let v: Value = browser
        .execute("return window.__heights || [];", vec![])
        .await?;
    Ok(v.as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default())
}

/// Samples playback and the announced height every [`POLL`] for `duration`, or until
/// `stop(height)`; returns the playback samples and (seconds, height) at each change.
async fn observe(
    browser: &Browser,
    duration: Duration,
    stop: impl Fn(u64) -> bool,
) -> Result<(Watch, Vec<(f64, u64)>)> {
    let widget = Probe::widget();
    let start = Instant::now();
    let mut samples = Vec::new();
    let mut changes: Vec<(f64, u64)> = Vec::new();
    loop {
        samples.push(widget.state(browser).await?);
        let h = heights(browser).await?.last().copied().unwrap_or(0);
        if changes.last().is_none_or(|&(_, last)| last != h) {
            changes.push((start.elapsed().as_secs_f64(), h));
        }
        if stop(h) || start.elapsed() >= duration {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    Ok((Watch { samples }, changes))
}

#[tokio::test(flavor = "multi_thread")]
async fn lucarnes_own_ladder_plays_the_source_on_a_fast_link_and_steps_down_when_it_falls(
) -> Result<()> {
    let _one_at_a_time = serial().await;
    let setup = Setup::start(8 * MBIT, false).await?;
    let browser = Browser::launch_from_env().await?;
    run_scenario(
        "lucarnes_own_ladder_plays_the_source_on_a_fast_link_and_steps_down_when_it_falls",
        browser,
        async |browser| step_down(browser, &setup).await,
        || setup.artifacts(),
    )
    .await
}

async fn step_down(browser: &Browser, setup: &Setup) -> Result<()> {
    browser.goto(&setup.page).await?;
    Probe::widget()
        .wait_playing(browser, READY)
        .await
        .context("the broadcast with its ladder never played")?;
    let (_, climb) = observe(browser, Duration::from_secs(60), |h| h == 360).await?;
    ensure!(
        climb.last().is_some_and(|&(_, h)| h == 360),
        "on an 8 Mbit/s link the widget never played the 640×360 source in 60 s: heights {climb:?}"
    );
    eprintln!("ladder: 8 Mbit/s: heights {climb:?}");

    // The source weighs some 1.6 Mbit/s, the 180p rendition some 0.2.
    setup.link.set_bps(MBIT / 2);
    let (low, down) = observe(browser, Duration::from_secs(60), |h| h == 180).await?;
    ensure!(
        down.last().is_some_and(|&(_, h)| h == 180),
        "at 0.5 Mbit/s the widget did not step down to 180 in 60 s: heights {down:?}; {}",
        low.describe()
    );
    eprintln!("ladder: 0.5 Mbit/s: heights {down:?}");
    // And plays on there.
    let (steady, held) = observe(browser, Duration::from_secs(8), |_| false).await?;
    ensure!(
        steady.frames_grown() > 0 && steady.advanced_s() > 4.0,
        "at 180p the picture does not move: {}",
        steady.describe()
    );
    ensure!(
        held.iter().all(|&(_, h)| h == 180),
        "at 0.5 Mbit/s 180p did not last: heights {held:?}"
    );
    Ok(())
}

/// The WebSockets the page opened, in order.
async fn sockets(browser: &Browser) -> Result<Vec<String>> {
    let v: Value = browser
        .execute("return window.__sockets || [];", vec![])
        .await?;
    Ok(v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|u| u.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread")]
async fn over_the_push_lucarnes_ladder_steps_down_when_the_link_falls_and_up_when_it_rises(
) -> Result<()> {
    let _one_at_a_time = serial().await;
    let setup = Setup::start(8 * MBIT, true).await?;
    let browser = Browser::launch_from_env().await?;
    run_scenario(
        "over_the_push_lucarnes_ladder_steps_down_when_the_link_falls_and_up_when_it_rises",
        browser,
        async |browser| {
            browser.goto(&setup.page).await?;
            Probe::widget()
                .wait_playing(browser, READY)
                .await
                .context("the broadcast with its ladder never played over the push")?;
            let (_, start) = observe(browser, Duration::from_secs(20), |h| h == 360).await?;
            ensure!(
                start.last().is_some_and(|&(_, h)| h == 360),
                "on an 8 Mbit/s link the push did not play the 640×360 source: heights {start:?}"
            );
            let opened = sockets(browser).await?;
            ensure!(
                opened.iter().any(|u| u.ends_with("/live/studio/ll")),
                "the widget opened no push: {opened:?}"
            );

            setup.link.set_bps(MBIT / 2);
            let (low, down) = observe(browser, Duration::from_secs(45), |h| h == 180).await?;
            let opened = sockets(browser).await?;
            ensure!(
                down.last().is_some_and(|&(_, h)| h == 180),
                "at 0.5 Mbit/s the push did not step down to 180 in 45 s: heights {down:?}; \
                 sockets {opened:?}; {}",
                low.describe()
            );
            ensure!(
                opened.iter().any(|u| u.ends_with("/live/studio/180p/ll")),
                "it stepped down, but not to the 180p rung's push: sockets {opened:?}"
            );
            eprintln!("ladder push: 0.5 Mbit/s: heights {down:?}");
            let (steady, _) = observe(browser, Duration::from_secs(6), |_| false).await?;
            ensure!(
                steady.frames_grown() > 0 && steady.advanced_s() > 3.0,
                "at 180p the picture does not move: {}",
                steady.describe()
            );

            setup.link.set_bps(8 * MBIT);
            // A rise is believed once probes add up to some nine seconds of media
            // (push_abr's module doc): 18-49 s measured on the three engines.
            let (high, up) = observe(browser, Duration::from_secs(90), |h| h == 360).await?;
            let opened = sockets(browser).await?;
            ensure!(
                up.last().is_some_and(|&(_, h)| h == 360),
                "back at 8 Mbit/s the push did not step up to 360 in 90 s: heights {up:?}; \
                 sockets {opened:?}; {}",
                high.describe()
            );
            let last_source = opened.iter().rposition(|u| u.ends_with("/live/studio/ll"));
            let last_low = opened.iter().rposition(|u| u.ends_with("/180p/ll"));
            ensure!(
                last_source > last_low,
                "it stepped up, but not by opening the source's push again: sockets {opened:?}"
            );
            eprintln!("ladder push: 8 Mbit/s again: heights {up:?}; sockets {opened:?}");
            Ok(())
        },
        || setup.artifacts(),
    )
    .await
}
