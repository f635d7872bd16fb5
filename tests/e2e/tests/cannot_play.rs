//! Streams the widget cannot play as they come: within 10 s it says why, in words,
//! instead of "Connecting…" forever; and AES-128, which it can decrypt, plays.
//! - an_hevc_stream_names_hevc_where_the_browser_lacks_it: ffmpeg's libx265 live
//!   stream; a browser whose MediaSource refuses HEVC shows a message naming
//!   "HEVC (hvc1)"; one that decodes HEVC plays it (the test says which it checked:
//!   Chromium 156 has no HEVC, Firefox 153 plays it). Not on WebKitGTK (see
//!   xtask's ENGINE_ONLY).
//! - an_aes_128_stream_plays: segments encrypted with AES-128 (IV from the media
//!   sequence number) are decrypted and decoded; the key is fetched once.
//! - a_server_without_cors_headers_is_named: the playlist on another origin that
//!   sends no `Access-Control-Allow-Origin`: the message names that header.
//! - an_html_page_is_not_an_hls_stream: `data-stream` pointing at a web page.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use lucarne_e2e::unplayable::{Aes128Hls, HevcHls, NoCorsServer, HEVC_CODECS};
use lucarne_e2e::{
    embed_page, only_on_any, overlay_text, run_scenario, serial, wait_until, Browser, Check,
    Engine, FfmpegHls, HlsSource, Origin, Probe, StaticServer,
};
use serde_json::json;

/// What the viewer is told must come within this.
const SAY_WITHIN: Duration = Duration::from_secs(10);

/// Waits (at most [`SAY_WITHIN`] after `since`) for the overlay to contain every one
/// of `words`, with the widget in its `error` state; returns the text and how long
/// it took.
async fn wait_words(browser: &Browser, since: Instant, words: &[&str]) -> Result<String> {
    let left = SAY_WITHIN.saturating_sub(since.elapsed());
    let text = wait_until(&format!("the widget to say {words:?}"), left, || async {
        let text = overlay_text(browser).await?;
        let state = Probe::widget().state(browser).await?;
        let said = words.iter().all(|w| text.contains(w));
        Ok(if said && state.status.as_deref() == Some("error") {
            Check::Done(text)
        } else {
            Check::NotYet(format!("overlay {text:?}; {}", state.describe()))
        })
    })
    .await?;
    eprintln!(
        "said after {:.1} s: {text:?}",
        since.elapsed().as_secs_f64()
    );
    Ok(text)
}

