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

use super::events::{Event, SourceEvent, Tx};
use gloo_events::EventListener;
use js_sys::{ArrayBuffer, Uint8Array};
use lucarne_protocol::StreamState;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{BinaryType, MessageEvent, WebSocket};

/// An open (or opening) push connection. Dropping it closes the socket silently.
pub(crate) struct PushSource {
    ws: WebSocket,
    listeners: Vec<EventListener>,
}

impl PushSource {
    /// Connects to `url`; events are tagged with `generation`.
    pub(crate) fn open(url: &str, generation: u32, tx: Tx) -> Result<PushSource, String> {
        let ws = WebSocket::new(url)
            .map_err(|e| format!("cannot open {url}: {}", super::fetch::js_message(&e)))?;
        Ok(PushSource::attach(ws, generation, tx))
    }

    /// Takes over a socket the loader opened early (`{ws, queue, closed}`): listens,
    /// then replays what arrived before the widget was ready, in order.
    pub(crate) fn adopt(early: &JsValue, generation: u32, tx: Tx) -> Option<PushSource> {
        let get = |k: &str| js_sys::Reflect::get(early, &k.into()).ok();
        let ws: WebSocket = get("ws")?.dyn_into().ok()?;
        let queue: js_sys::Array = get("queue")?.dyn_into().ok()?;
        let closed = get("closed").is_some_and(|c| c.is_truthy());
        let source = PushSource::attach(ws.clone(), generation, tx.clone());
        ws.set_onmessage(None);
        ws.set_onclose(None);
        let send = |e| {
            let _ = tx.unbounded_send(Event::Source(generation, e));
        };
        if ws.ready_state() == WebSocket::OPEN || queue.length() > 0 {
            send(SourceEvent::Up);
        }
        for data in queue.iter() {
            if let Some(e) = classify(data) {
                send(e);
            }
        }
        if closed || ws.ready_state() >= WebSocket::CLOSING {
            send(SourceEvent::Down);
        }
        Some(source)
    }

    fn attach(ws: WebSocket, generation: u32, tx: Tx) -> PushSource {
        ws.set_binary_type(BinaryType::Arraybuffer);
        let send = move |tx: &Tx, e: SourceEvent| {
            let _ = tx.unbounded_send(Event::Source(generation, e));
        };
        let mut listeners = Vec::new();
        {
            let tx = tx.clone();
            listeners.push(EventListener::new(&ws, "message", move |e| {
                if let Some(ev) = e.dyn_ref::<MessageEvent>().and_then(|m| classify(m.data())) {
                    send(&tx, ev);
                }
            }));
        }
        {
            let tx = tx.clone();
            listeners.push(EventListener::new(&ws, "open", move |_| {
                send(&tx, SourceEvent::Up)
            }));
        }
        listeners.push(EventListener::new(&ws, "close", move |_| {
            send(&tx, SourceEvent::Down)
        }));
        PushSource { ws, listeners }
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
    Some(if super::mp4::is_init_segment(&head) {
        SourceEvent::Init(data)
    } else {
        SourceEvent::Media(data)
    })
}

impl PushSource {
    /// Tells the server the player is `seconds` behind the newest media it received.
    pub(crate) fn report_latency(&self, seconds: f64) {
        if self.ws.ready_state() != WebSocket::OPEN || !seconds.is_finite() || seconds < 0.0 {
            return;
        }
        let report = lucarne_protocol::push::LatencyReport {
            latency_ms: (seconds * 1000.0).min(60_000.0) as u32,
        };
        let _ = self.ws.send_with_str(&report.to_text());
    }
}

impl Drop for PushSource {
    fn drop(&mut self) {
        self.listeners.clear();
        let _ = self.ws.close();
    }
}
