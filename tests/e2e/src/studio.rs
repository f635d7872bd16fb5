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
