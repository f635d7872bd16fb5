//! The low-latency source: CMAF chunks pushed over a WebSocket by lucarne-server.
//!
//! The first binary message is the init segment, then `moof`+`mdat` chunks as they are
//! produced. For a stream broadcasters go live on, text messages say its state:
//! `offline` (nobody is broadcasting; the socket stays open and media follows when the
//! broadcast starts or resumes), `live` (resumed) and `ended`: words of [`StreamState`].
//! `unsupported` (a publisher was refused) is offline for the player; the chat's state
//! line says why. Reconnection is the engine's decision; this type only reports.
//!
//! The player's one message to the server is its latency
//! ([`lucarne_protocol::push::LatencyReport`]), which the engine sends every few seconds
//! while playing.
//!
//! # Renditions
//! With `--ladder`, each rung of lucarne's ladder has its own push. Given the stream's
//! multivariant playlist ([`PushSource::follow_ladder`]), the source keeps a
//! [`PushAbr`] (the decisions are `push_abr`'s: down when the push falls behind, up
//! when a probe of the rung above finds room, within the player's caps and the
//! viewer's pick) and switches without a gap: the new rung's socket opens beside the
//! one playing, its chunks are dropped until one starts on a keyframe later than the
//! last chunk played (the ladder's keyframes are aligned), and there its init segment
//! and that chunk go out and the old socket closes. `mse` changes the SourceBuffer's
//! type when the codecs differ.

use super::abr::{Abr, Rendition, Sample};
use super::events::{Event, SourceEvent, Tx};
use super::fetch::{self, sleep_ms, AbortSlot, Download};
use super::hls::Conditions;
use super::mp4::{self, InitInfo};
use super::playlist::{self, Playlist};
use super::push_abr::{self, PushAbr};
use gloo_events::EventListener;
use js_sys::{ArrayBuffer, Uint8Array};
use lucarne_protocol::StreamState;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{BinaryType, MessageEvent, WebSocket};

/// How often the ladder's caps are read and a probe considered, milliseconds.
const LADDER_TICK_MS: f64 = 500.0;
const PROBE_TIMEOUT_MS: u32 = 10_000;

/// An open (or opening) push connection. Dropping it closes the socket silently.
pub(crate) struct PushSource {
    inner: Rc<RefCell<Inner>>,
    alive: Rc<Cell<bool>>,
    slot: AbortSlot,
}

/// A socket and its listeners; dropping it closes the socket.
struct Socket {
    ws: WebSocket,
    id: u32,
    _listeners: Vec<EventListener>,
}

impl Drop for Socket {
    fn drop(&mut self) {
        self._listeners.clear();
        let _ = self.ws.close();
    }
}

/// A rung being switched to.
struct Pending {
    socket: Socket,
    to: usize,
    /// Its init segment, once received.
    init: Option<(Uint8Array, InitInfo)>,
}

/// What the push's rendition choice needs.
struct Ladder {
    policy: PushAbr,
    /// Per rung: its push, and its media playlist (for probes).
    pushes: Vec<String>,
    playlists: Vec<String>,
    conditions: Rc<Cell<Conditions>>,
}

struct Inner {
    generation: u32,
    tx: Tx,
    active: Option<Socket>,
    pending: Option<Pending>,
    next_id: u32,
    /// The playing socket's init segment, for chunk times.
    info: Option<InitInfo>,
    /// Start of the last chunk sent (NaN: none yet).
    last_start: f64,
    ladder: Option<Ladder>,
}

impl PushSource {
    /// Connects to `url`; events are tagged with `generation`.
    pub(crate) fn open(url: &str, generation: u32, tx: Tx) -> Result<PushSource, String> {
        let source = PushSource::new(generation, tx);
        let socket = Inner::connect(&source.inner, url)?;
        source.inner.borrow_mut().active = Some(socket);
        Ok(source)
    }

    fn new(generation: u32, tx: Tx) -> PushSource {
        PushSource {
            inner: Rc::new(RefCell::new(Inner {
                generation,
                tx,
                active: None,
                pending: None,
                next_id: 0,
                info: None,
                last_start: f64::NAN,
                ladder: None,
            })),
            alive: Rc::new(Cell::new(true)),
            slot: AbortSlot::default(),
        }
    }

