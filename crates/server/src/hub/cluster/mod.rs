//! The chat hub on several nodes, through Redis (`--redis redis://…`). It owns every
//! Redis key and command of the hub; rooms call it, it never touches a room's lock, a
//! socket or the SQLite store. Without `--redis` nothing here runs and a room is what it
//! always was: one process sequences, keeps and fans out its events.
//!
//! # A room across nodes
//! Each node keeps its own [`Room`](super::room::Room) (gate, ticker, fan-out ring,
//! resume window) for the viewers connected to it. What must be one for all nodes lives
//! in Redis, under keys sharing the hash tag `{room}` (one slot, so the script below also
//! runs on Redis Cluster):
//! - `lucarne:{room}:epoch`: created once with `SET NX` (a random 53-bit number); every
//!   node reads the same epoch. If Redis loses it, the next node makes a new one and
//!   viewers re-sync by the usual epoch rule.
//! - `lucarne:{room}:seq` and `lucarne:{room}:log`: one Lua script `INCR`s the seq and
//!   `XADD`s the event to the room's Stream with the explicit id `<seq>-0` and
//!   `MAXLEN ~ MAX_EVENTS` (the resume window's count bound). The script runs
//!   atomically, so stream order = seq order and the seq is global; an event is stored
//!   with `seq: 0` and filled in from its stream id when read (its wire id names the
//!   epoch, which each node knows).
//!
//! # Fan-out and resume
//! A node that has a room loaded follows its stream: `XREAD BLOCK` from the last seq it
//! applied, on a connection of its own (a blocking read would stall a shared one). Every
//! event, the node's own posts included, reaches the room by that one path and in
//! stream order, and goes into the node's window and ring as before: a viewer's join
//! (subscribe + snapshot under the room's lock) still meets the ring exactly. The
//! stream, not a pub/sub message, is the source of truth, so a follower that was cut
//! off reads on from its last seq and misses nothing the stream still holds. Before a
//! viewer joins, its node waits (≤ 2 s) until it has applied the room's current seq, so
//! a viewer resuming on B with `(epoch, lastSeq)` from A gets exactly what it missed
//! (and never a seq "from the future", which the log would answer with the last
//! messages instead).
//!
//! # Viewer count
//! Each node writes, every second per loaded room, its own count into the hash
//! `lucarne:{room}:viewers` (field = the node's random id, value = `count:expiry` by
//! Redis's clock, 5 s ahead) and reads back the sum of the unexpired fields, in one
//! script; stale fields are dropped as they are met, so a node that died stops counting
//! within 5 s. The room shows its own viewers plus the others' (the ticker still pushes
//! it at most once a second).
//!
//! # Acknowledgement and an unreachable Redis
//! A post is accepted only when the script returned its seq; the sender sees its own
//! message come back through the stream like everyone else (as on one node: there is no
//! separate ack). If Redis does not answer, the post is refused `unavailable` with a
//! retry hint, and a re-send with the same `clientId` is recognised as a duplicate once
//! the first attempt shows up in the stream: nothing acknowledged is lost, nothing is
//! posted twice by a retry. Video never goes through Redis.
//!
//! # Why Redis Streams, and why this crate
//! A home-made node-to-node protocol would need its own membership, ordering and
//! retransmission; a Redis Stream gives a totally ordered, bounded, replayable log
//! with blocking reads, and `INCR` in a script gives the global seq in one round trip.
//! Client: [`redis`](https://crates.io/crates/redis) 0.32 (`redis-rs`, maintained under
//! the redis-rs org with Valkey/Redis maintainers, the most used Rust client), with
//! `tokio-comp` and its `ConnectionManager`: a multiplexed connection that reconnects
//! by itself with backoff, and `Script` (EVALSHA, falling back to EVAL). `fred` is as
//! capable but larger; the 1.x line of `redis` appeared recently and 0.32 is what the
//! rest of the ecosystem pins today.
//!
//! # Not yet (issue 14, item 1)
//! Hearts, flood limits, mutes, bans, slow mode and blocked words are
//! still per node; deletes are refused on Redis; a follower per room (not one `XREAD`
//! for all of a node's rooms); chat sockets are not yet told "reconnecting" when Redis
//! goes away.

use super::log::MessageId;
use super::store::StoredEvent;
use lucarne_protocol::{Epoch, RoomEvent, Seq};
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::AsyncConnectionConfig;
use std::collections::HashMap;
use std::time::Duration;

