//! origin_restart_resumes_near_live: the origin dies while a viewer watches; the
//! widget says it is reconnecting, and when the origin comes back (same port,
//! 5 s later) the same page, not reloaded, plays again near live.

use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use lucarne_e2e::{finish, serial, wait_until, Browser, Check, Origin, Probe};
use serde_json::Value;

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
    browser
        .execute("window.__e2eNotReloaded = true;", vec![])
        .await?;

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

    let frames_at_restart = before.frames;
    let back = wait_until(
        "frames to grow again near live with status 'playing' after the origin came back",
        Duration::from_secs(20),
        || async {
            let s = widget.state(browser).await?;
            Ok(
                if s.frames > frames_at_restart + 30
                    && s.status.as_deref() == Some("playing")
                    && s.latency_s() < 3.0
                    && !s.paused
                {
                    Check::Done(s)
                } else {
                    Check::NotYet(s.describe())
                },
            )
        },
    )
    .await?;
    let marker = browser
        .execute("return window.__e2eNotReloaded === true;", vec![])
        .await?;
    if marker != Value::Bool(true) {
        bail!("the page was reloaded during recovery (marker lost)");
    }
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