    /// Takes over a socket the loader opened early (`{ws, queue, closed}`): listens,
    /// then replays what arrived before the widget was ready, in order.
    pub(crate) fn adopt(early: &JsValue, generation: u32, tx: Tx) -> Option<PushSource> {
        let get = |k: &str| js_sys::Reflect::get(early, &k.into()).ok();
        let ws: WebSocket = get("ws")?.dyn_into().ok()?;
        let queue: js_sys::Array = get("queue")?.dyn_into().ok()?;
        let closed = get("closed").is_some_and(|c| c.is_truthy());
        let source = PushSource::new(generation, tx);
        let socket = Inner::attach(&source.inner, ws.clone());
        let id = socket.id;
        source.inner.borrow_mut().active = Some(socket);
        ws.set_onmessage(None);
        ws.set_onclose(None);
        if ws.ready_state() == WebSocket::OPEN || queue.length() > 0 {
            source.inner.borrow().send(SourceEvent::Up);
        }
        for data in queue.iter() {
            Inner::message(&source.inner, id, data);
        }
        if closed || ws.ready_state() >= WebSocket::CLOSING {
            source.inner.borrow().send(SourceEvent::Down);
        }
        Some(source)
    }

    /// Follows the stream's ladder, read from its multivariant playlist at `hls` (see
    /// the module doc); a stream without one (or not lucarne's) stays on its one push.
    /// `conditions`: the player's size, the viewer's pick and the last estimate, as
    /// the HLS loader's ABR reads them.
    pub(crate) fn follow_ladder(&self, hls: String, conditions: Rc<Cell<Conditions>>) {
        let (inner, alive, slot) = (self.inner.clone(), self.alive.clone(), self.slot.clone());
        wasm_bindgen_futures::spawn_local(async move {
            let Ok(text) = fetch::text(&hls, PROBE_TIMEOUT_MS, &slot).await else {
                return;
            };
            let Ok(Playlist::Multivariant(variants)) = playlist::parse(&text) else {
                return;
            };
            let playing = inner.borrow().active.as_ref().map(|s| s.ws.url());
            let mut rungs = Vec::new();
            for v in variants.iter().filter(|v| super::hls::decodable(v)) {
                let Some(url) = fetch::resolve(&v.uri, &hls) else {
                    continue;
                };
                if let Some(push) = push_abr::push_url(&url) {
                    rungs.push((v, push, url));
                }
            }
            let Some(start) = rungs.iter().position(|r| Some(&r.1) == playing.as_ref()) else {
                return;
            };
            if rungs.len() < 2 || !alive.get() {
                return;
            }
            let c = conditions.get();
            // The rung playing is assumed to fit until the push falls behind.
            let playing_bps = rungs[start].0.bandwidth as f64 / super::abr::KEEP_FACTOR * 1.1;
            let abr = Abr::new(
                rungs
                    .iter()
                    .map(|(v, _, _)| Rendition {
                        bandwidth: v.bandwidth,
                        width: v.width,
                        height: v.height,
                    })
                    .collect(),
                c.estimate_bps.max(playing_bps),
            );
            let mut ladder = Ladder {
                policy: PushAbr::new(abr, start, js_sys::Date::now()),
                pushes: rungs.iter().map(|r| r.1.clone()).collect(),
                playlists: rungs.iter().map(|r| r.2.clone()).collect(),
                conditions,
            };
            inner.borrow().send(ladder.offer());
            inner.borrow_mut().ladder = Some(ladder);
            run_ladder(inner, alive, slot).await;
        });
    }
}

/// Every [`LADDER_TICK_MS`]: the caps and the viewer's pick, then a probe when due.
async fn run_ladder(inner: Rc<RefCell<Inner>>, alive: Rc<Cell<bool>>, slot: AbortSlot) {
    let mut choice = None;
    while alive.get() {
        sleep_ms(LADDER_TICK_MS).await;
        if !alive.get() {
            return;
        }
        let now = js_sys::Date::now();
        let probe = {
            let mut guard = inner.borrow_mut();
            let Some(l) = guard.ladder.as_mut() else {
                return;
            };
            let c = l.conditions.get();
            let abr = l.policy.abr();
            abr.set_size(c.width, c.height, c.dpr);
            abr.set_max_height(c.max_height);
            abr.set_choice(c.choice);
            let to = l.policy.decide(now);
            let probe = l
                .policy
                .probe_due(now)
                .and_then(|j| l.playlists.get(j).cloned());
            let offer = (choice != Some(c.choice)).then(|| l.offer());
            choice = Some(c.choice);
            if let Some(e) = offer {
                guard.send(e);
            }
            if let Some(to) = to {
                Inner::switch(&inner, &mut guard, to);
            }
            probe
        };
        let Some(url) = probe else { continue };
        let sample = probe_rung(&url, &slot).await;
        let mut guard = inner.borrow_mut();
        let Some(l) = guard.ladder.as_mut() else {
            return;
        };
        let Some(sample) = sample else {
            l.policy.probe_failed(js_sys::Date::now());
            continue;
        };
        let to = l.policy.probed(js_sys::Date::now(), &sample);
        let mut c = l.conditions.get();
        c.estimate_bps = l.policy.abr().estimate_bps();
        l.conditions.set(c);
        if let Some(to) = to {
            Inner::switch(&inner, &mut guard, to);
        }
    }
}

