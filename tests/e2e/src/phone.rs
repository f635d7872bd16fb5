//! The widget on a phone: what a viewer on a 360–390 px touch screen sees and does,
//! with a busy room around them.
//!
//! - [`PhoneView`] reads the widget's layout in one script call ([`PhoneLayout`]):
//!   for the badge, the viewer count, the unmute button and the play control, which
//!   element is at each one's centre (`elementFromPoint` in the shadow root, so a chat
//!   line over the badge shows as the line); the overlaid chat lines and their heights;
//!   the controls shown or faded; the chat toggle; floating hearts; the chat notes; the
//!   touch targets' heights. It acts as the viewer does: taps the picture at a point
//!   where the picture is what gets the tap ([`PhoneView::tap_picture`]), clicks the chat
//!   toggle, and counts the `lucarne:chat` events the page receives.
//! - [`ChatFirehose`]: the other viewers of the room, each a chat socket in this process
//!   posting on a schedule, so the room carries a set number of messages per second,
//!   every few of them about 200 characters long ([`FirehosePlan::server_args`] are the
//!   server flags that let that rate through its flood limits).
//! - [`socket_spy_page`]: a third-party page whose head script counts the chat sockets
//!   the page opens and keeps its console warnings ([`SpyReport`]).
//!
//! Asserts nothing: it reports what is on screen and what was sent; the tests decide.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use lucarne_protocol::{
    ClientMessage, Hello, SendChat, SendHearts, ServerMessage, PROTOCOL_VERSION,
};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use crate::engine::Browser;
use crate::wait::{wait_until, Check};

/// The host element the loader inserts.
const HOST: &str = ".lucarne-host";

/// What must never be covered on a phone, as (name, selector in the shadow root). The
/// badge is the LIVE badge, or "back to live" when the player fell behind: either is
/// the badge the viewer reads in that corner.
pub const UNCOVERED: [(&str, &str); 4] = [
    ("the live badge", ".badge.live, .badge.golive"),
    ("the viewer count", ".counts .viewers"),
    ("the unmute button", ".unmute-badge"),
    ("the play control", ".controls .play"),
];

/// The chat toggle in the controls.
pub const CHAT_TOGGLE: &str = ".controls .chat-toggle";

/// Reads the layout. Arguments: the widget's index, [`UNCOVERED`].
const LAYOUT_JS: &str = r#"
const [index, targets] = arguments;
const host = document.querySelectorAll('.lucarne-host')[index] || null;
const root = host ? host.shadowRoot : null;
if (!root) return { host: !!host };
const one = (el) => {
  const cls = typeof el.className === 'string' ? el.className.trim() : '';
  return el.localName + (cls ? '.' + cls.split(/\s+/).join('.') : '');
};
// An element and, for a chat line's parts, the line it belongs to.
const name = (el) => {
  if (!el) return null;
  const line = el.closest && el.closest('li.line');
  return line && line !== el ? one(el) + ' in ' + one(line) : one(el);
};
const shown = (el) => {
  if (!el || !el.isConnected) return false;
  for (let e = el; e && e !== root; e = e.parentNode) {
    if (e.nodeType === 1 && getComputedStyle(e).display === 'none') return false;
  }
  const r = el.getBoundingClientRect();
  return getComputedStyle(el).visibility !== 'hidden' && r.width > 0 && r.height > 0;
};
const rect = (el) => { const r = el.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; };
const px = (v) => { const n = parseFloat(v); return isNaN(n) ? 0 : n; };
const top = root.querySelector('.lucarne');
const controls = root.querySelector('.controls');
const ccs = controls ? getComputedStyle(controls) : null;
const covered = targets.map(([what, sel]) => {
  const el = root.querySelector(sel);
  if (!el) return { what, selector: sel, found: false };
  const [x0, y0, w, h] = rect(el);
  const x = x0 + w / 2, y = y0 + h / 2;
  const hit = root.elementFromPoint(x, y);
  return {
    what, selector: sel, found: true, element: name(el), shown: shown(el),
    x, y, w, h, inViewport: x >= 0 && y >= 0 && x < innerWidth && y < innerHeight,
    hit: name(hit), ok: !!hit && (hit === el || el.contains(hit)),
  };
});
const list = root.querySelector('ol.lines');
const lines = Array.from(root.querySelectorAll('ol.lines > li.line')).map((li) => {
  const text = li.querySelector('.text');
  const tcs = getComputedStyle(text || li);
  let lineHeight = parseFloat(tcs.lineHeight);
  if (isNaN(lineHeight)) lineHeight = 1.35 * px(tcs.fontSize);
  const lcs = getComputedStyle(li);
  const [x, y, w, h] = rect(li);
  return {
    chars: text ? text.textContent.length : 0,
    text: text ? text.textContent.slice(0, 60) : '',
    height: h, top: y, bottom: y + h,
    lineHeight,
    padding: px(lcs.paddingTop) + px(lcs.paddingBottom) + px(lcs.borderTopWidth) + px(lcs.borderBottomWidth),
    open: li.classList.contains('open'),
    focused: li.matches(':focus'),
    visible: parseFloat(lcs.opacity) > 0.05,
  };
});
const toggle = root.querySelector('.controls .chat-toggle');
const composer = root.querySelector('form.composer');
const video = root.querySelector('video');
const buttons = Array.from(root.querySelectorAll('.controls button, .composer button'))
  .filter(shown)
  .map((b) => ({ element: name(b), height: b.getBoundingClientRect().height }));
