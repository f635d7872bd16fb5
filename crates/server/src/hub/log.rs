//! A room's event log: its epoch, the last seq given, and the resume window behind them.
//! Message ids ([`MessageId`]) are made and read here and nowhere else. It takes no
//! lock and writes nothing (it starts from a `StoredRoom` and hands back what to store);
//! the time is an argument.
//!
//! Seqs restart at 1 with each epoch and an id names its epoch, so the ids of a room's
//! earlier epochs never name a message of the current one. (A store that lost its last
//! writes reloads the same epoch at a lower seq and gives those seqs again; viewers
//! notice by seq, see `store`'s contract.)

use super::store::{StoredEvent, StoredRoom};
use super::window::{Snapshot, Window};
use lucarne_protocol::{Epoch, Resume, RoomEvent, Seq};
use std::fmt;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// A chat message's id on the wire: `{epoch:x}-{seq}`, lowercase hex without leading
/// zeros, then decimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MessageId {
    pub(crate) epoch: Epoch,
    pub(crate) seq: Seq,
}

impl MessageId {
    /// Reads an id; only the form [`MessageId`]'s `Display` writes is accepted, so that
    /// one message has one id (`"01-7"` is not `"1-7"`, and the store matches ids as
    /// strings).
    pub(crate) fn parse(s: &str) -> Option<MessageId> {
        let (e, q) = s.split_once('-')?;
        let id = MessageId {
            epoch: Epoch::from_str_radix(e, 16).ok()?,
            seq: q.parse().ok()?,
        };
        (id.to_string() == s).then_some(id)
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}-{}", self.epoch, self.seq)
    }
}

/// What a delete found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Removal {
    /// The message was in the window; its frame is gone.
    Removed,
    /// Older than the window: it may still be in the store.
    Older,
    /// No message of this room can have that id.
    Unknown,
}

/// See the module doc.
#[derive(Debug)]
pub(crate) struct Log {
    epoch: Epoch,
    seq: Seq,
    window: Window,
}

impl Log {
    /// The log as stored, trimmed to what is still resumable at `now_ms`.
    pub(crate) fn from_stored(s: &mut StoredRoom, now_ms: u64) -> Log {
        let mut log = Log {
            epoch: s.epoch,
            seq: s.last_seq,
            window: Window::new(s.floor_seq),
        };
        for e in std::mem::take(&mut s.events) {
            log.seq = log.seq.max(e.event.seq());
            log.window.push(e.ts, &e.event);
            // A history read back from Redis still holds deleted messages, each
            // followed by its `deleted` event (the store removes them instead).
            if let RoomEvent::Deleted(d) = &e.event {
                log.remove_chat(&d.id);
            }
        }
        log.window.trim(now_ms);
        log
    }

    pub(crate) fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// The last seq given.
    pub(crate) fn seq(&self) -> Seq {
        self.seq
    }

    /// Accounted bytes of the resume window.
    pub(crate) fn bytes(&self) -> usize {
        self.window.bytes()
    }

    /// Gives the next seq to the event `make` builds from its id, and logs it. Returns
    /// the frame for viewers and the event for the store.
    pub(crate) fn publish(
        &mut self,
        now_ms: u64,
        make: impl FnOnce(MessageId) -> RoomEvent,
    ) -> (Seq, Utf8Bytes, StoredEvent) {
        self.seq += 1;
        let seq = self.seq;
        let event = make(MessageId {
            epoch: self.epoch,
            seq,
        });
        debug_assert_eq!(event.seq(), seq);
        let frame = self.window.push(now_ms, &event);
        self.window.trim(now_ms);
        (seq, frame, StoredEvent { ts: now_ms, event })
    }

    /// Logs an event whose seq was given elsewhere (by the cluster, see `cluster`), and
    /// returns its frame; `None` for a seq already logged. After a gap (the stream was
    /// trimmed past what this node read) the window restarts above it, so a resume from
    /// before the gap is answered with the last messages, never silently short.
    pub(crate) fn apply(&mut self, now_ms: u64, e: &StoredEvent) -> Option<Utf8Bytes> {
        let seq = e.event.seq();
        if seq <= self.seq {
            return None;
        }
        if seq > self.seq + 1 {
            self.window = Window::new(seq - 1);
        }
        self.seq = seq;
        let frame = self.window.push(e.ts, &e.event);
        self.window.trim(now_ms);
        Some(frame)
    }

    /// The welcome's history and the backlog after it, for a viewer resuming from
    /// `resume` (exact when it is this epoch's and inside the window).
    pub(crate) fn snapshot(&self, resume: Option<&Resume>) -> Snapshot {
        let after = resume
            .filter(|r| r.epoch == self.epoch && r.last_seq <= self.seq)
            .map(|r| r.last_seq);
        self.window.snapshot(after)
    }

    /// The seq of a message this identity already posted with this `clientId`.
    pub(crate) fn duplicate(&self, viewer_id: &str, client_id: &str) -> Option<Seq> {
        self.window.duplicate(viewer_id, client_id)
    }

    /// Where the chat message with this wire id is, without touching it: `Removed`
    /// means in the window, with its text.
    /// The chat message `id` if the window still has it.
    pub(crate) fn chat(&self, id: &str) -> Option<lucarne_protocol::ChatMessage> {
        let id = MessageId::parse(id).filter(|m| m.epoch == self.epoch)?;
        match self.window.event(id.seq)? {
            RoomEvent::Chat(m) => Some(m),
            _ => None,
        }
    }