/// Downloads the newest complete segment of the media playlist at `url`, as a sample
/// of what the link carries.
async fn probe_rung(url: &str, slot: &AbortSlot) -> Option<Sample> {
    let text = fetch::text(url, PROBE_TIMEOUT_MS, slot).await.ok()?;
    let Ok(Playlist::Media(media)) = playlist::parse(&text) else {
        return None;
    };
    let seg = media.segments.last()?;
    let seg_url = fetch::resolve(&seg.uri, url)?;
    let mut d = Download::start(&seg_url, PROBE_TIMEOUT_MS, slot).ok()?;
    loop {
        if d.step(100.0).await.ok()?.is_some() {
            return Some(Sample {
                bytes: d.loaded,
                ttfb_ms: d.ttfb_ms.unwrap_or(0.0),
                total_ms: d.elapsed_ms(),
                media_s: seg.duration,
                held: false,
            });
        }
    }
}

/// Listens to `ws` as socket `id` of `inner` (which may be borrowed now: the
/// listeners borrow it only when they fire).
fn attach_with_id(inner: &Rc<RefCell<Inner>>, ws: WebSocket, id: u32) -> Socket {
    ws.set_binary_type(BinaryType::Arraybuffer);
    let mut listeners = Vec::new();
    let weak = Rc::downgrade(inner);
    listeners.push(EventListener::new(&ws, "message", move |e| {
        if let (Some(inner), Some(m)) = (weak.upgrade(), e.dyn_ref::<MessageEvent>()) {
            Inner::message(&inner, id, m.data());
        }
    }));
    let weak = Rc::downgrade(inner);
    listeners.push(EventListener::new(&ws, "open", move |_| {
        if let Some(inner) = weak.upgrade() {
            let i = inner.borrow();
            if i.active.as_ref().is_some_and(|s| s.id == id) {
                i.send(SourceEvent::Up);
            }
        }
    }));
    let weak = Rc::downgrade(inner);
    listeners.push(EventListener::new(&ws, "close", move |_| {
        if let Some(inner) = weak.upgrade() {
            let mut i = inner.borrow_mut();
            if i.active.as_ref().is_some_and(|s| s.id == id) {
                i.send(SourceEvent::Down);
            } else if i.pending.as_ref().is_some_and(|p| p.socket.id == id) {
                // The switch failed: the rung playing goes on, if one still does.
                i.pending = None;
                if i.active.is_none() {
                    i.send(SourceEvent::Down);
                }
            }
        }
    }));
    Socket {
        ws,
        id,
        _listeners: listeners,
    }
}

impl Ladder {
    /// The quality menu's rungs (heights, tallest first) and the viewer's pick.
    fn offer(&mut self) -> SourceEvent {
        let abr = self.policy.abr();
        let mut heights: Vec<u32> = (0..self.pushes.len())
            .filter_map(|i| abr.rendition(i).map(|r| r.height))
            .collect();
        heights.sort_unstable_by(|a, b| b.cmp(a));
        heights.dedup();
        self.conditions.get().quality_menu(heights.into_iter())
    }
}

impl Inner {
    fn send(&self, e: SourceEvent) {
        let _ = self.tx.unbounded_send(Event::Source(self.generation, e));
    }

    /// Opens a socket to `url` that reports to `inner`.
    fn connect(inner: &Rc<RefCell<Inner>>, url: &str) -> Result<Socket, String> {
        let ws = WebSocket::new(url)
            .map_err(|e| format!("cannot open {url}: {}", fetch::js_message(&e)))?;
        Ok(Inner::attach(inner, ws))
    }

    fn attach(inner: &Rc<RefCell<Inner>>, ws: WebSocket) -> Socket {
        let id = {
            let mut i = inner.borrow_mut();
            i.next_id += 1;
            i.next_id
        };
        attach_with_id(inner, ws, id)
    }

