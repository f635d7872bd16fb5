//! The broadcaster console (`/studio/{stream}`) driven the way a broadcaster uses it:
//! the secret typed into its form, its buttons clicked, what it shows read back.
//!
//! Owns the console's element ids (those of crates/server/src/studio/console.html,
//! with the health panel health.js fills) for the studio e2e test and the go-live
//! benchmark; it never starts a browser or a server.

use std::time::Duration;

use anyhow::Result;
use serde_json::Value;

use crate::engine::Browser;
use crate::wait::{wait_until, Check};
use crate::{free_port, Origin, OriginConfig, StaticServer};

/// What the console shows, read from its page: `unlocked`, `unlockError`, `modNote`,
/// `badge`, `live` (`yes`, `no`, `reconnecting`), `status`, `statusKind`, `chat` (its
/// state line), `chatOpen`, `viewers`, `hearts`, `lines` (the chat's lines),
/// `previewWidth`, `previewTime`, `goLive` (enabled), `health`.
const STATE_JS: &str = r#"
const $ = (id) => document.getElementById(id);
const v = $('preview');
return {
  unlocked: !$('console').classList.contains('hidden'),
  unlockError: $('unlock-error').textContent,
  modNote: $('mod-note').textContent,
  badge: $('live-badge').dataset.state,
  live: document.body.dataset.live || 'no',
  status: $('status').textContent,
  statusKind: $('status').dataset.kind || '',
  chat: $('chat-state').textContent,
  chatOpen: $('chat-state').dataset.state === 'open',
  viewers: Number($('viewers').textContent),
  hearts: Number($('hearts-total').textContent),
  lines: [...document.querySelectorAll('#chat li')].map((li) => li.textContent),
  previewWidth: v.videoWidth,
  previewTime: v.currentTime,
  goLive: !$('go-live').disabled,
  health: $('health').textContent,
};
"#;

/// The stream-health panel (`#stream-health`), as the broadcaster reads it: `shown`,
/// and for each figure (`bitrate`, `fps`, `keyframe`, `dropped`, `latency`) its `text`
/// and `warn` (shown in the warning style).
const HEALTH_JS: &str = r#"
const panel = document.getElementById('stream-health');
const figure = (name) => {
  const el = panel.querySelector('[data-figure="' + name + '"]');
  return { text: el.querySelector('dd').textContent, warn: el.dataset.warn === 'true' };
};
return {
  shown: !panel.classList.contains('hidden') && panel.getBoundingClientRect().height > 0,
  bitrate: figure('bitrate'),
  fps: figure('fps'),
  keyframe: figure('keyframe'),
  dropped: figure('dropped'),
  latency: figure('latency'),
};
"#;

/// Reads the console's stream-health panel (see [`HEALTH_JS`]).
pub async fn health(browser: &Browser) -> Result<Value> {
    browser.execute(HEALTH_JS, vec![]).await
}

/// The first number in a health figure's text (`"29.8 fps"` → 29.8), if any.
pub fn figure_number(figure: &Value) -> Option<f64> {
    let text = figure["text"].as_str()?;
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let rest = &text[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Reads what the console shows (see [`STATE_JS`]).
pub async fn state(browser: &Browser) -> Result<Value> {
    browser.execute(STATE_JS, vec![]).await
}

/// Polls the console until `check` accepts what it shows.
pub async fn wait_for(
    browser: &Browser,
    what: &str,
    deadline: Duration,
    check: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let check = &check;
    wait_until(what, deadline, move || async move {
        let now = state(browser).await?;
        Ok(if check(&now) {
            Check::Done(now)
        } else {
            Check::NotYet(now.to_string())
        })
    })
    .await
}

/// Types `secret` into the unlock form and submits it.
pub async fn type_secret(browser: &Browser, secret: &str) -> Result<()> {
    browser
        .execute(
            "document.getElementById('secret').value = arguments[0];\n\
             document.getElementById('unlock').requestSubmit();",
            vec![Value::from(secret)],
        )
        .await
        .map(|_| ())
}

/// Clicks the enabled button `id`; returns the page's wall clock (unix ms) just before
/// the click.
pub async fn click(browser: &Browser, id: &str) -> Result<f64> {
    let at = browser
        .execute(
            "const b = document.getElementById(arguments[0]);\n\
             if (!b || b.disabled) throw new Error('no enabled button #' + arguments[0]);\n\
             const at = Date.now();\n\
             b.click();\n\
             return at;",
            vec![Value::from(id)],
        )
        .await?;
    Ok(at.as_f64().unwrap_or(0.0))
}

/// The broadcaster token of [`start_origin`]'s server.
pub const TOKEN: &str = "e2e-broadcaster-token";

/// A server with the `studio` stream (key `e2e-key`, the broadcaster token [`TOKEN`])
/// and a site on another origin whose `live.html` embeds it.
pub async fn start_origin() -> Result<(tempfile::TempDir, StaticServer, Origin, u16)> {
    start_origin_with(&[]).await
}

/// [`start_origin`] with more server arguments.
pub async fn start_origin_with(
    extra: &[&str],
) -> Result<(tempfile::TempDir, StaticServer, Origin, u16)> {
    let dir = tempfile::Builder::new()
        .prefix("lucarne-e2e-studio-")
        .tempdir()?;
    let site = StaticServer::start(dir.path()).await?;
    let rtmp_port = free_port()?;
    let mut config = OriginConfig::from_env()?;
    config.extra_args = vec![
        "--no-demo".into(),
        "--embed-origin".into(),
        site.url(),
        "--rtmp-listen".into(),
        format!("127.0.0.1:{rtmp_port}"),
        "--stream-key".into(),
        "e2e-key=studio".into(),
        "--broadcaster-token".into(),
        TOKEN.into(),
    ];
    config
        .extra_args
        .extend(extra.iter().map(|a| a.to_string()));
    let origin = Origin::start_with(config).await?;
    let s = origin.url();
    std::fs::write(
        dir.path().join("live.html"),
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>Masterclass</title></head>\n<body><h1>Masterclass, live</h1>\n\
             <script async src=\"{s}/lucarne.js\" data-src=\"{s}/s/studio\"></script>\n\
             </body></html>\n"
        ),
    )?;
    Ok((dir, site, origin, rtmp_port))
}
