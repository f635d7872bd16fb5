//! origin_restart_resumes_near_live: the origin dies while a viewer watches; the
//! widget says it is reconnecting, and when the origin comes back (same port,
//! 5 s later) the same page, not reloaded, plays again near live.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use lucarne_e2e::widget::{expect_not_reloaded, mark_page};
use lucarne_e2e::{finish, serial, Browser, Origin, Probe};

#[tokio::test(flavor = "multi_thread")]
async fn origin_restart_resumes_near_live() -> Result<()> {
    let _one_at_a_time = serial().await;
    let mut origin = Origin::start().await?;
    let browser = Browser::launch_from_env().await?;
    let result = scenario(&browser, &mut origin).await;
    let logs = vec![("server.log", origin.log_tail(300))];
    finish("origin_restart_resumes_near_live", browser, result, logs).await
}

async fn scenario(browser: &Browser, origin: &mut Origin) -> Result<()> {
    let url = format!("{}/", origin.url());
    browser.goto(&url).await?;
    let widget = Probe::widget();
    widget
        .wait_playing(browser, Duration::from_secs(15))
        .await
        .context("the video never started before the fault")?;
    widget
        .watch(browser, Duration::from_secs(2))
        .await?
        .expect_smooth()
        .context("before the fault")?;
    // A page reload would lose this.
    mark_page(browser).await?;

    origin.stop().await;
    let down = widget
        .wait_status(browser, "reconnecting", Duration::from_secs(10))
        .await
        .context("origin killed: the widget never showed 'reconnecting'")?;
    eprintln!("origin down, widget shows: {}", down.describe());

    // The origin stays away for 5 s of wall time: that is the scenario.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = widget.state(browser).await?;
    ensure!(
        before.status.as_deref() != Some("error"),
        "after 5 s without origin the widget gave up with status 'error': {}",
        before.describe()
    );
    origin.restart().await?;

    let back = widget.wait_playing_again(browser, before.frames).await?;
    expect_not_reloaded(browser).await?;
    let watch = widget.watch(browser, Duration::from_secs(3)).await?;
    watch.expect_smooth()?;
    ensure!(
        watch.max_latency_s() < 3.0,
        "after recovery the video is up to {:.2} s behind live; {}",
        watch.max_latency_s(),
        watch.describe()
    );
    eprintln!(
        "recovered: {}; statuses over the test: {:?}",
        back.describe(),
        watch.last().statuses
    );
    Ok(())
}