return {
  host: true,
  root: !!top,
  rootClass: top ? top.className : null,
  controlsShown: !!top && top.classList.contains('controls-shown'),
  controlsOpacity: ccs ? px(ccs.opacity) : null,
  controlsPointerEvents: ccs ? ccs.pointerEvents : null,
  covered,
  linesDisplay: list ? getComputedStyle(list).display : null,
  linesBox: list ? rect(list) : null,
  lines,
  hearts: root.querySelectorAll('.sky .heart').length,
  toggle: !!toggle,
  togglePressed: toggle ? toggle.getAttribute('aria-pressed') : null,
  composerShown: shown(composer),
  composerPresent: !!composer,
  notes: Array.from(root.querySelectorAll('.chat-note')).map((n) => ({
    class: n.className, role: n.getAttribute('role'), text: n.textContent.trim(), shown: shown(n),
  })),
  viewers: (() => { const v = root.querySelector('.counts .viewers'); return v ? v.textContent.trim() : null; })(),
  video: video ? rect(video) : null,
  coarse: matchMedia('(pointer: coarse)').matches,
  buttons,
  viewport: [innerWidth, innerHeight],
};
"#;

/// Finds a point of the picture (`.tapzone`) where the tap zone itself is the element
/// hit, and 16 px around it, inside the viewport: where a viewer's finger lands on the
/// picture and nothing else. Scrolls the widget into view first.
const FREE_PICTURE_POINT_JS: &str = r#"
const index = arguments[0];
const host = document.querySelectorAll('.lucarne-host')[index] || null;
const root = host ? host.shadowRoot : null;
const zone = root ? root.querySelector('.tapzone') : null;
if (!zone) return { error: 'no .tapzone in the widget' };
const r0 = host.getBoundingClientRect();
if (r0.top < 0 || r0.bottom > innerHeight) host.scrollIntoView({ block: 'center' });
const r = zone.getBoundingClientRect();
const seen = [];
for (const fy of [0.3, 0.2, 0.4, 0.5, 0.1, 0.6, 0.7, 0.8, 0.9]) {
  for (const fx of [0.5, 0.62, 0.38, 0.75, 0.25, 0.88, 0.12]) {
    const x = Math.round(r.left + fx * r.width), y = Math.round(r.top + fy * r.height);
    if (x < 1 || y < 1 || x >= innerWidth - 1 || y >= innerHeight - 1) continue;
    const hit = root.elementFromPoint(x, y);
    // A margin around the point too, diagonals included: a tap lands within a few
    // pixels of where it is aimed. WebKitGTK's was seen to unmute through the badge
    // when aimed 16 px below and beside its corner (a 360 px phone's first candidate).
    const clear = [[0, 0], [0, -32], [0, 32], [-32, 0], [32, 0],
                   [-24, -24], [24, -24], [-24, 24], [24, 24]].every(
      ([dx, dy]) => root.elementFromPoint(x + dx, y + dy) === zone);
    if (clear) return { x, y };
    if (seen.length < 6) seen.push(hit ? hit.localName + '.' + String(hit.className) : 'nothing');
  }
}
return { error: 'no point of the picture is free: ' + seen.join(', ') };
"#;

/// Starts counting the `lucarne:chat` events the host dispatches (once per page).
/// Returns how many so far.
const CHAT_COUNT_JS: &str = r#"
const host = document.querySelectorAll('.lucarne-host')[arguments[0]] || null;
if (!host) return null;
if (!host.__e2ePhoneChat) {
  const log = host.__e2ePhoneChat = { n: 0 };
  host.addEventListener('lucarne:chat', () => { log.n += 1; });
}
return host.__e2ePhoneChat.n;
"#;

/// Where one of [`UNCOVERED`] is and what is at its centre.
#[derive(Clone, Debug, PartialEq)]
pub struct Covered {
    /// "the live badge"...
    pub what: String,
    /// The selector it was found by.
    pub selector: String,
    /// The element exists in the shadow root.
    pub found: bool,
    /// Tag and classes of the element found.
    pub element: Option<String>,
    /// Displayed with a non-empty box.
    pub shown: bool,
    /// Its centre is inside the viewport (`elementFromPoint` sees only the viewport).
    pub in_viewport: bool,
    /// Its centre, viewport CSS pixels.
    pub centre: (f64, f64),
    /// Its size.
    pub size: (f64, f64),
    /// Tag and classes of the element at its centre.
    pub hit: Option<String>,
    /// The element at its centre is it or inside it.
    pub ok: bool,
}

impl Covered {
    /// One line: what, where, and what is on top.
    pub fn describe(&self) -> String {
        if !self.found {
            return format!("{} ({}): not in the widget", self.what, self.selector);
        }
        format!(
            "{} ({}) {:.0}x{:.0} at ({:.0}, {:.0}){}{}: {} at its centre",
            self.what,
            self.element.as_deref().unwrap_or("?"),
            self.size.0,
            self.size.1,
            self.centre.0,
            self.centre.1,
            if self.shown { "" } else { ", not displayed" },
            if self.in_viewport {
                ""
            } else {
                ", outside the viewport"
            },
            self.hit.as_deref().unwrap_or("nothing"),
        )
    }
}

