//! The chat connection: one WebSocket to `/chat/{room}`, reconnected with exponential
//! backoff and jitter, resumed from the last seq, with the viewer's identity kept in
//! localStorage. It owns the [`ChatState`] (the reducer) and hands a copy to the view
//! after every change; the view sends through [`ChatConnection`]'s methods.
//!
//! Messages typed while offline stay pending and are re-sent with the same `clientId`
//! after the reconnect (the server posts each `clientId` once). Heart taps are counted
//! locally and sent in one `hearts` frame per [`FLUSH_MS`].
//!
//! A refusal is not retried: a ban closes the socket with `close::BANNED`; a handshake
//! that fails before `open` (a 403 for a page's origin looks like a network error to
//! `WebSocket`) is followed by one `GET` of the same URL, whose `ChatDoor` answer says
//! whether the server refuses this page for good. So a page on an origin the server
//! does not allow opens one socket, not one every few seconds forever.

use super::state::{Action, ChatState};
use super::wire::{self, opt};
use crate::net::backoff::Backoff;
use gloo_events::EventListener;
use gloo_timers::callback::{Interval, Timeout};
use lucarne_protocol::{
    close, Answer, BanViewer, DeleteMessage, Hello, Pin, Ping, Refusal, Resume, SendChat,
    SendHearts, ServerMessage, SetName, Vote, PROTOCOL_VERSION,
};
use std::cell::RefCell;
use std::rc::{Rc, Weak};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

/// Receives hearts to float: `(colour, count)`.
pub type OnHearts = Rc<dyn Fn(&str, u32)>;

/// How often heart taps are sent (and the connection checked).
pub const FLUSH_MS: u32 = 250;
/// Pings keep the server's idle timeout away.
const PING_EVERY_MS: f64 = 20_000.0;

struct Conn {
    url: String,
    auth_token: Option<String>,
    /// Not counted among the viewers (the overlay for OBS).
    backstage: bool,
    state: ChatState,
    on_change: Rc<dyn Fn(&ChatState)>,
    /// Hearts to show: `(colour, count)`, others' taps from the server's frames.
    on_hearts: OnHearts,
    /// Own taps sent but not yet seen in a server frame (already shown locally).
    own_unechoed: u32,
    ws: Option<WebSocket>,
    listeners: Vec<EventListener>,
    backoff: Backoff,
    reconnect: Option<Timeout>,
    hearts: u32,
    /// The page is in the back/forward cache: no socket, no reconnect.
    frozen: bool,
    /// pagehide / pageshow.
    page_listeners: Vec<EventListener>,
    last_ping: f64,
    client_seq: u64,
    /// The current socket's handshake succeeded: a close before it is a refusal or a
    /// network failure, which only the door (`GET` of the same URL) tells apart.
    opened: bool,
}

/// A live chat connection. Dropping it closes the socket and stops every timer.
pub struct ChatConnection {
    conn: Rc<RefCell<Conn>>,
    _tick: Interval,
}