fn page(origin: &Origin, stream: &str) -> String {
    embed_page(
        "A page that cannot play everything",
        &format!("{}/lucarne.js", origin.url()),
        stream,
        None,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_hevc_stream_names_hevc_where_the_browser_lacks_it() -> Result<()> {
    only_on_any(
        &[Engine::Chromium, Engine::Firefox],
        "WebKitGTK says it decodes HEVC, then its page stops answering while playing it",
    )?;
    let _one_at_a_time = serial().await;
    let origin = Origin::start().await?;
    let stream = HevcHls::start().await?;
    std::fs::write(
        stream.dir().join("embed.html"),
        page(&origin, &stream.url()),
    )?;
    let url = format!("{}/embed.html", stream.server().url());
    let browser = Browser::launch_from_env().await?;

    run_scenario(
        "an_hevc_stream_names_hevc_where_the_browser_lacks_it",
        browser,
        async |browser| {
            let started = Instant::now();
            browser.goto(&url).await?;
            let hevc = browser
                .execute(
                    "const M = window.ManagedMediaSource || window.MediaSource; \
                     return !!M && M.isTypeSupported(arguments[0]);",
                    vec![json!(format!("video/mp4; codecs=\"{HEVC_CODECS}\""))],
                )
                .await?
                .as_bool()
                .unwrap_or(false);
            if hevc {
                eprintln!(
                    "{}: this browser decodes HEVC (isTypeSupported): checking that it plays",
                    browser.engine().name()
                );
                Probe::widget()
                    .wait_playing(browser, Duration::from_secs(20))
                    .await
                    .context("the browser says it decodes HEVC, but the stream did not play")?;
                return Ok(());
            }
            eprintln!(
                "{}: this browser does not decode HEVC: checking the message",
                browser.engine().name()
            );
            let text = wait_words(browser, started, &["HEVC (hvc1)", "cannot decode"]).await?;
            ensure!(
                !text.contains("AAC"),
                "the browser plays AAC: only HEVC should be named: {text:?}"
            );
            Ok(())
        },
        || {
            vec![
                ("server.log", origin.log_tail(200)),
                ("ffmpeg.log", stream.log_tail(100)),
            ]
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_aes_128_stream_plays() -> Result<()> {
    let _one_at_a_time = serial().await;
    let origin = Origin::start().await?;
    let stream = Aes128Hls::start().await?;
    let inner = stream.stream();
    std::fs::write(inner.dir().join("embed.html"), page(&origin, &stream.url()))?;
    let url = format!("{}/embed.html", inner.server().url());
    let browser = Browser::launch_from_env().await?;

    run_scenario(
        "an_aes_128_stream_plays",
        browser,
        async |browser| {
            browser.goto(&url).await?;
            let widget = Probe::widget();
            widget
                .wait_playing(browser, Duration::from_secs(20))
                .await
                .context("the AES-128 stream never played")?;
            let watch = widget.watch(browser, Duration::from_secs(4)).await?;
            ensure!(
                watch.frames_grown() > 30,
                "frames stopped after the start: {}",
                watch.describe()
            );
            let served = inner.server().faults().served();
            let segments = served
                .iter()
                .filter(|s| s.path.contains("/aes-seg"))
                .count();
            let keys = served.iter().filter(|s| s.path == "/hls/aes.key").count();
            ensure!(
                segments >= 4 && keys == 1,
                "{segments} encrypted segments loaded with {keys} key requests (want one)"
            );
            eprintln!(
                "an_aes_128_stream_plays: {segments} segments, {keys} key request; {}",
                watch.describe()
            );
            Ok(())
        },
        || {
            vec![
                ("server.log", origin.log_tail(200)),
                ("ffmpeg.log", inner.log_tail(100)),
                (
                    "requests.txt",
                    format!("{:#?}", inner.server().faults().served()),
                ),
            ]
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_without_cors_headers_is_named() -> Result<()> {
    let _one_at_a_time = serial().await;
    let origin = Origin::start().await?;
    let stream = FfmpegHls::start(HlsSource::TestPattern).await?;
    // The same files from a second origin that sends no CORS headers.
    let bare = NoCorsServer::start(stream.dir()).await?;
    let playlist = format!("{}{}", bare.url(), stream.path());
    std::fs::write(stream.dir().join("embed.html"), page(&origin, &playlist))?;
    let url = format!("{}/embed.html", stream.server().url());
    let browser = Browser::launch_from_env().await?;

    run_scenario(
        "a_server_without_cors_headers_is_named",
        browser,
        async |browser| {
            let started = Instant::now();
            browser.goto(&url).await?;
            wait_words(browser, started, &["Access-Control-Allow-Origin"]).await?;
            Ok(())
        },
        || {
            vec![
                ("server.log", origin.log_tail(200)),
                ("ffmpeg.log", stream.log_tail(100)),
            ]
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_html_page_is_not_an_hls_stream() -> Result<()> {
    let _one_at_a_time = serial().await;
    let origin = Origin::start().await?;
    let dir = tempfile::tempdir()?;
    let server = StaticServer::start(dir.path()).await?;
    let site = server.url();
    std::fs::write(
        dir.path().join("about.html"),
        "<!doctype html><html><head><title>About</title></head><body><p>Not a stream.</p></body></html>\n",
    )?;
    let html = format!("{site}/about.html");
    std::fs::write(dir.path().join("embed.html"), page(&origin, &html))?;
    let url = format!("{site}/embed.html");
    let browser = Browser::launch_from_env().await?;

    run_scenario(
        "an_html_page_is_not_an_hls_stream",
        browser,
        async |browser| {
            let started = Instant::now();
            browser.goto(&url).await?;
            wait_words(browser, started, &["not an HLS stream"]).await?;
            Ok(())
        },
        || vec![("server.log", origin.log_tail(200))],
    )
    .await
}
