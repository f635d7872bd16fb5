//! The widget's view: the video, the state overlay, the LIVE / back-to-live badge and
//! the controls. It only renders and forwards input as [`Control`]s; the player
//! decides. Keyboard: Space/K play-pause, M mute, F full screen, L back to live,
//! C hide/show the chat, up/down volume, left/right seek in a replay. Every control is
//! a real `<button>` with an ARIA label; a stream of several renditions adds a quality
//! menu, a `<select>` (Auto and each height, reached by Tab like the buttons).
//!
//! Phones first: while the picture plays, the controls fade [`CONTROLS_MS`] after the
//! last tap, pointer move or key, and the next tap shows them again (a tap on the
//! picture also sends a heart: the chat layer's tap zone). The overlaid chat can be
//! hidden (remembered for the page); hearts float either way.
//!
//! Class lists that change are built as plain strings and set through the `className`
//! property (`~className`), never with `classes!`: yew's `Classes` is an indexed hash
//! set whose code is about 3 KB of the brotli download.

#[cfg(feature = "chat")]
mod chat;

use crate::i18n::{t, Lang, Text};
use crate::player::abr::Choice;
use crate::player::engine::PlayerHandle;
use crate::player::unplayable::Reason;
use crate::player::{Control, Sources, Status};
use std::rc::Rc;
use wasm_bindgen::JsCast;
use web_sys::{HtmlElement, HtmlInputElement, HtmlVideoElement};
use yew::prelude::*;

/// Look and language, decided by the embed code.
#[derive(Clone, PartialEq)]
pub(crate) struct Look {
    pub(crate) lang: Lang,
    pub(crate) light: bool,
    /// Inline style setting the theme's custom properties (already validated).
    pub(crate) style: String,
    pub(crate) poster: Option<String>,
    /// Chat only: no video, no player.
    pub(crate) chat_only: bool,
    /// The broadcast's overlay (chat only, transparent, read-only).
    pub(crate) overlay: bool,
}

/// Properties of the root component.
#[derive(Properties, Clone, PartialEq)]
pub(crate) struct AppProps {
    /// What to play.
    pub(crate) sources: Sources,
    /// Start muted.
    pub(crate) muted: bool,
    pub(crate) look: Look,
    /// Chat WebSocket URL and moderator token; no chat layer without a URL.
    pub(crate) chat: Option<String>,
    pub(crate) mod_token: Option<String>,
    /// The loader's early low-latency socket, if it opened one.
    pub(crate) early_socket: Option<JsValue>,
    /// The light-DOM element hosting the shadow root: carries `data-status`, receives
    /// the `lucarne:status` events.
    pub(crate) host: HtmlElement,
}

fn status_text(status: &Status) -> Option<Text> {
    match status {
        Status::Connecting => Some(Text::Connecting),
        Status::Buffering => Some(Text::Buffering),
        Status::Reconnecting => Some(Text::Reconnecting),
        Status::Offline => Some(Text::Offline),
        Status::Ended => Some(Text::Ended),
        Status::Error { .. } => Some(Text::CannotPlay),
        Status::Playing | Status::BehindLive | Status::Paused | Status::Replay => None,
    }
}

/// Why the stream cannot play, in the viewer's language.
fn reason_text(lang: Lang, reason: &Reason) -> String {
    let (key, name) = match reason {
        Reason::Codec(c) => (Text::UnsupportedCodec, c.as_str()),
        Reason::Encryption(m) => (Text::UnsupportedEncryption, m.as_str()),
        Reason::NotHls => (Text::NotHls, ""),
        Reason::Cors => (Text::CorsRefused, ""),
        Reason::Private => (Text::Private, ""),
    };
    // `%` marks where the name goes; a char split and `push_str`, not `replace` or
    // `concat` (std's searcher and join code).
    let text = t(lang, key);
    let (before, after) = text.split_once('%').unwrap_or((text, ""));
    let mut s = String::from(before);
    s.push_str(name);
    s.push_str(after);
    s
}

/// Tells the host page: `data-status` for CSS and tests, a `lucarne:status` event for
/// analytics (`event.detail.status`, and `detail.height`: the picture's height in
/// pixels, 0 before the first frame, also the `<video>`'s `data-height`), sent again
/// when the height changes (an ABR switch).
fn announce(host: &HtmlElement, video: &HtmlVideoElement, s: &Status) {
    let _ = host.set_attribute("data-status", s.name());
    let height = video.video_height();
    if height > 0 {
        let _ = video.set_attribute("data-height", &height.to_string());
    }
    let detail = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&detail, &"status".into(), &s.name().into());
    let _ = js_sys::Reflect::set(&detail, &"height".into(), &height.into());
    if let Status::Error { message, fatal, .. } = s {
        let _ = js_sys::Reflect::set(&detail, &"message".into(), &message.into());
        let _ = js_sys::Reflect::set(&detail, &"fatal".into(), &(*fatal).into());
    }
    let init = web_sys::CustomEventInit::new();
    init.set_detail(&detail);
    init.set_bubbles(true);
    init.set_composed(true);
    if let Ok(e) = web_sys::CustomEvent::new_with_event_init_dict("lucarne:status", &init) {
        let _ = host.dispatch_event(&e);
    }
}

