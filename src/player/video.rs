//! The `<video>` glue: the element's and the page's listeners (turned into [`Event`]s),
//! `play()` and what its refusal means, the muted state, and moving the playhead. It
//! decides nothing about when to do these: the engine and the playback controller do.
//!
//! Muted has one owner, this type: the viewer's choice (muted at start, as autoplay
//! needs). The browser's own changes are undone: WebKitGTK's media pipeline reports
//! itself unmuted when it starts, and WebKit then pauses what has become an unmuted
//! autoplay.

use super::events::{Event, Tx};
use gloo_events::EventListener;
use wasm_bindgen::JsCast;
use web_sys::HtmlVideoElement;

/// The video element, with its listeners (removed on drop).
pub(super) struct Video {
    pub(super) el: HtmlVideoElement,
    /// Muted as the viewer chose.
    muted: bool,
    tx: Tx,
    _listeners: Vec<EventListener>,
}

impl Video {
    /// Listens to `el` and the page; muted as the embed asked (the view sets it before
    /// the player starts).
    pub(super) fn new(el: HtmlVideoElement, tx: Tx) -> Video {
        let mut listeners = Vec::new();
        let on = |target: &web_sys::EventTarget, name: &'static str, event: fn() -> Event| {
            let t = tx.clone();
            EventListener::new(target, name, move |_| {
                let _ = t.unbounded_send(event());
            })
        };
        if let Some(window) = web_sys::window() {
            if let Some(doc) = window.document() {
                let (t, d) = (tx.clone(), doc.clone());
                listeners.push(EventListener::new(&doc, "visibilitychange", move |_| {
                    if d.visibility_state() == web_sys::VisibilityState::Visible {
                        let _ = t.unbounded_send(Event::Visible);
                    }
                }));
            }
            listeners.push(on(&window, "pagehide", || Event::PageHide));
            let t = tx.clone();
            listeners.push(EventListener::new(&window, "pageshow", move |e| {
                let persisted =
                    js_sys::Reflect::get(e, &"persisted".into()).is_ok_and(|p| p.is_truthy());
                if persisted {
                    let _ = t.unbounded_send(Event::PageShow);
                }
            }));
        }
        listeners.push(on(&el, "error", || Event::MediaError));
        listeners.push(on(&el, "volumechange", || Event::VolumeChanged));
        let muted = el.muted();
        el.set_muted(muted);
        Video {
            el,
            muted,
            tx,
            _listeners: listeners,
        }
    }

    /// Tells the engine.
    pub(super) fn send(&self, event: Event) {
        let _ = self.tx.unbounded_send(event);
    }

    /// Plays; a refusal by the autoplay policy comes back as [`Event::PlayRefused`].
    pub(super) fn play(&self) {
        let Ok(promise) = self.el.play() else {
            return;
        };
        let tx = self.tx.clone();
        wasm_bindgen_futures::spawn_local(async move {
            if let Err(e) = wasm_bindgen_futures::JsFuture::from(promise).await {
                // Only the autoplay policy's refusal needs the viewer. A play() cut short
                // by a pause, seek or load (AbortError; WebKitGTK pauses internally at
                // every rate change) is retried by the next tick.
                let refused = e
                    .dyn_ref::<web_sys::DomException>()
                    .is_none_or(|d| d.name() == "NotAllowedError");
                if refused {
                    let _ = tx.unbounded_send(Event::PlayRefused);
                }
            }
        });
    }

    /// Hands an HLS URL to the browser if it plays HLS itself (older iOS Safari, no
    /// MediaSource), and plays it; false if it cannot.
    pub(super) fn play_natively(&self, url: Option<&str>) -> bool {
        let plays_hls = !self
            .el
            .can_play_type("application/vnd.apple.mpegurl")
            .is_empty();
        let Some(url) = url.filter(|_| plays_hls) else {
            return false;
        };
        let _ = self.el.set_attribute("data-backend", "native-hls");
        self.el.set_src(url);
        self.play();
        true
    }

    /// The viewer muted or unmuted.
    pub(super) fn set_muted(&mut self, muted: bool) {
        self.muted = muted;
        self.el.set_muted(muted);
    }

    /// The element's muted state changed: undo what the browser changed by itself.
    pub(super) fn volume_changed(&self) {
        if self.el.muted() != self.muted {
            self.el.set_muted(self.muted);
        }
    }

    /// `play()` was refused. Refused with sound (the embed asked to start unmuted and
    /// the autoplay policy said no, or the browser unmuted it by itself): play muted,
    /// the viewer gets the "tap to unmute" badge. Returns true when only the viewer can
    /// start playback (show the play button).
    pub(super) fn play_refused(&mut self) -> bool {
        if !self.el.paused() {
            return false;
        }
        if !self.el.muted() {
            self.set_muted(true);
            self.play();
            return false;
        }
        true
    }
}

impl Drop for Video {
    fn drop(&mut self) {
        let _ = self.el.pause();
        // Native HLS has no Mse to detach the source.
        let _ = self.el.remove_attribute("src");
    }
}

/// A warning in the console, where a site's developer looks.
pub(super) fn log(msg: &str) {
    web_sys::console::warn_1(&format!("lucarne: {msg}").into());
}
