//! Live HLS with MPEG-TS segments (`ffmpeg -f hls -hls_segment_type mpegts`, H.264 +
//! AAC, what nginx-rtmp and most hardware encoders serve), embedded on another origin
//! with lucarne's one script tag.
//! - a_ts_live_stream_plays_with_sound: the widget imports the TS module, and the video
//!   plays: frames decoded, currentTime advancing, status `playing`, no error; and the
//!   audio is decoded. Per engine (see `expect_audio_decoded`): on Chromium and WebKit
//!   the video, unmuted with the widget's badge and routed through Web Audio, carries
//!   the test pattern's sine (an `AnalyserNode` hears it), and on Chromium
//!   `webkitAudioDecodedByteCount` grows while it plays; headless Firefox keeps its
//!   AudioContext suspended (no audio device) and has no such counter, so there only
//!   `mozHasAudio` is asserted (its decoder found the audio track).
//! - an_fmp4_stream_downloads_no_ts_module: an fMP4 stream plays without the page ever
//!   requesting `lucarne_ts.js` or its wasm.
//! - a_ts_stream_without_its_module_says_so: served from a copy of `dist/` without the
//!   TS module, a TS stream shows `error` with a message naming the MPEG-TS module, not
//!   "Connecting…".

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use lucarne_e2e::sound::{audio, listen_while_playing};
use lucarne_e2e::{
    embed_page, run_scenario, serial, wait_until, Browser, Check, FfmpegHls, HlsSource, Origin,
    Probe, StaticServer,
};

/// The lucarne origin (for the loader), ffmpeg's stream and the embedding page on the
/// stream's origin, loading the widget from `loader`'s base (the origin when None).
async fn setup(source: HlsSource, loader: Option<&str>) -> Result<(Origin, FfmpegHls, String)> {
    let origin = Origin::start().await?;
    let stream = FfmpegHls::start(source).await?;
    let loader = loader.map_or_else(|| format!("{}/lucarne.js", origin.url()), str::to_owned);
    let page = embed_page("A blog on another origin", &loader, &stream.url(), None);
    std::fs::write(stream.dir().join("embed.html"), page)?;
    let url = format!("{}/embed.html", stream.server().url());
    Ok((origin, stream, url))
}

fn artifacts(origin: &Origin, stream: &FfmpegHls) -> Vec<(&'static str, String)> {
    vec![
        ("server.log", origin.log_tail(200)),
        ("ffmpeg.log", stream.log_tail(100)),
        (
            "requests.txt",
            format!("{:#?}", stream.server().faults().served()),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ts_live_stream_plays_with_sound() -> Result<()> {
    let _one_at_a_time = serial().await;
    let (origin, stream, url) = setup(HlsSource::TestPatternTs, None).await?;
    let browser = Browser::launch_from_env().await?;

    run_scenario(
        "a_ts_live_stream_plays_with_sound",
        browser,
        async |browser| {
            browser.goto(&url).await?;
            let what = format!("the MPEG-TS stream {}", stream.url());
            let listened = listen_while_playing(browser, &what).await?;
            let (watch, heard, after) = (&listened.watch, &listened.heard, &listened.after);
            ensure!(
                watch.last().status.as_deref() == Some("playing") && watch.last().error.is_none(),
                "the TS stream plays but the widget shows {:?} (error {:?}); {}",
                watch.last().status,
                watch.last().error,
                watch.describe()
            );
            ensure!(
                after.ts_requested,
                "played without requesting the TS module?"
            );
            listened.expect_audio_decoded(browser.engine())?;
            eprintln!(
                "a_ts_live_stream_plays_with_sound: {}; audio {} -> {}",
                watch.describe(),
                heard.raw,
                after.raw
            );
            Ok(())
        },
        || artifacts(&origin, &stream),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_fmp4_stream_downloads_no_ts_module() -> Result<()> {
    let _one_at_a_time = serial().await;
    let (origin, stream, url) = setup(HlsSource::TestPattern, None).await?;
    let browser = Browser::launch_from_env().await?;

    run_scenario(
        "an_fmp4_stream_downloads_no_ts_module",
        browser,
        async |browser| {
            browser.goto(&url).await?;
            let widget = Probe::widget();
            widget
                .wait_playing(browser, Duration::from_secs(20))
                .await
                .context("the fMP4 stream never played")?;
            let watch = widget.watch(browser, Duration::from_secs(3)).await?;
            watch.expect_smooth()?;
            let a = audio(browser, false).await?;
            ensure!(
                !a.ts_requested,
                "an fMP4 embed requested the TS module: {}",
                a.raw
            );
            Ok(())
        },
        || artifacts(&origin, &stream),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ts_stream_without_its_module_says_so() -> Result<()> {
    let _one_at_a_time = serial().await;
    // The widget's files without the TS module, on an origin of their own.
    let dist = std::env::var("LUCARNE_DIST").context("LUCARNE_DIST (the dist/ to test)")?;
    let copy = tempfile::Builder::new()
        .prefix("lucarne-e2e-no-ts-")
        .tempdir()?;
    for entry in std::fs::read_dir(&dist)? {
        let entry = entry?;
        let name = entry.file_name();
        if entry.file_type()?.is_file() && !name.to_string_lossy().starts_with("lucarne_ts") {
            std::fs::copy(entry.path(), copy.path().join(&name))?;
        }
    }
    let widget_server = StaticServer::start(copy.path()).await?;
    let loader = format!("{}/lucarne.js", widget_server.url());
    let (origin, stream, url) = setup(HlsSource::TestPatternTs, Some(&loader)).await?;
    let browser = Browser::launch_from_env().await?;

    run_scenario(
        "a_ts_stream_without_its_module_says_so",
        browser,
        async |browser| {
            browser.goto(&url).await?;
            let widget = Probe::widget();
            let state = widget
                .wait_status(browser, "error", Duration::from_secs(10))
                .await
                .context("no error shown within 10 s")?;
            let message = wait_until("the error's words", Duration::from_secs(5), || async {
                let text = browser
                    .execute(
                        "const h = document.querySelector('.lucarne-host');\
                             return h && h.shadowRoot ? h.shadowRoot.textContent : '';",
                        vec![],
                    )
                    .await?;
                let text = text.as_str().unwrap_or_default().to_owned();
                Ok(if text.contains("MPEG-TS") {
                    Check::Done(text)
                } else {
                    Check::NotYet(text)
                })
            })
            .await
            .context("the error does not name the MPEG-TS module")?;
            eprintln!(
                "a_ts_stream_without_its_module_says_so: {}; {message:?}",
                state.describe()
            );
            Ok(())
        },
        || artifacts(&origin, &stream),
    )
    .await
}
