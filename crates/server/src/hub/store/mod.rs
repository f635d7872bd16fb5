//! Persistence of the hub behind one trait, [`Store`]: what must survive a restart (chat
//! history, deletions, bans, room settings, each room's epoch and seq, the identity
//! secret, who voted on which question) and nothing live (connections, counts, mutes).
//!
//! - [`sqlite`]: the default, one embedded SQLite file (`--data-dir`).
//! - [`memory`]: keeps nothing across restarts (`--chat-db :memory:`, unit tests).
//!
//! # Contract
//! Every backend keeps this contract; the room relies on nothing else (no SQL, no file,
//! no particular thread).
//!
//! - **Authority.** The room in memory is the authority while the server runs; the store
//!   is written behind it. [`Store::record`] only queues a change and returns at once: it
//!   must never make a viewer wait for a disk or a network.
//! - **Ordering.** Changes to one room are applied in the order they were recorded (the
//!   room records under its lock, so that is the order viewers saw). Rooms are
//!   independent. A [`Store::load_room`] issued after a `record` sees that change.
//! - **Durability.** A chat message is acknowledged (fanned out to viewers) once it is
//!   recorded, before it is durable. A crash may lose what was recorded since the
//!   backend's last write (SQLite: what is still queued and the transaction being
//!   committed, at most 512 changes; with `synchronous=NORMAL` a power cut may also take
//!   the last commits, a process crash does not). What is lost is the end: a reloaded
//!   room never has a change without the ones recorded before it. Viewers notice by
//!   seq (a `lastSeq` above the reloaded room's is not resumed exactly).
//! - **Close.** [`Store::close`] resolves once every change recorded before it is
//!   durable; it is the last call the hub makes. What comes after it may be dropped
//!   (SQLite drops changes with a warning and fails loads with [`StoreError::Closed`]).
//!   Calling it twice is harmless.
//! - **Failures.** A change the backend refuses is logged and skipped (the room in
//!   memory stays right; only a reload would miss it); a failed load makes the room
//!   unavailable to that viewer, who retries later.
//! - **Secret.** [`Store::secret`] is the same across restarts, or every viewer's
//!   identity changes with them.
//! - **Ping.** [`Store::ping`] resolves once the backend has shown it can take a write
//!   now, behind what was recorded before it; it writes nothing. `/readyz` asks it
//!   with a short deadline, so a store that hangs or is locked takes the node out of
//!   rotation.
//!
//! A backend's tests run [`contract`]'s checks (the memory and SQLite stores do).
//!
//! Several nodes (the Redis store, next) will need more than this trait: seqs allocated
//! by the shared store and fan-out through it. The trait is kept to the data so that
//! change stays in one place.

pub mod memory;
pub mod sqlite;

use futures_util::future::BoxFuture;
use lucarne_protocol::{Epoch, RoomEvent, Seq};

/// Events a store keeps per room at most; older ones are pruned (the resume window is
/// far smaller, see `room`).
pub const KEEP_EVENTS: usize = 10_000;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend (database, server) refused.
    #[error("{backend}: {source}")]
    Backend {
        /// Which backend (`sqlite`, ...).
        backend: &'static str,
        /// Its error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The data directory could not be prepared.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A stored value could not be decoded.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// The store was closed.
    #[error("store closed")]
    Closed,
}

/// A durable event and when it happened (unix ms), which decides how long it is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Server time, unix milliseconds.
    pub ts: u64,
    /// The event as sent to viewers.
    pub event: RoomEvent,
}

/// A ban on one identity in one room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    /// Who.
    pub viewer_id: String,
    /// Until when (unix ms); forever when `None`.
    pub until_ms: Option<u64>,
    /// Why, for the record.
    pub reason: Option<String>,
}

/// A room as it was persisted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredRoom {
    /// The room's epoch.
    pub epoch: Epoch,
    /// Highest seq ever given.
    pub last_seq: Seq,
    /// Every event with a seq above this one is in `events` (deleted messages aside).
    pub floor_seq: Seq,
    /// Hearts ever sent.
    pub hearts_total: u64,
    /// Slow mode interval, 0 when off.
    pub slow_mode_secs: u32,
    /// Normalised blocked words.
    pub blocked_words: Vec<String>,
    /// The most recent events, oldest first.
    pub events: Vec<StoredEvent>,
    /// Bans still in force.
    pub bans: Vec<Ban>,
    /// Votes on questions, `(question id, viewer id)`, the newest questions' first; at
    /// most [`MAX_LOADED_VOTES`].
    pub votes: Vec<(String, String)>,
}

/// Votes a load returns at most (a room has at most `questions::MAX_OPEN` open
/// questions; this bounds a load whatever the table holds).
pub const MAX_LOADED_VOTES: usize = 200_000;

