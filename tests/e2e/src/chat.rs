//! The chat and hearts layer of a widget, as a viewer uses it and sees it: pick a
//! name, type and send a message, tap hearts; the lines shown (name, text, still
//! pending or not), the floating hearts, the viewer count, the hearts total, the
//! notes under the lines, and the `lucarne:chat` / `lucarne:heart` events the
//! host page receives.
//!
//! Owns the viewer's actions on the chat layer (real WebDriver typing and clicks
//! into the widget's open shadow root, never `.value =` or synthetic events) and
//! the JavaScript that reads it. Knows nothing of the chat protocol: it asserts
//! nothing itself, it reports what is on screen.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::engine::Browser;
use crate::wait::{wait_until, Check};

/// The host element the loader inserts; the widget lives in its open shadow root.
const HOST: &str = ".lucarne-host";

/// The name prompt's placeholder (the demo page is `lang="en"`).
pub const NAME_PLACEHOLDER: &str = "Your name";
/// The send box's placeholder once the viewer has a name.
pub const CHAT_PLACEHOLDER: &str = "Say something…";
/// The note shown while the chat socket is not (yet) welcomed.
pub const OFFLINE_NOTE: &str = "Chat reconnecting…";

/// Elements that could run script or navigate if a message were parsed as HTML.
/// Counted in the shadow root and in the page, so a test can tell whether sending
/// messages created any.
pub const ACTIVE_TAGS: [&str; 9] = [
    "script", "img", "iframe", "svg", "a", "object", "embed", "math", "form",
];

/// Reads the chat layer of the `index`-th widget. On first sight of the host it
/// starts recording the `lucarne:chat` and `lucarne:heart` events it dispatches
/// (so probe a page once before the events a test expects).
const SNAPSHOT_JS: &str = r#"
const [index, activeTags] = arguments;
const host = document.querySelectorAll('.lucarne-host')[index] || null;
const root = host ? host.shadowRoot : null;
if (host && !host.__e2eChatLog) {
  const log = host.__e2eChatLog = { chat: [], hearts: 0 };
  host.addEventListener('lucarne:chat', (e) => {
    const d = e.detail || {};
    log.chat.push({ name: String(d.name), text: String(d.text) });
  });
  host.addEventListener('lucarne:heart', () => { log.hearts += 1; });
}
if (root && host.__e2eChatLog && !host.__e2eChatLog.sky) {
  // Every heart that starts floating, even one gone before the next snapshot.
  const log = host.__e2eChatLog;
  log.sky = new MutationObserver((records) => {
    for (const r of records) {
      for (const n of r.addedNodes) {
        if (n.localName === 'span' && n.classList.contains('heart')
            && n.parentNode && n.parentNode.classList.contains('sky')) log.drawn += 1;
      }
    }
  });
  log.drawn = 0;
  log.sky.observe(root, { childList: true, subtree: true });
}
const q = (sel) => (root ? root.querySelector(sel) : null);
const text = (el) => (el ? el.textContent : null);
const input = q('form.composer input.say');
const lines = root
  ? Array.from(root.querySelectorAll('ol.lines > li.line')).map((li) => ({
      name: text(li.querySelector('b.name')),
      text: text(li.querySelector('span.text')),
      pending: li.classList.contains('pending'),
      elements: Array.from(li.querySelectorAll('*')).map((e) => e.localName),
      textElements: Array.from(li.querySelectorAll('span.text *')).map((e) => e.localName),
    }))
  : [];
