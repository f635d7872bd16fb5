//! The default [`Store`]: one SQLite file (bundled, nothing to install).
//!
//! One thread owns the connection and applies changes in the order they were recorded,
//! grouping whatever is queued into one transaction: a busy room costs a commit per
//! batch, not per message, and no async task ever waits on the disk. Loads go through the
//! same queue, so they see every change recorded before them. So do pings: a ping is a
//! write that changes nothing (`DELETE FROM meta WHERE 0`), which takes SQLite's write
//! lock and writes no page, answered once its batch is committed.
//!
//! WAL with `synchronous=NORMAL`: a power cut may lose the last transactions, never
//! corrupt the file.

use super::{
    Ban, Change, Store, StoreError, StoredEvent, StoredRoom, KEEP_EVENTS, MAX_LOADED_VOTES,
};
use futures_util::future::BoxFuture;
use lucarne_protocol::RoomEvent;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::mpsc;
use std::sync::Mutex;
use tokio::sync::oneshot;

/// Changes applied per transaction at most (bounds the time a load waits behind them).
const BATCH: usize = 512;

/// Prune a room's old events every this many appends.
const PRUNE_EVERY: u64 = 1000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS rooms (
    id TEXT PRIMARY KEY,
    epoch INTEGER NOT NULL,
    last_seq INTEGER NOT NULL DEFAULT 0,
    floor_seq INTEGER NOT NULL DEFAULT 0,
    hearts_total INTEGER NOT NULL DEFAULT 0,
    slow_mode_secs INTEGER NOT NULL DEFAULT 0,
    blocked_words TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS events (
    room TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    msg_id TEXT,
    body TEXT NOT NULL,
    PRIMARY KEY (room, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_by_msg ON events (room, msg_id);
CREATE TABLE IF NOT EXISTS bans (
    room TEXT NOT NULL,
    viewer_id TEXT NOT NULL,
    until_ms INTEGER,
    reason TEXT,
    PRIMARY KEY (room, viewer_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS votes (
    room TEXT NOT NULL,
    seq INTEGER NOT NULL,
    question TEXT NOT NULL,
    viewer_id TEXT NOT NULL,
    PRIMARY KEY (room, seq, viewer_id)
) WITHOUT ROWID;
PRAGMA user_version = 1;
";

enum Command {
    Record(String, Change),
    Load {
        room: String,
        recent: usize,
        reply: oneshot::Sender<Result<Option<StoredRoom>, StoreError>>,
    },
    Close(oneshot::Sender<()>),
    Ping(oneshot::Sender<Result<(), StoreError>>),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend {
            backend: "sqlite",
            source: Box::new(e),
        }
    }
}

/// A SQLite file written by a dedicated thread.
#[derive(Debug)]
pub struct SqliteStore {
    secret: [u8; 32],
    // A Mutex only to make the Sender `Sync` on every supported toolchain; it is held
    // for the duration of a channel send.
    queue: Mutex<Option<mpsc::Sender<Command>>>,
}

impl SqliteStore {
    /// Opens (or creates) the file and its directory. Blocking: call it off the runtime.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        let secret = load_or_create_secret(&conn)?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("lucarne-sqlite".into())
            .spawn(move || writer(conn, rx))
            .map_err(|source| StoreError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(SqliteStore {
            secret,
            queue: Mutex::new(Some(tx)),
        })
    }

    fn send(&self, cmd: Command) -> bool {
        match &*self.queue.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(q) => q.send(cmd).is_ok(),
            None => false,
        }
    }
}

fn load_or_create_secret(conn: &Connection) -> Result<[u8; 32], StoreError> {
    let found: Option<Vec<u8>> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'identity_secret'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    match found {
        Some(v) => v
            .try_into()
            .map_err(|_| StoreError::Corrupt("identity_secret is not 32 bytes".into())),
        None => {
            let secret: [u8; 32] = rand::random();
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('identity_secret', ?1)",
                params![secret.to_vec()],
            )?;
            Ok(secret)
        }
    }
}

impl Store for SqliteStore {
    fn secret(&self) -> [u8; 32] {
        self.secret
    }

    fn load_room(
        &self,
        room: &str,
        recent: usize,
    ) -> BoxFuture<'static, Result<Option<StoredRoom>, StoreError>> {
        let (reply, rx) = oneshot::channel();
        let sent = self.send(Command::Load {
            room: room.to_owned(),
            recent,
            reply,
        });
        Box::pin(async move {
            if !sent {
                return Err(StoreError::Closed);
            }
            rx.await.unwrap_or(Err(StoreError::Closed))
        })
    }

    fn record(&self, room: &str, change: Change) {
        if !self.send(Command::Record(room.to_owned(), change)) {
            tracing::warn!(room, "chat store closed; change dropped");
        }
    }

    fn close(&self) -> BoxFuture<'static, ()> {
        let (done, rx) = oneshot::channel();
        let sent = self.send(Command::Close(done));
        // Later records fail fast instead of queueing behind a stopped thread.
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).take();
        Box::pin(async move {
            if sent {
                let _ = rx.await;
            }
        })
    }

    fn ping(&self) -> BoxFuture<'static, Result<(), StoreError>> {
        let (reply, rx) = oneshot::channel();
        let sent = self.send(Command::Ping(reply));
        Box::pin(async move {
            if !sent {
                return Err(StoreError::Closed);
            }
            rx.await.unwrap_or(Err(StoreError::Closed))
        })
    }
}

