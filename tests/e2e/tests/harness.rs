//! Tests of the harness and of bench/measure.js that need no lucarne-server:
//! the barcode read in a real browser from a plain `<video src=demo.mp4>`, and a
//! latency measurement of hls.js playing ffmpeg's live HLS of the demo clip.
//! They guard the measuring instruments, so the benchmark's numbers can be trusted.
//!
//! The benchmark runs in Chromium only (`cargo xtask bench playback`), so these run
//! there only: `cargo xtask test` leaves them out on the other engines, and run
//! directly on another engine they fail saying so ([`only_on`]), never pass.

use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use lucarne_e2e::stats::percentile;
use lucarne_e2e::{
    bench_pages, only_on, run_scenario, serial, workspace, Browser, Engine, FfmpegHls, HlsSource,
    Probe, StaticServer,
};
use serde_json::json;

const CLIP_PAGE: &str = r#"<!doctype html>
<meta charset="utf-8"><title>measure.js on the plain clip</title>
<script src="measure.js"></script>
<video id="v" src="demo.mp4#t=12" muted autoplay loop playsinline></video>
<script>lucarneMeasure.start(() => document.getElementById('v'), { keepFrames: true });</script>
"#;

/// Seeks a paused video to each listed frame and reads it with measure.js.
const SEEK_AND_READ_JS: &str = r#"
const [frames, done] = [arguments[0], arguments[arguments.length - 1]];
const v = document.getElementById('v');
const ctx = lucarneMeasure.newReader();
(async () => {
  v.pause();
  const out = [];
  for (const n of frames) {
    const seeked = new Promise(r => v.addEventListener('seeked', r, { once: true }));
    v.currentTime = (n + 0.5) / 30;
    await seeked;
    // Let the seeked frame reach the compositor (rVFC, or give up after 500 ms).
    await Promise.race([
      new Promise(r => v.requestVideoFrameCallback(() => r())),
      new Promise(r => setTimeout(r, 500)),
    ]);
    out.push([n, lucarneMeasure.readFrame(ctx, v)]);
  }
  done(out);
})().catch(e => done(String(e)));
"#;

/// Why these tests run in Chromium only.
const BENCHMARK_ENGINE: &str = "the playback benchmark and its measure.js run in Chromium only";

