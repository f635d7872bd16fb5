//! Persistence of the hub behind one trait, [`Store`]: what must survive a restart (chat
//! history, deletions, bans, room settings, each room's epoch and seq, the identity
//! secret) and nothing live (connections, counts, mutes).
//!
//! - [`sqlite`]: the default, one embedded SQLite file (`--data-dir`).
//! - [`memory`]: keeps nothing across restarts (`--chat-db :memory:`, unit tests).
//!
//! The room in memory is the authority while the server runs; the store is written
//! behind it. [`Store::record`] only queues a change (it must never make a viewer wait for
//! a disk), and changes are applied in the order they were recorded. A load issued after
//! a `record` sees that change. Losing the last few queued changes on a crash is
//! accepted; a graceful shutdown ([`Store::close`]) loses nothing.
//!
//! Several nodes (a later Redis store) will need more than this trait: seqs allocated by
//! the shared store and fan-out through it. The trait is kept to the data so that change
//! stays in one place.

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
    /// SQLite refused.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
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
}

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
    /// Queues a change; never blocks.
    fn record(&self, room: &str, change: Change);
    /// Applies everything queued, then stops; later changes are dropped.
    fn close(&self) -> BoxFuture<'static, ()>;
}