/// One overlaid chat line.
#[derive(Clone, Debug, PartialEq)]
pub struct LineBox {
    /// Characters of its text.
    pub chars: usize,
    /// The first 60 characters of its text.
    pub text: String,
    /// Its height, CSS pixels.
    pub height: f64,
    /// Its top, viewport CSS pixels.
    pub top: f64,
    /// The text's line height, CSS pixels.
    pub line_height: f64,
    /// Vertical padding and border of the line.
    pub padding: f64,
    /// Has the `open` class (expanded by a tap).
    pub open: bool,
    /// Has focus (a tap on a line focuses it, and a focused line may show whole).
    pub focused: bool,
    /// Not faded out (opacity above 5 %).
    pub visible: bool,
}

impl LineBox {
    /// Opened by the viewer: the `open` class, or focus (a tapped line).
    pub fn opened(&self) -> bool {
        self.open || self.focused
    }

    /// The height of `lines` lines of text with this line's padding.
    pub fn height_of(&self, lines: f64) -> f64 {
        lines * self.line_height + self.padding
    }
}

/// A button's height, for touch targets.
#[derive(Clone, Debug, PartialEq)]
pub struct ButtonBox {
    /// Tag and classes.
    pub element: String,
    /// CSS pixels.
    pub height: f64,
}

/// A `.chat-note` under the lines.
#[derive(Clone, Debug, PartialEq)]
pub struct Note {
    /// Its classes (`chat-note refused`).
    pub class: String,
    /// Its `role` attribute.
    pub role: Option<String>,
    /// Its text.
    pub text: String,
    /// Displayed.
    pub shown: bool,
}

/// The widget as a phone shows it, at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PhoneLayout {
    /// A `.lucarne-host` exists.
    pub host: bool,
    /// Its shadow root has the `.lucarne` element.
    pub root: bool,
    /// `.lucarne`'s classes.
    pub root_class: Option<String>,
    /// `.lucarne` has `controls-shown`.
    pub controls_shown: bool,
    /// `.controls`' computed opacity.
    pub controls_opacity: Option<f64>,
    /// `.controls`' computed pointer-events.
    pub controls_pointer_events: Option<String>,
    /// Each of [`UNCOVERED`], in order.
    pub covered: Vec<Covered>,
    /// `ol.lines`' computed display (`none` when the chat is hidden).
    pub lines_display: Option<String>,
    /// `ol.lines`' box (left, top, width, height): lines outside it are clipped.
    pub lines_box: Option<[f64; 4]>,
    /// The overlaid lines, oldest first.
    pub lines: Vec<LineBox>,
    /// `.sky .heart` elements floating now.
    pub hearts: u64,
    /// The chat toggle exists.
    pub toggle: bool,
    /// Its `aria-pressed` ("true" while the chat is hidden).
    pub toggle_pressed: Option<String>,
    /// `form.composer` is displayed.
    pub composer_shown: bool,
    /// `form.composer` is in the DOM (displayed or not).
    pub composer_present: bool,
    /// The `.chat-note`s.
    pub notes: Vec<Note>,
    /// `.counts .viewers`' text.
    pub viewers: Option<String>,
    /// The `<video>`'s box (left, top, width, height).
    pub video: Option<[f64; 4]>,
    /// `(pointer: coarse)` matches (a touch screen).
    pub coarse: bool,
    /// Displayed buttons in `.controls` and `.composer`.
    pub buttons: Vec<ButtonBox>,
    /// `innerWidth`, `innerHeight`.
    pub viewport: (u64, u64),
}

impl PhoneLayout {
    fn from_json(v: &Value) -> Self {
        let s = |v: &Value| v.as_str().map(str::to_owned);
        let f = |v: &Value| v.as_f64().unwrap_or(0.0);
        let arr = |v: &Value| v.as_array().cloned().unwrap_or_default();
        Self {
            host: v["host"].as_bool().unwrap_or(false),
            root: v["root"].as_bool().unwrap_or(false),
            root_class: s(&v["rootClass"]),
            controls_shown: v["controlsShown"].as_bool().unwrap_or(false),
            controls_opacity: v["controlsOpacity"].as_f64(),
            controls_pointer_events: s(&v["controlsPointerEvents"]),
            covered: arr(&v["covered"])
                .iter()
                .map(|c| Covered {
                    what: s(&c["what"]).unwrap_or_default(),
                    selector: s(&c["selector"]).unwrap_or_default(),
                    found: c["found"].as_bool().unwrap_or(false),
                    element: s(&c["element"]),
                    shown: c["shown"].as_bool().unwrap_or(false),
                    in_viewport: c["inViewport"].as_bool().unwrap_or(false),
                    centre: (f(&c["x"]), f(&c["y"])),
                    size: (f(&c["w"]), f(&c["h"])),
                    hit: s(&c["hit"]),
                    ok: c["ok"].as_bool().unwrap_or(false),
                })
                .collect(),
            lines_display: s(&v["linesDisplay"]),
            lines_box: rect4(&v["linesBox"]),
            lines: arr(&v["lines"])
                .iter()
                .map(|l| LineBox {
                    chars: l["chars"].as_u64().unwrap_or(0) as usize,
                    text: s(&l["text"]).unwrap_or_default(),
                    height: f(&l["height"]),
                    top: f(&l["top"]),
                    line_height: f(&l["lineHeight"]),
                    padding: f(&l["padding"]),
                    open: l["open"].as_bool().unwrap_or(false),
                    focused: l["focused"].as_bool().unwrap_or(false),
                    visible: l["visible"].as_bool().unwrap_or(true),
                })
                .collect(),
            hearts: v["hearts"].as_u64().unwrap_or(0),
            toggle: v["toggle"].as_bool().unwrap_or(false),
            toggle_pressed: s(&v["togglePressed"]),
            composer_shown: v["composerShown"].as_bool().unwrap_or(false),
            composer_present: v["composerPresent"].as_bool().unwrap_or(false),
            notes: arr(&v["notes"])
                .iter()
                .map(|n| Note {
                    class: s(&n["class"]).unwrap_or_default(),
                    role: s(&n["role"]),
                    text: s(&n["text"]).unwrap_or_default(),
                    shown: n["shown"].as_bool().unwrap_or(false),
                })
                .collect(),
            viewers: s(&v["viewers"]),
            video: rect4(&v["video"]),
            coarse: v["coarse"].as_bool().unwrap_or(false),
            buttons: arr(&v["buttons"])
                .iter()
                .map(|b| ButtonBox {
                    element: s(&b["element"]).unwrap_or_default(),
                    height: f(&b["height"]),
                })
                .collect(),
            viewport: (
                v["viewport"][0].as_u64().unwrap_or(0),
                v["viewport"][1].as_u64().unwrap_or(0),
            ),
        }
    }

