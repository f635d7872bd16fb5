//! lucarne-e2e: the end-to-end harness. The real `lucarne-server` binary and the
//! real widget build (dist/), in real browsers driven over WebDriver, asserting
//! what a viewer would notice: the video plays, stays near live, shows the right
//! status, survives faults.
//!
//! # Layout
//! - [`engine`]: which browser ([`Engine`], `LUCARNE_E2E_ENGINE` = chromium |
//!   firefox | webkit) and a [`Browser`] session with a timeout on every request,
//!   optionally at a phone's [`Viewport`] (`Browser::launch_at`).
//! - [`origin`]: [`Origin`], lucarne-server as a subprocess (start, kill, restart
//!   on the same port).
//! - [`static_server`]: [`StaticServer`], another origin serving a directory,
//!   with run-time [`Faults`].
//! - [`cluster`]: [`cluster::Cluster`], Redis, several nodes on it and the deployment's
//!   nginx in front of them.
//! - [`ffmpeg`]: [`FfmpegHls`], a third-party live HLS stream made by ffmpeg (one
//!   rendition, or the three-rendition [`ffmpeg::LADDER`]).
//! - [`unplayable`]: streams the widget must say it cannot play (HEVC, no CORS) or
//!   play (AES-128, encrypted as a packager would).
//! - [`throttle`]: [`Throttle`], a slow link (a TCP relay whose downstream rate the
//!   test sets and changes while the page plays).
//! - [`widget`]: [`Probe`] reads the player's state from the page; [`Watch`]
//!   summarises a stretch of playback.
//! - [`chat`]: [`ChatView`], the chat and hearts layer as a viewer uses it (pick a
//!   name, type, tap hearts) and sees it ([`ChatSnapshot`]).
//! - [`phone`]: the widget on a phone ([`PhoneView`]: what is at the centre of the
//!   badge, the count, the unmute button and the play control; the overlaid lines;
//!   the chat toggle; taps on the picture), a busy room ([`ChatFirehose`]: other
//!   viewers posting N messages a second) and a page that counts its chat sockets
//!   ([`phone::socket_spy_page`]).
//! - [`cdn`]: HTTP clients following LL-HLS part by part, and the tally of nginx's
//!   access log saying how many part requests reached the origin.
//! - [`sound`]: listening to the widget's `<video>` (Web Audio, decoded-audio counters).
//! - [`bench_pages`]: the pages in bench/, their npm dependency, and reading
//!   bench/measure.js's results; [`abr_bench`]: the ABR benchmark's schedule and
//!   figures (`src/bin/bench_abr.rs`).
//! - [`wait`]: polling with a deadline; [`process`]: child processes killed with
//!   their group on drop; [`workspace`]: paths and the serial lock; [`stats`]:
//!   percentiles and brotli sizes for the benchmark (`src/bin/bench.rs`);
//!   [`tcp_proxy`]: [`TcpProxy`], a relay that counts a page's open connections.
//! - [`crowd`]: the soak's audience (push and chat viewers as async tasks) and
//!   [`trend`]: its verdicts (growth without bound, latency drift), for
//!   `src/bin/soak.rs`.
//!
//! # Running
//! `cargo xtask test` builds the server and the widget, then runs
//! `cargo test -p lucarne-e2e`. Run directly, the tests need `LUCARNE_SERVER_BIN`
//! (default `target/debug/lucarne-server`) and `LUCARNE_DIST` (default `dist/`)
//! to exist, and fail saying so otherwise: nothing is skipped silently.
//!
//! Tests run one at a time: cargo runs test files (one process each) one after
//! another, and tests within a file hold [`serial`], so a 2-core machine runs a
//! single browser, server and ffmpeg at once. Plain `cargo test -p lucarne-e2e`
//! is enough; no `--test-threads` flag is needed.
//!
//! On failure, tests write a screenshot and logs to `tests/e2e/artifacts/<test>/`.

pub mod abr_bench;
pub mod bench_pages;
pub mod cdn;
pub mod chat;
pub mod cluster;
pub mod crowd;
pub mod engine;
pub mod ffmpeg;
pub mod hang;
pub mod origin;
pub mod phone;
pub mod process;
pub mod procstat;
pub mod publisher;
pub mod sound;
pub mod static_server;
pub mod stats;
pub mod studio;
pub mod tcp_proxy;
pub mod throttle;
pub mod trend;
pub mod unplayable;
pub mod wait;
pub mod widget;
pub mod workspace;