/// The thread that owns the connection.
fn writer(mut conn: Connection, rx: mpsc::Receiver<Command>) {
    let mut appends: u64 = 0;
    while let Ok(first) = rx.recv() {
        let mut closing = None;
        let mut replies = Vec::new();
        let mut pings = Vec::new();
        let result = (|| -> Result<(), rusqlite::Error> {
            let tx = conn.transaction()?;
            let mut next = Some(first);
            let mut n = 0;
            while let Some(cmd) = next.take() {
                match cmd {
                    Command::Record(room, change) => {
                        if let Err(e) = apply(&tx, &room, change, &mut appends) {
                            tracing::error!(room, "chat store write failed: {e}");
                        }
                    }
                    Command::Load {
                        room,
                        recent,
                        reply,
                    } => replies.push((reply, load(&tx, &room, recent))),
                    Command::Ping(reply) => {
                        pings.push((reply, tx.execute("DELETE FROM meta WHERE 0", [])))
                    }
                    Command::Close(done) => {
                        closing = Some(done);
                        break;
                    }
                }
                n += 1;
                if n < BATCH {
                    next = rx.try_recv().ok();
                }
            }
            tx.commit()
        })();
        if let Err(e) = &result {
            tracing::error!("chat store commit failed: {e}");
        }
        for (reply, probed) in pings {
            let answer = match (probed, &result) {
                (Err(e), _) => Err(e.into()),
                (Ok(_), Err(e)) => Err(StoreError::Backend {
                    backend: "sqlite",
                    source: e.to_string().into(),
                }),
                (Ok(_), Ok(())) => Ok(()),
            };
            let _ = reply.send(answer);
        }
        // Answer loads only once their batch is committed: what they saw is on disk.
        for (reply, room) in replies {
            let _ = reply.send(room);
        }
        if let Some(done) = closing {
            drop(conn);
            let _ = done.send(());
            return;
        }
    }
}

fn apply(
    tx: &Connection,
    room: &str,
    change: Change,
    appends: &mut u64,
) -> Result<(), rusqlite::Error> {
    match change {
        Change::Created { epoch } => {
            tx.execute("DELETE FROM events WHERE room = ?1", params![room])?;
            tx.execute("DELETE FROM votes WHERE room = ?1", params![room])?;
            tx.execute(
                "INSERT OR REPLACE INTO rooms (id, epoch) VALUES (?1, ?2)",
                params![room, epoch as i64],
            )?;
        }
        Change::Appended(StoredEvent { ts, event }) => {
            let seq = event.seq();
            let msg_id = match &event {
                RoomEvent::Chat(m) => Some(m.id.as_str()),
                _ => None,
            };
            let body = serde_json::to_string(&event).expect("events serialise");
            tx.execute(
                "INSERT OR REPLACE INTO events (room, seq, ts, msg_id, body) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![room, seq as i64, ts as i64, msg_id, body],
            )?;
            tx.execute(
                "UPDATE rooms SET last_seq = MAX(last_seq, ?2) WHERE id = ?1",
                params![room, seq as i64],
            )?;
            *appends += 1;
            if (*appends).is_multiple_of(PRUNE_EVERY) {
                let floor = seq.saturating_sub(KEEP_EVENTS as u64) as i64;
                tx.execute(
                    "DELETE FROM events WHERE room = ?1 AND seq <= ?2",
                    params![room, floor],
                )?;
                tx.execute(
                    "UPDATE rooms SET floor_seq = MAX(floor_seq, ?2) WHERE id = ?1",
                    params![room, floor],
                )?;
                tx.execute(
                    "DELETE FROM votes WHERE room = ?1 AND seq <= ?2",
                    params![room, floor],
                )?;
            }
        }
        Change::Removed { id } => {
            tx.execute(
                "DELETE FROM events WHERE room = ?1 AND msg_id = ?2",
                params![room, id],
            )?;
            tx.execute(
                "DELETE FROM votes WHERE room = ?1 AND question = ?2",
                params![room, id],
            )?;
        }
        Change::Voted {
            question,
            viewer_id,
        } => {
            // The seq inside the id (`<epoch hex>-<seq>`) orders and prunes votes with
            // their question.
            let seq = question
                .rsplit_once('-')
                .and_then(|(_, s)| s.parse::<i64>().ok())
                .unwrap_or(0);
            tx.execute(
                "INSERT OR IGNORE INTO votes (room, seq, question, viewer_id) VALUES (?1, ?2, ?3, ?4)",
                params![room, seq, question, viewer_id],
            )?;
        }
        Change::Banned(Ban {
            viewer_id,
            until_ms,
            reason,
        }) => {
            tx.execute(
                "INSERT OR REPLACE INTO bans (room, viewer_id, until_ms, reason) VALUES (?1, ?2, ?3, ?4)",
                params![room, viewer_id, until_ms.map(|u| u as i64), reason],
            )?;
        }
        Change::Unbanned { viewer_id } => {
            tx.execute(
                "DELETE FROM bans WHERE room = ?1 AND viewer_id = ?2",
                params![room, viewer_id],
            )?;
        }
        Change::Settings {
            slow_mode_secs,
            blocked_words,
        } => {
            let words = serde_json::to_string(&blocked_words).expect("strings serialise");
            tx.execute(
                "UPDATE rooms SET slow_mode_secs = ?2, blocked_words = ?3 WHERE id = ?1",
                params![room, slow_mode_secs, words],
            )?;
        }
        Change::HeartsTotal(total) => {
            tx.execute(
                "UPDATE rooms SET hearts_total = ?2 WHERE id = ?1",
                params![room, total as i64],
            )?;
        }
    }
    Ok(())
}