/// One change to a room, recorded in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The room was created with this epoch (its history starts empty).
    Created {
        /// The new epoch.
        epoch: Epoch,
    },
    /// A durable event was published (it carries its seq).
    Appended(StoredEvent),
    /// A chat message was removed (the `deleted` event is appended separately).
    Removed {
        /// The message id.
        id: String,
    },
    /// A ban was placed (or replaced).
    Banned(Ban),
    /// A ban was lifted.
    Unbanned {
        /// Who.
        viewer_id: String,
    },
    /// Moderation settings changed.
    Settings {
        /// Slow mode interval, 0 when off.
        slow_mode_secs: u32,
        /// Normalised blocked words.
        blocked_words: Vec<String>,
    },
    /// The hearts total moved.
    HeartsTotal(u64),
    /// A viewer's first vote on a question (the same vote recorded twice is one).
    Voted {
        /// The question's message id.
        question: String,
        /// Who.
        viewer_id: String,
    },
}

/// Where the hub keeps what must outlive the process.
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// The key that signs viewer identities; the same across restarts.
    fn secret(&self) -> [u8; 32];
    /// The room's persisted state with at most `recent` events, or `None` if the room
    /// was never created.
    fn load_room(
        &self,
        room: &str,
        recent: usize,
    ) -> BoxFuture<'static, Result<Option<StoredRoom>, StoreError>>;
    /// Queues a change; never blocks (see the module doc's contract).
    fn record(&self, room: &str, change: Change);
    /// Makes everything recorded so far durable, then stops; later changes are dropped.
    fn close(&self) -> BoxFuture<'static, ()>;
    /// Whether the backend can take a write now (see the module doc); writes nothing.
    fn ping(&self) -> BoxFuture<'static, Result<(), StoreError>>;
}

/// What every backend must pass, as far as one process can check it (ordering, reads
/// after writes, what a load returns); each backend's tests run it.
#[cfg(test)]
pub(crate) mod contract {
    use super::*;
    use lucarne_protocol::{ChatMessage, Deleted, Role};

    fn chat(seq: Seq) -> StoredEvent {
        StoredEvent {
            ts: 1000 + seq,
            event: RoomEvent::Chat(ChatMessage {
                seq,
                id: format!("4d-{seq}"),
                viewer_id: "v1".into(),
                name: "Ana".into(),
                colour: "#ff6b6b".into(),
                text: format!("message {seq}"),
                ts: 1000 + seq,
                role: Role::Viewer,
                client_id: Some(format!("c{seq}")),
                question: false,
            }),
        }
    }

    fn seqs(room: &StoredRoom) -> Vec<Seq> {
        room.events.iter().map(|e| e.event.seq()).collect()
    }

    /// Records a room's life, then checks that loads see all of it, in order.
    pub(crate) async fn keeps_the_contract(store: &dyn Store) {
        store.ping().await.expect("an open store answers a ping");
        assert!(store.load_room("r", 10).await.unwrap().is_none());
        store.record("r", Change::Created { epoch: 77 });
        for seq in 1..=5 {
            store.record("r", Change::Appended(chat(seq)));
        }
        for (question, viewer) in [
            ("4d-3", "v1"),
            ("4d-3", "v2"),
            ("4d-3", "v1"),
            ("4d-2", "v1"),
        ] {
            store.record(
                "r",
                Change::Voted {
                    question: question.into(),
                    viewer_id: viewer.into(),
                },
            );
        }
        store.record("r", Change::Removed { id: "4d-2".into() });
        let deleted = RoomEvent::Deleted(Deleted {
            seq: 6,
            id: "4d-2".into(),
        });
        store.record(
            "r",
            Change::Appended(StoredEvent {
                ts: 2000,
                event: deleted,
            }),
        );
        let ban = |viewer_id: &str, until_ms| Ban {
            viewer_id: viewer_id.into(),
            until_ms,
            reason: None,
        };
        store.record("r", Change::Banned(ban("v9", None)));
        store.record("r", Change::Banned(ban("v8", Some(1))));
        store.record("r", Change::Banned(ban("v7", None)));
        store.record(
            "r",
            Change::Unbanned {
                viewer_id: "v7".into(),
            },
        );
        // Only the last settings and total count.
        for (secs, total) in [(9, 40), (5, 42)] {
            let blocked_words = vec![format!("spam{secs}")];
            store.record(
                "r",
                Change::Settings {
                    slow_mode_secs: secs,
                    blocked_words,
                },
            );
            store.record("r", Change::HeartsTotal(total));
        }
        let room = store.load_room("r", 10).await.unwrap().unwrap();
        assert_eq!((room.epoch, room.last_seq, room.floor_seq), (77, 6, 0));
        assert_eq!((room.hearts_total, room.slow_mode_secs), (42, 5));
        assert_eq!(room.blocked_words, ["spam5"]);
        assert_eq!(seqs(&room), [1, 3, 4, 5, 6], "the removed message is gone");
        let mut votes = room.votes.clone();
        votes.sort();
        assert_eq!(
            votes,
            [("4d-3".into(), "v1".into()), ("4d-3".into(), "v2".into())],
            "a vote recorded twice is one; a removed question's votes go with it"
        );
        assert_eq!(room.events[0], chat(1));
        // Expired and lifted bans are not loaded.
        assert_eq!(room.bans, [ban("v9", None)]);
        // A partial load says where its events start.
        let room = store.load_room("r", 2).await.unwrap().unwrap();
        assert_eq!((seqs(&room), room.floor_seq), (vec![5, 6], 4));
        // Rooms are apart.
        assert!(store.load_room("other", 10).await.unwrap().is_none());
    }
}
