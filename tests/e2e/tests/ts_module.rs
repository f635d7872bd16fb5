//! The MPEG-TS module as the server ships it (`/lucarne_ts.js` + `/lucarne_ts_bg.wasm`
//! from `cargo xtask dist`), in each browser: a page on another origin imports it,
//! transmuxes ffmpeg-made TS segments (`crates/ts/tests/fixtures/`) and appends what it
//! returns to MediaSource (ManagedMediaSource where the browser has it), one
//! SourceBuffer per track, as the player will. What a viewer would notice is asserted:
//! the frames decode and the picture plays to the end.
//! - ts_module_output_plays_in_this_browser: H.264 with B-frames + AAC, two segments;
//!   then two segments from unrelated encoders across a discontinuity; then H.264 +
//!   MP3 in the form this browser's MediaSource takes (raw `audio/mpeg` or MP3 in MP4).
//! - A segment that is not TS throws an `Error` that says why, and the next one is
//!   still transmuxed.

use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use lucarne_e2e::{run_scenario, serial, wait_until, Browser, Check, Origin, StaticServer};
use serde_json::{json, Value};

/// Plays `segments` (file names; a start time in seconds, or null to continue) through
/// the module into MediaSource; stores the outcome in `window.__ts[name]`.
const PLAY_JS: &str = r#"
const [origin, name, segments] = arguments;
window.__ts = window.__ts || {};
window.__ts[name] = null;
window.__tsStage = window.__tsStage || {};
window.__tsStage[name] = 'load';
(async () => {
  const report = (r) => { window.__ts[name] = r; };
  try {
    const mod = await import(origin + '/lucarne_ts.js');
    await mod.default();
    const MS = window.ManagedMediaSource || window.MediaSource;
    const video = document.createElement('video');
    video.muted = true;
    video.playsInline = true;
    video.disableRemotePlayback = true;
    document.body.appendChild(video);
    const ms = new MS();
    video.src = URL.createObjectURL(ms);
    await new Promise((r) => ms.addEventListener('sourceopen', r, { once: true }));
    const rawMp3 = !MS.isTypeSupported('audio/mp4; codecs="mp3"');
    const tx = new mod.TsModule(rawMp3);
    const buffers = {};
    const append = (sb, bytes) => new Promise((resolve, reject) => {
      sb.addEventListener('updateend', resolve, { once: true });
      sb.addEventListener('error', () => reject(new Error('append error')), { once: true });
      sb.appendBuffer(bytes);
    });
    const types = [];
    let badError = null;
    // Every SourceBuffer is added before the first append: MediaSource refuses more
    // once media has been appended (Chromium: QuotaExceededError).
    const outputs = [];
    for (const [file, start] of segments) {
      if (file === 'garbage') {
        try { tx.push(new TextEncoder().encode('<html>404</html>'), NaN); }
        catch (e) { badError = String(e && e.message); }
        continue;
      }
      const bytes = new Uint8Array(await (await fetch(file)).arrayBuffer());
      outputs.push(tx.push(bytes, start === null ? NaN : start));
    }
    for (const out of outputs) {
      for (const kind of ['video', 'audio']) {
        const t = out[kind];
        if (!t || buffers[kind]) continue;
        if (!MS.isTypeSupported(t.mime)) throw new Error(kind + ' type not supported: ' + t.mime);
        buffers[kind] = ms.addSourceBuffer(t.mime);
        if (t.mime === 'audio/mpeg') buffers[kind].mode = 'sequence';
        types.push(t.mime);
      }
    }
    window.__tsStage[name] = 'append';
    for (const out of outputs) {
      for (const kind of ['video', 'audio']) {
        const t = out[kind];
        if (!t) continue;
        const sb = buffers[kind];
        if (t.mime === 'audio/mpeg' && !Number.isNaN(t.start)) sb.timestampOffset = t.start;
        if (t.init && t.init.length) await append(sb, t.init);
        if (t.media.length) await append(sb, t.media);
      }
    }
    ms.endOfStream();
    // play() settles when playback starts; an engine that never starts must still
    // report (what it buffered, where it stopped) rather than leave the test waiting.
    window.__tsStage[name] = 'play';
    const started = await Promise.race([
      video.play().then(() => true),
      new Promise((r) => setTimeout(() => r(false), 10000)),
    ]);
    window.__tsStage[name] = 'playing';
    const deadline = performance.now() + 15000;
    while (!video.ended && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : {};
    const ranges = (tr) => Array.from({ length: tr.length }, (_, i) => [tr.start(i), tr.end(i)]);
    report({
      ok: true, types, badError, started, ended: video.ended, currentTime: video.currentTime,
      duration: video.duration, frames: q.totalVideoFrames ?? null,
      dropped: q.droppedVideoFrames ?? null,
      video: buffers.video ? ranges(buffers.video.buffered) : [],
      audio: buffers.audio ? ranges(buffers.audio.buffered) : [],
    });
  } catch (e) {
    report({ ok: false, error: String(e && (e.stack || e.message || e)) });
  }
})();
return true;
"#;

/// Waits for the outcome of [`PLAY_JS`] run as `name`.
async fn play(browser: &Browser, origin: &str, name: &str, segments: Value) -> Result<Value> {
    browser
        .execute(PLAY_JS, vec![json!(origin), json!(name), segments])
        .await?;
    let read = format!(
        "return [(window.__ts || {{}})['{name}'] || null, (window.__tsStage || {{}})['{name}']];"
    );
    wait_until(
        &format!("the {name} segments to play through the TS module"),
        Duration::from_secs(40),
        || async {
            let r = browser.execute(&read, vec![]).await?;
            Ok(if r[0].is_null() {
                Check::NotYet(format!("still at {}", r[1]))
            } else {
                Check::Done(r[0].clone())
            })
        },
    )
    .await
}

/// Asserts that `r` played two 1 s segments of 25 fps video to the end.
fn played_two_seconds(name: &str, r: &Value) -> Result<()> {
    ensure!(r["ok"] == true, "{name}: {}", r["error"]);
    let current = r["currentTime"].as_f64().unwrap_or(0.0);
    ensure!(
        r["ended"] == true && current > 1.8,
        "{name}: did not play to the end: {r}"
    );
    // 2 s at 25 fps. WebKitGTK's count may lag a frame or two behind the picture.
    if let Some(frames) = r["frames"].as_u64() {
        ensure!(
            frames >= 46,
            "{name}: only {frames} of 50 frames decoded: {r}"
        );
    }
    let video = r["video"].as_array().map_or(0, Vec::len);
    ensure!(
        video == 1,
        "{name}: the video buffer has a hole (ranges {}): {r}",
        r["video"]
    );
    ensure!(
        r["audio"].as_array().is_some_and(|a| !a.is_empty()),
        "{name}: no audio buffered: {r}"
    );
    eprintln!("ts_module {name}: {r}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn ts_module_output_plays_in_this_browser() -> Result<()> {
    let _one_at_a_time = serial().await;
    let origin = Origin::start().await?;
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crates/ts/tests/fixtures");
    let dir = tempfile::tempdir()?;
    for entry in std::fs::read_dir(&fixtures).context("the TS fixtures")? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "ts") {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap_or_default()))?;
        }
    }
    std::fs::write(
        dir.path().join("page.html"),
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>TS module</title></head>\
         <body><p>MPEG-TS through lucarne's module.</p></body></html>",
    )?;
    let site = StaticServer::start(dir.path()).await?;
    let browser = Browser::launch_from_env().await?;
    let page = format!("{}/page.html", site.url());
    let server = origin.url();

    run_scenario(
        "ts_module_output_plays_in_this_browser",
        browser,
        async |browser| {
            browser.goto(&page).await?;
            let r = play(
                browser,
                &server,
                "aac",
                json!([
                    ["avc_aac_0.ts", 0.0],
                    ["garbage", null],
                    ["avc_aac_1.ts", null]
                ]),
            )
            .await?;
            played_two_seconds("aac", &r)?;
            let bad = r["badError"].as_str().unwrap_or("");
            ensure!(
                bad.contains("MPEG-TS") || bad.contains("PAT") || bad.contains("packet"),
                "a segment that is not TS should throw an error saying so, got {bad:?}"
            );

            browser.goto(&page).await?;
            let r = play(
                browser,
                &server,
                "discontinuity",
                json!([["disc_a_0.ts", 0.0], ["disc_b_0.ts", 1.0]]),
            )
            .await?;
            played_two_seconds("discontinuity", &r)?;

            browser.goto(&page).await?;
            let r = play(
                browser,
                &server,
                "mp3",
                json!([["avc_mp3_0.ts", 0.0], ["avc_mp3_1.ts", null]]),
            )
            .await?;
            played_two_seconds("mp3", &r)?;
            Ok(())
        },
        || vec![("server.log", origin.log_tail(100))],
    )
    .await
}