    /// The controls are visible and take taps: `controls-shown`, opaque, hit-testable.
    pub fn controls_visible(&self) -> bool {
        self.controls_shown
            && self.controls_opacity.is_some_and(|o| o > 0.9)
            && self.controls_pointer_events.as_deref() != Some("none")
    }

    /// The overlaid chat is hidden (`ol.lines` not displayed).
    pub fn chat_hidden(&self) -> bool {
        self.lines_display.as_deref() == Some("none")
    }

    /// The entries of [`PhoneLayout::covered`] that are missing, hidden or covered.
    pub fn uncovered_failures(&self) -> Vec<&Covered> {
        self.covered
            .iter()
            .filter(|c| !(c.found && c.shown && c.in_viewport && c.ok))
            .collect()
    }

    /// Where the chat lines are seen on the video, as shares (0..1) of its height: how
    /// much of it they take (from the highest top to the lowest bottom of the lines not
    /// faded out, within `ol.lines`' box, which clips the rest), and how far up from its
    /// bottom they reach. `(0, 0)` without lines.
    pub fn lines_extent(&self) -> (f64, f64) {
        let (Some([_, top, _, height]), Some([_, list_top, _, list_height])) =
            (self.video, self.lines_box)
        else {
            return (0.0, 0.0);
        };
        let (bottom, list_bottom) = (top + height, list_top + list_height);
        let seen: Vec<(f64, f64)> = self
            .lines
            .iter()
            .filter(|l| l.visible && l.top < list_bottom && l.top + l.height > list_top)
            .map(|l| {
                let clip = |y: f64| y.clamp(list_top.max(top), list_bottom.min(bottom));
                (clip(l.top), clip(l.top + l.height))
            })
            .collect();
        if height <= 0.0 || seen.is_empty() {
            return (0.0, 0.0);
        }
        let highest = seen.iter().map(|s| s.0).fold(f64::INFINITY, f64::min);
        let lowest = seen.iter().map(|s| s.1).fold(f64::NEG_INFINITY, f64::max);
        (
            ((lowest - highest) / height).clamp(0.0, 1.0),
            ((bottom - highest) / height).clamp(0.0, 1.0),
        )
    }

    /// The shown note whose classes include `class`.
    pub fn note(&self, class: &str) -> Option<&Note> {
        self.notes
            .iter()
            .find(|n| n.shown && n.class.split_whitespace().any(|c| c == class))
    }

    /// One paragraph for failure messages.
    pub fn describe(&self) -> String {
        if !self.host {
            return "no .lucarne-host on the page".to_owned();
        }
        if !self.root {
            return "no .lucarne in the widget's shadow root".to_owned();
        }
        let covered: Vec<String> = self.covered.iter().map(Covered::describe).collect();
        let tallest = self.lines.iter().map(|l| l.height).fold(0.0_f64, f64::max);
        format!(
            "viewport {}x{}, .lucarne class {:?}, controls shown {} (opacity {:?}, \
             pointer-events {:?}); [{}]; lines display {:?}, {} lines (tallest {tallest:.0} px); \
             chat toggle {} (aria-pressed {:?}); {} hearts floating; composer {}; viewers {:?}; \
             notes {:?}; video box {:?}; coarse pointer {}",
            self.viewport.0,
            self.viewport.1,
            self.root_class.as_deref().unwrap_or(""),
            self.controls_shown,
            self.controls_opacity,
            self.controls_pointer_events,
            covered.join("; "),
            self.lines_display,
            self.lines.len(),
            if self.toggle { "present" } else { "absent" },
            self.toggle_pressed,
            self.hearts,
            if self.composer_shown {
                "shown"
            } else if self.composer_present {
                "present, not displayed"
            } else {
                "absent"
            },
            self.viewers,
            self.notes
                .iter()
                .map(|n| format!(
                    "{} {:?}{}",
                    n.class,
                    n.text,
                    if n.shown { "" } else { " (hidden)" }
                ))
                .collect::<Vec<_>>(),
            self.video,
            self.coarse,
        )
    }
}

/// A `[left, top, width, height]` array, if it is one.
fn rect4(v: &Value) -> Option<[f64; 4]> {
    let n: Vec<f64> = v.as_array()?.iter().filter_map(Value::as_f64).collect();
    <[f64; 4]>::try_from(n).ok()
}

/// The first widget on a phone.
#[derive(Clone, Copy, Debug)]
pub struct PhoneView {
    /// Which `.lucarne-host` on the page (0 = first).
    index: usize,
}