const tally = (scope) => {
  const out = {};
  for (const t of activeTags) out[t] = scope ? scope.querySelectorAll(t).length : 0;
  return out;
};
return {
  host: !!host,
  composer: !!q('form.composer'),
  placeholder: input ? input.placeholder : null,
  inputValue: input ? input.value : null,
  inputDisabled: input ? input.disabled : null,
  lines,
  floatingHearts: root ? root.querySelectorAll('.sky > span.heart').length : 0,
  heartsDrawn: host && host.__e2eChatLog ? host.__e2eChatLog.drawn || 0 : 0,
  viewers: text(q('.counts .viewers')),
  heartsTotal: text(q('.counts .hearts-total')),
  notes: root ? Array.from(root.querySelectorAll('.chat-note')).map((n) => n.textContent) : [],
  chatEvents: host ? host.__e2eChatLog.chat.slice() : [],
  heartEvents: host ? host.__e2eChatLog.hearts : 0,
  activeInWidget: tally(root),
  activeInPage: tally(document),
};
"#;

/// One chat line as shown.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChatLine {
    /// `b.name`'s text.
    pub name: Option<String>,
    /// `span.text`'s text.
    pub text: Option<String>,
    /// Has the `pending` class (sent here, not yet confirmed by the server).
    pub pending: bool,
    /// Local names of every element inside the `li`.
    pub elements: Vec<String>,
    /// Local names of elements inside `span.text` (a message is text: none).
    pub text_elements: Vec<String>,
}

impl ChatLine {
    /// `name: "text"`, with `(pending)` when it is.
    pub fn describe(&self) -> String {
        format!(
            "{}: {:?}{}",
            self.name.as_deref().unwrap_or("(no name)"),
            self.text.as_deref().unwrap_or("(no text)"),
            if self.pending { " (pending)" } else { "" }
        )
    }
}

/// A `lucarne:chat` event as the host page received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatEvent {
    /// `detail.name`.
    pub name: String,
    /// `detail.text`.
    pub text: String,
}

/// The chat layer at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChatSnapshot {
    /// A `.lucarne-host` exists.
    pub host: bool,
    /// The send box (`form.composer`) is rendered.
    pub composer: bool,
    /// `input.say`'s placeholder: [`NAME_PLACEHOLDER`] or [`CHAT_PLACEHOLDER`].
    pub placeholder: Option<String>,
    /// What is typed in the send box.
    pub input_value: Option<String>,
    /// The send box is disabled (banned).
    pub input_disabled: Option<bool>,
    /// The lines shown, oldest first.
    pub lines: Vec<ChatLine>,
    /// `.sky > span.heart` elements (hearts floating now).
    pub floating_hearts: u64,
    /// Hearts that started floating since the first snapshot (counted as they are
    /// added, so one that floated away between two snapshots counts too).
    pub hearts_drawn: u64,
    /// `.counts .viewers`'s text ("2 watching").
    pub viewers: Option<String>,
    /// `.counts .hearts-total`'s text ("♥ 12").
    pub hearts_total_text: Option<String>,
    /// `.chat-note` texts (offline, refusals such as "Slow down...").
    pub notes: Vec<String>,
    /// `lucarne:chat` events received since the first snapshot.
    pub chat_events: Vec<ChatEvent>,
    /// `lucarne:heart` events received since the first snapshot.
    pub heart_events: u64,
    /// Count of each of [`ACTIVE_TAGS`] in the widget's shadow root.
    pub active_in_widget: BTreeMap<String, u64>,
    /// Count of each of [`ACTIVE_TAGS`] in the page's document (outside the widget).
    pub active_in_page: BTreeMap<String, u64>,
}

