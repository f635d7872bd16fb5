//! Private broadcasts in the widget: the server runs `--private demo` with a playback
//! secret, and a page on an allowed origin embeds the stream with one script tag.
//! - a_private_broadcast_plays_with_the_pages_token: with `data-token` (minted by
//!   `lucarne-server token`, as a site's backend would), the video plays and the chat
//!   connects; the server's log never holds the token.
//! - a_page_without_a_valid_token_says_the_broadcast_is_private: with no token, and
//!   with a forged one, the widget says "This broadcast is private." within 10 s and
//!   plays nothing.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use lucarne_e2e::{
    overlay_text, run_scenario, serial, wait_until, Browser, ChatView, Check, Origin, OriginConfig,
    Probe, StaticServer,
};

/// Page load, widget download, first frame.
const READY: Duration = Duration::from_secs(20);

/// The bar for saying why a stream cannot play.
const SAY_WITHIN: Duration = Duration::from_secs(10);

const SECRET: &str = "a-playback-secret-for-e2e-tests";

/// The site embedding the broadcast, and the server that plays it privately.
struct Private {
    site: StaticServer,
    _dir: tempfile::TempDir,
    origin: Origin,
    bin: std::path::PathBuf,
}

impl Private {
    async fn start() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("lucarne-e2e-private-")
            .tempdir()?;
        let site = StaticServer::start(dir.path()).await?;
        let mut config = OriginConfig::from_env()?;
        let bin = config.bin.clone();
        config.extra_args = vec![
            "--private".into(),
            "demo".into(),
            "--playback-secret".into(),
            SECRET.into(),
            "--embed-origin".into(),
            site.url(),
        ];
        let origin = Origin::start_with(config).await?;
        Ok(Self {
            site,
            _dir: dir,
            origin,
            bin,
        })
    }

    /// A token for `demo`, minted by `lucarne-server token`.
    fn token(&self) -> Result<String> {
        let out = std::process::Command::new(&self.bin)
            .args(["token", "--stream", "demo", "--ttl-secs", "600"])
            .env("LUCARNE_PLAYBACK_SECRET", SECRET)
            .output()
            .context("running lucarne-server token")?;
        ensure!(
            out.status.success(),
            "lucarne-server token failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8(out.stdout)?.trim().to_owned())
    }

    /// Writes a page embedding the demo with `extra` attributes; returns its URL.
    fn page(&self, name: &str, extra: &str) -> Result<String> {
        let s = self.origin.url();
        let html = format!(
            "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">\
             <title>Internal event</title></head>\n<body>\n<h1>Internal event</h1>\n\
             <script src=\"{s}/lucarne.js\" data-src=\"{s}/s/demo\"{extra}></script>\n\
             </body>\n</html>\n"
        );
        std::fs::write(self.site.root().join(name), html)?;
        Ok(format!("{}/{name}", self.site.url()))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_private_broadcast_plays_with_the_pages_token() -> Result<()> {
    let _one_at_a_time = serial().await;
    let private = Private::start().await?;
    let token = private.token()?;
    let url = private.page("event.html", &format!(" data-token=\"{token}\""))?;
    let browser = Browser::launch_from_env().await?;

    run_scenario(
        "a_private_broadcast_plays_with_the_pages_token",
        browser,
        async |browser| {
            browser.goto(&url).await?;
            let widget = Probe::widget();
            widget
                .wait_playing(browser, READY)
                .await
                .context("the private broadcast did not play with a valid token")?;
            let watch = widget.watch(browser, Duration::from_secs(3)).await?;
            ensure!(
                watch.advanced_s() >= 2.0 && watch.frames_grown() >= 30,
                "the private broadcast started but does not play on: {}",
                watch.describe()
            );
            ChatView::widget()
                .wait_online(browser, READY)
                .await
                .context("the private broadcast's chat did not connect with the token")?;
            let mac = token.split('.').nth(1).unwrap_or(&token);
            ensure!(
                !private.origin.log_tail(2000).contains(mac),
                "the server's log holds the playback token"
            );
            Ok(())
        },
        || vec![("server.log", private.origin.log_tail(200))],
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_without_a_valid_token_says_the_broadcast_is_private() -> Result<()> {
    let _one_at_a_time = serial().await;
    let private = Private::start().await?;
    let token = private.token()?;
    let (expiry, mac) = token.split_once('.').context("a token is EXPIRY.MAC")?;
    // The same expiry, another MAC: what a viewer editing the page would try.
    let forged = format!("{expiry}.{}", "0".repeat(mac.len()));
    let pages = [
        ("no token", private.page("open.html", "")?),
        (
            "a forged token",
            private.page("forged.html", &format!(" data-token=\"{forged}\""))?,
        ),
    ];
    let browser = Browser::launch_from_env().await?;

    run_scenario(
        "a_page_without_a_valid_token_says_the_broadcast_is_private",
        browser,
        async |browser| {
            for (what, url) in &pages {
                let since = Instant::now();
                browser.goto(url).await?;
                let text = wait_until(
                    &format!("the widget with {what} to say the broadcast is private"),
                    SAY_WITHIN,
                    || async {
                        let text = overlay_text(browser).await?;
                        let state = Probe::widget().state(browser).await?;
                        Ok(if text.contains("This broadcast is private.") {
                            Check::Done(text)
                        } else {
                            Check::NotYet(format!("overlay {text:?}; {}", state.describe()))
                        })
                    },
                )
                .await?;
                // The chat says the same (not "not available on this site": the
                // door of a private broadcast says why in its 403's body).
                let chat = ChatView::widget()
                    .wait_for(
                        browser,
                        "the chat to say the broadcast is private",
                        SAY_WITHIN,
                        |s| s.notes.iter().any(|n| n == "This broadcast is private."),
                    )
                    .await?;
                ensure!(
                    !chat.composer,
                    "a private broadcast's chat offers its send box"
                );
                let state = Probe::widget().state(browser).await?;
                ensure!(
                    state.frames == 0,
                    "with {what} the widget says {text:?} but decoded {} frames",
                    state.frames
                );
                eprintln!(
                    "private: with {what}, said {text:?} after {:.1} s",
                    since.elapsed().as_secs_f64()
                );
            }
            Ok(())
        },
        || vec![("server.log", private.origin.log_tail(200))],
    )
    .await
}