fn now() -> f64 {
    js_sys::Date::now()
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

fn identity_key(url: &str) -> String {
    format!("lucarne:{url}")
}

impl ChatConnection {
    /// Connects to `url` (`ws(s)://host/chat/room`); `on_change` receives every new state.
    /// `on_hearts` receives the hearts others sent, to float them.
    pub fn open(
        url: String,
        auth_token: Option<String>,
        backstage: bool,
        on_change: Rc<dyn Fn(&ChatState)>,
        on_hearts: OnHearts,
    ) -> ChatConnection {
        let mut state = ChatState::new();
        // The identity (and name) this browser had in this room.
        if let Some(saved) = storage().and_then(|s| s.get_item(&identity_key(&url)).ok().flatten())
        {
            if let Ok(v) = js_sys::JSON::parse(&saved) {
                let get = |k: &str| {
                    js_sys::Reflect::get(&v, &k.into())
                        .ok()
                        .and_then(|x| x.as_string())
                };
                state.viewer_id = get("id");
                state.viewer_token = get("token");
                state.name = get("name");
            }
        }
        let conn = Rc::new(RefCell::new(Conn {
            url,
            auth_token,
            backstage,
            state,
            on_change,
            on_hearts,
            own_unechoed: 0,
            ws: None,
            listeners: Vec::new(),
            backoff: Backoff::new(500.0, 15_000.0),
            reconnect: None,
            hearts: 0,
            frozen: false,
            page_listeners: Vec::new(),
            last_ping: now(),
            client_seq: 0,
            opened: false,
        }));
        connect(&conn);
        if let Some(window) = web_sys::window() {
            let weak = Rc::downgrade(&conn);
            let hide = EventListener::new(&window, "pagehide", move |_| {
                if let Some(conn) = weak.upgrade() {
                    freeze(&conn);
                }
            });
            let weak = Rc::downgrade(&conn);
            let show = EventListener::new(&window, "pageshow", move |_| {
                if let Some(conn) = weak.upgrade() {
                    if std::mem::take(&mut conn.borrow_mut().frozen) {
                        connect(&conn);
                    }
                }
            });
            conn.borrow_mut().page_listeners = vec![hide, show];
        }
        let weak = Rc::downgrade(&conn);
        let tick = Interval::new(FLUSH_MS, move || {
            if let Some(c) = weak.upgrade() {
                tick(&c);
            }
        });
        ChatConnection { conn, _tick: tick }
    }

    /// Posts a message (shown at once as pending).
    pub fn send_chat(&self, text: &str, question: bool) {
        let mut c = self.conn.borrow_mut();
        c.client_seq += 1;
        let client_id = format!("{}-{}", now() as u64, c.client_seq);
        c.state.apply(Action::Sent {
            client_id: client_id.clone(),
            text: text.to_owned(),
            question,
            now_ms: now(),
        });
        let frame = wire::chat_message(&SendChat {
            text: text.to_owned(),
            client_id: Some(client_id),
            question,
        });
        send(&c, &frame);
        c.changed();
    }

    /// Chooses the display name (remembered for next time).
    pub fn set_name(&self, name: &str) {
        let c = self.conn.borrow();
        send(
            &c,
            &wire::set_name(&SetName {
                name: name.to_owned(),
            }),
        );
    }

    /// Counts one heart tap; sent with the next flush.
    pub fn tap_heart(&self) {
        self.conn.borrow_mut().hearts += 1;
    }

    /// +1 on a question (once: the server counts each viewer once).
    pub fn vote(&self, id: &str) {
        let mut c = self.conn.borrow_mut();
        send(&c, &wire::vote(&Vote { id: id.to_owned() }));
        c.state.apply(Action::Voted(id.to_owned()));
        c.changed();
    }

    /// Staff: pins a question over every viewer's video.
    pub fn pin(&self, id: &str) {
        let c = self.conn.borrow();
        send(
            &c,
            &wire::pin(&Pin {
                id: Some(id.to_owned()),
            }),
        );
    }

    /// Staff: marks a question answered.
    pub fn answer(&self, id: &str) {
        let c = self.conn.borrow();
        send(&c, &wire::answer(&Answer { id: id.to_owned() }));
    }

    /// Moderation: removes message `id` for everyone.
    pub fn delete(&self, id: &str) {
        let c = self.conn.borrow();
        send(&c, &wire::delete(&DeleteMessage { id: id.to_owned() }));
    }

    /// Moderation: bans `viewer_id` for good.
    pub fn ban(&self, viewer_id: &str) {
        let c = self.conn.borrow();
        let ban = BanViewer {
            viewer_id: viewer_id.to_owned(),
            duration_secs: None,
            reason: None,
        };
        send(&c, &wire::ban(&ban));
    }

    /// The current state.
    pub fn state(&self) -> ChatState {
        self.conn.borrow().state.clone()
    }
}

impl Conn {
    fn changed(&self) {
        (self.on_change)(&self.state);
    }

    fn save_identity(&self) {
        let (Some(id), Some(token)) = (&self.state.viewer_id, &self.state.viewer_token) else {
            return;
        };
        let o = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&o, &"id".into(), &id.into());
        let _ = js_sys::Reflect::set(&o, &"token".into(), &token.into());
        let _ = js_sys::Reflect::set(&o, &"name".into(), &opt(&self.state.name));
        if let (Some(s), Ok(json)) = (storage(), js_sys::JSON::stringify(&o)) {
            let _ = s.set_item(&identity_key(&self.url), &String::from(json));
        }
    }
}