impl PhoneView {
    /// The first widget on the page.
    pub fn widget() -> Self {
        Self { index: 0 }
    }

    /// The layout now.
    pub async fn layout(&self, browser: &Browser) -> Result<PhoneLayout> {
        let v = browser
            .execute(LAYOUT_JS, vec![json!(self.index), json!(UNCOVERED)])
            .await?;
        Ok(PhoneLayout::from_json(&v))
    }

    /// Polls until `check` accepts the layout (returns it) or `deadline` passes (the
    /// error says `what` and the last layout).
    pub async fn wait_for(
        &self,
        browser: &Browser,
        what: &str,
        deadline: Duration,
        check: impl Fn(&PhoneLayout) -> bool,
    ) -> Result<PhoneLayout> {
        let check = &check;
        wait_until(what, deadline, move || async move {
            let now = self.layout(browser).await?;
            Ok(if check(&now) {
                Check::Done(now)
            } else {
                Check::NotYet(now.describe())
            })
        })
        .await
    }

    /// Taps the picture where nothing else is (a heart, and the controls show), as a
    /// viewer's finger would; fails when no point of the picture is free.
    pub async fn tap_picture(&self, browser: &Browser) -> Result<()> {
        let at = browser
            .execute(FREE_PICTURE_POINT_JS, vec![json!(self.index)])
            .await?;
        if let Some(e) = at["error"].as_str() {
            bail!("cannot tap the picture: {e}");
        }
        let (Some(x), Some(y)) = (at["x"].as_f64(), at["y"].as_f64()) else {
            bail!("cannot tap the picture: {at}");
        };
        browser.tap_at(x, y).await
    }

    /// Taps the picture, then waits (up to `deadline`) for the controls to be visible.
    pub async fn show_controls(&self, browser: &Browser, deadline: Duration) -> Result<()> {
        self.tap_picture(browser).await?;
        self.wait_for(
            browser,
            "the controls to show after a tap on the picture",
            deadline,
            PhoneLayout::controls_visible,
        )
        .await
        .map(drop)
    }

    /// Clicks the chat toggle (a real WebDriver click: it fails if something covers it).
    pub async fn click_chat_toggle(&self, browser: &Browser) -> Result<()> {
        browser.click_in_shadow(HOST, self.index, CHAT_TOGGLE).await
    }

    /// Clicks the newest overlaid chat line (a tap on a message).
    pub async fn click_newest_line(&self, browser: &Browser) -> Result<()> {
        browser
            .click_in_shadow(HOST, self.index, "ol.lines > li.line:last-of-type")
            .await
    }

    /// `lucarne:chat` events the page got since the first call on this page (the
    /// first call starts counting and returns 0).
    pub async fn chat_events(&self, browser: &Browser) -> Result<u64> {
        let v = browser
            .execute(CHAT_COUNT_JS, vec![json!(self.index)])
            .await?;
        v.as_u64()
            .context("no .lucarne-host on the page to count lucarne:chat events on")
    }
}

/// What the room's other viewers do.
#[derive(Clone, Debug)]
pub struct FirehosePlan {
    /// Viewers posting.
    pub posters: usize,
    /// Messages per second in the whole room, spread evenly over the posters.
    pub per_second: f64,
    /// Every `long_every`-th message of a poster is [`LONG_CHARS`] long (0: none).
    pub long_every: u64,
}

/// The length of a long message.
pub const LONG_CHARS: usize = 200;

impl FirehosePlan {
    /// Seconds between two posts of one poster.
    pub fn period(&self) -> Duration {
        Duration::from_secs_f64(self.posters.max(1) as f64 / self.per_second.max(0.001))
    }

    /// Server flags that let this plan through: each poster may post 4 times its rate
    /// (the flood limit would mute it otherwise), and one address may bring in any
    /// number of new viewers (all of them come from 127.0.0.1).
    pub fn server_args(&self) -> Vec<String> {
        let per_poster = self.per_second / self.posters.max(1) as f64;
        let burst = ((per_poster * 4.0).ceil() as u32).max(3);
        vec![
            "--chat-burst".into(),
            burst.to_string(),
            "--chat-window-ms".into(),
            "1000".into(),
            "--new-viewers-per-ip".into(),
            "0".into(),
        ]
    }
}

/// The `n`-th message of poster `name`: [`LONG_CHARS`] characters when `long`.
pub fn firehose_text(name: &str, n: u64, long: bool) -> String {
    if !long {
        return format!("{name} #{n}: on regarde depuis le train, c'est beau !");
    }
    let head = format!("{name} #{n}: ");
    let body = "The light on the vines this morning is unreal, the whole valley smells of \
                crushed grapes and the pickers keep singing the same song over and over again; \
                who is on the press today, and when does the sorting table start? ";
    let mut text: String = head
        .chars()
        .chain(body.chars().cycle())
        .take(LONG_CHARS)
        .collect();
    // No trailing space: the server trims it, and the length would change.
    text.pop();
    text.push('?');
    text
}

/// Counts of a [`ChatFirehose`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FirehoseStats {
    /// Posters welcomed by the room.
    pub joined: u64,
    /// Messages sent.
    pub posted: u64,
    /// Of which long.
    pub posted_long: u64,
    /// Messages of this firehose that came back as room events (seen by the poster).
    pub echoed: u64,
    /// Error frames and notices (refusals, mutes).
    pub refused: u64,
    /// Sockets closed by the server or failed.
    pub dropped: u64,
}