impl ChatSnapshot {
    fn from_json(v: &Value) -> Self {
        let s = |v: &Value| v.as_str().map(str::to_owned);
        let names = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let tally = |v: &Value| -> BTreeMap<String, u64> {
            v.as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0)))
                        .collect()
                })
                .unwrap_or_default()
        };
        Self {
            host: v["host"].as_bool().unwrap_or(false),
            composer: v["composer"].as_bool().unwrap_or(false),
            placeholder: s(&v["placeholder"]),
            input_value: s(&v["inputValue"]),
            input_disabled: v["inputDisabled"].as_bool(),
            lines: v["lines"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|l| ChatLine {
                            name: s(&l["name"]),
                            text: s(&l["text"]),
                            pending: l["pending"].as_bool().unwrap_or(false),
                            elements: names(&l["elements"]),
                            text_elements: names(&l["textElements"]),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            floating_hearts: v["floatingHearts"].as_u64().unwrap_or(0),
            hearts_drawn: v["heartsDrawn"].as_u64().unwrap_or(0),
            viewers: s(&v["viewers"]),
            hearts_total_text: s(&v["heartsTotal"]),
            notes: names(&v["notes"]),
            chat_events: v["chatEvents"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|e| ChatEvent {
                            name: e["name"].as_str().unwrap_or("").to_owned(),
                            text: e["text"].as_str().unwrap_or("").to_owned(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            heart_events: v["heartEvents"].as_u64().unwrap_or(0),
            active_in_widget: tally(&v["activeInWidget"]),
            active_in_page: tally(&v["activeInPage"]),
        }
    }

    /// The chat layer is up and connected: the send box is there and the
    /// "reconnecting" note is not.
    pub fn online(&self) -> bool {
        self.composer && !self.notes.iter().any(|n| n == OFFLINE_NOTE)
    }

    /// The hearts total as a number (the digits of "♥ 12").
    pub fn hearts_total(&self) -> Option<u64> {
        let digits: String = self
            .hearts_total_text
            .as_deref()?
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    }

    /// Lines whose text is exactly `text`.
    pub fn lines_with_text<'a>(&'a self, text: &'a str) -> impl Iterator<Item = &'a ChatLine> {
        self.lines
            .iter()
            .filter(move |l| l.text.as_deref() == Some(text))
    }

    /// One line for failure messages (the last eight chat lines).
    pub fn describe(&self) -> String {
        if !self.host {
            return "no .lucarne-host on the page".to_owned();
        }
        if !self.composer {
            return "no chat layer (form.composer) in the widget's shadow root".to_owned();
        }
        let skip = self.lines.len().saturating_sub(8);
        let lines: Vec<String> = self.lines[skip..].iter().map(ChatLine::describe).collect();
        format!(
            "placeholder {:?}, typed {:?}, viewers {:?}, hearts total {:?}, floating hearts {} \
             ({} drawn), notes {:?}, {} lines{}: [{}]",
            self.placeholder.as_deref().unwrap_or("(none)"),
            self.input_value.as_deref().unwrap_or(""),
            self.viewers.as_deref().unwrap_or("(none)"),
            self.hearts_total_text.as_deref().unwrap_or("(none)"),
            self.floating_hearts,
            self.hearts_drawn,
            self.notes,
            self.lines.len(),
            if skip > 0 { ", last 8" } else { "" },
            lines.join("; ")
        )
    }
}

/// The chat layer of one widget on the page.
#[derive(Clone, Copy, Debug)]
pub struct ChatView {
    /// Which `.lucarne-host` on the page (0 = first).
    index: usize,
}

impl ChatView {
    /// The first widget's chat layer.
    pub fn widget() -> Self {
        Self { index: 0 }
    }

    /// What the chat layer shows now.
    pub async fn snapshot(&self, browser: &Browser) -> Result<ChatSnapshot> {
        let v = browser
            .execute(SNAPSHOT_JS, vec![json!(self.index), json!(ACTIVE_TAGS)])
            .await?;
        Ok(ChatSnapshot::from_json(&v))
    }

    /// Polls until `check` accepts a snapshot (returns it) or `deadline` passes
    /// (the error says `what` and the last snapshot).
    pub async fn wait_for(
        &self,
        browser: &Browser,
        what: &str,
        deadline: Duration,
        check: impl Fn(&ChatSnapshot) -> bool,
    ) -> Result<ChatSnapshot> {
        let check = &check;
        wait_until(what, deadline, move || async move {
            let now = self.snapshot(browser).await?;
            Ok(if check(&now) {
                Check::Done(now)
            } else {
                Check::NotYet(now.describe())
            })
        })
        .await
    }

    /// Waits until the chat layer is rendered and connected.
    pub async fn wait_online(&self, browser: &Browser, deadline: Duration) -> Result<ChatSnapshot> {
        self.wait_for(
            browser,
            "the chat layer to show its send box, connected",
            deadline,
            ChatSnapshot::online,
        )
        .await
    }

    /// Types `text` into the send box and clicks Send, as a viewer would.
    /// Fails, before sending, if the send box does not show exactly what was typed.
    pub async fn type_and_send(&self, browser: &Browser, text: &str) -> Result<()> {
        browser
            .type_in_shadow(HOST, self.index, "form.composer input.say", text)
            .await?;
        let typed = self.snapshot(browser).await?;
        if typed.input_value.as_deref() != Some(text) {
            bail!(
                "typed {text:?} into the send box, which shows {:?}; {}",
                typed.input_value.as_deref().unwrap_or("(no send box)"),
                typed.describe()
            );
        }
        browser
            .click_in_shadow(HOST, self.index, "form.composer button.send")
            .await
    }

    /// Answers the name prompt with `name` and waits until the send box asks for a
    /// message instead (the server accepted the name).
    pub async fn pick_name(
        &self,
        browser: &Browser,
        name: &str,
        deadline: Duration,
    ) -> Result<ChatSnapshot> {
        self.wait_for(
            browser,
            &format!("the name prompt ({NAME_PLACEHOLDER:?}), connected"),
            deadline,
            |s| s.online() && s.placeholder.as_deref() == Some(NAME_PLACEHOLDER),
        )
        .await?;
        self.type_and_send(browser, name).await?;
        self.wait_for(
            browser,
            &format!("the send box to say {CHAT_PLACEHOLDER:?} after picking the name {name:?}"),
            deadline,
            |s| s.placeholder.as_deref() == Some(CHAT_PLACEHOLDER),
        )
        .await
        .with_context(|| format!("the name {name:?} was not taken"))
    }

    /// Clicks the transparent tap zone over the video (sends a heart).
    pub async fn tap_video(&self, browser: &Browser) -> Result<()> {
        browser.click_in_shadow(HOST, self.index, ".tapzone").await
    }

    /// Clicks the ♥ button beside the send box.
    pub async fn tap_heart_button(&self, browser: &Browser) -> Result<()> {
        browser
            .click_in_shadow(HOST, self.index, "form.composer button.heart-button")
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_snapshot() {
        let v = json!({
            "host": true, "composer": true, "placeholder": "Say something…", "inputValue": "",
            "inputDisabled": false,
            "lines": [{"name": "Ada", "text": "<b>hi</b>", "pending": true,
                       "elements": ["b", "span"], "textElements": []}],
            "floatingHearts": 3, "heartsDrawn": 5, "viewers": "2 watching", "heartsTotal": "♥ 12",
            "notes": [], "chatEvents": [{"name": "Ada", "text": "<b>hi</b>"}], "heartEvents": 2,
            "activeInWidget": {"img": 0, "svg": 1}, "activeInPage": {"script": 2},
        });
        let s = ChatSnapshot::from_json(&v);
        assert!(s.online());
        assert_eq!(s.hearts_total(), Some(12));
        assert_eq!((s.floating_hearts, s.hearts_drawn), (3, 5));
        assert_eq!(s.lines_with_text("<b>hi</b>").count(), 1);
        assert!(s.lines[0].pending);
        assert_eq!(s.active_in_widget["svg"], 1);
        assert_eq!(s.chat_events[0].name, "Ada");
        let d = s.describe();
        assert!(
            d.contains("2 watching") && d.contains("Ada: \"<b>hi</b>\" (pending)"),
            "{d}"
        );
    }

    #[test]
    fn offline_note_means_not_online() {
        let s = ChatSnapshot {
            host: true,
            composer: true,
            notes: vec![OFFLINE_NOTE.to_owned()],
            ..Default::default()
        };
        assert!(!s.online());
        assert_eq!(s.hearts_total(), None);
    }
}
