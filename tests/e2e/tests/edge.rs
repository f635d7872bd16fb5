//! Edge nodes (`lucarne-server --origin`): a viewer's widget on a page served by an
//! edge plays the origin's demo through the edge.
//! - widget_plays_from_an_edge: the edge's demo page plays near live, smoothly, and
//!   the origin counts one push subscriber (the edge's relay), not the viewer.
//! - an_edge_viewer_plays_on_after_the_origin_restarts: the origin is killed under the
//!   viewer and is back on the same port 5 s later; the same page (not reloaded)
//!   plays again near live.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use lucarne_e2e::widget::{expect_not_reloaded, mark_page};
use lucarne_e2e::{finish, serial, Browser, Origin, OriginConfig, Probe};

/// `name{stream="demo"}` on the node at `base`.
async fn demo_metric(base: &str, name: &str) -> Result<Option<f64>> {
    let text = reqwest::get(format!("{base}/metrics"))
        .await?
        .text()
        .await?;
    let prefix = format!("{name}{{stream=\"demo\"}} ");
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok()))
}

/// An origin with the demo, and an edge of it.
async fn origin_and_edge() -> Result<(Origin, Origin)> {
    let origin = Origin::start().await?;
    let mut config = OriginConfig::from_env()?;
    config.extra_args = vec!["--origin".into(), origin.url()];
    let edge = Origin::start_with(config).await?;
    Ok((origin, edge))
}

#[tokio::test(flavor = "multi_thread")]
async fn widget_plays_from_an_edge() -> Result<()> {
    let _one_at_a_time = serial().await;
    let (origin, edge) = origin_and_edge().await?;
    let browser = Browser::launch_from_env().await?;
    let result = async {
        browser.goto(&format!("{}/", edge.url())).await?;
        let widget = Probe::widget();
        widget
            .wait_playing(&browser, Duration::from_secs(15))
            .await
            .context("the edge's demo page never started playing")?;
        let watch = widget.watch(&browser, Duration::from_secs(5)).await?;
        watch.expect_smooth()?;
        let latency = watch.max_latency_s();
        ensure!(
            latency < 3.0,
            "through the edge the video is up to {latency:.2} s behind live; {}",
            watch.describe()
        );
        let upstream = demo_metric(&origin.url(), "lucarne_push_subscribers").await?;
        ensure!(
            upstream.is_some_and(|n| n <= 1.0),
            "the origin should see at most the edge's one relay, it sees {upstream:?}"
        );
        let connected = demo_metric(&edge.url(), "lucarne_edge_upstream_connected").await?;
        ensure!(connected == Some(1.0), "edge upstream: {connected:?}");
        eprintln!("widget_plays_from_an_edge: {}", watch.describe());
        Ok(())
    }
    .await;
    let logs = vec![
        ("origin.log", origin.log_tail(200)),
        ("edge.log", edge.log_tail(200)),
    ];
    finish("widget_plays_from_an_edge", browser, result, logs).await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edge_viewer_plays_on_after_the_origin_restarts() -> Result<()> {
    let _one_at_a_time = serial().await;
    let (mut origin, edge) = origin_and_edge().await?;
    let browser = Browser::launch_from_env().await?;
    let result = async {
        browser.goto(&format!("{}/", edge.url())).await?;
        let widget = Probe::widget();
        widget
            .wait_playing(&browser, Duration::from_secs(15))
            .await
            .context("the video never started before the fault")?;
        mark_page(&browser).await?;

        origin.stop().await;
        // The origin stays away for 5 s of wall time: that is the scenario.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let before = widget.state(&browser).await?;
        ensure!(
            before.status.as_deref() != Some("error"),
            "after 5 s without origin the widget on the edge gave up: {}",
            before.describe()
        );
        origin.restart().await?;

        widget.wait_playing_again(&browser, before.frames).await?;
        expect_not_reloaded(&browser).await?;
        let watch = widget.watch(&browser, Duration::from_secs(3)).await?;
        watch.expect_smooth()?;
        eprintln!(
            "an_edge_viewer_plays_on_after_the_origin_restarts: {}",
            watch.describe()
        );
        Ok(())
    }
    .await;
    let logs = vec![
        ("origin.log", origin.log_tail(200)),
        ("edge.log", edge.log_tail(200)),
    ];
    finish(
        "an_edge_viewer_plays_on_after_the_origin_restarts",
        browser,
        result,
        logs,
    )
    .await
}
