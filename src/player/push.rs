//! The low-latency source: CMAF chunks pushed over a WebSocket by lucarne-server.
//!
//! The first binary message is the init segment, then `moof`+`mdat` chunks as they are
//! produced. Reconnection is the engine's decision; this type only reports.

use super::engine::{Event, SourceEvent, Tx};
use gloo_events::EventListener;
use js_sys::{ArrayBuffer, Uint8Array};
use wasm_bindgen::JsCast;
use web_sys::{BinaryType, MessageEvent, WebSocket};

/// An open (or opening) push connection. Dropping it closes the socket silently.
pub(crate) struct PushSource {
    ws: WebSocket,
    listeners: Vec<EventListener>,
}

impl PushSource {
    /// Connects to `url`; events are tagged with `generation`.
    pub(crate) fn open(url: &str, generation: u32, tx: Tx) -> Result<PushSource, String> {
        let ws = WebSocket::new(url).map_err(|e| format!("cannot open {url}: {}", super::fetch::js_message(&e)))?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let send = move |tx: &Tx, e: SourceEvent| {
            let _ = tx.unbounded_send(Event::Source(generation, e));
        };
        let mut listeners = Vec::new();
        {
            let tx = tx.clone();
            listeners.push(EventListener::new(&ws, "message", move |e| {
                let Some(buf) = e
                    .dyn_ref::<MessageEvent>()
                    .and_then(|m| m.data().dyn_into::<ArrayBuffer>().ok())
                else {
                    return;
                };
                let data = Uint8Array::new(&buf);
                let head = data.subarray(0, 8.min(data.length())).to_vec();
                if super::mp4::is_init_segment(&head) {
                    send(&tx, SourceEvent::Init(data));
                } else {
                    send(&tx, SourceEvent::Media(data));
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
        Ok(PushSource { ws, listeners })
    }
}

impl Drop for PushSource {
    fn drop(&mut self) {
        self.listeners.clear();
        let _ = self.ws.close();
    }
}