/// Why Redis could not do what the hub asked.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Redis refused or could not be reached.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A stream entry that is not an event this node can read.
    #[error("redis: bad stream entry: {0}")]
    Entry(String),
}

/// INCR the seq, XADD the event under the id `<seq>-0`, cap the stream; returns the seq.
const APPEND: &str = r"
local seq = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], seq .. '-0', 'ts', ARGV[2], 'e', ARGV[3])
return seq
";

/// Sets this node's viewer count of a room (field = node id, value = `count:expiry`,
/// Redis's clock) and returns the sum over the nodes whose entry has not expired,
/// dropping the others: a node that died stops counting after [`PRESENCE_TTL`].
const PRESENCE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local mine = tonumber(ARGV[2])
if mine > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], string.format('%d:%d', mine, now + tonumber(ARGV[3])))
else
  redis.call('HDEL', KEYS[1], ARGV[1])
end
local total = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local c, exp = string.match(all[i + 1], '(%d+):(%d+)')
  if c and tonumber(exp) > now then
    total = total + tonumber(c)
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return total
";

/// How long a node's viewer count stands without being written again.
pub(crate) const PRESENCE_TTL: Duration = Duration::from_secs(5);

/// How long a follower's `XREAD` blocks before it looks again whether its room is gone.
pub(crate) const FOLLOW_BLOCK: Duration = Duration::from_secs(2);

/// The node's link to Redis.
pub struct Cluster {
    /// Opens the followers' own connections.
    client: redis::Client,
    /// Shared, reconnecting: appends, epochs, seqs.
    conn: ConnectionManager,
    append: redis::Script,
    presence: redis::Script,
    /// This process among the nodes (its field in the viewer-count hashes).
    node: String,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").finish_non_exhaustive()
    }
}

/// A room as Redis holds it.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) epoch: Epoch,
    /// The last seq given.
    pub(crate) seq: Seq,
    /// The events the stream still holds, oldest first, seqs filled in.
    pub(crate) events: Vec<StoredEvent>,
}

fn key(room: &str, what: &str) -> String {
    format!("lucarne:{{{room}}}:{what}")
}

/// A stream entry's fields, as `XRANGE`/`XREAD` return them.
type Entry = (String, HashMap<String, String>);