#[derive(Debug, Default)]
struct Counts {
    joined: AtomicU64,
    posted: AtomicU64,
    posted_long: AtomicU64,
    echoed: AtomicU64,
    refused: AtomicU64,
    dropped: AtomicU64,
}

/// The room's other viewers, posting at [`FirehosePlan::per_second`]. Stops (closes its
/// sockets) with [`ChatFirehose::stop`] or when dropped.
#[derive(Debug)]
pub struct ChatFirehose {
    counts: Arc<Counts>,
    problems: Arc<Mutex<Vec<String>>>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

/// Names of the posters (cycled, numbered past the list).
const NAMES: [&str; 10] = [
    "Camille", "Hugo", "Léa", "Malik", "Inès", "Théo", "Zoé", "Yanis", "Chloé", "Nadia",
];

fn poster_name(i: usize) -> String {
    match i / NAMES.len() {
        0 => NAMES[i].to_owned(),
        k => format!("{} {}", NAMES[i % NAMES.len()], k + 1),
    }
}

impl ChatFirehose {
    /// Connects `plan.posters` viewers to `chat_url` (`ws://HOST:PORT/chat/ROOM`), waits
    /// (up to 20 s) until each is welcomed, then starts posting, the posters staggered
    /// so the room gets one message every `1 / per_second` s.
    pub async fn start(chat_url: &str, plan: &FirehosePlan) -> Result<Self> {
        let counts = Arc::new(Counts::default());
        let problems = Arc::new(Mutex::new(Vec::new()));
        let (stop, stop_rx) = watch::channel(false);
        let period = plan.period();
        let mut tasks = JoinSet::new();
        let start = tokio::time::Instant::now() + Duration::from_millis(200);
        for i in 0..plan.posters {
            let offset = period.mul_f64(i as f64 / plan.posters.max(1) as f64);
            let poster = Poster {
                url: chat_url.to_owned(),
                name: poster_name(i),
                period,
                long_every: plan.long_every,
                counts: counts.clone(),
                problems: problems.clone(),
            };
            tasks.spawn(poster.run(start + offset, stop_rx.clone()));
        }
        let firehose = Self {
            counts,
            problems,
            stop,
            tasks,
        };
        let joined = wait_until(
            &format!("{} posters to be welcomed in {chat_url}", plan.posters),
            Duration::from_secs(20),
            || async {
                let s = firehose.stats();
                Ok(if s.joined as usize >= plan.posters {
                    Check::Done(())
                } else {
                    Check::NotYet(format!("{s:?}; problems {:?}", firehose.problems()))
                })
            },
        )
        .await;
        joined.map(|()| firehose)
    }

    /// The counts so far.
    pub fn stats(&self) -> FirehoseStats {
        let c = &self.counts;
        FirehoseStats {
            joined: c.joined.load(Relaxed),
            posted: c.posted.load(Relaxed),
            posted_long: c.posted_long.load(Relaxed),
            echoed: c.echoed.load(Relaxed),
            refused: c.refused.load(Relaxed),
            dropped: c.dropped.load(Relaxed),
        }
    }

