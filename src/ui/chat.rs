//! The chat and hearts layer over the video: recent messages fading out over its lower
//! part (a scrollable panel beside it when the widget is wide, by CSS container query),
//! the send box with a name prompt, the hearts button, taps on the video that send a
//! heart, floating hearts and the viewer count. Messages are text nodes, never HTML,
//! clamped to two lines on the video until tapped. What depends on the chat's state
//! (count, notes, send box) comes from `chat::shown`, decided there.

use crate::chat::announce::Announced;
use crate::chat::shown::{shown, Note};
use crate::chat::socket::{ChatConnection, OnHearts};
use crate::chat::state::ChatState;
use crate::hearts::Sky;
use crate::i18n::{t, Lang, Text};
use gloo_events::EventListener;
use gloo_timers::callback::Interval;
use lucarne_protocol::Role;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{HtmlElement, HtmlInputElement};
use yew::prelude::*;

/// Properties of the chat layer.
#[derive(Properties, Clone, PartialEq)]
pub(crate) struct ChatProps {
    /// `ws(s)://host/chat/room`.
    pub(crate) url: String,
    /// Moderator or broadcaster token.
    pub(crate) mod_token: Option<String>,
    pub(crate) lang: Lang,
    /// The host element, for `lucarne:chat` / `lucarne:heart` events.
    pub(crate) host: HtmlElement,
    /// The widget also shows the video (not the chat-only layout).
    pub(crate) has_video: bool,
    /// The broadcast's overlay: shows, takes no input (no send box, no taps).
    #[prop_or_default]
    pub(crate) read_only: bool,
}

/// Seconds a message stays on the video in the overlay layout.
const OVERLAY_MS: f64 = 12_000.0;

/// Keeps `input` above the on-screen keyboard while it has focus: when the visual
/// viewport shrinks (the keyboard opens) over the field, scrolls it back into view.
/// Dropping the listener stops it.
fn follow_keyboard(input: HtmlInputElement) -> Option<EventListener> {
    let viewport = web_sys::window()?.visual_viewport()?;
    let seen = viewport.clone();
    Some(EventListener::new(&viewport, "resize", move |_| {
        if input.get_bounding_client_rect().bottom() > seen.offset_top() + seen.height() {
            input.scroll_into_view_with_bool(false);
        }
    }))
}

fn reduced_motion() -> bool {
    web_sys::window()
        .and_then(|w| {
            w.match_media("(prefers-reduced-motion: reduce)")
                .ok()
                .flatten()
        })
        .is_some_and(|m| m.matches())
}

fn emit(host: &HtmlElement, name: &str, detail: &[(&str, JsValue)]) {
    let o = js_sys::Object::new();
    for (k, v) in detail {
        let _ = js_sys::Reflect::set(&o, &(*k).into(), v);
    }
    let init = web_sys::CustomEventInit::new();
    init.set_detail(&o);
    init.set_bubbles(true);
    init.set_composed(true);
    if let Ok(e) = web_sys::CustomEvent::new_with_event_init_dict(name, &init) {
        let _ = host.dispatch_event(&e);
    }
}

