//! Going live from a broadcaster, end to end: a page on another origin embeds a stream
//! nobody is broadcasting yet; ffmpeg publishes over RTMP and the widget starts playing
//! by itself; the publisher is killed and the widget says offline; it comes back
//! within the grace period and the widget plays again without a reload; it goes away
//! for good, the widget says the broadcast ended and plays the replay, which seeks.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use lucarne_e2e::{
    free_port, run_scenario, serial, wait_until, Browser, Check, Origin, OriginConfig, Probe,
    RtmpPublisher, StaticServer,
};
use serde_json::{json, Value};

const READY: Duration = Duration::from_secs(30);
/// How long the server waits for a dropped publisher before ending the broadcast.
const GRACE_SECS: u64 = 8;

/// Runs `body` with `root` bound to the first widget's shadow root.
async fn in_widget(browser: &Browser, body: &str) -> Result<Value> {
    let script = format!(
        "const host = document.querySelector('.lucarne-host');\n\
         const root = host ? host.shadowRoot : null;\n{body}"
    );
    browser.execute(&script, vec![]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broadcast_goes_live_drops_returns_ends_and_replays() -> Result<()> {
    let _one_at_a_time = serial().await;
    let dir = tempfile::Builder::new()
        .prefix("lucarne-e2e-ingest-")
        .tempdir()?;
    let site = StaticServer::start(dir.path()).await?;
    let rtmp_port = free_port()?;
    let mut config = OriginConfig::from_env()?;
    config.extra_args = vec![
        "--no-demo".into(),
        "--embed-origin".into(),
        site.url(),
        "--rtmp-listen".into(),
        format!("127.0.0.1:{rtmp_port}"),
        "--stream-key".into(),
        "e2e-key=studio".into(),
        "--ingest-grace-secs".into(),
        GRACE_SECS.to_string(),
    ];
    let origin = Origin::start_with(config).await?;
    let s = origin.url();
    std::fs::write(
        dir.path().join("live.html"),
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>Masterclass</title></head>\n<body><h1>Masterclass, live</h1>\n\
             <script async src=\"{s}/lucarne.js\" data-src=\"{s}/s/studio\"></script>\n\
             </body></html>\n"
        ),
    )?;
    let url = format!("{}/live.html", site.url());
    let publish_url = format!("rtmp://127.0.0.1:{rtmp_port}/live/e2e-key");
    let browser = Browser::launch_from_env().await?;

    run_scenario(
        "a_broadcast_goes_live_drops_returns_ends_and_replays",
        browser,
        async |browser| {
            let widget = Probe::widget();
            browser.goto(&url).await?;
            widget
                .wait_status(browser, "offline", READY)
                .await
                .context("before the broadcast the widget says it is offline")?;

            let publisher = RtmpPublisher::start(&publish_url)?;
            widget.wait_playing(browser, READY).await.with_context(|| {
                format!(
                    "the widget left 'offline' and played once the broadcaster went live; \
                         ffmpeg: {}",
                    publisher.log_tail(10)
                )
            })?;
            let watch = widget.watch(browser, Duration::from_secs(3)).await?;
            watch.expect_smooth()?;

            publisher.kill().await;
            widget
                .wait_status(browser, "offline", Duration::from_secs(10))
                .await
                .context("the broadcaster vanished: the widget says offline")?;

            // Back within the grace period: the same broadcast, playing again by itself.
            let before = widget.state(browser).await?;
            let publisher = RtmpPublisher::start(&publish_url)?;
            let again = widget
                .wait_playing(browser, READY)
                .await
                .context("the broadcaster came back: the widget plays again, no reload")?;
            ensure!(
                again.current_time > before.current_time,
                "playback went backwards across the reconnection: {} then {}",
                before.current_time,
                again.current_time
            );
            widget.watch(browser, Duration::from_secs(3)).await?;

            // Gone for good: ended once the grace period is over, then the replay.
            publisher.kill().await;
            widget
                .wait_status(browser, "ended", Duration::from_secs(GRACE_SECS + 15))
                .await
                .context("after the grace period the widget says the broadcast ended")?;
            let clicked = in_widget(
                browser,
                "const b = root.querySelector('button.watch-replay');\n\
                 if (!b) return false; b.click(); return true;",
            )
            .await?;
            ensure!(
                clicked == json!(true),
                "no 'watch the replay' button after the end"
            );
            let start = widget
                .wait_playing(browser, READY)
                .await
                .context("the replay plays")?;
            widget
                .wait_status(browser, "replay", Duration::from_secs(5))
                .await
                .context("the replay is labelled as such")?;
            ensure!(
                start.current_time < 5.0,
                "the replay starts at its beginning, not at {}",
                start.current_time
            );

            // Seek with the seek bar, as a viewer drags it.
            let length = in_widget(browser, "return root.querySelector('video').duration;")
                .await?
                .as_f64()
                .unwrap_or(0.0);
            ensure!(
                length > 6.0,
                "the replay is as long as the broadcast: {length} s"
            );
            let target = (length - 3.0).floor();
            in_widget(
                browser,
                &format!(
                    "const s = root.querySelector('input.seek');\n\
                     s.value = '{target}';\n\
                     s.dispatchEvent(new Event('input', {{ bubbles: true }}));"
                ),
            )
            .await?;
            wait_until(
                "the replay to play on from where the viewer seeked",
                READY,
                || async {
                    let now = widget.state(browser).await?;
                    Ok(
                        if now.current_time > target + 0.5 && now.current_time < target + 4.0 {
                            Check::Done(())
                        } else {
                            Check::NotYet(now.describe())
                        },
                    )
                },
            )
            .await?;
            Ok(())
        },
        || vec![("lucarne-server", origin.log_tail(60))],
    )
    .await
}

/// Regression: a widget playing plain HLS (`data-stream` only, no `data-ll`) stayed on
/// "ended" after a broadcast was over, and only a page reload caught the stream's next
/// broadcast. It now keeps polling the playlist and plays the new broadcast by itself.
#[tokio::test(flavor = "multi_thread")]
async fn an_hls_only_widget_plays_the_next_broadcast_without_a_reload() -> Result<()> {
    const SHORT_GRACE_SECS: u64 = 2;
    let _one_at_a_time = serial().await;
    let dir = tempfile::Builder::new()
        .prefix("lucarne-e2e-next-broadcast-")
        .tempdir()?;
    let site = StaticServer::start(dir.path()).await?;
    let rtmp_port = free_port()?;
    let mut config = OriginConfig::from_env()?;
    config.extra_args = vec![
        "--no-demo".into(),
        "--embed-origin".into(),
        site.url(),
        "--rtmp-listen".into(),
        format!("127.0.0.1:{rtmp_port}"),
        "--stream-key".into(),
        "e2e-key=studio".into(),
        "--ingest-grace-secs".into(),
        SHORT_GRACE_SECS.to_string(),
    ];
    let origin = Origin::start_with(config).await?;
    let s = origin.url();
    std::fs::write(
        dir.path().join("hls.html"),
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>Weekly show</title></head>\n<body><h1>Weekly show</h1>\n\
             <script async src=\"{s}/lucarne.js\" \
             data-stream=\"{s}/live/studio/index.m3u8\"></script>\n</body></html>\n"
        ),
    )?;
    let url = format!("{}/hls.html", site.url());
    let publish_url = format!("rtmp://127.0.0.1:{rtmp_port}/live/e2e-key");
    let browser = Browser::launch_from_env().await?;

    run_scenario(
        "an_hls_only_widget_plays_the_next_broadcast_without_a_reload",
        browser,
        async |browser| {
            let widget = Probe::widget();
            let publisher = RtmpPublisher::start(&publish_url)?;
            browser.goto(&url).await?;
            widget.wait_playing(browser, READY).await.with_context(|| {
                format!(
                    "the first broadcast plays; ffmpeg: {}",
                    publisher.log_tail(10)
                )
            })?;
            // Marks this page: a reload would lose it.
            browser
                .execute("window.__e2eSamePage = true;", vec![])
                .await?;

            publisher.kill().await;
            widget
                .wait_status(browser, "ended", Duration::from_secs(SHORT_GRACE_SECS + 20))
                .await
                .context("once the grace period is over the widget says the broadcast ended")?;

            let publisher = RtmpPublisher::start(&publish_url)?;
            widget.wait_playing(browser, READY).await.with_context(|| {
                format!(
                    "the next broadcast plays without a reload; ffmpeg: {}",
                    publisher.log_tail(10)
                )
            })?;
            widget
                .wait_status(browser, "playing", Duration::from_secs(10))
                .await
                .context("the new broadcast is live, not a replay")?;
            let same_page = browser
                .execute("return window.__e2eSamePage === true;", vec![])
                .await?;
            ensure!(same_page == json!(true), "the page was reloaded");
            widget.watch(browser, Duration::from_secs(3)).await?;
            publisher.kill().await;
            Ok(())
        },
        || vec![("lucarne-server", origin.log_tail(60))],
    )
    .await
}