    /// The first distinct problems (refusals, drops), for messages.
    pub fn problems(&self) -> Vec<String> {
        self.problems
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stops posting and closes every socket.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// One posting viewer.
struct Poster {
    url: String,
    name: String,
    period: Duration,
    long_every: u64,
    counts: Arc<Counts>,
    problems: Arc<Mutex<Vec<String>>>,
}

impl Poster {
    fn note(&self, what: String) {
        let mut p = self.problems.lock().unwrap_or_else(|e| e.into_inner());
        if p.len() < 12 && !p.contains(&what) {
            p.push(what);
        }
    }

    async fn run(self, first_post: tokio::time::Instant, mut stop: watch::Receiver<bool>) {
        let joined = tokio::select! {
            j = join(&self.url, &self.name) => j,
            () = stopped(&mut stop) => return,
        };
        let mut ws = match joined {
            Ok(ws) => ws,
            Err(e) => {
                self.note(format!("{}: {e:#}", self.name));
                return;
            }
        };
        self.counts.joined.fetch_add(1, Relaxed);
        let mut tick = tokio::time::interval_at(first_post, self.period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let prefix = format!("{}-", self.name);
        let mut n = 0_u64;
        loop {
            tokio::select! {
                () = stopped(&mut stop) => break,
                _ = tick.tick() => {
                    n += 1;
                    let long = self.long_every > 0 && n.is_multiple_of(self.long_every);
                    let chat = SendChat {
                        text: firehose_text(&self.name, n, long),
                        client_id: Some(format!("{prefix}{n}")),
                        question: false,
                    };
                    let frame = serde_json::to_string(&ClientMessage::Chat(chat)).unwrap_or_default();
                    if let Err(e) = ws.send(Message::text(frame)).await {
                        self.counts.dropped.fetch_add(1, Relaxed);
                        self.note(format!("{}: send failed: {e}", self.name));
                        return;
                    }
                    self.counts.posted.fetch_add(1, Relaxed);
                    if long {
                        self.counts.posted_long.fetch_add(1, Relaxed);
                    }
                }
                msg = ws.next() => match msg {
                    Some(Ok(Message::Text(t))) => match serde_json::from_str::<ServerMessage>(t.as_str()) {
                        Ok(ServerMessage::Chat(m)) if m.client_id.as_deref().is_some_and(|c| c.starts_with(&prefix)) => {
                            self.counts.echoed.fetch_add(1, Relaxed);
                        }
                        Ok(ServerMessage::Error(e)) => {
                            self.counts.refused.fetch_add(1, Relaxed);
                            self.note(format!("{}: error {:?}: {}", self.name, e.code, e.message));
                        }
                        Ok(ServerMessage::Notice(n)) => {
                            self.counts.refused.fetch_add(1, Relaxed);
                            self.note(format!("{}: notice {:?}", self.name, n.code));
                        }
                        _ => {}
                    },
                    Some(Ok(Message::Close(c))) => {
                        self.counts.dropped.fetch_add(1, Relaxed);
                        self.note(format!("{}: closed by the server: {c:?}", self.name));
                        return;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        self.counts.dropped.fetch_add(1, Relaxed);
                        self.note(format!("{}: socket failed: {e}", self.name));
                        return;
                    }
                    None => {
                        self.counts.dropped.fetch_add(1, Relaxed);
                        self.note(format!("{}: socket ended", self.name));
                        return;
                    }
                },
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
    }
}

/// Resolves once the firehose is told to stop (or dropped).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a chat socket (no `Origin` header: a tool, not a page), says hello with
/// `name`, and reads until the welcome.
async fn join(url: &str, name: &str) -> Result<Ws> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    let hello = Hello {
        protocol_version: PROTOCOL_VERSION,
        viewer_id: None,
        viewer_token: None,
        name: Some(name.to_owned()),
        resume: None,
        auth_token: None,
        backstage: false,
    };
    let frame = serde_json::to_string(&ClientMessage::Hello(hello))?;
    ws.send(Message::text(frame)).await?;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Err(_) => bail!("no welcome within 10 s"),
            Ok(Some(Ok(Message::Text(t)))) => {
                match serde_json::from_str::<ServerMessage>(t.as_str()) {
                    Ok(ServerMessage::Welcome(_)) => return Ok(ws),
                    Ok(ServerMessage::Error(e)) => bail!("refused: {:?}: {}", e.code, e.message),
                    _ => {}
                }
            }
            Ok(Some(Ok(Message::Close(c)))) => bail!("closed before the welcome: {c:?}"),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(None) => bail!("closed before the welcome"),
        }
    }
}

/// Posts one message as a new viewer `name` and waits (up to 10 s) for it to come back
/// as a room event.
pub async fn say_once(chat_url: &str, name: &str, text: &str) -> Result<()> {
    let mut ws = join(chat_url, name).await?;
    let chat = SendChat {
        text: text.to_owned(),
        client_id: Some(format!("{name}-once")),
        question: false,
    };
    ws.send(Message::text(serde_json::to_string(&ClientMessage::Chat(
        chat,
    ))?))
    .await?;
    let echoed = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    match serde_json::from_str::<ServerMessage>(t.as_str()) {
                        Ok(ServerMessage::Chat(m)) if m.text == text => return Ok(()),
                        Ok(ServerMessage::Error(e)) => {
                            bail!("refused: {:?}: {}", e.code, e.message)
                        }
                        _ => {}
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => bail!("closed before the echo"),
            }
        }
    };
    let result = tokio::time::timeout(Duration::from_secs(10), echoed)
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("no echo within 10 s")));
    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
    result.with_context(|| format!("{name} posting {text:?}"))
}

/// Taps `count` hearts as a new viewer `name` (one `hearts` frame) and waits (up to
/// 10 s) until the room's total, as the server sends it back, has counted them.
pub async fn tap_hearts(chat_url: &str, name: &str, count: u32) -> Result<()> {
    let mut ws = join(chat_url, name).await?;
    let taps = ClientMessage::Hearts(SendHearts {
        count,
        colour: None,
    });
    ws.send(Message::text(serde_json::to_string(&taps)?))
        .await?;
    let counted = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    if let Ok(ServerMessage::Hearts(h)) =
                        serde_json::from_str::<ServerMessage>(t.as_str())
                    {
                        if h.counts.values().sum::<u32>() >= count {
                            return Ok(());
                        }
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => bail!("closed before the hearts came back"),
            }
        }
    };
    let result = tokio::time::timeout(Duration::from_secs(10), counted)
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("no hearts frame within 10 s")));
    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
    result.with_context(|| format!("{name} tapping {count} hearts"))
}

/// A head script that counts the WebSocket constructions of the page whose URL has
/// `/chat/` (and the others apart), and keeps what the page writes with
/// `console.warn` and `console.error`, in `window.__e2eSpy`. It must run before the
/// loader.
pub const SOCKET_SPY: &str = r#"<script>
(() => {
  const spy = window.__e2eSpy = { chat: [], other: 0, console: [] };
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(url, protocols) {
      const u = String(url);
      if (u.includes('/chat/')) spy.chat.push({ url: u, at: Math.round(performance.now()) });
      else spy.other += 1;
      if (protocols === undefined) super(url); else super(url, protocols);
    }
  };
  for (const level of ['warn', 'error']) {
    const original = console[level].bind(console);
    console[level] = (...args) => {
      spy.console.push(level + ': ' + args.map((a) => (a && a.message) || String(a)).join(' '));
      original(...args);
    };
  }
})();
</script>
"#;

/// A third-party page in `lang` with [`SOCKET_SPY`] in its head, embedding the stream
/// with the short form: `<script src="{loader}" data-src="{src}">`.
pub fn socket_spy_page(title: &str, lang: &str, loader: &str, src: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"{lang}\">\n<head><meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n{SOCKET_SPY}</head>\n<body>\n<h1>{title}</h1>\n\
         <script async src=\"{loader}\" data-src=\"{src}\"></script>\n\
         <p>A page on an origin the server has not allowed for chat.</p>\n</body>\n</html>\n"
    )
}

