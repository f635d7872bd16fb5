//! LL-HLS in real browsers: the widget with no low-latency push follows lucarne's
//! LL-HLS parts (as it does for any LL-HLS server, or lucarne's own behind a CDN that
//! carries no WebSocket), and the widget and hls.js (npm, `lowLatencyMode`) play them
//! through the deployment's nginx cache while 50 more clients follow the same parts:
//! the origin sees each part requested about once.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use lucarne_e2e::cdn::{self, PartTally};
use lucarne_e2e::cluster::Nginx;
use lucarne_e2e::stats::percentile;
use lucarne_e2e::{
    bench_pages, embed_page, free_port, run_scenario, serial, Browser, Origin, Probe, StaticServer,
    Watch,
};
use serde_json::Value;

/// The resources the page fetched that match: LL-HLS parts (`{msn}.{part}.m4s`) and
/// blocking reloads (`_HLS_msn=…&_HLS_part=…`). The resource timing buffer keeps the
/// first 250 entries, plenty for the first seconds.
const REQUESTS_JS: &str = r#"
const names = performance.getEntriesByType('resource').map(e => e.name);
return {
  parts: names.filter(n => /\/live\/demo\/\d+\.\d+\.m4s$/.test(n)).length,
  segments: names.filter(n => /\/live\/demo\/\d+\.m4s$/.test(n)).length,
  blocking: names.filter(n => /index\.m3u8\?_HLS_msn=\d+&_HLS_part=\d+$/.test(n)).length,
};
"#;

/// `(parts, whole segments, blocking reloads)` the current page fetched.
async fn requests(browser: &Browser) -> Result<(u64, u64, u64)> {
    let v: Value = browser.execute(REQUESTS_JS, vec![]).await?;
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    Ok((n("parts"), n("segments"), n("blocking")))
}

/// The median of the widget's distance to live over a watch (media time is unix time
/// on the demo stream).
fn median_latency(watch: &Watch) -> f64 {
    let l: Vec<f64> = watch.samples.iter().map(|s| s.latency_s()).collect();
    percentile(&l, 50.0).unwrap_or(f64::NAN)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_widget_without_a_push_follows_the_ll_hls_parts() -> Result<()> {
    let _one_at_a_time = serial().await;
    let origin = Origin::start().await?;
    let dir = tempfile::tempdir()?;
    let page = embed_page(
        "LL-HLS without a push",
        &format!("{}/lucarne.js", origin.url()),
        &format!("{}/live/demo/index.m3u8", origin.url()),
        None,
    );
    std::fs::write(dir.path().join("embed.html"), page)?;
    let pages = StaticServer::start(dir.path()).await?;
    let url = format!("{}/embed.html", pages.url());
    let browser = Browser::launch_from_env().await?;

    run_scenario(
        "the_widget_without_a_push_follows_the_ll_hls_parts",
        browser,
        async |browser| {
            browser.goto(&url).await?;
            let widget = Probe::widget();
            widget
                .wait_playing(browser, Duration::from_secs(20))
                .await
                .context("the LL-HLS stream never played")?;
            let watch = widget.watch(browser, Duration::from_secs(8)).await?;
            watch.expect_smooth()?;
            let (parts, segments, blocking) = requests(browser).await?;
            eprintln!(
                "llhls: {parts} parts, {segments} whole segments, {blocking} blocking reloads; \
                 median latency {:.2} s; {}",
                median_latency(&watch),
                watch.describe()
            );
            // Eight seconds of 100 ms parts; a player on whole segments loads none.
            ensure!(
                parts >= 40 && blocking >= 40,
                "the widget did not follow the parts: {parts} parts, {blocking} blocking \
                 reloads, {segments} whole segments"
            );
            // Plain HLS holds three segments (3 s) back; the parts' hold back is 0.5 s.
            // A second and a half is what a viewer tells apart, with room for a slow
            // machine.
            let latency = median_latency(&watch);
            ensure!(
                (0.0..1.5).contains(&latency),
                "the widget plays {latency:.2} s behind live on LL-HLS parts (median); \
                 plain HLS would be about 3 s; {}",
                watch.describe()
            );
            Ok(())
        },
        || vec![("server.log", origin.log_tail(200))],
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn hlsjs_and_the_widget_play_ll_hls_through_nginx_and_the_origin_sees_each_part_once(
) -> Result<()> {
    let _one_at_a_time = serial().await;
    bench_pages::ensure_deps().await?;
    let origin = Origin::start().await?;
    let nginx = Nginx::start(free_port()?, &[origin.port()]).await?;
    let pages = StaticServer::start(bench_pages::dir()).await?;
    let cdn_url = nginx.url();
    // 50 clients follow the parts through nginx while the two players play.
    let followers = tokio::spawn({
        let base = cdn_url.clone();
        async move { cdn::follow_many(&base, "demo", 50, Duration::from_secs(30)).await }
    });
    let browser = Browser::launch_from_env().await?;
    let widget_url = format!("{}/lucarne.html?server={cdn_url}&llhls=1", pages.url());
    let hlsjs_url = format!("{}/hlsjs.html?server={cdn_url}&llhls=1", pages.url());

    run_scenario(
        "hlsjs_and_the_widget_play_ll_hls_through_nginx",
        browser,
        async |browser| {
            browser.goto(&widget_url).await?;
            let widget = Probe::widget();
            widget
                .wait_playing(browser, Duration::from_secs(20))
                .await
                .context("the widget never played the LL-HLS stream through nginx")?;
            let watch = widget.watch(browser, Duration::from_secs(6)).await?;
            watch.expect_smooth()?;
            let (parts, _, blocking) = requests(browser).await?;
            // Fewer reloads than parts here: a reload nginx answers from its cache may
            // list parts made since (another client asked first).
            ensure!(
                parts >= 30 && blocking >= 10,
                "the widget did not follow the parts through nginx: {parts} parts, {blocking} \
                 blocking reloads"
            );

            browser.goto(&hlsjs_url).await?;
            let video = Probe::selector("video");
            video
                .wait_playing(browser, Duration::from_secs(20))
                .await
                .context("hls.js never played the LL-HLS stream through nginx")?;
            let watch = video.watch(browser, Duration::from_secs(6)).await?;
            watch.expect_smooth()?;
            let m = bench_pages::read(browser)
                .await?
                .context("measure.js did not run")?;
            let hls_parts = m.raw["loaded"]["parts"].as_u64().unwrap_or(0);
            ensure!(
                hls_parts >= 30,
                "hls.js loaded {hls_parts} parts (loaded: {}, errors: {:?})",
                m.raw["loaded"],
                m.errors
            );

            let received = followers.await.context("the followers panicked")??;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let tally = PartTally::read(&nginx.access_tail(usize::MAX), "demo");
            eprintln!(
                "llhls cdn: widget {parts} parts, hls.js {hls_parts}; 50 clients {received}; \
                 {} distinct parts, {} requests, {} to the origin ({:.2} per part)",
                tally.parts(),
                tally.client_requests(),
                tally.to_origin(),
                tally.per_part()
            );
            ensure!(
                tally.parts() >= 100,
                "only {} parts in nginx's log",
                tally.parts()
            );
            ensure!(
                tally.per_part() <= 1.1,
                "the origin saw {:.2} requests per part (more than 1.1)",
                tally.per_part()
            );
            Ok(())
        },
        || {
            vec![
                ("server.log", origin.log_tail(200)),
                ("nginx-access.log", nginx.access_tail(400)),
                ("nginx-error.log", nginx.log_tail(50)),
            ]
        },
    )
    .await
}