/// The quality menu's `<option>`s as markup: Auto, then each height of `heights` once,
/// tallest first (0, a rendition without `RESOLUTION`, is not offered), `chosen` (0:
/// Auto) selected; empty when there is no choice to make. Markup (our words and
/// integers only) because one raw node is less code than a component per option.
fn menu_options(heights: &[u32], chosen: u32, auto: &str) -> String {
    let mut offered: Vec<u32> = Vec::new();
    for &h in heights {
        let at = offered
            .iter()
            .position(|&o| o <= h)
            .unwrap_or(offered.len());
        if h > 0 && offered.get(at) != Some(&h) {
            offered.insert(at, h);
        }
    }
    let mut options = String::new();
    if offered.len() < 2 {
        return options;
    }
    for h in std::iter::once(0).chain(offered) {
        let value = h.to_string();
        options.push_str("<option value=");
        options.push_str(&value);
        if h == chosen {
            options.push_str(" selected");
        }
        options.push('>');
        if h == 0 {
            options.push_str(auto);
        } else {
            options.push_str(&value);
            options.push('p');
        }
        options.push_str("</option>");
    }
    options
}

/// How long the controls stay after the last tap, pointer move or key.
const CONTROLS_MS: u32 = 3_000;

/// Where the viewer's choice to hide the overlaid chat is kept: the embedding site's
/// storage, so it holds on this page and the site's other pages.
const CHAT_HIDDEN_KEY: &str = "lucarne:chat-hidden";

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

fn chat_hidden_saved() -> bool {
    storage()
        .and_then(|s| s.get_item(CHAT_HIDDEN_KEY).ok().flatten())
        .is_some()
}

fn save_chat_hidden(hidden: bool) {
    if let Some(s) = storage() {
        let _ = if hidden {
            s.set_item(CHAT_HIDDEN_KEY, "1")
        } else {
            s.remove_item(CHAT_HIDDEN_KEY)
        };
    }
}

fn call(target: &JsValue, method: &str) {
    if let Ok(f) = js_sys::Reflect::get(target, &method.into()) {
        if let Some(f) = f.dyn_ref::<js_sys::Function>() {
            let _ = f.call0(target);
        }
    }
}

use wasm_bindgen::JsValue;

/// The chat and hearts layer, when the widget has a chat and was built with it.
#[cfg(feature = "chat")]
fn chat_layer(props: &AppProps) -> Html {
    match props.chat.clone() {
        Some(url) => html! {
            <chat::Chat {url} mod_token={props.mod_token.clone()} lang={props.look.lang}
                host={props.host.clone()} has_video={!props.look.chat_only}
                read_only={props.look.overlay} />
        },
        None => Html::default(),
    }
}

#[cfg(not(feature = "chat"))]
fn chat_layer(_: &AppProps) -> Html {
    Html::default()
}

