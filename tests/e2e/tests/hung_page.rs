//! The harness tells a page kept busy by a script from a page its engine blocked, when
//! a WebDriver request gets no answer (`lucarne_e2e::hang`). `cargo xtask test` runs a
//! test again alone only in the second case (the engine's fault, seen in WebKitGTK under
//! a full run's load); a widget that loops must fail. Both cases are made here on
//! purpose, on each engine: a script that never returns, and the browser's processes
//! stopped with SIGSTOP.

use anyhow::{ensure, Result};
use lucarne_e2e::hang::ENGINE_HUNG;
use lucarne_e2e::procstat;
use lucarne_e2e::{serial, Browser};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// What a request to a page that does not answer ends with: the error's text.
async fn unanswered(browser: &Browser) -> Result<String> {
    match browser.execute("return 1;", vec![]).await {
        Ok(v) => anyhow::bail!("the page answered {v} while it should not have"),
        Err(e) => Ok(format!("{e:#}")),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_looping_in_a_script_is_named_busy_not_hung() -> Result<()> {
    let _one_at_a_time = serial().await;
    let browser = Browser::launch_from_env().await?;
    browser.goto("about:blank").await?;
    browser
        .execute("setTimeout(() => { for (;;) {} }, 50); return 0;", vec![])
        .await?;
    // The loop has started before the next request.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let error = unanswered(&browser).await?;
    ensure!(
        error.contains("busy") && !error.contains(ENGINE_HUNG),
        "a looping page must be named busy, and never the engine's hang: {error}"
    );
    eprintln!("hung_page: a looping page: {error}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_whose_browser_stops_is_named_hung() -> Result<()> {
    let _one_at_a_time = serial().await;
    let browser = Browser::launch_from_env().await?;
    browser.goto("about:blank").await?;
    let driver = browser
        .driver_pid()
        .ok_or_else(|| anyhow::anyhow!("no driver"))?;
    // The browser: the driver's process group, but the driver.
    let stopped: Vec<u32> = (procstat::group(driver).into_iter())
        .map(|(pid, _)| pid)
        .filter(|&pid| pid != driver)
        .collect();
    ensure!(
        !stopped.is_empty(),
        "the driver {driver} has no browser process under it"
    );
    for &pid in &stopped {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGSTOP);
    }
    let error = unanswered(&browser).await;
    for &pid in &stopped {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGCONT);
    }
    let error = error?;
    ensure!(
        error.contains(ENGINE_HUNG),
        "a browser stopped (SIGSTOP) must be named as the engine's hang: {error}"
    );
    eprintln!("hung_page: a stopped browser: {error}");
    Ok(())
}
