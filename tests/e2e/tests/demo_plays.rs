//! demo_plays: a viewer opens lucarne-server's demo page (`/`) and, within
//! seconds, sees the live video playing near live with the status "playing",
//! through the MediaSource flavour its engine should use (ManagedMediaSource on WebKit).

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use lucarne_e2e::{run_scenario, serial, Browser, Origin, Probe};

#[tokio::test(flavor = "multi_thread")]
async fn demo_plays() -> Result<()> {
    let _one_at_a_time = serial().await;
    let origin = Origin::start().await?;
    let browser = Browser::launch_from_env().await?;
    let url = format!("{}/", origin.url());
    let hls = format!("{}/live/demo/index.m3u8", origin.url());

    run_scenario(
        "demo_plays",
        browser,
        async |browser| {
            browser.goto(&url).await?;
            let widget = Probe::widget();
            widget
                .wait_playing(browser, Duration::from_secs(15))
                .await
                .context("the demo page's video never started playing")?;

            let watch = widget.watch(browser, Duration::from_secs(5)).await?;
            watch.expect_smooth()?;
            // WebKit plays through Safari's ManagedMediaSource, the HLS playlist beside it
            // for AirPlay; the other engines through MediaSource.
            watch.last().expect_backend(browser.engine(), Some(&hls))?;
            let last = watch.last();
            ensure!(
                last.status.as_deref() == Some("playing"),
                "the video plays but the widget shows status {:?}; {}",
                last.status,
                watch.describe()
            );
            let latency = watch.max_latency_s();
            ensure!(
                latency < 3.0 && latency > -0.5,
                "the demo stream's media time is unix time, so currentTime should be under 3 s \
                 behind the wall clock; it was up to {latency:.2} s behind; {}",
                watch.describe()
            );
            eprintln!("demo_plays: {}", watch.describe());
            Ok(())
        },
        || vec![("server.log", origin.log_tail(300))],
    )
    .await
}