/// What [`SOCKET_SPY`] recorded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpyReport {
    /// Chat sockets opened: (URL, ms since the page started).
    pub chat_sockets: Vec<(String, u64)>,
    /// Other sockets opened (the low-latency video push).
    pub other_sockets: u64,
    /// `console.warn` and `console.error` lines, as "warn: text".
    pub console: Vec<String>,
}

impl SpyReport {
    /// Reads the spy of the current page; fails when the page has none.
    pub async fn read(browser: &Browser) -> Result<Self> {
        let v = browser
            .execute("return window.__e2eSpy || null;", vec![])
            .await?;
        if v.is_null() {
            bail!("the page has no socket spy (window.__e2eSpy)");
        }
        Ok(Self {
            chat_sockets: v["chat"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|s| {
                            (
                                s["url"].as_str().unwrap_or("").to_owned(),
                                s["at"].as_u64().unwrap_or(0),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
            other_sockets: v["other"].as_u64().unwrap_or(0),
            console: v["console"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_have_exactly_the_long_length_and_short_ones_are_short() {
        let long = firehose_text("Chloé 2", 123, true);
        assert_eq!(long.chars().count(), LONG_CHARS, "{long}");
        assert!(!long.ends_with(' '));
        assert!(firehose_text("Léa", 1, false).chars().count() < 80);
    }

    #[test]
    fn twenty_a_second_over_ten_posters_is_one_post_each_half_second() {
        let plan = FirehosePlan {
            posters: 10,
            per_second: 20.0,
            long_every: 4,
        };
        assert_eq!(plan.period(), Duration::from_millis(500));
        let args = plan.server_args();
        // Each poster posts 2 a second; the flood limit must allow well above that.
        let burst: u32 = args[1].parse().unwrap();
        let window: u64 = args[3].parse().unwrap();
        assert!(f64::from(burst) * 1000.0 / window as f64 >= 4.0, "{args:?}");
        assert_eq!(args[4..], ["--new-viewers-per-ip", "0"]);
    }

    #[test]
    fn poster_names_are_distinct() {
        let names: Vec<String> = (0..25).map(poster_name).collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        assert_eq!(names[12], "Léa 2");
    }

    #[test]
    fn a_line_of_two_clamped_lines_is_two_line_heights_and_padding() {
        let line = LineBox {
            chars: 200,
            text: String::new(),
            height: 46.0,
            top: 0.0,
            line_height: 18.9,
            padding: 8.0,
            open: false,
            focused: false,
            visible: true,
        };
        assert!((line.height_of(2.0) - 45.8).abs() < 1e-9);
    }

    #[test]
    fn parses_the_layout_and_names_what_covers_what() {
        let v = json!({
            "host": true, "root": true, "rootClass": "lucarne playing controls-shown",
            "controlsShown": true, "controlsOpacity": 1, "controlsPointerEvents": "auto",
            "covered": [
                {"what": "the live badge", "selector": ".badge.live", "found": true,
                 "element": "span.badge.live", "shown": true, "x": 30, "y": 20, "w": 40, "h": 20,
                 "inViewport": true, "hit": "li.line", "ok": false},
                {"what": "the play control", "selector": ".controls .play", "found": true,
                 "element": "button.play", "shown": true, "x": 30, "y": 200, "w": 44, "h": 44,
                 "inViewport": true, "hit": "i.icon.pause-icon", "ok": true},
            ],
            "linesDisplay": "flex", "lines": [], "hearts": 2, "toggle": true,
            "togglePressed": "false", "composerShown": true, "composerPresent": true,
            "notes": [{"class": "chat-note refused", "role": "alert", "text": "x", "shown": true}],
            "viewers": "—", "video": [0, 0, 390, 219], "coarse": true,
            "buttons": [{"element": "button.play", "height": 44}], "viewport": [390, 844],
        });
        let l = PhoneLayout::from_json(&v);
        assert!(l.controls_visible());
        assert!(!l.chat_hidden());
        let bad = l.uncovered_failures();
        assert_eq!(bad.len(), 1);
        assert!(
            bad[0].describe().contains("li.line at its centre"),
            "{}",
            bad[0].describe()
        );
        assert!(l.note("refused").is_some());
        assert_eq!(l.viewport, (390, 844));
        assert_eq!(l.lines_extent(), (0.0, 0.0));
    }

    #[test]
    fn lines_extent_counts_only_what_the_list_does_not_clip() {
        let line = |top: f64, visible: bool| LineBox {
            chars: 10,
            text: String::new(),
            height: 20.0,
            top,
            line_height: 19.0,
            padding: 8.0,
            open: false,
            focused: false,
            visible,
        };
        let layout = PhoneLayout {
            video: Some([0.0, 100.0, 400.0, 200.0]),
            lines_box: Some([8.0, 180.0, 280.0, 60.0]),
            // One clipped above the list, one straddling its top, one faded, one inside.
            lines: vec![
                line(120.0, true),
                line(170.0, true),
                line(195.0, false),
                line(220.0, true),
            ],
            ..PhoneLayout::default()
        };
        // Seen from y = 180 (the list's top, a line straddles it) to 240 (the last
        // line's bottom); the video ends at 300.
        let (span, reach) = layout.lines_extent();
        assert!((span - 0.3).abs() < 1e-9, "{span}");
        assert!((reach - 0.6).abs() < 1e-9, "{reach}");
    }
}