    pub(crate) fn find_chat(&self, id: &str) -> Removal {
        let Some(id) = MessageId::parse(id).filter(|m| m.epoch == self.epoch) else {
            return Removal::Unknown;
        };
        if self.window.has_chat(id.seq) {
            Removal::Removed
        } else if id.seq <= self.window.floor() {
            Removal::Older
        } else {
            Removal::Unknown
        }
    }

    /// Drops a chat message from the window, by its wire id.
    pub(crate) fn remove_chat(&mut self, id: &str) -> Removal {
        let Some(id) = MessageId::parse(id).filter(|m| m.epoch == self.epoch) else {
            return Removal::Unknown;
        };
        if self.window.remove_chat(id.seq) {
            Removal::Removed
        } else if id.seq <= self.window.floor() {
            Removal::Older
        } else {
            Removal::Unknown
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lucarne_protocol::{ChatMessage, Role};

    fn chat(id: MessageId) -> RoomEvent {
        let seq = id.seq;
        RoomEvent::Chat(ChatMessage {
            seq,
            id: id.to_string(),
            viewer_id: "v1".into(),
            name: "Ana".into(),
            colour: "#ff6b6b".into(),
            text: format!("m{seq}"),
            ts: 0,
            role: Role::Viewer,
            client_id: Some(format!("c{seq}")),
            question: false,
        })
    }

    fn log_with(n: u64, ts: u64) -> Log {
        let mut stored = StoredRoom {
            epoch: 1,
            ..StoredRoom::default()
        };
        let mut log = Log::from_stored(&mut stored, ts);
        for _ in 0..n {
            log.publish(ts, chat);
        }
        log
    }

    fn seqs(events: &[RoomEvent]) -> Vec<Seq> {
        events.iter().map(RoomEvent::seq).collect()
    }

    #[test]
    fn message_ids_read_back_only_in_the_form_they_are_written() {
        let id = MessageId {
            epoch: 0x1f_ffff_ffff_ffff,
            seq: 42,
        };
        assert_eq!(id.to_string(), "1fffffffffffff-42");
        assert_eq!(MessageId::parse("1fffffffffffff-42"), Some(id));
        for other in [
            "01-7", "1-07", "1-+7", "1F-7", "-7", "1-", "1", "", "1-7-8", "x-7",
        ] {
            assert_eq!(MessageId::parse(other), None, "{other}");
        }
    }

    #[test]
    fn outside_the_epoch_or_from_the_future_the_last_messages_come_instead() {
        let log = log_with(120, 1_000);
        // Another epoch, or a seq this room never gave (it lost data the client saw).
        for (epoch, last_seq) in [(2, 40), (1, 121)] {
            let s = log.snapshot(Some(&Resume { epoch, last_seq }));
            assert!(!s.recovered);
            assert_eq!(seqs(&s.history), (71..=120).collect::<Vec<_>>());
            assert!(s.backlog.is_empty());
        }
    }

    #[test]
    fn a_reloaded_room_resumes_where_it_stopped() {
        let mut stored = StoredRoom {
            epoch: 9,
            last_seq: 12,
            floor_seq: 2,
            events: (3..=12)
                .map(|seq| StoredEvent {
                    ts: 1_000,
                    event: chat(MessageId { epoch: 9, seq }),
                })
                .collect(),
            ..StoredRoom::default()
        };
        let log = Log::from_stored(&mut stored, 2_000);
        assert_eq!((log.epoch(), log.seq(), log.window.floor()), (9, 12, 2));
        let s = log.snapshot(Some(&Resume {
            epoch: 9,
            last_seq: 7,
        }));
        assert!(s.recovered);
        assert_eq!(seqs(&s.history), [8, 9, 10, 11, 12]);
        // Dedup knows the reloaded messages.
        assert_eq!(log.duplicate("v1", "c4"), Some(4));
    }

    #[test]
    fn events_sequenced_elsewhere_are_logged_once_and_a_gap_is_never_resumed_across() {
        let mut log = log_with(0, 1_000);
        let at = |seq| StoredEvent {
            ts: 1_000,
            event: chat(MessageId { epoch: 1, seq }),
        };
        assert!(log.apply(1_000, &at(1)).is_some());
        assert!(log.apply(1_000, &at(2)).is_some());
        assert!(
            log.apply(1_000, &at(2)).is_none(),
            "read twice, logged once"
        );
        let s = log.snapshot(Some(&Resume {
            epoch: 1,
            last_seq: 1,
        }));
        assert!(s.recovered);
        assert_eq!(seqs(&s.history), [2]);
        // 3..=5 were trimmed from the stream before this node read them.
        assert!(log.apply(1_000, &at(6)).is_some());
        assert_eq!(log.seq(), 6);
        let s = log.snapshot(Some(&Resume {
            epoch: 1,
            last_seq: 2,
        }));
        assert!(!s.recovered, "3..=5 are missing: not exact");
        assert_eq!(seqs(&s.history), [6]);
    }

    #[test]
    fn a_delete_finds_messages_of_this_epoch_only() {
        let mut stored = StoredRoom {
            epoch: 1,
            last_seq: 100,
            floor_seq: 100,
            ..StoredRoom::default()
        };
        let mut log = Log::from_stored(&mut stored, 1_000);
        for _ in 0..3 {
            log.publish(1_000, chat);
        }
        assert_eq!(log.remove_chat("1-102"), Removal::Removed);
        assert_eq!(log.remove_chat("1-102"), Removal::Unknown, "already gone");
        assert_eq!(log.remove_chat("1-50"), Removal::Older);
        assert_eq!(log.remove_chat("2-101"), Removal::Unknown, "another epoch");
        assert_eq!(log.remove_chat("1-104"), Removal::Unknown, "not given yet");
        assert_eq!(log.remove_chat("01-101"), Removal::Unknown, "not an id");
    }
}
