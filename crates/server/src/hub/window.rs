//! A room's resume window: its recent durable events, kept as the frames viewers were
//! sent, bounded in count, age and bytes; the dedup of client ids of the messages in it;
//! `floor`, the newest seq that has left it. It knows nothing of sockets, locks or the
//! store, and takes the time as an argument.
//!
//! # Retention
//! Every event of the last [`WINDOW_MS`] and, however old, the last [`MIN_CHATS`]
//! messages stay, up to [`MAX_EVENTS`] events and [`MAX_BYTES`] accounted bytes (the
//! byte bound wins: 500 messages of the largest size take about 1.3 MB).
//!
//! # Memory
//! An entry is its frame plus a fixed part ([`ENTRY_OVERHEAD`]: the entry and its dedup
//! slot); [`Window::bytes`] is that sum, which is what the bounds count. Nothing else is
//! kept per message: the welcome's history is decoded from the frames when a viewer
//! joins (50 frames at most), a deleted message leaves a tombstone with no frame, and
//! the dedup key is a keyed 64-bit hash of `(viewerId, clientId)`.
//!
//! Frames are copied into shared chunks of [`CHUNK`] bytes, freed in the order they
//! filled. Before, each message held about ten heap blocks of unrelated sizes (the
//! parsed event's strings, its frame, its dedup key) freed in another order than they
//! were taken: glibc's per-thread arenas never returned the holes, and a room at its
//! 5,000-event cap kept growing by about 1.6 KB per 2 KB message (measured to 30,000
//! messages; with one malloc arena it stopped at 15,000).
//!
//! # Why a 64-bit hash for dedup
//! A collision would make a new message look like a re-send and drop it: with the
//! window's 5,000 keys and a per-process random key, that is about one chance in 10^12
//! per message, for 16 bytes per entry instead of two heap strings.

use bytes::BytesMut;
use lucarne_protocol::{RoomEvent, Seq, WELCOME_HISTORY};
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// Events of the last ten minutes are always resumable ...
pub const WINDOW_MS: u64 = 10 * 60 * 1000;
/// ... and so are the last 500 messages, however old ...
pub const MIN_CHATS: usize = 500;
/// ... within this bound on the number of events ...
pub const MAX_EVENTS: usize = 5000;
/// ... and this bound on their accounted bytes (about 1,800 messages of 2 KB, or all
/// 5,000 of a typical 300-byte frame).
pub const MAX_BYTES: usize = 4 << 20;

/// Frames are copied into chunks of this size (a larger frame gets its own).
pub(crate) const CHUNK: usize = 64 * 1024;

/// The accounted cost of an entry besides its frame: the entry in the ring and its
/// slot in the dedup map (key, seq, control byte, rounded up).
pub(crate) const ENTRY_OVERHEAD: usize = std::mem::size_of::<Entry>() + 24;

/// One event in the window.
#[derive(Debug)]
struct Entry {
    ts: u64,
    seq: Seq,
    chat: bool,
    /// Its `(viewerId, clientId)` hash, removed from the dedup map with the entry.
    dedup: Option<u64>,
    /// `None` once the message was deleted (the entry keeps its seq and dedup key).
    frame: Option<Utf8Bytes>,
}

/// What a joining viewer gets from the window.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    /// Whether `after` could be resumed exactly.
    pub(crate) recovered: bool,
    /// For the welcome.
    pub(crate) history: Vec<RoomEvent>,
    /// Missed events beyond the welcome's share.
    pub(crate) backlog: Vec<(Seq, Utf8Bytes)>,
}

/// See the module doc.
#[derive(Debug)]
pub(crate) struct Window {
    entries: VecDeque<Entry>,
    floor: Seq,
    /// Chat messages in `entries` (tombstones excluded).
    chats: usize,
    /// Accounted bytes (see the module doc).
    bytes: usize,
    dedup: HashMap<u64, Seq>,
    hasher: RandomState,
    chunk: BytesMut,
}

fn decode(frame: &Utf8Bytes) -> Option<RoomEvent> {
    serde_json::from_str(frame.as_str()).ok()
}

impl Window {
    /// An empty window whose events after `floor` are all to come.
    pub(crate) fn new(floor: Seq) -> Window {
        Window {
            entries: VecDeque::new(),
            floor,
            chats: 0,
            bytes: 0,
            dedup: HashMap::new(),
            hasher: RandomState::new(),
            chunk: BytesMut::new(),
        }
    }

    fn dedup_key(&self, viewer_id: &str, client_id: &str) -> u64 {
        self.hasher.hash_one((viewer_id, client_id))
    }