pub use chat::{ChatLine, ChatSnapshot, ChatView};
pub use engine::{only_on, only_on_any, Browser, Engine, Viewport};
pub use ffmpeg::{FfmpegHls, HlsSource, MediaPlaylist};
pub use origin::{Origin, OriginConfig};
pub use phone::{ChatFirehose, FirehosePlan, PhoneLayout, PhoneView};
pub use publisher::{free_port, RtmpPublisher};
pub use static_server::{Faults, StaticServer};
pub use tcp_proxy::TcpProxy;
pub use throttle::Throttle;
pub use wait::{wait_until, Check};
pub use widget::{embed_page, overlay_text, PlaybackState, Probe, Watch};
pub use workspace::serial;

/// Runs a browser scenario, then [`finish`]es: on failure, artifacts are saved.
pub async fn run_scenario<F>(
    name: &str,
    browser: Browser,
    scenario: F,
    logs: impl FnOnce() -> Vec<(&'static str, String)>,
) -> anyhow::Result<()>
where
    F: AsyncFnOnce(&Browser) -> anyhow::Result<()>,
{
    let result = scenario(&browser).await;
    finish(name, browser, result, logs()).await
}

/// Ends a browser test. If `result` is an error, saves what the viewer saw (a
/// screenshot, the player state), the error and `logs` (file name, text) to
/// `tests/e2e/artifacts/<name>/`. Closes the browser in every case and returns
/// `result` (or the close error).
pub async fn finish(
    name: &str,
    browser: Browser,
    result: anyhow::Result<()>,
    logs: Vec<(&'static str, String)>,
) -> anyhow::Result<()> {
    if let Err(err) = &result {
        let dir = workspace::artifacts_dir(name);
        let _ = std::fs::create_dir_all(&dir);
        if let Ok(png) = browser.screenshot().await {
            let _ = std::fs::write(dir.join("screenshot.png"), png);
        }
        if let Ok(state) = Probe::widget().state(&browser).await {
            let _ = std::fs::write(dir.join("state.txt"), state.describe());
        }
        let _ = std::fs::write(dir.join("error.txt"), format!("{err:#}\n"));
        write_driver_log(&dir.join("driver.log"), &browser);
        for (file, text) in logs {
            let _ = std::fs::write(dir.join(file), text);
        }
        eprintln!("{name}: failed; artifacts in {}", dir.display());
    }
    let closed = browser.close().await;
    result.and(closed)
}

/// Saves what the browser's driver wrote (WebKit's: its web process's crash reports)
/// to `path`, and prints its last lines, as the failure's output is all a CI run shows.
fn write_driver_log(path: &std::path::Path, browser: &Browser) {
    let log = browser.driver_log(400);
    if log.trim().is_empty() {
        return;
    }
    let _ = std::fs::write(path, &log);
    let tail: Vec<&str> = log.lines().rev().take(20).collect();
    eprintln!(
        "{} driver, last lines:\n{}",
        browser.engine().name(),
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
}

/// [`finish`] for a test with several viewers, each a [`Browser`] with a label
/// ("a", "b"). On failure each viewer's screenshot, player state and chat layer go
/// to `tests/e2e/artifacts/<name>/<label>-*`, with the error and `logs`. Closes
/// every browser in every case and returns `result` (or the first close error).
pub async fn finish_viewers(
    name: &str,
    viewers: Vec<(&'static str, Browser)>,
    result: anyhow::Result<()>,
    logs: Vec<(&'static str, String)>,
) -> anyhow::Result<()> {
    if let Err(err) = &result {
        let dir = workspace::artifacts_dir(name);
        let _ = std::fs::create_dir_all(&dir);
        for (label, browser) in &viewers {
            if let Ok(png) = browser.screenshot().await {
                let _ = std::fs::write(dir.join(format!("{label}-screenshot.png")), png);
            }
            if let Ok(state) = Probe::widget().state(browser).await {
                let _ = std::fs::write(dir.join(format!("{label}-state.txt")), state.describe());
            }
            if let Ok(chat) = ChatView::widget().snapshot(browser).await {
                let _ = std::fs::write(dir.join(format!("{label}-chat.txt")), format!("{chat:#?}"));
            }
            write_driver_log(&dir.join(format!("{label}-driver.log")), browser);
        }
        let _ = std::fs::write(dir.join("error.txt"), format!("{err:#}\n"));
        for (file, text) in logs {
            let _ = std::fs::write(dir.join(file), text);
        }
        eprintln!("{name}: failed; artifacts in {}", dir.display());
    }
    let mut closed = Ok(());
    for (_, browser) in viewers {
        let r = browser.close().await;
        if closed.is_ok() {
            closed = r;
        }
    }
    result.and(closed)
}