fn send(c: &Conn, frame: &str) {
    if let Some(ws) =
        c.ws.as_ref()
            .filter(|ws| ws.ready_state() == WebSocket::OPEN && c.state.online)
    {
        let _ = ws.send_with_str(frame);
    }
}

fn hello(c: &Conn) -> String {
    let s = &c.state;
    wire::hello(&Hello {
        protocol_version: PROTOCOL_VERSION,
        viewer_id: s.viewer_id.clone(),
        viewer_token: s.viewer_token.clone(),
        name: s.name.clone(),
        resume: s.epoch.map(|epoch| Resume {
            epoch,
            last_seq: s.last_seq,
        }),
        auth_token: c.auth_token.clone(),
        backstage: c.backstage,
    })
}

fn connect(conn: &Rc<RefCell<Conn>>) {
    let mut c = conn.borrow_mut();
    c.reconnect = None;
    c.listeners.clear();
    c.opened = false;
    let Ok(ws) = WebSocket::new(&c.url) else {
        drop(c);
        return schedule(conn);
    };
    let weak = Rc::downgrade(conn);
    let on_open = {
        let weak: Weak<RefCell<Conn>> = weak.clone();
        EventListener::new(&ws, "open", move |_| {
            if let Some(conn) = weak.upgrade() {
                let mut c = conn.borrow_mut();
                c.opened = true;
                if let Some(ws) = &c.ws {
                    let _ = ws.send_with_str(&hello(&c));
                }
            }
        })
    };
    let on_message = {
        let weak = weak.clone();
        EventListener::new(&ws, "message", move |e| {
            let Some(text) = e
                .dyn_ref::<MessageEvent>()
                .and_then(|m| m.data().as_string())
            else {
                return;
            };
            let Some((frame, counts)) = wire::decode_frame(&text) else {
                return;
            };
            if let Some(conn) = weak.upgrade() {
                receive(&conn, frame, counts);
            }
        })
    };
    let on_close = EventListener::new(&ws, "close", move |e| {
        let code = e.dyn_ref::<CloseEvent>().map_or(0, |c| c.code());
        if let Some(conn) = weak.upgrade() {
            let mut c = conn.borrow_mut();
            c.ws = None;
            c.state.apply(if code == close::BANNED {
                Action::Banned
            } else {
                Action::Disconnected
            });
            c.changed();
            let banned = c.state.banned;
            let (frozen, opened) = (c.frozen, c.opened);
            drop(c);
            if banned || frozen {
                return;
            }
            if opened {
                schedule(&conn);
            } else {
                ask_the_door(&conn);
            }
        }
    });
    c.listeners = vec![on_open, on_message, on_close];
    c.ws = Some(ws);
}

/// Closes the socket while the page sits in the back/forward cache, so the viewer stops
/// counting as watching; `pageshow` reconnects and resumes.
fn freeze(conn: &Rc<RefCell<Conn>>) {
    let mut c = conn.borrow_mut();
    c.frozen = true;
    c.listeners.clear();
    c.reconnect = None;
    if let Some(ws) = c.ws.take() {
        let _ = ws.close();
    }
    c.state.apply(Action::Disconnected);
}

