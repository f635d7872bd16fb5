//! What a room sends its sessions: one `tokio::sync::broadcast` ring per room, carrying
//! frames serialised once per room, not per viewer. It decides nothing: the room says
//! what to send, each session what to forward.
//!
//! # Back-pressure
//! A send never waits for a viewer, and a viewer more than `chat_queue` events behind
//! finds out (`Lagged`) and is dropped by its session, to resume from its last seq.

use lucarne_protocol::{Seq, ServerMessage};
use std::sync::Arc;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// One item of the ring.
#[derive(Debug, Clone)]
pub(crate) enum Outbound {
    /// A durable event: sessions skip seqs they already sent.
    Event {
        /// Its seq.
        seq: Seq,
        /// `chat` or `deleted`.
        frame: Utf8Bytes,
    },
    /// A state snapshot for everyone (`hearts`, `viewerCount`, `settings`, ...).
    State(Utf8Bytes),
    /// For moderators and the broadcaster only.
    Staff(Utf8Bytes),
    /// Close every connection of this identity after sending `frame` (a ban).
    Kick {
        /// Who.
        viewer_id: Arc<str>,
        /// The error frame to send first.
        frame: Utf8Bytes,
    },
    /// The server is stopping: close (clients resume elsewhere or later).
    Shutdown,
    /// The room lost Redis (`--redis`): close with "try again later" (clients resume
    /// once it is back).
    Unavailable,
}

/// Serialises a server frame.
pub(crate) fn encode(msg: &ServerMessage) -> Utf8Bytes {
    Utf8Bytes::from(serde_json::to_string(msg).expect("server messages serialise"))
}

/// A room's ring.
#[derive(Debug)]
pub(crate) struct Fanout(broadcast::Sender<Outbound>);

impl Fanout {
    /// A ring of `capacity` items (16 at least).
    pub(crate) fn new(capacity: usize) -> Fanout {
        Fanout(broadcast::channel(capacity.max(16)).0)
    }

    /// A new viewer's end: it sees what is sent from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Outbound> {
        self.0.subscribe()
    }

    pub(crate) fn send(&self, out: Outbound) {
        // No receivers is fine: nobody is watching.
        let _ = self.0.send(out);
    }

    /// `msg` for everyone.
    pub(crate) fn state(&self, msg: &ServerMessage) {
        self.send(Outbound::State(encode(msg)));
    }

    /// Closes every connection of `viewer_id` after sending it `msg`.
    pub(crate) fn kick(&self, viewer_id: &str, msg: &ServerMessage) {
        let viewer_id = Arc::from(viewer_id);
        self.send(Outbound::Kick {
            viewer_id,
            frame: encode(msg),
        });
    }

    /// `msg` for staff only.
    pub(crate) fn staff(&self, msg: &ServerMessage) {
        self.send(Outbound::Staff(encode(msg)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lucarne_protocol::ViewerCount;
    use tokio::sync::broadcast::error::TryRecvError;

    #[test]
    fn a_viewer_that_falls_a_ring_behind_is_told_it_lagged() {
        let fanout = Fanout::new(1);
        let mut rx = fanout.subscribe();
        let count = |count| ServerMessage::ViewerCount(ViewerCount { count });
        for n in 0..17 {
            fanout.state(&count(n));
        }
        assert_eq!(rx.try_recv().unwrap_err(), TryRecvError::Lagged(1));
        assert!(
            matches!(rx.try_recv(), Ok(Outbound::State(f)) if f.as_str().ends_with("\"count\":1}"))
        );
    }
}
