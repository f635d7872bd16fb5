//! What a page can tell of a widget's sound: a Web Audio graph on its `<video>` that
//! listens once the viewer clicks, the engines' decoded-audio counters, and the
//! per-engine assertion that audio was decoded ([`expect_audio_decoded`]). Used by the
//! MPEG-TS and demuxed-audio tests.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::Value;

use crate::engine::{Browser, Engine};
use crate::widget::{Probe, Watch};

/// Installs, for the next click anywhere on the page, a Web Audio graph on the widget's
/// `<video>` (`createMediaElementSource` into an `AnalyserNode`): built inside the
/// click's handler, the AudioContext may start in every engine (WebKit and Firefox
/// keep one made outside a user gesture suspended).
pub const LISTEN_JS: &str = r#"
document.addEventListener('click', () => {
  const host = document.querySelector('.lucarne-host');
  const v = host.shadowRoot.querySelector('video');
  try {
    const ctx = new (window.AudioContext || window.webkitAudioContext)();
    const source = ctx.createMediaElementSource(v);
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 2048;
    source.connect(analyser);
    analyser.connect(ctx.destination);
    ctx.resume();
    window.__audio = { ctx, analyser };
  } catch (e) { window.__audio = { error: String(e) }; }
}, { capture: true, once: true });
"#;

/// What the page's `<video>` says about its audio, and whether the page requested the
/// TS module. With `listen`, reads the [`LISTEN_JS`] analyser for 2 s. Calls back with
/// `{bytes, peak, state, muted, tsRequested, error}`: `bytes` is
/// `webkitAudioDecodedByteCount` (null where the engine lacks it: Firefox, WebKitGTK);
/// `peak` the largest sample amplitude heard (the test pattern's 1 kHz sine is about
/// 0.125; silence is 0); `state` the AudioContext's.
const AUDIO_JS: &str = r#"
const [listen] = arguments;
const done = arguments[arguments.length - 1];
const host = document.querySelector('.lucarne-host');
const v = host && host.shadowRoot ? host.shadowRoot.querySelector('video') : null;
const ts = performance.getEntriesByType('resource').some((e) => /lucarne_ts/.test(e.name));
const out = { bytes: null, peak: null, state: null, muted: v ? v.muted : null, tsRequested: ts, error: null,
  mozHasAudio: v && typeof v.mozHasAudio === 'boolean' ? v.mozHasAudio : null };
if (!v) { done(out); return; }
if (typeof v.webkitAudioDecodedByteCount === 'number') out.bytes = v.webkitAudioDecodedByteCount;
if (!listen) { done(out); return; }
const a = window.__audio;
if (!a || !a.analyser) { out.error = a ? a.error : 'no Web Audio graph (no click?)'; done(out); return; }
const buf = new Float32Array(a.analyser.fftSize);
let peak = 0, reads = 0;
const timer = setInterval(() => {
  a.analyser.getFloatTimeDomainData(buf);
  for (let i = 0; i < buf.length; i++) peak = Math.max(peak, Math.abs(buf[i]));
  if (++reads >= 20) {
    clearInterval(timer);
    out.peak = peak;
    out.state = a.ctx.state;
    done(out);
  }
}, 100);
"#;

/// One reading of [`AUDIO_JS`].
#[derive(Debug)]
pub struct Audio {
    pub bytes: Option<f64>,
    pub peak: Option<f64>,
    pub moz_has_audio: Option<bool>,
    pub ts_requested: bool,
    pub raw: Value,
}

pub async fn audio(browser: &Browser, listen: bool) -> Result<Audio> {
    let v = browser
        .execute_async(AUDIO_JS, vec![Value::Bool(listen)])
        .await?;
    Ok(Audio {
        bytes: v["bytes"].as_f64(),
        peak: v["peak"].as_f64(),
        moz_has_audio: v["mozHasAudio"].as_bool(),
        ts_requested: v["tsRequested"].as_bool().unwrap_or(false),
        raw: v,
    })
}

/// Asserts the audio was decoded, as far as `engine` lets a page see it:
/// - Chromium and WebKit: Web Audio on the unmuted `<video>` hears the sine (`heard`);
///   on Chromium `webkitAudioDecodedByteCount` also grew between `before` and `after`
///   (read seconds apart while the video played).
/// - Firefox: headless here, it keeps the AudioContext suspended even when made in a
///   click's handler (no audio output device), and it has no decoded-audio counter;
///   what it shows is `mozHasAudio`: the element's decoder found the audio track in
///   what the widget appended.
pub fn expect_audio_decoded(
    engine: Engine,
    heard: &Audio,
    before: &Audio,
    after: &Audio,
) -> Result<()> {
    if engine == Engine::Firefox {
        ensure!(
            after.moz_has_audio == Some(true),
            "Firefox's video has no audio (mozHasAudio): {}",
            after.raw
        );
        return Ok(());
    }
    let peak = heard.peak.unwrap_or(0.0);
    ensure!(
        peak > 0.01,
        "Web Audio hears nothing from the video (peak {peak}): {}",
        heard.raw
    );
    if engine == Engine::Chromium {
        let (b, a) = (before.bytes.unwrap_or(0.0), after.bytes.unwrap_or(0.0));
        ensure!(
            a > b,
            "no audio decoded while the video played: webkitAudioDecodedByteCount {b} -> {a}"
        );
    }
    Ok(())
}

/// What [`listen_while_playing`] saw: the audio before the viewer unmuted, while
/// listening, and after 5 s of playback; and that playback.
#[derive(Debug)]
pub struct Listened {
    pub before: Audio,
    pub heard: Audio,
    pub after: Audio,
    pub watch: Watch,
}

impl Listened {
    /// Asserts the audio was decoded (see [`expect_audio_decoded`]).
    pub fn expect_audio_decoded(&self, engine: Engine) -> Result<()> {
        expect_audio_decoded(engine, &self.heard, &self.before, &self.after)
    }
}

/// Waits for the widget to play `what`, unmutes it with its badge as a viewer would
/// (the click also builds the [`LISTEN_JS`] graph that listens to the video), listens,
/// and watches 5 s of playback, which must be smooth and move on.
pub async fn listen_while_playing(browser: &Browser, what: &str) -> Result<Listened> {
    let widget = Probe::widget();
    widget
        .wait_playing(browser, Duration::from_secs(20))
        .await
        .with_context(|| format!("{what} never played"))?;
    let before = audio(browser, false).await?;
    browser.execute(LISTEN_JS, vec![]).await?;
    browser
        .click_in_shadow(".lucarne-host", 0, ".unmute-badge")
        .await?;
    let heard = audio(browser, true).await?;
    let watch = widget.watch(browser, Duration::from_secs(5)).await?;
    let after = audio(browser, false).await?;
    watch.expect_smooth()?;
    ensure!(
        watch.frames_grown() > 30 && watch.advanced_s() > 3.0,
        "{what} does not play on: {}",
        watch.describe()
    );
    Ok(Listened {
        before,
        heard,
        after,
        watch,
    })
}