fn load(tx: &Connection, room: &str, recent: usize) -> Result<Option<StoredRoom>, StoreError> {
    let row = tx
        .query_row(
            "SELECT epoch, last_seq, floor_seq, hearts_total, slow_mode_secs, blocked_words
             FROM rooms WHERE id = ?1",
            params![room],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, u32>(4)?,
                    r.get::<_, String>(5)?,
                ))
            },
        )
        .optional()?;
    let Some((epoch, last_seq, floor_seq, hearts_total, slow_mode_secs, words)) = row else {
        return Ok(None);
    };
    let blocked_words: Vec<String> =
        serde_json::from_str(&words).map_err(|e| StoreError::Corrupt(e.to_string()))?;

    let mut stmt = tx.prepare_cached(
        "SELECT seq, ts, body FROM events WHERE room = ?1 ORDER BY seq DESC LIMIT ?2",
    )?;
    let mut events = Vec::new();
    let mut rows = stmt.query(params![room, recent as i64])?;
    while let Some(r) = rows.next()? {
        let seq: i64 = r.get(0)?;
        let ts: i64 = r.get(1)?;
        let body: String = r.get(2)?;
        let event: RoomEvent = serde_json::from_str(&body)
            .map_err(|e| StoreError::Corrupt(format!("event {seq}: {e}")))?;
        events.push(StoredEvent {
            ts: ts as u64,
            event,
        });
    }
    events.reverse();
    let mut floor_seq = floor_seq as u64;
    if events.len() == recent {
        // Older events exist on disk but were not loaded.
        floor_seq = floor_seq.max(events[0].event.seq().saturating_sub(1));
    }

    let mut stmt = tx.prepare_cached(
        "SELECT viewer_id, until_ms, reason FROM bans WHERE room = ?1 AND (until_ms IS NULL OR until_ms > ?2)",
    )?;
    let now = crate::hub::now_ms() as i64;
    let bans = stmt
        .query_map(params![room, now], |r| {
            Ok(Ban {
                viewer_id: r.get(0)?,
                until_ms: r.get::<_, Option<i64>>(1)?.map(|u| u as u64),
                reason: r.get(2)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;

    let mut stmt = tx.prepare_cached(
        "SELECT question, viewer_id FROM votes WHERE room = ?1 ORDER BY seq DESC LIMIT ?2",
    )?;
    let votes = stmt
        .query_map(params![room, MAX_LOADED_VOTES as i64], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;

    Ok(Some(StoredRoom {
        votes,
        epoch: epoch as u64,
        last_seq: last_seq as u64,
        floor_seq,
        hearts_total: hearts_total as u64,
        slow_mode_secs,
        blocked_words,
        events,
        bans,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lucarne_protocol::{ChatMessage, Deleted, Role};

    fn chat(seq: u64) -> StoredEvent {
        StoredEvent {
            ts: 1000 + seq,
            event: RoomEvent::Chat(ChatMessage {
                seq,
                id: format!("e-{seq}"),
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

    #[tokio::test]
    async fn a_reopened_file_has_everything_that_was_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/chat.sqlite3");
        let store = SqliteStore::open(&path).unwrap();
        let secret = store.secret();
        assert!(store.load_room("r", 10).await.unwrap().is_none());
        store.record("r", Change::Created { epoch: 77 });
        for seq in 1..=5 {
            store.record("r", chat_event(seq));
        }
        store.record("r", Change::Removed { id: "e-2".into() });
        store.record(
            "r",
            Change::Appended(StoredEvent {
                ts: 2000,
                event: RoomEvent::Deleted(Deleted {
                    seq: 6,
                    id: "e-2".into(),
                }),
            }),
        );
        store.record(
            "r",
            Change::Banned(Ban {
                viewer_id: "v9".into(),
                until_ms: None,
                reason: Some("spam".into()),
            }),
        );
        store.record(
            "r",
            Change::Banned(Ban {
                viewer_id: "v8".into(),
                until_ms: Some(1),
                reason: None,
            }),
        );
        store.record(
            "r",
            Change::Settings {
                slow_mode_secs: 5,
                blocked_words: vec!["spam".into()],
            },
        );
        store.record("r", Change::HeartsTotal(42));
        store.close().await;

        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.secret(), secret, "identities survive a restart");
        let room = store.load_room("r", 10).await.unwrap().unwrap();
        assert_eq!(room.epoch, 77);
        assert_eq!(room.last_seq, 6);
        assert_eq!(room.floor_seq, 0);
        assert_eq!(room.hearts_total, 42);
        assert_eq!(room.slow_mode_secs, 5);
        assert_eq!(room.blocked_words, ["spam"]);
        let seqs: Vec<u64> = room.events.iter().map(|e| e.event.seq()).collect();
        assert_eq!(seqs, [1, 3, 4, 5, 6]);
        assert_eq!(room.events[0], chat(1));
        // The expired ban is not loaded.
        assert_eq!(room.bans.len(), 1);
        assert_eq!(room.bans[0].viewer_id, "v9");

        // A partial load says where its window starts.
        let room = store.load_room("r", 2).await.unwrap().unwrap();
        let seqs: Vec<u64> = room.events.iter().map(|e| e.event.seq()).collect();
        assert_eq!(seqs, [5, 6]);
        assert_eq!(room.floor_seq, 4);
        store.close().await;
    }

    #[tokio::test]
    async fn keeps_the_store_contract_and_close_makes_it_durable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sqlite3");
        let store = SqliteStore::open(&path).unwrap();
        super::super::contract::keeps_the_contract(&store).await;
        store.record("r", Change::HeartsTotal(43));
        store.close().await;
        store.close().await;
        store.record("r", Change::HeartsTotal(44));
        assert!(matches!(
            store.load_room("r", 10).await,
            Err(StoreError::Closed)
        ));
        assert!(matches!(store.ping().await, Err(StoreError::Closed)));
        let store = SqliteStore::open(&path).unwrap();
        let room = store.load_room("r", 10).await.unwrap().unwrap();
        assert_eq!(
            room.hearts_total, 43,
            "recorded before close: kept; after: dropped"
        );
        store.close().await;
    }

    #[tokio::test]
    async fn a_ping_is_not_answered_while_another_process_holds_the_write_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sqlite3");
        let store = SqliteStore::open(&path).unwrap();
        store.ping().await.unwrap();
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let short = std::time::Duration::from_millis(300);
        assert!(
            tokio::time::timeout(short, store.ping()).await.is_err(),
            "no answer while the lock is held"
        );
        other.execute_batch("COMMIT").unwrap();
        let long = std::time::Duration::from_secs(10);
        tokio::time::timeout(long, store.ping())
            .await
            .expect("answered once the lock is released")
            .unwrap();
        store.close().await;
    }

    fn chat_event(seq: u64) -> Change {
        Change::Appended(chat(seq))
    }

    #[tokio::test]
    async fn old_events_are_pruned_and_the_floor_moves() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("c.sqlite3")).unwrap();
        store.record("r", Change::Created { epoch: 1 });
        let n = KEEP_EVENTS as u64 + PRUNE_EVERY;
        for seq in 1..=n {
            store.record("r", chat_event(seq));
        }
        let room = store.load_room("r", 100_000).await.unwrap().unwrap();
        assert_eq!(room.floor_seq, n - KEEP_EVENTS as u64);
        assert_eq!(room.events.len(), KEEP_EVENTS);
        assert_eq!(room.events[0].event.seq(), room.floor_seq + 1);
        store.close().await;
    }
}