#[tokio::test(flavor = "multi_thread")]
async fn measure_js_reads_every_presented_frame_of_the_clip() -> Result<()> {
    only_on(Engine::Chromium, BENCHMARK_ENGINE)?;
    let _one_at_a_time = serial().await;
    let dir = tempfile::tempdir()?;
    std::fs::copy(
        bench_pages::dir().join("measure.js"),
        dir.path().join("measure.js"),
    )?;
    std::fs::copy(
        workspace::root().join("media/demo.mp4"),
        dir.path().join("demo.mp4"),
    )
    .context("media/demo.mp4 missing: run media/make-demo-clip.sh")?;
    std::fs::write(dir.path().join("clip.html"), CLIP_PAGE)?;
    let site = StaticServer::start(dir.path()).await?;
    let browser = Browser::launch_from_env().await?;
    let url = format!("{}/clip.html", site.url());

    run_scenario(
        "measure_js_clip",
        browser,
        async move |browser| {
            browser.goto(&url).await?;
            let video = Probe::selector("#v");
            video.wait_playing(browser, Duration::from_secs(20)).await?;
            // Play from 12 s through the loop point (479 -> 0) and a few seconds on.
            // (currentTime jumps back at the loop, so no expect_smooth() here.)
            let watch = video.watch(browser, Duration::from_secs(7)).await?;
            ensure!(
                watch.frames_grown() >= 100,
                "clip barely played: {}",
                watch.describe()
            );
            let m = bench_pages::read(browser)
                .await?
                .context("measure.js did not run")?;
            let log = m.raw["frame_log"].as_array().cloned().unwrap_or_default();
            let ns: Vec<i64> = log.iter().map(|e| e[0].as_i64().unwrap_or(-2)).collect();
            let wrapped = ns.windows(2).any(|w| w[0] > 400 && (0..60).contains(&w[1]));
            ensure!(
                m.frames >= 100,
                "only {} frames presented: {:?}",
                m.frames,
                m.raw
            );
            ensure!(m.errors.is_empty(), "measure.js errors: {:?}", m.errors);
            ensure!(
                m.unreadable == 0,
                "{} of {} presented frames unreadable; frame log {:?}",
                m.unreadable,
                m.frames,
                ns
            );
            ensure!(
            m.mediatime_disagree == 0,
            "{} frames read a different index than their media time says; log (n, mediaTime): {:?}",
            m.mediatime_disagree,
            log
        );
            ensure!(wrapped, "never saw the loop point (479 -> 0): {ns:?}");

            let wanted = [0, 1, 29, 30, 31, 59, 60, 240, 449, 450, 478, 479];
            let read = browser
                .execute_async(SEEK_AND_READ_JS, vec![json!(wanted)])
                .await?;
            let pairs = read
                .as_array()
                .with_context(|| format!("seek check failed: {read}"))?;
            for pair in pairs {
                let (n, got) = (pair[0].as_i64(), pair[1].as_i64());
                if n != got {
                    bail!("seeked to frame {n:?}, barcode read {got:?} (all: {read})");
                }
            }
            ensure!(pairs.len() == wanted.len(), "seek check returned {read}");
            eprintln!(
                "measure.js: {} frames presented and read correctly, loop point crossed; \
             seek check read {wanted:?} exactly",
                m.frames
            );
            Ok(())
        },
        Vec::new,
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn hlsjs_page_measures_latency_of_a_live_clip() -> Result<()> {
    only_on(Engine::Chromium, BENCHMARK_ENGINE)?;
    let _one_at_a_time = serial().await;
    bench_pages::ensure_deps().await?;
    let clip = workspace::root().join("media/demo.mp4");
    // Stands in for lucarne-server's demo: same path, media time = unix time.
    let stream = FfmpegHls::start_at(HlsSource::LiveClip(clip), "live/demo").await?;
    let pages = StaticServer::start(bench_pages::dir()).await?;
    let browser = Browser::launch_from_env().await?;
    let url = format!(
        "{}/hlsjs.html?server={}",
        pages.url(),
        stream.server().url()
    );

    let late = stream
        .program_date_time_late()
        .context("the live clip's program date time")?;

    run_scenario("hlsjs_live_clip", browser, async move |browser| {
        browser.goto(&url).await?;
        let video = Probe::selector("video");
        video.wait_playing(browser, Duration::from_secs(30)).await?;
        let watch = video.watch(browser, Duration::from_secs(15)).await?;
        watch.expect_smooth()?;
        let m = bench_pages::read(browser).await?.context("measure.js did not run")?;
        ensure!(m.samples.len() >= 200, "only {} latency samples: {:?}", m.samples.len(), m.raw);
        ensure!(
            (m.unreadable as f64) <= 0.02 * m.frames as f64,
            "{} of {} frames unreadable",
            m.unreadable,
            m.frames
        );
        let p50 = percentile(&m.samples, 50.0).unwrap_or(f64::NAN);
        ensure!(
            (0.1..10.0).contains(&p50),
            "implausible barcode latency p50 {p50:.3} s (samples {})",
            m.samples.len()
        );
        // Independent estimate: hls.js rebases media time to 0, but knows the wall
        // time of the playhead from EXT-X-PROGRAM-DATE-TIME, which ffmpeg writes late
        // by its start-up time (`program_date_time_late`, 0.09-0.28 s seen): that is
        // taken back. Each look reads playingDate and the newest barcode sample at the
        // same instant, as the latency drifts (a stall adds to it).
        let (mut probe, mut barcode) = (Vec::new(), Vec::new());
        for _ in 0..15 {
            let v = browser
                .execute(
                    "const d = window.__hls && window.__hls.playingDate; \
                     const s = window.__lucarneBench.samples; \
                     return d && s.length \
                       ? [Date.now() / 1000 - d.getTime() / 1000, s[s.length - 1]] : null;",
                    vec![],
                )
                .await?;
            if let (Some(p), Some(b)) = (v[0].as_f64(), v[1].as_f64()) {
                probe.push(p + late);
                barcode.push(b);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let differences: Vec<f64> = probe.iter().zip(&barcode).map(|(p, b)| p - b).collect();
        ensure!(
            differences.len() >= 10,
            "hls.playingDate and a barcode sample were there at {} of 15 looks",
            differences.len()
        );
        let probe50 = percentile(&probe, 50.0).unwrap_or(f64::NAN);
        let barcode50 = percentile(&barcode, 50.0).unwrap_or(f64::NAN);
        let difference50 = percentile(&differences, 50.0).unwrap_or(f64::NAN);
        ensure!(
            difference50.abs() < 0.25,
            "barcode latency (p50 {barcode50:.3} s) disagrees with Date.now() - \
             hls.playingDate (p50 {probe50:.3} s, ffmpeg's dates {late:.3} s late taken \
             back) read at the same instants: median difference {difference50:.3} s over \
             {} looks",
            differences.len()
        );
        eprintln!(
            "hls.js on ffmpeg's live clip: barcode latency p50 {p50:.3} s, p95 {:.3} s, \
             program-date-time estimate {probe50:.3} s (ffmpeg's {late:.3} s late taken back); ttff {:?} s; {} stalls; {} frames, {} unreadable; \
             mediaTime agrees {}/{}; errors {:?}",
            percentile(&m.samples, 95.0).unwrap_or(f64::NAN),
            m.ttff_s,
            m.stalls,
            m.frames,
            m.unreadable,
            m.mediatime_agree,
            m.mediatime_agree + m.mediatime_disagree,
            m.errors
        );
        Ok(())
    }, || vec![("ffmpeg.log", stream.log_tail(100))])
    .await
}
