//! overlay: the broadcast's overlay for OBS's Browser Source (`/overlay/{stream}`), as
//! OBS would show it: a page whose every layer is transparent, with no video, nothing
//! to type or tap, where a viewer's message appears (large, at the bottom left) and the
//! hearts viewers tap float.
//! - the_overlay_shows_messages_and_hearts_on_a_transparent_page: a viewer posts and
//!   another taps hearts through the chat socket; both show on the overlay, whose html,
//!   body, host and widget backgrounds are transparent. A screenshot is kept as an
//!   artifact (`overlay.png`).

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use lucarne_e2e::phone::{say_once, tap_hearts};
use lucarne_e2e::{run_scenario, serial, Browser, ChatView, Origin};

/// Page load, widget download, chat socket welcomed, a message or a heart shown.
const SHOWN: Duration = Duration::from_secs(20);

/// The computed backgrounds of the page and the widget's layers, and what the widget
/// shows besides the messages (a send box, a video, a tap zone).
const LOOK_JS: &str = r#"
const host = document.querySelector('.lucarne-host');
const root = host && host.shadowRoot;
const bg = (el) => (el ? getComputedStyle(el).backgroundColor : 'missing');
const shown = (sel) => {
  const el = root && root.querySelector(sel);
  return !!el && getComputedStyle(el).display !== 'none';
};
return {
  backgrounds: {
    html: bg(document.documentElement),
    body: bg(document.body),
    host: bg(host),
    widget: bg(root && root.querySelector('.lucarne')),
    stage: bg(root && root.querySelector('.stage')),
    chat: bg(root && root.querySelector('.chat')),
  },
  composer: shown('form.composer'),
  video: shown('video'),
  tapzone: shown('.tapzone'),
  skyRight: (() => {
    const sky = root && root.querySelector('.sky');
    return sky ? sky.getBoundingClientRect().right / window.innerWidth : 0;
  })(),
  fontPx: (() => {
    const t = root && root.querySelector('li.line .text');
    return t ? parseFloat(getComputedStyle(t).fontSize) : 0;
  })(),
};
"#;

fn transparent(css: &str) -> bool {
    css == "transparent" || css.replace(' ', "") == "rgba(0,0,0,0)"
}

#[tokio::test(flavor = "multi_thread")]
async fn the_overlay_shows_messages_and_hearts_on_a_transparent_page() -> Result<()> {
    let _one_at_a_time = serial().await;
    let origin = Origin::start().await?;
    let browser = Browser::launch_from_env().await?;
    let chat_url = format!("{}/chat/demo", origin.ws_url());
    let name = "the_overlay_shows_messages_and_hearts_on_a_transparent_page";
    run_scenario(
        name,
        browser,
        async |browser| {
            browser
                .goto(&format!("{}/overlay/demo", origin.url()))
                .await?;
            let chat = ChatView::widget();
            // The overlay's own socket must be in the room before the hearts are tapped
            // (hearts are not kept); the message would come in its history anyway.
            say_once(&chat_url, "Ada", "Bonjour depuis le chat").await?;
            let seen = chat
                .wait_for(browser, "the viewer's message on the overlay", SHOWN, |s| {
                    s.lines_with_text("Bonjour depuis le chat").count() == 1
                })
                .await?;
            ensure!(
                seen.floating_hearts == 0,
                "hearts float before anyone tapped: {}",
                seen.describe()
            );
            tap_hearts(&chat_url, "Bruno", 5).await?;
            chat.wait_for(
                browser,
                "the tapped hearts to float on the overlay",
                SHOWN,
                |s| s.hearts_drawn > 0,
            )
            .await?;

            let look = browser.execute(LOOK_JS, vec![]).await?;
            let backgrounds = look["backgrounds"]
                .as_object()
                .context("no backgrounds read")?;
            for (layer, css) in backgrounds {
                let css = css.as_str().unwrap_or("missing");
                ensure!(
                    transparent(css),
                    "the overlay's {layer} is painted {css}: OBS would show it over the \
                     broadcast; every layer: {backgrounds:?}"
                );
            }
            for what in ["composer", "video", "tapzone"] {
                ensure!(
                    look[what] == false,
                    "the overlay shows a {what}: it is read-only and has no video ({look})"
                );
            }
            let right = look["skyRight"].as_f64().unwrap_or(0.0);
            ensure!(
                right > 0.95,
                "the hearts' sky ends at {:.0} % of the page's width: hearts must rise at \
                 its right edge",
                right * 100.0
            );
            let px = look["fontPx"].as_f64().unwrap_or(0.0);
            ensure!(
                px >= 20.0,
                "the overlay's messages are {px} px: too small to read in a broadcast"
            );
            if let Ok(png) = browser.screenshot().await {
                let dir = lucarne_e2e::workspace::artifacts_dir(name);
                let _ = std::fs::create_dir_all(&dir);
                let _ = std::fs::write(dir.join("overlay.png"), png);
            }
            Ok(())
        },
        || vec![("server.log", origin.log_tail(200))],
    )
    .await
}