impl Cluster {
    /// Connects to `url` (`redis://host:port[/db]`); fails if Redis does not answer now.
    pub async fn connect(url: &str) -> Result<Cluster, ClusterError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_secs(2))
            .set_max_delay(2_000);
        let conn = client.get_connection_manager_with_config(config).await?;
        Ok(Cluster {
            client,
            conn,
            append: redis::Script::new(APPEND),
            presence: redis::Script::new(PRESENCE),
            node: format!("{:016x}", rand::random::<u64>()),
        })
    }

    /// Whether Redis answers now (for `/readyz`).
    pub async fn ping(&self) -> Result<(), ClusterError> {
        let mut conn = self.conn.clone();
        redis::cmd("PING").query_async::<()>(&mut conn).await?;
        Ok(())
    }

    /// The room's epoch (made now if it has none), last seq and stream.
    pub(crate) async fn open_room(&self, room: &str) -> Result<Opened, ClusterError> {
        let mut conn = self.conn.clone();
        let fresh: Epoch = rand::random::<u64>() >> 11;
        let _: Option<String> = redis::cmd("SET")
            .arg(key(room, "epoch"))
            .arg(fresh)
            .arg("NX")
            .query_async(&mut conn)
            .await?;
        let epoch: Epoch = redis::cmd("GET")
            .arg(key(room, "epoch"))
            .query_async(&mut conn)
            .await?;
        let seq = self.seq(room).await?;
        let entries: Vec<Entry> = redis::cmd("XRANGE")
            .arg(key(room, "log"))
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await?;
        let events = entries
            .iter()
            .map(|e| decode(epoch, e))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|e| e.event.seq() <= seq)
            .collect();
        Ok(Opened { epoch, seq, events })
    }

    /// The room's last seq in Redis.
    pub(crate) async fn seq(&self, room: &str) -> Result<Seq, ClusterError> {
        let mut conn = self.conn.clone();
        let seq: Option<Seq> = redis::cmd("GET")
            .arg(key(room, "seq"))
            .query_async(&mut conn)
            .await?;
        Ok(seq.unwrap_or(0))
    }

    /// Gives `event` (its seq and id left empty) the room's next seq and stores it in the
    /// stream; returns the seq once Redis has it.
    pub(crate) async fn append(
        &self,
        room: &str,
        ts: u64,
        event: &RoomEvent,
    ) -> Result<Seq, ClusterError> {
        let mut conn = self.conn.clone();
        let json = serde_json::to_string(event).expect("events serialise");
        let seq: Seq = self
            .append
            .key(key(room, "seq"))
            .key(key(room, "log"))
            .arg(super::room::MAX_EVENTS)
            .arg(ts)
            .arg(json)
            .invoke_async(&mut conn)
            .await?;
        Ok(seq)
    }

    /// Sets this node's viewer count of `room`; returns the count over all nodes.
    pub(crate) async fn presence(&self, room: &str, viewers: u32) -> Result<u32, ClusterError> {
        let mut conn = self.conn.clone();
        let total: u64 = self
            .presence
            .key(key(room, "viewers"))
            .arg(&self.node)
            .arg(viewers)
            .arg(PRESENCE_TTL.as_millis() as u64)
            .invoke_async(&mut conn)
            .await?;
        Ok(u32::try_from(total).unwrap_or(u32::MAX))
    }

    /// A connection for one follower (blocking reads need their own).
    pub(crate) async fn follower(&self) -> Result<MultiplexedConnection, ClusterError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(FOLLOW_BLOCK + Duration::from_secs(3));
        Ok(self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?)
    }

    /// The room's events after seq `after`, waiting up to [`FOLLOW_BLOCK`] for one.
    pub(crate) async fn read_after(
        conn: &mut MultiplexedConnection,
        room: &str,
        epoch: Epoch,
        after: Seq,
    ) -> Result<Vec<StoredEvent>, ClusterError> {
        let reply: Option<Vec<(String, Vec<Entry>)>> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(256)
            .arg("BLOCK")
            .arg(FOLLOW_BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(key(room, "log"))
            .arg(format!("{after}-0"))
            .query_async(conn)
            .await?;
        reply
            .into_iter()
            .flatten()
            .flat_map(|(_, entries)| entries)
            .map(|e| decode(epoch, &e))
            .collect()
    }
}

/// A stream entry as the event it stores, its seq (and a chat's id) filled in.
fn decode(epoch: Epoch, (id, fields): &Entry) -> Result<StoredEvent, ClusterError> {
    let bad = || ClusterError::Entry(id.clone());
    let seq: Seq = id
        .strip_suffix("-0")
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    let ts: u64 = fields
        .get("ts")
        .and_then(|t| t.parse().ok())
        .ok_or_else(bad)?;
    let mut event: RoomEvent = fields
        .get("e")
        .and_then(|e| serde_json::from_str(e).ok())
        .ok_or_else(bad)?;
    match &mut event {
        RoomEvent::Chat(m) => {
            m.seq = seq;
            m.id = MessageId { epoch, seq }.to_string();
        }
        RoomEvent::Deleted(d) => d.seq = seq,
        RoomEvent::Unknown => return Err(bad()),
    }
    Ok(StoredEvent { ts, event })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lucarne_protocol::{ChatMessage, Role};

    #[test]
    fn an_entry_is_read_back_with_its_seq_and_id_from_the_stream_id() {
        let chat = RoomEvent::Chat(ChatMessage {
            seq: 0,
            id: String::new(),
            viewer_id: "v1".into(),
            name: "Ana".into(),
            colour: "#ff6b6b".into(),
            text: "hi".into(),
            ts: 5,
            role: Role::Viewer,
            client_id: None,
        });
        let fields = HashMap::from([
            ("ts".to_owned(), "5".to_owned()),
            ("e".to_owned(), serde_json::to_string(&chat).unwrap()),
        ]);
        let e = decode(0x1f, &("42-0".into(), fields.clone())).unwrap();
        assert_eq!(e.ts, 5);
        match e.event {
            RoomEvent::Chat(m) => assert_eq!((m.seq, m.id.as_str()), (42, "1f-42")),
            other => panic!("{other:?}"),
        }
        assert!(decode(1, &("42-1".into(), fields)).is_err(), "not ours");
        assert_eq!(key("demo", "seq"), "lucarne:{demo}:seq");
    }
}