    /// Copies `json` into the current chunk.
    fn frame(&mut self, json: &[u8]) -> Utf8Bytes {
        if self.chunk.capacity() - self.chunk.len() < json.len() {
            self.chunk = BytesMut::with_capacity(CHUNK.max(json.len()));
        }
        self.chunk.extend_from_slice(json);
        Utf8Bytes::try_from(self.chunk.split().freeze()).expect("serde_json writes UTF-8")
    }

    /// Appends `event` (its seq above every other) and returns its frame; call
    /// [`Window::trim`] after.
    pub(crate) fn push(&mut self, ts: u64, event: &RoomEvent) -> Utf8Bytes {
        let json = serde_json::to_vec(event).expect("events serialise");
        let frame = self.frame(&json);
        let seq = event.seq();
        let mut dedup = None;
        let chat = matches!(event, RoomEvent::Chat(_));
        if let RoomEvent::Chat(m) = event {
            self.chats += 1;
            if let Some(c) = &m.client_id {
                let key = self.dedup_key(&m.viewer_id, c);
                self.dedup.insert(key, seq);
                dedup = Some(key);
            }
        }
        self.bytes += frame.len() + ENTRY_OVERHEAD;
        self.entries.push_back(Entry {
            ts,
            seq,
            chat,
            dedup,
            frame: Some(frame.clone()),
        });
        frame
    }

    /// Applies the retention rule (see the module doc).
    pub(crate) fn trim(&mut self, now_ms: u64) {
        let cutoff = now_ms.saturating_sub(WINDOW_MS);
        while let Some(front) = self.entries.front() {
            let live_chat = front.chat && front.frame.is_some();
            let over_cap = self.entries.len() > MAX_EVENTS || self.bytes > MAX_BYTES;
            let expired = front.ts < cutoff && self.chats - usize::from(live_chat) >= MIN_CHATS;
            if !(over_cap || expired) {
                break;
            }
            let gone = self.entries.pop_front().expect("front exists");
            self.floor = gone.seq;
            if live_chat {
                self.chats -= 1;
            }
            if let Some(key) = gone.dedup {
                // Only if no later message took the same key (a repost after expiry).
                if self.dedup.get(&key) == Some(&gone.seq) {
                    self.dedup.remove(&key);
                }
            }
            self.bytes -= gone.frame.as_ref().map_or(0, |f| f.len()) + ENTRY_OVERHEAD;
        }
        if self.entries.is_empty() {
            self.chunk = BytesMut::new();
        }
        if self.dedup.capacity() > 4 * self.dedup.len() + 64 {
            self.dedup.shrink_to_fit();
        }
    }

    /// The newest seq that has left the window.
    pub(crate) fn floor(&self) -> Seq {
        self.floor
    }

    /// The seq of the message `viewer_id` posted with `client_id`, if it is still known.
    pub(crate) fn duplicate(&self, viewer_id: &str, client_id: &str) -> Option<Seq> {
        self.dedup
            .get(&self.dedup_key(viewer_id, client_id))
            .copied()
    }

    /// The welcome's history and the backlog after it: everything after `after` when
    /// that is in the window, else the last messages.
    pub(crate) fn snapshot(&self, after: Option<Seq>) -> Snapshot {
        match after.filter(|s| *s >= self.floor) {
            Some(after) => {
                let start = self.entries.partition_point(|e| e.seq <= after);
                let mut missed = self
                    .entries
                    .range(start..)
                    .filter_map(|e| e.frame.as_ref().map(|f| (e.seq, f)));
                let history = missed
                    .by_ref()
                    .take(WELCOME_HISTORY)
                    .filter_map(|(_, f)| decode(f))
                    .collect();
                let backlog = missed.map(|(s, f)| (s, f.clone())).collect();
                Snapshot {
                    recovered: true,
                    history,
                    backlog,
                }
            }
            None => {
                let mut last: Vec<RoomEvent> = self
                    .entries
                    .iter()
                    .rev()
                    .filter(|e| e.chat)
                    .filter_map(|e| e.frame.as_ref())
                    .take(WELCOME_HISTORY)
                    .filter_map(decode)
                    .collect();
                last.reverse();
                Snapshot {
                    recovered: false,
                    history: last,
                    backlog: Vec::new(),
                }
            }
        }
    }

    /// The event with this seq, if the window has it (decoded from its frame).
    pub(crate) fn event(&self, seq: Seq) -> Option<RoomEvent> {
        let i = self.entries.binary_search_by_key(&seq, |e| e.seq).ok()?;
        decode(self.entries[i].frame.as_ref()?)
    }

    /// Whether the chat message with this seq is in the window, not deleted.
    pub(crate) fn has_chat(&self, seq: Seq) -> bool {
        self.entries
            .binary_search_by_key(&seq, |e| e.seq)
            .is_ok_and(|i| self.entries[i].chat && self.entries[i].frame.is_some())
    }