/// After a failed handshake: asks the server (a plain `GET` of the chat URL, see
/// `lucarne_protocol::ChatDoor`) whether this page is refused for good. Refused: stop,
/// say why, and tell the page's author the fix in the console. Otherwise, or when the
/// server cannot be reached either: retry with backoff as usual. Only the door's status
/// is read ([`Refusal::from_status`]): its JSON body says the same, for people.
fn ask_the_door(conn: &Rc<RefCell<Conn>>) {
    let url = {
        let c = conn.borrow();
        // ws://host/chat/room -> http://host/chat/room (wss -> https).
        format!("http{}", c.url.strip_prefix("ws").unwrap_or(&c.url))
    };
    let weak = Rc::downgrade(conn);
    wasm_bindgen_futures::spawn_local(async move {
        let response = match web_sys::window() {
            Some(w) => JsFuture::from(w.fetch_with_str(&url))
                .await
                .ok()
                .and_then(|r| r.dyn_into::<web_sys::Response>().ok()),
            None => None,
        };
        let status = response.as_ref().map_or(0, |r| r.status());
        // A private broadcast's door says so in its body (same 403 as a foreign origin).
        let mut body = String::new();
        if let Some(text) = response
            .filter(|_| status == 403)
            .and_then(|r| r.text().ok())
        {
            body = JsFuture::from(text)
                .await
                .ok()
                .and_then(|t| t.as_string())
                .unwrap_or_default();
        }
        let Some(conn) = weak.upgrade() else {
            return;
        };
        let Some(mut why) = Refusal::from_status(status) else {
            return schedule(&conn);
        };
        if crate::embed::options::contains(&body, "\"refused\":\"private\"") {
            why = Refusal::Private;
        }
        if why == Refusal::Origin {
            let here = web_sys::window()
                .and_then(|w| w.location().origin().ok())
                .unwrap_or_default();
            web_sys::console::warn_1(
                &format!(
                    "lucarne: the chat at {url} refuses pages from {here}. \
                     To allow this site, start lucarne-server with --embed-origin {here}"
                )
                .into(),
            );
        }
        let mut c = conn.borrow_mut();
        c.state.apply(Action::Refused(why));
        c.changed();
    });
}

fn schedule(conn: &Rc<RefCell<Conn>>) {
    let weak = Rc::downgrade(conn);
    let mut c = conn.borrow_mut();
    let delay = c.backoff.next_delay(js_sys::Math::random());
    c.reconnect = Some(Timeout::new(delay as u32, move || {
        if let Some(conn) = weak.upgrade() {
            connect(&conn);
        }
    }));
}

/// `counts`: the frame's counts decoded beside it (see [`wire::decode_frame`]): a
/// `hearts` frame's per colour, a `welcome`'s or `votes` frame's vote totals.
fn receive(conn: &Rc<RefCell<Conn>>, frame: ServerMessage, counts: wire::Counts) {
    let mut c = conn.borrow_mut();
    let (hearts, totals) = if matches!(frame, ServerMessage::Hearts(_)) {
        (counts, Vec::new())
    } else {
        (Vec::new(), counts)
    };
    // Own taps were floated when tapped; do not float them twice.
    for (colour, mut n) in hearts {
        if colour == c.state.colour {
            let echo = n.min(c.own_unechoed);
            c.own_unechoed -= echo;
            n -= echo;
        }
        if n > 0 {
            (c.on_hearts)(&colour, n.min(50));
        }
    }
    let welcomed = matches!(frame, ServerMessage::Welcome(_));
    let profile = matches!(frame, ServerMessage::Welcome(_) | ServerMessage::Profile(_));
    c.state.apply(Action::Counted(frame, totals, now()));
    if welcomed {
        c.backoff.reset();
        // Messages typed while offline go now, with their original clientId.
        let pending: Vec<String> = c
            .state
            .pending()
            .map(|m| {
                wire::chat_message(&SendChat {
                    text: m.text.clone(),
                    client_id: m.client_id.clone(),
                    question: m.question,
                })
            })
            .collect();
        for frame in pending {
            send(&c, &frame);
        }
    }
    if profile {
        c.save_identity();
    }
    c.changed();
}

fn tick(conn: &Rc<RefCell<Conn>>) {
    let mut c = conn.borrow_mut();
    if !c.state.online {
        return;
    }
    if c.hearts > 0 {
        let count = std::mem::take(&mut c.hearts);
        c.own_unechoed = c.own_unechoed.saturating_add(count).min(1000);
        send(
            &c,
            &wire::hearts(&SendHearts {
                count,
                colour: None,
            }),
        );
    }
    if now() - c.last_ping > PING_EVERY_MS {
        c.last_ping = now();
        send(&c, &wire::ping(&Ping::default()));
    }
}

impl Drop for ChatConnection {
    fn drop(&mut self) {
        let mut c = self.conn.borrow_mut();
        c.listeners.clear();
        c.page_listeners.clear();
        c.reconnect = None;
        if let Some(ws) = c.ws.take() {
            let _ = ws.close();
        }
    }
}