    /// A message on socket `id`.
    fn message(inner: &Rc<RefCell<Inner>>, id: u32, data: JsValue) {
        let mut guard = inner.borrow_mut();
        let i = &mut *guard;
        if i.pending.as_ref().is_some_and(|p| p.socket.id == id) {
            return Inner::pending_message(i, data);
        }
        if i.active.as_ref().is_none_or(|s| s.id != id) {
            return;
        }
        let Some(event) = classify(data) else { return };
        let to = match &event {
            SourceEvent::Init(d) => {
                i.info = mp4::parse_init(&d.to_vec());
                None
            }
            // Chunk times matter only to a ladder: without one, a chunk is not read.
            SourceEvent::Media(d) if i.ladder.is_some() => {
                let head = d.subarray(0, d.length().min(64 * 1024)).to_vec();
                let start = i
                    .info
                    .as_ref()
                    .and_then(|info| mp4::fragment_start(&head, info));
                if let Some(start) = start {
                    i.last_start = start;
                }
                match (i.ladder.as_mut(), start) {
                    (Some(l), Some(start)) => {
                        l.policy
                            .chunk(js_sys::Date::now(), u64::from(d.length()), start)
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        i.send(event);
        if let Some(to) = to {
            // Fallen behind: the socket playing holds a backlog that the link would go
            // on carrying; it closes now, and the new rung starts at the live edge
            // (the player jumps the hole).
            i.active = None;
            i.last_start = f64::NAN;
            Inner::switch(inner, i, to);
        }
    }

    /// A message on the socket of the rung being switched to: its init is kept, its
    /// chunks dropped until one starts on a keyframe after the last chunk played;
    /// there the switch happens.
    fn pending_message(i: &mut Inner, data: JsValue) {
        let Ok(buf) = data.dyn_into::<ArrayBuffer>() else {
            return;
        };
        let bytes = Uint8Array::new(&buf);
        let head = bytes.subarray(0, bytes.length().min(64 * 1024)).to_vec();
        let Some(p) = i.pending.as_mut() else { return };
        if mp4::is_init_segment(&head) {
            p.init = mp4::parse_init(&bytes.to_vec()).map(|info| (bytes, info));
            return;
        }
        let Some((_, info)) = &p.init else { return };
        let start = mp4::fragment_start(&head, info);
        // After the last chunk played (any, once the socket playing was closed).
        let after = start.is_some_and(|s| i.last_start.is_nan() || s > i.last_start + 1e-3);
        if !after || !mp4::starts_on_keyframe(&head) {
            return;
        }
        let Some(Pending {
            socket,
            init: Some((init, info)),
            ..
        }) = i.pending.take()
        else {
            return;
        };
        i.send(SourceEvent::Init(init));
        i.send(SourceEvent::Media(bytes));
        i.info = Some(info);
        i.last_start = start.unwrap_or(f64::NAN);
        i.active = Some(socket);
    }

    /// Opens rung `to`'s push beside the one playing.
    fn switch(inner: &Rc<RefCell<Inner>>, i: &mut Inner, to: usize) {
        let Some(url) = i.ladder.as_ref().and_then(|l| l.pushes.get(to)).cloned() else {
            return;
        };
        if i.pending.as_ref().is_some_and(|p| p.to == to) {
            return;
        }
        // The socket is made here, its listeners find `inner` when they fire.
        let Ok(ws) = WebSocket::new(&url) else {
            return;
        };
        i.next_id += 1;
        let id = i.next_id;
        let socket = attach_with_id(inner, ws, id);
        i.pending = Some(Pending {
            socket,
            to,
            init: None,
        });
    }
}

/// An init segment or a media chunk (binary), or the stream's state (text).
fn classify(data: JsValue) -> Option<SourceEvent> {
    if let Some(word) = data.as_string() {
        return match StreamState::parse(&word) {
            StreamState::Offline | StreamState::Unsupported => Some(SourceEvent::Offline),
            StreamState::Live => Some(SourceEvent::Up),
            StreamState::Ended => Some(SourceEvent::Ended),
            StreamState::Unknown => None,
        };
    }
    let buf = data.dyn_into::<ArrayBuffer>().ok()?;
    let data = Uint8Array::new(&buf);
    let head = data.subarray(0, 8.min(data.length())).to_vec();
    Some(if mp4::is_init_segment(&head) {
        SourceEvent::Init(data)
    } else {
        SourceEvent::Media(data)
    })
}

impl PushSource {
    /// Tells the server the player is `seconds` behind the newest media it received.
    pub(crate) fn report_latency(&self, seconds: f64) {
        let inner = self.inner.borrow();
        let Some(ws) = inner.active.as_ref().map(|s| &s.ws) else {
            return;
        };
        if ws.ready_state() != WebSocket::OPEN || !seconds.is_finite() || seconds < 0.0 {
            return;
        }
        let report = lucarne_protocol::push::LatencyReport {
            latency_ms: (seconds * 1000.0).min(60_000.0) as u32,
        };
        let _ = ws.send_with_str(&report.to_text());
    }
}

impl Drop for PushSource {
    fn drop(&mut self) {
        self.alive.set(false);
        if let Some(c) = self.slot.borrow_mut().take() {
            c.abort();
        }
        // Closes the sockets (their listeners go first, so nothing more is reported).
        let mut inner = self.inner.borrow_mut();
        inner.pending = None;
        inner.active = None;
        inner.ladder = None;
    }
}