/// The chat and hearts layer.
#[function_component(Chat)]
pub(crate) fn chat(props: &ChatProps) -> Html {
    let state = use_state(ChatState::new);
    let sky = use_mut_ref(|| Sky::new(js_sys::Date::now() as u64, reduced_motion()));
    let frame = use_state(|| 0u32); // bumps to redraw the sky
    let conn = use_mut_ref(|| None::<ChatConnection>);
    let animating = use_mut_ref(|| None::<Interval>);
    let draft = use_state(String::new);
    // The next message goes as a question.
    let ask = use_state(|| false);
    let keyboard = use_mut_ref(|| None::<EventListener>);
    let announced = use_mut_ref(Announced::new);

    // Floats hearts and keeps the sky animating while it is not empty.
    let float: OnHearts = {
        let (sky, frame, animating) = (sky.clone(), frame.clone(), animating.clone());
        Rc::new(move |colour: &str, n: u32| {
            sky.borrow_mut().spawn(colour, n);
            if animating.borrow().is_some() {
                return;
            }
            let (sky, frame, stop) = (sky.clone(), frame.clone(), animating.clone());
            let last = Rc::new(RefCell::new(js_sys::Date::now()));
            *animating.borrow_mut() = Some(Interval::new(33, move || {
                let now = js_sys::Date::now();
                let dt = (now - *last.borrow()) / 1000.0;
                *last.borrow_mut() = now;
                let mut s = sky.borrow_mut();
                s.step(dt);
                let empty = s.is_empty();
                drop(s);
                frame.set(now as u32);
                if empty {
                    // Dropping the Interval from inside its own callback is fine in gloo.
                    stop.borrow_mut().take();
                }
            }));
        })
    };

    {
        let (state, conn, float, host, announced) = (
            state.clone(),
            conn.clone(),
            float.clone(),
            props.host.clone(),
            announced.clone(),
        );
        let (url, token, backstage) = (props.url.clone(), props.mod_token.clone(), props.read_only);
        use_effect_with(url.clone(), move |_| {
            let on_change: Rc<dyn Fn(&ChatState)> = Rc::new(move |s: &ChatState| {
                // Announce new confirmed messages to the page (analytics).
                for m in announced.borrow_mut().fresh(s) {
                    emit(
                        &host,
                        "lucarne:chat",
                        &[
                            ("name", m.name.as_str().into()),
                            ("text", m.text.as_str().into()),
                        ],
                    );
                }
                state.set(s.clone());
            });
            let on_hearts = float.clone();
            *conn.borrow_mut() = Some(ChatConnection::open(
                url, token, backstage, on_change, on_hearts,
            ));
            move || {
                conn.borrow_mut().take();
            }
        });
    }

    let lang = props.lang;
    let label = |k: Text| t(lang, k);
    let heart = {
        let (conn, float, state, host) = (
            conn.clone(),
            float.clone(),
            state.clone(),
            props.host.clone(),
        );
        Callback::from(move |_: MouseEvent| {
            if let Some(c) = conn.borrow().as_ref() {
                c.tap_heart();
            }
            let colour = if state.colour.is_empty() {
                "#ff2d55".to_owned()
            } else {
                state.colour.clone()
            };
            float(&colour, 1);
            emit(
                &host,
                "lucarne:heart",
                &[("colour", colour.as_str().into())],
            );
        })
    };
    let needs_name = state.name.is_none();
    let submit = {
        let (conn, draft, state, ask) = (conn.clone(), draft.clone(), state.clone(), ask.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let text = draft.trim().to_owned();
            if text.is_empty() {
                return;
            }
            if let Some(c) = conn.borrow().as_ref() {
                if state.name.is_none() {
                    c.set_name(&text);
                } else {
                    c.send_chat(&text, *ask);
                    ask.set(false);
                }
            }
            draft.set(String::new());
        })
    };
    let oninput = {
        let draft = draft.clone();
        Callback::from(move |e: InputEvent| {
            if let Some(i) = e
                .target()
                .and_then(|t| t.dyn_into::<HtmlInputElement>().ok())
            {
                draft.set(i.value());
            }
        })
    };
    // While typing, the send box follows the on-screen keyboard.
    let on_focus = {
        let keyboard = keyboard.clone();
        Callback::from(move |e: FocusEvent| {
            if let Some(i) = e
                .target()
                .and_then(|t| t.dyn_into::<HtmlInputElement>().ok())
            {
                *keyboard.borrow_mut() = follow_keyboard(i);
            }
        })
    };
    let on_blur = {
        let keyboard = keyboard.clone();
        Callback::from(move |_: FocusEvent| {
            keyboard.borrow_mut().take();
        })
    };
    let staff = !matches!(state.role, Role::Viewer) && props.mod_token.is_some();
    let moderate = |action: fn(&ChatConnection, &str), value: String| {
        let conn = conn.clone();
        Callback::from(move |_: MouseEvent| {
            if let Some(c) = conn.borrow().as_ref() {
                action(c, &value);
            }
        })
    };

    // A tap on a clamped line opens it (a tap again closes it). Set on the element
    // itself, not through state: one listener for every line, and the view re-sets a
    // line's class only when its own class changes (it fades out: closing it is fine).
    // `:focus` did the same in Chromium and Firefox, but WebKitGTK never matches it.
    let open_line = Callback::from(|e: MouseEvent| {
        let line = e
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .and_then(|t| t.closest("li.line").ok().flatten());
        if let Some(line) = line {
            let class = line.class_name();
            line.set_class_name(&match class.strip_suffix(" open") {
                Some(closed) => closed.to_owned(),
                None => class + " open",
            });
        }
    });
    let toggle_ask = {
        let ask = ask.clone();
        Callback::from(move |_: MouseEvent| ask.set(!*ask))
    };
    let seen = shown(&state, props.has_video);
    // One note element: fewer `html!` trees are less download.
    let (note_class, note_text, refused) = match seen.note {
        Some(Note::Reconnecting) => ("chat-note", Some(Text::ChatOffline), false),
        Some(Note::Problem(k)) => ("chat-note problem", Some(k), false),
        Some(Note::Refused(k)) => ("chat-note refused", Some(k), true),
        None => ("", None, false),
    };
    let note = note_text.map(|k| {
        html! { <p ~className={note_class} role={(note_class != "chat-note").then_some("alert")}>{label(k)}</p> }
    });
    let has_note = note.is_some() && !refused;
    // The count as words, or "—" when unknown.
    let viewers = match seen.count {
        Some(n) => format!("{n} {}", crate::i18n::watching(lang, n)),
        None => "—".to_owned(),
    };
    let now = js_sys::Date::now();
    let _ = *frame;
    let hearts = sky.borrow();
    let max = state.max_chars as usize;
    let count = draft.chars().count();
    html! {
        <>
            if !props.read_only {
                <div class="tapzone" onclick={heart.clone()} aria-hidden="true"></div>
            }
            <div class="sky" aria-hidden="true">
                { for hearts.hearts().iter().map(|h| html! {
                    // Integers only: formatting floats would add kilobytes of code.
                    <span class="heart" style={format!(
                        "left:calc({}% / 10);bottom:calc({}% / 10);opacity:{}%;scale:{}%;color:{}",
                        (h.x * 1000.0) as u32, (h.y * 1000.0) as u32,
                        (h.opacity * 100.0) as u32, (h.scale * 100.0) as u32, h.colour)}>{"♥"}</span>
                }) }
            </div>
            <div class="counts">
                <span class="viewers" aria-label={seen.count.is_none().then(|| label(Text::ViewersUnknown))}>{viewers}</span>
                if let Some(k) = seen.stream {
                    <span class="stream-state">{t(lang, k)}</span>
                }
                <span class="hearts-total">{"♥ "}{state.hearts_total}</span>
            </div>
            if let Some(p) = &state.pinned {
                <div class="pinned" role="status">
                    <b>{label(Text::PinnedQuestion)}{" · "}{&p.name}</b>
                    <span class="text">{&p.text}</span>
                </div>
            }
            <section ~className={if has_note { "chat has-note" } else { "chat" }} aria-label="Chat">
                <ol class="lines" aria-live="polite" onclick={open_line}>
                    { for state.lines.iter().map(|l| {
                        let old = now - l.received_ms > OVERLAY_MS;
                        let m = &l.message;
                        // A plain string through `className`: see the `ui` module doc.
                        let mut class = String::from("line");
                        if l.pending {
                            class.push_str(" pending");
                        }
                        if old {
                            class.push_str(" old");
                        }
                        if m.question {
                            class.push_str(" question");
                        }
                        let votes = state.total(&m.id);
                        let voted = state.voted.contains(&m.id);
                        html! {
                            <li key={if m.id.is_empty() { m.client_id.clone().unwrap_or_default() } else { m.id.clone() }}
                                ~className={class}>
                                <b class="name" style={format!("color:{}", m.colour)}>{&m.name}</b>
                                <span class="text">{&m.text}</span>
                                if m.question && !l.pending {
                                    <button class="vote" aria-pressed={voted.to_string()} disabled={props.read_only || voted}
                                        aria-label={label(Text::VoteQuestion)}
                                        onclick={moderate(ChatConnection::vote, m.id.clone())}>{"+"}{votes}</button>
                                    if staff {
                                        <button class="mod" onclick={moderate(ChatConnection::pin, m.id.clone())}>{label(Text::Pin)}</button>
                                        <button class="mod" onclick={moderate(ChatConnection::answer, m.id.clone())}>{label(Text::Answered)}</button>
                                    }
                                }
                                if staff && !l.pending {
                                    <button class="mod" onclick={moderate(ChatConnection::delete, m.id.clone())}>{label(Text::Delete)}</button>
                                    <button class="mod" onclick={moderate(ChatConnection::ban, m.viewer_id.clone())}>{label(Text::Ban)}</button>
                                }
                            </li>
                        }
                    }) }
                </ol>
                if !refused { { for note.clone() } }
                if !props.read_only {
                    if seen.composer {
                        <form class="composer" onsubmit={submit}>
                        <input class="say" type="text" value={(*draft).clone()} {oninput}
                            maxlength={if needs_name { "24".to_string() } else { max.to_string() }}
                            onfocus={on_focus} onblur={on_blur}
                            placeholder={label(if needs_name { Text::NamePlaceholder } else { Text::ChatPlaceholder })}
                            aria-label={label(if needs_name { Text::PickName } else { Text::ChatPlaceholder })} />
                        if !needs_name && count + 50 > max {
                            <span class="left">{max.saturating_sub(count)}</span>
                        }
                        if !needs_name {
                            <button type="button" class="ask" aria-pressed={ask.to_string()}
                                onclick={toggle_ask} aria-label={label(Text::AskQuestion)} title={label(Text::AskQuestion)}>{"?"}</button>
                        }
                        <button type="submit" class="send">{label(Text::Send)}</button>
                        <button type="button" class="heart-button" onclick={heart} aria-label={label(Text::SendHeart)}>{"♥"}</button>
                    </form>
                    } else {
                        // Refused for good: the words take the send box's place.
                        <div class="band">{ for note }</div>
                    }
                }
            </section>
        </>
    }
}