    /// Drops the frame of the chat message with this seq (its `(viewerId, clientId)`
    /// stays known, so a re-send is not posted again); true if it was there.
    pub(crate) fn remove_chat(&mut self, seq: Seq) -> bool {
        let Ok(i) = self.entries.binary_search_by_key(&seq, |e| e.seq) else {
            return false;
        };
        let entry = &mut self.entries[i];
        if !entry.chat {
            return false;
        }
        let Some(frame) = entry.frame.take() else {
            return false;
        };
        self.bytes -= frame.len();
        self.chats -= 1;
        true
    }

    /// Accounted bytes (see the module doc).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Events in the window, tombstones included.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lucarne_protocol::{ChatMessage, Deleted, Role};

    fn chat(seq: Seq, text: &str) -> RoomEvent {
        RoomEvent::Chat(ChatMessage {
            seq,
            id: format!("1-{seq}"),
            viewer_id: "v1".into(),
            name: "Ana".into(),
            colour: "#ff6b6b".into(),
            text: text.into(),
            ts: 0,
            role: Role::Viewer,
            client_id: Some(format!("c{seq}")),
            question: false,
        })
    }

    fn filled(n: Seq, text: &str, ts: u64) -> Window {
        let mut w = Window::new(0);
        for seq in 1..=n {
            w.push(ts, &chat(seq, text));
            w.trim(ts);
        }
        w
    }

    fn seqs(events: &[RoomEvent]) -> Vec<Seq> {
        events.iter().map(RoomEvent::seq).collect()
    }

    #[test]
    fn resume_inside_the_window_is_exact() {
        let w = filled(120, "hi", 1_000);
        let s = w.snapshot(Some(40));
        assert!(s.recovered);
        assert_eq!(seqs(&s.history), (41..=90).collect::<Vec<_>>());
        let rest: Vec<Seq> = s.backlog.iter().map(|(s, _)| *s).collect();
        assert_eq!(rest, (91..=120).collect::<Vec<_>>());
        let s = w.snapshot(Some(120));
        assert!(s.recovered && s.history.is_empty() && s.backlog.is_empty());
        let s = w.snapshot(None);
        assert!(!s.recovered);
        assert_eq!(seqs(&s.history), (71..=120).collect::<Vec<_>>());
    }

    #[test]
    fn the_window_keeps_ten_minutes_and_at_least_500_messages() {
        let mut w = filled(700, "hi", 1_000);
        w.trim(1_000 + WINDOW_MS + 1);
        assert_eq!(w.len(), MIN_CHATS);
        assert_eq!(w.floor(), 200);
        let w = filled(MAX_EVENTS as Seq + 10, "hi", 5_000);
        assert_eq!(w.len(), MAX_EVENTS);
        assert_eq!(w.floor(), 10);
    }

    #[test]
    fn accounted_bytes_are_the_frames_plus_a_fixed_part_and_stay_under_the_bound() {
        let w = filled(3, "hi", 1_000);
        let frame = serde_json::to_vec(&chat(1, "hi")).unwrap().len();
        assert_eq!(w.bytes(), 3 * (frame + ENTRY_OVERHEAD));
        // Messages of 2 KB (500 four-byte characters) hit the byte bound long before
        // the count bound, and the accounted size stops growing there.
        let big = "😀".repeat(500);
        let mut w = Window::new(0);
        for seq in 1..=10_000 {
            w.push(1_000, &chat(seq, &big));
            w.trim(1_000);
            assert!(w.bytes() <= MAX_BYTES, "{} at {seq}", w.bytes());
        }
        assert!(w.len() < MAX_EVENTS && w.len() > MIN_CHATS, "{}", w.len());
        assert!(w.bytes() > MAX_BYTES - 3_000, "{}", w.bytes());
        // The dedup map holds the window's keys only.
        assert_eq!(w.dedup.len(), w.len());
        assert_eq!(w.duplicate("v1", "c10000"), Some(10_000));
        assert_eq!(w.duplicate("v1", "c1"), None);
    }

    #[test]
    fn deleted_messages_leave_history_and_their_resend_stays_a_duplicate() {
        let mut w = filled(10, "hi", 1_000);
        let before = w.bytes();
        assert!(w.remove_chat(5));
        assert!(!w.remove_chat(5));
        assert!(!w.remove_chat(99));
        assert!(w.bytes() < before);
        assert_eq!(w.duplicate("v1", "c5"), Some(5));
        w.push(
            1_000,
            &RoomEvent::Deleted(Deleted {
                seq: 11,
                id: "1-5".into(),
            }),
        );
        let s = w.snapshot(None);
        assert_eq!(seqs(&s.history), [1, 2, 3, 4, 6, 7, 8, 9, 10]);
        let s = w.snapshot(Some(3));
        assert!(s.recovered);
        assert_eq!(seqs(&s.history), [4, 6, 7, 8, 9, 10, 11]);
    }
}