/// The widget.
#[function_component(App)]
pub(crate) fn app(props: &AppProps) -> Html {
    let video = use_node_ref();
    let root = use_node_ref();
    let status = use_state(|| Status::Connecting);
    let muted = use_state(|| props.muted);
    // Percent, an integer: formatting floats would pull 7 KB of code into the download.
    let volume = use_state(|| 100u32);
    // Replay position and length, whole seconds (re-rendered once a second at most).
    let replaying = use_state(|| false);
    let position = use_state_eq(|| 0u32);
    let duration = use_state_eq(|| 0u32);
    let player = use_mut_ref(|| None::<PlayerHandle>);
    let lang = props.look.lang;
    let chat_hidden = use_state(chat_hidden_saved);
    let controls_shown = use_state_eq(|| true);
    let controls_timer = use_mut_ref(|| None::<gloo_timers::callback::Timeout>);
    // The quality menu's options, as markup (empty: no menu).
    let menu = use_state_eq(String::new);

    {
        let (video, status, player, host, menu) = (
            video.clone(),
            status.clone(),
            player.clone(),
            props.host.clone(),
            menu.clone(),
        );
        let (sources, start_muted, early) = (
            props.sources.clone(),
            props.muted,
            props.early_socket.clone(),
        );
        let (chat_only, props_lang) = (props.look.chat_only, props.look.lang);
        use_effect_with(sources.clone(), move |_| {
            if let Some(v) = video.cast::<HtmlVideoElement>().filter(|_| !chat_only) {
                v.set_muted(start_muted);
                let shown = v.clone();
                let on_status: Rc<dyn Fn(Status)> = Rc::new(move |s: Status| {
                    announce(&host, &shown, &s);
                    status.set(s);
                });
                let auto = t(props_lang, Text::Auto);
                let on_heights: Rc<dyn Fn(Vec<u32>, u32)> =
                    Rc::new(move |h, chosen| menu.set(menu_options(&h, chosen, auto)));
                *player.borrow_mut() =
                    Some(PlayerHandle::new(v, sources, on_status, on_heights, early));
            }
            move || {
                player.borrow_mut().take();
            }
        });
    }

    let send = {
        let player = player.clone();
        Rc::new(move |c: Control| {
            if let Some(p) = player.borrow().as_ref() {
                p.send(c);
            }
        })
    };
    let set_muted = {
        let (muted, send) = (muted.clone(), send.clone());
        Rc::new(move |m: bool| {
            send(Control::Mute(m));
            muted.set(m);
        })
    };
    let paused = matches!(*status, Status::Paused);
    let toggle_play = {
        let send = send.clone();
        Rc::new(move || {
            send(if paused {
                Control::Play
            } else {
                Control::Pause
            })
        })
    };
    let fullscreen = {
        let root = root.clone();
        Rc::new(move || {
            let Some(doc) = web_sys::window().and_then(|w| w.document()) else {
                return;
            };
            if doc.fullscreen_element().is_some() {
                doc.exit_fullscreen();
            } else if let Some(el) = root.cast::<web_sys::Element>() {
                let _ = el.request_fullscreen();
            }
        })
    };
    let pip = {
        let video = video.clone();
        Rc::new(move || {
            if let Some(v) = video.cast::<HtmlVideoElement>() {
                call(&v, "requestPictureInPicture");
            }
        })
    };
    let go_live = {
        let send = send.clone();
        Rc::new(move || send(Control::GoLive))
    };
    let watch_replay = {
        let (send, replaying) = (send.clone(), replaying.clone());
        Callback::from(move |_: MouseEvent| {
            replaying.set(true);
            send(Control::Replay);
        })
    };
    // Seeks are the player's to make (it tells its stall watch and the replay loader).
    let seek_by = {
        let (video, send) = (video.clone(), send.clone());
        Rc::new(move |delta: f64| {
            if let Some(v) = video.cast::<HtmlVideoElement>() {
                send(Control::Seek((v.current_time() + delta).max(0.0)));
            }
        })
    };
    let on_seek = {
        let send = send.clone();
        Callback::from(move |e: InputEvent| {
            if let Some(input) = e
                .target()
                .and_then(|t| t.dyn_into::<HtmlInputElement>().ok())
            {
                send(Control::Seek(input.value_as_number().max(0.0)));
            }
        })
    };
    // The player may mute on its own (autoplay refused with sound): show what plays.
    let on_volume_change = {
        let muted = muted.clone();
        Callback::from(move |e: Event| {
            if let Some(v) = e
                .target()
                .and_then(|t| t.dyn_into::<HtmlVideoElement>().ok())
            {
                if v.muted() != *muted {
                    muted.set(v.muted());
                }
            }
        })
    };
    let on_time = {
        let (position, duration) = (position.clone(), duration.clone());
        Callback::from(move |e: Event| {
            if let Some(v) = e
                .target()
                .and_then(|t| t.dyn_into::<HtmlVideoElement>().ok())
            {
                position.set(v.current_time().max(0.0) as u32);
                let d = v.duration();
                duration.set(if d.is_finite() { d.max(0.0) as u32 } else { 0 });
            }
        })
    };
    // An ABR switch shows as a new picture size (`resize` fires on a change only).
    let on_resize = {
        let (host, status) = (props.host.clone(), status.clone());
        Callback::from(move |e: Event| {
            if let Some(v) = e
                .target()
                .and_then(|t| t.dyn_into::<HtmlVideoElement>().ok())
            {
                announce(&host, &v, &status);
            }
        })
    };
    let change_volume = {
        let (volume, send, set_muted) = (volume.clone(), send.clone(), set_muted.clone());
        Rc::new(move |v: u32| {
            let v = v.min(100);
            send(Control::Volume(f64::from(v) / 100.0));
            volume.set(v);
            set_muted(v == 0);
        })
    };

    // Shows the controls and restarts their fade-out.
    let show_controls = {
        let (shown, timer) = (controls_shown.clone(), controls_timer.clone());
        Rc::new(move || {
            shown.set(true);
            let shown = shown.clone();
            *timer.borrow_mut() = Some(gloo_timers::callback::Timeout::new(
                CONTROLS_MS,
                move || shown.set(false),
            ));
        })
    };
    let on_pointer = {
        let show = show_controls.clone();
        Callback::from(move |_: PointerEvent| show())
    };
    let has_chat_overlay = props.chat.is_some() && !props.look.chat_only;
    let toggle_chat = {
        let hidden = chat_hidden.clone();
        Rc::new(move || {
            let h = !*hidden;
            save_chat_hidden(h);
            hidden.set(h);
        })
    };

    let onkeydown = {
        let (show_controls, toggle_chat) = (show_controls.clone(), toggle_chat.clone());
        let (seek_by, in_replay) = (seek_by.clone(), *replaying);
        let (toggle_play, set_muted, muted, fullscreen, go_live, change_volume, volume) = (
            toggle_play.clone(),
            set_muted.clone(),
            *muted,
            fullscreen.clone(),
            go_live.clone(),
            change_volume.clone(),
            *volume,
        );
        Callback::from(move |e: KeyboardEvent| {
            let tag = e
                .target()
                .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
                .map(|el| el.tag_name())
                .unwrap_or_default();
            // Typing in the chat box is typing, never a shortcut (regression: "k", "m",
            // "f" and "l" were swallowed and toggled the player); arrows in the quality
            // menu move in the menu.
            if matches!(tag.as_str(), "INPUT" | "TEXTAREA" | "SELECT") {
                return;
            }
            show_controls();
            // Buttons handle Space themselves.
            let in_control = tag == "BUTTON";
            let handled = match e.key().as_str() {
                "c" | "C" if has_chat_overlay => {
                    toggle_chat();
                    true
                }
                " " | "k" | "K" if !in_control || e.key() != " " => {
                    toggle_play();
                    true
                }
                "m" | "M" => {
                    set_muted(!muted);
                    true
                }
                "f" | "F" => {
                    fullscreen();
                    true
                }
                "l" | "L" => {
                    go_live();
                    true
                }
                "ArrowUp" if !in_control => {
                    change_volume(volume + 10);
                    true
                }
                "ArrowDown" if !in_control => {
                    change_volume(volume.saturating_sub(10));
                    true
                }
                "ArrowLeft" if in_replay && !in_control => {
                    seek_by(-5.0);
                    true
                }
                "ArrowRight" if in_replay && !in_control => {
                    seek_by(5.0);
                    true
                }
                _ => false,
            };
            if handled {
                e.prevent_default();
            }
        })
    };

    let click = |f: Rc<dyn Fn()>| Callback::from(move |_: MouseEvent| f());
    let on_volume = {
        let change_volume = change_volume.clone();
        Callback::from(move |e: InputEvent| {
            if let Some(input) = e
                .target()
                .and_then(|t| t.dyn_into::<HtmlInputElement>().ok())
            {
                change_volume(input.value_as_number().clamp(0.0, 100.0) as u32);
            }
        })
    };
    // The select keeps the viewer's pick itself; the player remembers it across rebuilds.
    let on_quality = {
        let send = send.clone();
        Callback::from(move |e: Event| {
            let value = e
                .target()
                .and_then(|t| js_sys::Reflect::get(&t, &"value".into()).ok())
                .and_then(|v| v.as_string());
            let h = value
                .and_then(|v| crate::player::playlist::integer(&v))
                .unwrap_or(0) as u32;
            send(Control::Quality(if h == 0 {
                Choice::Auto
            } else {
                Choice::Height(h)
            }));
        })
    };
    let unmute = {
        let set_muted = set_muted.clone();
        Callback::from(move |_: MouseEvent| set_muted(false))
    };
    let toggle_mute = {
        let (set_muted, m) = (set_muted.clone(), *muted);
        Callback::from(move |_: MouseEvent| set_muted(!m))
    };
    let retry = Callback::from(|_: MouseEvent| {
        if let Some(w) = web_sys::window() {
            let _ = w.location().reload();
        }
    });

    let fatal = matches!(*status, Status::Error { fatal: true, .. });
    let behind = matches!(*status, Status::BehindLive);
    let error_detail = match &*status {
        Status::Error {
            reason: Some(r), ..
        } => Some(reason_text(lang, r)),
        Status::Error { message, .. } => Some(message.clone()),
        _ => None,
    };
    let live = matches!(*status, Status::Playing);
    let can_replay = matches!(*status, Status::Ended) && props.sources.hls.is_some();
    let label = |k: Text| t(lang, k);
    let theme = if props.look.light { "light" } else { "dark" };
    // push_str, not `[..].concat()`: std's join code is about 1 KB of wasm.
    let mut class = String::from("lucarne ");
    class.push_str(status.name());
    class.push(' ');
    class.push_str(theme);
    if props.chat.is_some() {
        class.push_str(" with-chat");
    }
    if props.look.chat_only {
        class.push_str(" layout-chat");
    }
    if props.look.overlay {
        class.push_str(" layout-overlay");
    }
    if *chat_hidden {
        class.push_str(" chat-hidden");
    }
    // While the picture moves, the controls fade; otherwise they stay.
    let moving = matches!(
        *status,
        Status::Playing | Status::BehindLive | Status::Replay
    );
    if *controls_shown || !moving {
        class.push_str(" controls-shown");
    }

    html! {
        <div ref={root} ~className={class} style={props.look.style.clone()}
            tabindex="0" role="region" aria-label={label(Text::VideoLabel)} {onkeydown}
            onpointerdown={on_pointer.clone()} onpointermove={on_pointer}>
            <div class="stage">
            <video ref={video} playsinline=true muted={props.muted} poster={props.look.poster.clone()}
                aria-label={label(Text::VideoLabel)} ontimeupdate={on_time.clone()} ondurationchange={on_time}
                onvolumechange={on_volume_change} onresize={on_resize}></video>
            if live {
                <span class="badge live">{label(Text::Live)}</span>
            }
            if *replaying && !can_replay {
                <span class="badge replay">{label(Text::Replay)}</span>
            }
            if behind {
                <button class="badge golive" onclick={click(go_live.clone())}>{label(Text::BackToLive)}</button>
            }
            if *muted && !fatal {
                <button class="unmute-badge" onclick={unmute} aria-label={label(Text::Unmute)}>
                    <i class="icon muted-icon"></i>{label(Text::TapToUnmute)}
                </button>
            }
            if let Some(key) = status_text(&status) {
                <div class="overlay" role="status" aria-live="polite">
                    if matches!(*status, Status::Connecting | Status::Buffering | Status::Reconnecting) {
                        <span class="spinner" aria-hidden="true"></span>
                    }
                    <span class="message">{label(key)}</span>
                    if let Some(detail) = error_detail { <span class="detail">{detail}</span> }
                    if fatal { <button class="retry" onclick={retry}>{label(Text::Retry)}</button> }
                    if can_replay { <button class="retry watch-replay" onclick={watch_replay}>{label(Text::WatchReplay)}</button> }
                </div>
            }
            { chat_layer(props) }
            <div class="controls">
                <button class="play" onclick={click(toggle_play.clone())}
                    aria-label={label(if paused { Text::Play } else { Text::Pause })}>
                    <i ~className={if paused { "icon play-icon" } else { "icon pause-icon" }}></i>
                </button>
                <button class="mute" onclick={toggle_mute} aria-pressed={(*muted).to_string()}
                    aria-label={label(if *muted { Text::Unmute } else { Text::Mute })}>
                    <i ~className={if *muted { "icon muted-icon" } else { "icon sound-icon" }}></i>
                </button>
                <input class="volume" type="range" min="0" max="100" step="5"
                    value={if *muted { "0".to_string() } else { volume.to_string() }}
                    oninput={on_volume} aria-label={label(Text::Volume)} />
                if *replaying {
                    <input class="seek" type="range" min="0" max={duration.to_string()} step="1"
                        value={position.to_string()} oninput={on_seek} aria-label={label(Text::Seek)} />
                } else {
                    <span class="spacer"></span>
                }
                if !menu.is_empty() {
                    <select class="quality" onchange={on_quality} aria-label={label(Text::Quality)}>
                        { Html::from_html_unchecked((*menu).clone().into()) }
                    </select>
                }
                if has_chat_overlay {
                    <button class="chat-toggle" onclick={click(toggle_chat)} aria-pressed={(*chat_hidden).to_string()}
                        aria-label={label(if *chat_hidden { Text::ShowChat } else { Text::HideChat })}>
                        <i class="icon chat-icon"></i>
                    </button>
                }
                <button class="pip" onclick={click(pip)} aria-label={label(Text::PictureInPicture)}><i class="icon pip-icon"></i></button>
                <button class="fullscreen" onclick={click(fullscreen)} aria-label={label(Text::Fullscreen)}><i class="icon fs-icon"></i></button>
            </div>
            </div>
        </div>
    }
}
