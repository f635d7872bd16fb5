//! layouts: `/chat-only.html` shows one stream as two embeds, `data-layout="video"`
//! and `data-layout="chat"`. The video embed plays with no chat; the chat embed shows
//! the chat (connected, counting viewers) and loads no video at all.

use std::time::Duration;

use anyhow::Result;
use lucarne_e2e::{run_scenario, serial, wait_until, Browser, Check, Origin};
use serde_json::Value;

/// What each embed on the page shows, read from inside the shadow roots.
const STATE_JS: &str = r#"
const hosts = Array.from(document.querySelectorAll('.lucarne-host'));
return hosts.map(h => {
  const r = h.shadowRoot;
  if (!r) return { host: h.dataset.status, root: false };
  const v = r.querySelector('video');
  const shown = sel => { const e = r.querySelector(sel); return !!e && getComputedStyle(e).display !== 'none'; };
  const text = sel => { const e = r.querySelector(sel); return e ? e.textContent.trim() : null; };
  return {
    host: h.dataset.status,
    root: true,
    videoShown: shown('video'),
    videoSrc: v ? (v.getAttribute('src') || '') : null,
    currentTime: v ? v.currentTime : null,
    composer: shown('form.composer'),
    viewers: text('.counts .viewers'),
  };
});
"#;

#[tokio::test(flavor = "multi_thread")]
async fn video_only_and_chat_only_embeds() -> Result<()> {
    let _one_at_a_time = serial().await;
    let origin = Origin::start().await?;
    let browser = Browser::launch_from_env().await?;
    let url = format!("{}/chat-only.html", origin.url());

    run_scenario(
        "video_only_and_chat_only_embeds",
        browser,
        async |browser| {
            browser.goto(&url).await?;
            let first = wait_until(
                "the video embed playing without chat, the chat embed connected without video",
                Duration::from_secs(20),
                || async {
                    let s = browser.execute(STATE_JS, vec![]).await?;
                    let ok = s[0]["host"] == "playing"
                        && s[0]["videoShown"] == true
                        && s[0]["composer"] == false
                        && s[0]["viewers"].is_null()
                        && s[1]["videoShown"] == false
                        && s[1]["videoSrc"] == ""
                        && s[1]["composer"] == true
                        && s[1]["viewers"]
                            .as_str()
                            .is_some_and(|v| v.ends_with("watching"));
                    Ok(if ok {
                        Check::Done(s)
                    } else {
                        Check::NotYet(s.to_string())
                    })
                },
            )
            .await?;
            // The video keeps playing; the chat embed never attaches a source.
            let t0 = first[0]["currentTime"].as_f64().unwrap_or(0.0);
            wait_until(
                "the video embed to advance by 2 s",
                Duration::from_secs(10),
                || async {
                    let s: Value = browser.execute(STATE_JS, vec![]).await?;
                    let t = s[0]["currentTime"].as_f64().unwrap_or(0.0);
                    Ok(if t > t0 + 2.0 && s[1]["videoSrc"] == "" {
                        Check::Done(())
                    } else {
                        Check::NotYet(s.to_string())
                    })
                },
            )
            .await?;
            Ok(())
        },
        || vec![("server.log", origin.log_tail(200))],
    )
    .await
}
