//! The chat hub on several nodes, through Redis (`--redis redis://…`). It owns every
//! Redis key and command of the hub; rooms call it, it never touches a room's lock, a
//! socket or the SQLite store. Without `--redis` nothing here runs and a room is what it
//! always was: one process sequences, keeps and fans out its events.
//!
//! # A room across nodes
//! Each node keeps its own [`Room`](super::room::Room) (gate, ticker, fan-out ring,
//! resume window) for the viewers connected to it. What must be one for all nodes lives
//! in Redis, under keys sharing the hash tag `{room}` (one slot, so the scripts below
//! also run on Redis Cluster):
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
//! A node that has a room loaded follows its stream (and its hearts stream): `XREAD
//! BLOCK` from the last entry it read, on a connection of its own (a blocking read
//! would stall a shared one). After a read that was not full it waits
//! [`FOLLOW_GATHER`] (3 ms) before the next, so a steady flow is read several entries
//! at a time and each viewer's socket gets them in one write: measured with `bench
//! chat --cpu` (10,000 posts at 1000 msg/s, 10 viewers, medians of 3, twice each),
//! the node's CPU time went from 3740/3350 ms to 2310/2440 ms and redis-server's from
//! 1370/1350 ms to 1180/1170 ms, for at most 3 ms more delay. Every event, the node's own posts included, reaches the
//! room by that one path and in stream order, and goes into the node's window and ring as before: a viewer's join
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
//! # Hearts
//! A node batches its viewers' taps per tick (200 ms, per colour) and sends the batch
//! with one script: `INCRBY lucarne:{room}:hearts-total` and `XADD` to the stream
//! `lucarne:{room}:hearts` (`MAXLEN ~ 256`, expiring 60 s after its last batch) with
//! the total after it. The follower reads that stream in the same `XREAD` as the
//! room's; every node, the sender included, shows what it read, in one `hearts` frame
//! per tick (see `ticker`): each viewer still gets at most 5 frames a second however
//! many nodes send, and the total shown is the highest Redis counted, so every node
//! ends on the same total. A batch Redis did not take is dropped (taps are not worth a
//! retry); a node loading the room starts from `hearts-total`.
//!
//! # Questions' votes
//! A vote is counted once per viewer and question for every node by one script
//! (`VOTE`): `SADD lucarne:{room}:voters:<question>`, and when the viewer is new,
//! `HINCRBY lucarne:{room}:votes <question>` and an entry `{q, v}` (the question, its
//! total) in the room's hearts stream, which every node already follows for the
//! tick's state. Nodes show the highest total read (see `questions`), in one `votes`
//! frame per tick. The keys expire a day after the last vote. A vote Redis did not
//! take is refused `unavailable`, so the viewer can vote again.
//!
//! # Flood limits and mutes
//! The append script (`POST`) first decides a viewer's post for every node, on Redis's
//! clock, in the same round trip as the append (a refused post is not appended): the
//! mute, slow mode (its interval read from the room's `settings` hash), the blocked
//! word (found by the node, which keeps the list) and the flood limit, a GCRA of
//! `--chat-burst` per `--chat-window-ms` whose theoretical arrival time lives in
//! `lucarne:{room}:viewer:{viewerId}` with the mute and the last post. The key is the
//! identity, as on one node, and identities are signed with a secret every node shares
//! (see "The identity secret" below), so the same viewer on two nodes spends one
//! allowance and a mute earned on one holds on all. The key expires once
//! nothing in it matters (mute over, bucket refilled, slow mode interval past). O(1).
//! If Redis does not answer, the post is refused `unavailable`, like a post it cannot
//! store.
//!
//! # The identity secret
//! Viewer identities are signed with one secret for every node (`identity`). The
//! robust way is the operator's: `--identity-secret-file`, the same file on every node;
//! it wins, and nothing of it goes to Redis. Without it the nodes share one through
//! `lucarne:identity-secret`, `<64 hex>:<unix ms it was made>`, and must agree on it
//! even when Redis loses it (a restart without persistence): a node keeps its secret in
//! memory, so nodes that ran before still sign with the old one while a node started
//! after would make a new one, and the same viewer would be two people (its token
//! refused by the other nodes). So:
//! - every node checks every [`SECRET_CHECK`] (one script, `HOLD_SECRET`) that Redis
//!   holds its secret, and writes its own back when Redis has none or a *newer* one
//!   (later ms; equal ms: the greater hex). The oldest secret wins, on every node: it
//!   is the one the most tokens were signed with;
//! - a node that finds Redis holding an older secret than its own signs with that one
//!   from then on, and one that overwrote a newer one keeps accepting it: both keep
//!   accepting tokens of the secrets they had (`identity`, bounded), so no token any
//!   of them issued is refused by them after they converge;
//! - a node starting when Redis has no secret writes a fresh one, then waits
//!   `SECRET_GRACE` (2 s: four checks of the running nodes, and the reconnect their
//!   first check after a Redis restart needs) and checks again before it signs
//!   anything, so it starts with the running nodes' secret, not its own. (A new
//!   deployment's first node starts 2 s later for it.)
//!
//! What is not covered: a node started after the nodes converged knows only the
//! winning secret, so a token a loser node signed during the ≤ 2 s of disagreement is
//! refused there (that viewer becomes a new one). With every node restarted while
//! Redis was empty, the old secret is gone: only the file avoids that. The client key
//! of the budgets below is derived from the secret a node started with: a node that
//! adopts another one later (an old node came back after its grace) counts budgets
//! apart from the others until it restarts.
//!
//! # Per-address budgets
//! New identities, made-up rooms and wrong secrets per client address (`budgets`) are
//! counted in `lucarne:budget:<what>:<client key>` by one script (`BUDGET`, the same
//! GCRA as on one node, on Redis's clock), so an address spreading over N nodes gets
//! one node's budget, not N. The client key is an HMAC of the address keyed from the
//! identity secret, the same on every node; no address is stored. The key expires when
//! the bucket has refilled. Redis not answering within [`BUDGET_PATIENCE`]: the node
//! counts alone (see `budgets` for why neither open nor closed).
//!
//! # Moderation
//! Bans (`lucarne:{room}:bans`, a hash of viewer id to `{untilMs, reason}`), slow mode
//! and blocked words (`lucarne:{room}:settings`) are written by one script that also
//! puts a control entry in the room's stream, with the id `<seq>-<n>`: after the event
//! it follows, before the next (chat ids stay `<seq>-0`). Every other node's follower
//! applies it as it reads it, in order with the events: a ban closes the viewer's
//! sockets there, a settings change is pushed to its viewers (staff, for the words).
//! The node that made it applies it at once and skips its own entry. A node loading a
//! room reads the state and the stream in one `MULTI`, so it follows from exactly the
//! state it read. The deciding node also records the change in its own store, as on
//! one node; Redis is what nodes read. With Redis unreachable, an action is refused
//! `unavailable` and nothing changes anywhere.
//!
//! # Deletes
//! A delete is a `deleted` event appended like a post (it gets a seq). Every node drops
//! the message from its window when its follower applies it, and its viewers get the
//! event; a node loading the room later reads the message and then its `deleted` event
//! and drops it (`log`). The message stays in the Redis stream until `MAXLEN` trims it:
//! removing it there (`XDEL`) would leave a gap in the seqs that followers would take
//! for lost events. The deciding node checks that the message is in its window, which
//! matches the stream's bound.
//!
//! # Acknowledgement and an unreachable Redis
//! A post is accepted only when the script returned its seq; the sender sees its own
//! message come back through the stream like everyone else (as on one node: there is no
//! separate ack). If Redis does not answer, the post is refused `unavailable` with a
//! retry hint. A re-send with the same `clientId` is recognised as a duplicate by the
//! append script itself (it remembers each `(viewer, clientId)` for
//! [`CLIENT_ID_TTL`]), through whichever node it comes and even while the first attempt
//! is still on its way: nothing acknowledged is lost, nothing is posted twice by a retry.
//! (Checking only the node's window let a sender cut off mid-post, resuming on the other
//! node before its first attempt reached the stream, post it twice: seen in 2 of 5 runs
//! of the 200-disconnect test in `hub_redis.rs`.) Video never goes through Redis. The hub waits at most
//! [`PATIENCE`] for any answer (the reconnecting connection may retry for longer):
//! a post, a moderation action or a room to load is refused `unavailable` after it.
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
//! # Bounds
//! Per-viewer keys expire; the hearts stream expires when hearts stop; streams are
//! capped (`MAXLEN ~`); every script is O(1) but the viewer count's (O(nodes)). A
//! room's own state (epoch, seq, log, hearts total, bans, settings) lives as long as
//! the room is used, as it would in the store.
//!
//! # Redis going away
//! A room's follower is the node's witness: when it has had no answer from Redis for
//! [`UNREACHABLE`], or finds on reconnecting that Redis no longer holds the room's
//! epoch (a restart without persistence: the seq would count again from 1), the room
//! is *lost*: it is unloaded and every chat socket in it is closed with 1013 (try
//! again later). Widgets show "reconnecting" and come back with their `(epoch,
//! lastSeq)`; while Redis is away a join is refused the same way within [`PATIENCE`],
//! and once it is back the room is loaded again from Redis and each viewer gets
//! exactly what it missed (or, if Redis lost the room, the new epoch's history). An
//! append also checks the epoch in its script, so no event is ever written under an
//! epoch Redis no longer has. Video never depends on any of this. Nothing acknowledged
//! is lost as long as Redis keeps its data across the restart (`--appendonly yes`, as
//! `deploy/compose.yaml` runs it).
//!
//! # Not yet (issue 14, item 1)
//! A follower per room (not one `XREAD` for all of a node's rooms); bans are never
//! pruned from Redis (expired ones are skipped when read).

use super::log::MessageId;
use super::store::{Ban, StoredEvent};
use lucarne_protocol::{Epoch, RoomEvent, Seq};
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::AsyncConnectionConfig;
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

/// Why Redis could not do what the hub asked.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Redis refused or could not be reached.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis did not answer within [`PATIENCE`].
    #[error("redis: no answer within {} s", PATIENCE.as_secs())]
    Timeout,
    /// A stream entry that is not an event this node can read.
    #[error("redis: bad stream entry: {0}")]
    Entry(String),
}

/// Appends an event: INCR the seq, XADD the event under the id `<seq>-0`, cap the
/// stream; returns `{0, seq}`. Refuses (`EPOCH`) when the room's epoch is not the node's:
/// Redis lost the room (a restart without persistence), and a seq counted again from 1
/// under the old epoch would be taken by viewers for events they already have. With a
/// client id (`ARGV[5]`, the key's lifetime in ms; empty for none), a post whose
/// `(viewer, clientId)` was appended before is not appended again: `{5, seq}` (before
/// the gate, as on one node: a re-send spends nothing). With `ARGV[6]` = `1`, a viewer's
/// post, the post gate decides first, in the same script (one round trip per post): the
/// mute, slow mode (its interval read from the room's `settings`), the blocked word
/// (found by the caller: `ARGV[10]`), then the flood limit (GCRA: `ARGV[8]` at once,
/// then one per `ARGV[7]` ms; past it, a mute of `ARGV[9]` ms); a refusal is `{verdict,
/// retry_ms, muted_until_ms}` (see [`Verdict`]), its marks in `KEYS[5]`, which expires
/// when they no longer matter. Redis's clock, so every node measures the same time.
const POST: &str = r"
if redis.call('GET', KEYS[3]) ~= ARGV[4] then return redis.error_reply('EPOCH the room was lost') end
if ARGV[5] ~= '' then
  local seen = redis.call('GET', KEYS[4])
  if seen then return {5, tonumber(seen), 0} end
end
if ARGV[6] == '1' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local m = redis.call('HMGET', KEYS[5], 'muted', 'last', 'tat')
  local muted, last, tat = tonumber(m[1]) or 0, tonumber(m[2]) or 0, tonumber(m[3]) or 0
  if muted > now then return {1, muted - now, 0} end
  local slow = (tonumber(redis.call('HGET', KEYS[6], 'slow')) or 0) * 1000
  if slow > 0 and last + slow > now then return {2, last + slow - now, 0} end
  if ARGV[10] == '1' then return {3, 0, 0} end
  local period, burst, mute = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
  tat = math.max(tat, now)
  if tat - now > period * (burst - 1) then
    redis.call('HSET', KEYS[5], 'muted', now + mute)
    redis.call('PEXPIRE', KEYS[5], math.max(mute, tat - now, slow) + 1000)
    return {4, mute, now + mute}
  end
  redis.call('HSET', KEYS[5], 'tat', tat + period, 'last', now)
  redis.call('PEXPIRE', KEYS[5], math.max(tat + period - now, slow) + 1000)
end
local seq = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], seq .. '-0', 'ts', ARGV[2], 'e', ARGV[3])
if ARGV[5] ~= '' then redis.call('SET', KEYS[4], seq, 'PX', ARGV[5]) end
return {0, seq, 0}
";

/// How long a post's `(viewer, clientId)` is remembered in Redis, so a re-send through
/// any node is recognised even while the first attempt was still on its way (a widget
/// re-sends what it has pending as soon as it reconnects, possibly to another node).
const CLIENT_ID_TTL: Duration = Duration::from_secs(600);

/// What [`Cluster::append`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Appended {
    /// Stored with this seq.
    New(Seq),
    /// The same post (viewer and client id) was stored before, with this seq.
    Duplicate(Seq),
    /// The post gate refused it; nothing stored.
    Refused(Verdict),
}

/// A viewer's post, for the gate in [`Cluster::append`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gated<'a> {
    /// Whose post it is.
    pub(crate) viewer_id: &'a str,
    /// Whether the node found a blocked word in it.
    pub(crate) blocked: bool,
}

/// Adds a node's batch of hearts to the room's total and to its hearts stream (for
/// every node, this one included, to show); returns the total after it.
const HEARTS: &str = r"
local total = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 't', total, 'h', ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return total
";

/// Counts one viewer's vote on a question, once: `SADD` to the question's voters, and
/// when new, `HINCRBY` its total and `XADD` the total to the room's hearts stream (the
/// tick's state stream every node follows). Returns the total, or -1 for a vote this
/// viewer already cast (through any node).
const VOTE: &str = r"
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return -1 end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
local total = redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'q', ARGV[2], 'v', total)
redis.call('PEXPIRE', KEYS[3], ARGV[4])
return total
";

/// How long a room's votes (voter sets, totals) outlive the last vote.
const VOTES_TTL: Duration = Duration::from_secs(24 * 3600);

/// Writes a moderation change to the room's state and puts it in the room's stream as
/// a control entry `<seq>-<n>` (after the event with that seq, before the next one).
/// Returns 0 when there was nothing to change (an unban of someone not banned).
const CONTROL: &str = r"
local op = ARGV[3]
if op == 'ban' then
  redis.call('HSET', KEYS[3], ARGV[4], ARGV[5])
elseif op == 'unban' then
  if redis.call('HDEL', KEYS[3], ARGV[4]) == 0 then return 0 end
else
  redis.call('HSET', KEYS[4], op, ARGV[5])
end
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local sub = 1
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)[1]
if last then
  local s, n = string.match(last[1], '^(%d+)-(%d+)$')
  if tonumber(s) == seq then sub = tonumber(n) + 1 end
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], string.format('%d-%d', seq, sub), 'n', ARGV[2], 'c', ARGV[6])
return 1
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

/// Entries a follower's `XREAD` returns at most.
pub(crate) const FOLLOW_COUNT: usize = 256;

/// How long a follower waits after a read that was not full before it reads again, so
/// that a steady flow of posts is read several at a time (see `room::follow`).
pub(crate) const FOLLOW_GATHER: Duration = Duration::from_millis(3);

/// How long a follower's `XREAD` blocks before it looks again whether its room is gone.
pub(crate) const FOLLOW_BLOCK: Duration = Duration::from_secs(2);

/// Hearts batches a room's hearts stream keeps (about: `MAXLEN ~`); a node reads them
/// within a tick or two, so this only bounds the key.
const HEARTS_KEPT: usize = 256;

/// A hearts stream nobody wrote to for this long is dropped by Redis.
const HEARTS_TTL: Duration = Duration::from_secs(60);

/// How long the hub waits for an answer from Redis before it tells the viewer or the
/// moderator `unavailable` (the reconnecting connection may take longer to give up).
pub(crate) const PATIENCE: Duration = Duration::from_secs(2);

/// A room whose follower has had no answer from Redis for this long is lost (see the
/// module doc): a read legitimately blocks for [`FOLLOW_BLOCK`], and [`PATIENCE`] more
/// tells a slow answer from none.
pub(crate) const UNREACHABLE: Duration = Duration::from_secs(4);

/// Bounds a Redis call by [`PATIENCE`]. A call given up on may still have been done:
/// a post is then refused but stored, and its re-send is answered as a duplicate.
trait Patiently<T>: Future<Output = redis::RedisResult<T>> + Sized {
    async fn patiently(self) -> Result<T, ClusterError> {
        match tokio::time::timeout(PATIENCE, self).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(ClusterError::Timeout),
        }
    }
}

impl<T, F: Future<Output = redis::RedisResult<T>>> Patiently<T> for F {}

/// Runs a call that only reads (or writes idempotently) once more if the shared
/// connection had dropped: after Redis restarts, the first call on a node that used no
/// Redis meanwhile meets the dead connection (`broken pipe`), and only that failure
/// makes the `ConnectionManager` reconnect. Without this, the first viewer to join
/// there after an outage was refused.
async fn again_if_dropped<T, F, Fut>(call: F) -> Result<T, ClusterError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, ClusterError>>,
{
    match call().await {
        Err(ClusterError::Redis(e)) if e.is_connection_dropped() => call().await,
        other => other,
    }
}

/// The identity secret shared by the nodes (see [`Cluster::connect`]).
const SECRET_KEY: &str = "lucarne:identity-secret";

/// Writes this node's identity secret (`ARGV[1]` = `<hex>:<born ms>`, `ARGV[2]` the
/// born ms, `ARGV[3]` the hex) unless Redis holds an older one (smaller born ms, then
/// smaller hex: one order every node agrees on). A value without `:<born>` (written
/// before secrets had one) counts as the oldest. Returns `{held, replaced, how}`: `how`
/// 0 when Redis's stands, 1 when there was none, 2 when `replaced` (newer) was
/// overwritten.
const HOLD_SECRET: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then return {cur, '', 0} end
if cur then
  local hex, born = string.match(cur, '^(%x+):?(%d*)$')
  born = tonumber(born) or 0
  local mine = tonumber(ARGV[2])
  if hex and #hex == 64 and (born < mine or (born == mine and hex < ARGV[3])) then
    return {cur, '', 0}
  end
end
redis.call('SET', KEYS[1], ARGV[1])
if cur then return {ARGV[1], cur, 2} end
return {ARGV[1], '', 1}
";

/// How often a node checks that Redis still holds its identity secret.
pub(crate) const SECRET_CHECK: Duration = Duration::from_millis(500);

/// How long a node that found no identity secret in Redis waits for running nodes to
/// write theirs back before it signs anything (see the module doc): a few checks, and
/// the reconnect their first check after a Redis restart may need.
const SECRET_GRACE: Duration = Duration::from_secs(2);

/// The shared identity secret and when it was made (unix ms), as Redis keeps it:
/// `<64 hex>:<born ms>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SharedSecret {
    bytes: [u8; 32],
    born_ms: u64,
}

impl SharedSecret {
    fn fresh() -> SharedSecret {
        SharedSecret {
            bytes: rand::random(),
            born_ms: super::now_ms(),
        }
    }

    fn encode(&self) -> String {
        format!("{}:{}", hex(&self.bytes), self.born_ms)
    }

    fn decode(s: &str) -> Option<SharedSecret> {
        let (hex, born) = s.split_once(':').unwrap_or((s, "0"));
        Some(SharedSecret {
            bytes: unhex32(hex)?,
            born_ms: born.parse().ok()?,
        })
    }
}

/// What [`Cluster::hold_secret`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    /// Redis's secret stands (this node's own, or an older one).
    Theirs,
    /// Redis had none: this node's is written.
    Wrote,
    /// Redis had this newer one: this node's replaced it.
    Replaced(SharedSecret),
}

/// What a node changes in its identities after [`Cluster::keep_secret`].
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct SecretChange {
    /// Sign with this (older) secret from now on.
    pub(crate) adopt: Option<[u8; 32]>,
    /// Also accept tokens signed with this one (a newer secret this node replaced:
    /// another node may have signed with it meanwhile).
    pub(crate) accept: Option<[u8; 32]>,
}

/// Checks or spends one unit of a per-address budget (GCRA, as `budget::Budget` on one
/// node, on Redis's clock): `ARGV[1]` the period in ms, `ARGV[2]` the burst, `ARGV[3]`
/// `1` to spend. Returns 0 when allowed, else the ms until one is. The key expires
/// when the bucket has refilled.
const BUDGET: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local every, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or '0') or 0, now)
local tolerance = every * (burst - 1)
if tat - now > tolerance then return tat - tolerance - now end
if ARGV[3] == '1' then
  redis.call('SET', KEYS[1], tat + every, 'PX', tat + every - now)
end
return 0
";

/// How long a per-address budget waits for Redis before the node counts on its own
/// (see `budgets`): it sits in front of joins and the studio's key check, which must
/// not stall on a slow Redis.
pub(crate) const BUDGET_PATIENCE: Duration = Duration::from_millis(500);

/// The node's link to Redis.
pub struct Cluster {
    /// Opens the followers' own connections.
    client: redis::Client,
    /// Shared, reconnecting: appends, epochs, seqs.
    conn: ConnectionManager,
    /// Appends (a viewer's post: gates, then appends), in one round trip.
    post: redis::Script,
    presence: redis::Script,
    hearts: redis::Script,
    vote: redis::Script,
    control: redis::Script,
    hold_secret: redis::Script,
    budget: redis::Script,
    /// This process among the nodes (its field in the viewer-count hashes, its mark on
    /// the control entries it writes).
    node: String,
    /// Signs viewer identities on every node alike (with when it was made, which
    /// decides between two); `None` when the operator gave the secret.
    secret: Option<std::sync::Mutex<SharedSecret>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").finish_non_exhaustive()
    }
}

/// A moderation change one node made, for the others to apply (a control entry of the
/// room's stream; the room's state keys hold its result too).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub(crate) enum Control {
    /// A ban placed (or replaced).
    Ban {
        viewer_id: String,
        until_ms: Option<u64>,
        reason: Option<String>,
    },
    /// A ban lifted.
    Unban { viewer_id: String },
    /// Slow mode set (0 = off).
    Slow { secs: u32 },
    /// The blocked words replaced (normalised).
    Words { words: Vec<String> },
}

impl Control {
    pub(crate) fn ban(ban: &Ban) -> Control {
        Control::Ban {
            viewer_id: ban.viewer_id.clone(),
            until_ms: ban.until_ms,
            reason: ban.reason.clone(),
        }
    }
}

/// Why the shared gate refused a post (see the `POST` script).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Muted for this much longer.
    Muted { retry_ms: u64 },
    /// Slow mode: the next post in this much.
    Slow { retry_ms: u64 },
    /// A blocked word (the caller found it).
    Blocked,
    /// Too fast: muted from now until `until_ms` (Redis's clock, unix ms).
    Flooded { until_ms: u64 },
}

/// One entry of a room's stream, as a follower applies it.
#[derive(Debug)]
pub(crate) enum Item {
    /// An event, its seq filled in.
    Event(StoredEvent),
    /// Another node's moderation change.
    Control(Control),
}

/// One node's batch of hearts, as the hearts stream carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeartsBatch {
    /// Taps per colour.
    pub(crate) counts: Vec<(String, u32)>,
    /// The room's total once this batch was counted.
    pub(crate) total: u64,
}

/// Where a follower reads on: the last entry ids it saw in the room's stream and in
/// its hearts stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cursor {
    log: String,
    hearts: String,
}

/// What a follower read.
#[derive(Debug, Default)]
pub(crate) struct Read {
    pub(crate) items: Vec<Item>,
    pub(crate) hearts: Vec<HeartsBatch>,
    /// Questions' vote totals as Redis counted them, `(question id, total)`.
    pub(crate) votes: Vec<(String, u32)>,
}

/// A room as Redis holds it, read in one `MULTI`, so the state and the cursor agree.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) epoch: Epoch,
    /// The last seq given.
    pub(crate) seq: Seq,
    /// The events the stream still holds, oldest first, seqs filled in.
    pub(crate) events: Vec<StoredEvent>,
    /// Bans in force.
    pub(crate) bans: Vec<Ban>,
    /// Slow mode and blocked words, when some node set them.
    pub(crate) slow_mode_secs: Option<u32>,
    pub(crate) blocked_words: Option<Vec<String>>,
    /// Hearts ever sent, over every node.
    pub(crate) hearts_total: u64,
    /// Questions' vote totals, over every node.
    pub(crate) votes: Vec<(String, u32)>,
    /// Where the room's follower starts.
    pub(crate) cursor: Cursor,
}

fn key(room: &str, what: &str) -> String {
    format!("lucarne:{{{room}}}:{what}")
}

/// A stream entry's fields, as `XRANGE`/`XREAD` return them.
type Entry = (String, HashMap<String, String>);

/// A ban as the room's `bans` hash keeps it (the field is the viewer id).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct BanValue {
    until_ms: Option<u64>,
    reason: Option<String>,
}

impl Cluster {
    /// Connects to `url` (`redis://host:port[/db]`); fails if Redis does not answer now.
    ///
    /// With `share_secret` (no `--identity-secret-file`), viewer identities are signed
    /// with a secret every node shares, so an identity given by one node is the same
    /// viewer on all of them: its flood limit, mutes and bans follow it from node to
    /// node (see "The identity secret" in the module doc for how nodes agree on it).
    pub async fn connect(url: &str, share_secret: bool) -> Result<Cluster, ClusterError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_secs(2))
            .set_max_delay(2_000);
        let conn = client.get_connection_manager_with_config(config).await?;
        let mut cluster = Cluster {
            client,
            conn,
            post: redis::Script::new(POST),
            presence: redis::Script::new(PRESENCE),
            hearts: redis::Script::new(HEARTS),
            vote: redis::Script::new(VOTE),
            control: redis::Script::new(CONTROL),
            hold_secret: redis::Script::new(HOLD_SECRET),
            budget: redis::Script::new(BUDGET),
            node: format!("{:016x}", rand::random::<u64>()),
            secret: None,
        };
        if share_secret {
            let (mut held, how) = cluster.hold_secret(&SharedSecret::fresh()).await?;
            if how == Held::Wrote {
                // Redis had none: a new deployment, or Redis lost its data while nodes
                // that signed with their secret still run. Those write theirs back
                // within a check or two, and theirs (older) wins: take it before
                // signing anything.
                tokio::time::sleep(SECRET_GRACE).await;
                held = cluster.hold_secret(&held).await?.0;
            }
            cluster.secret = Some(std::sync::Mutex::new(held));
        }
        Ok(cluster)
    }

    /// The identity secret shared by every node, unless the operator gave one.
    pub(crate) fn secret(&self) -> Option<[u8; 32]> {
        self.secret
            .as_ref()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).bytes)
    }

    /// Writes `mine` as the shared identity secret unless Redis holds an older one;
    /// returns the one that holds and what happened.
    async fn hold_secret(&self, mine: &SharedSecret) -> Result<(SharedSecret, Held), ClusterError> {
        let (winner, replaced, how): (String, String, u8) = again_if_dropped(|| {
            let mut conn = self.conn.clone();
            async move {
                self.hold_secret
                    .key(SECRET_KEY)
                    .arg(mine.encode())
                    .arg(mine.born_ms)
                    .arg(hex(&mine.bytes))
                    .invoke_async(&mut conn)
                    .patiently()
                    .await
            }
        })
        .await?;
        let winner = SharedSecret::decode(&winner)
            .ok_or_else(|| ClusterError::Entry(format!("{SECRET_KEY} is not 32 hex bytes")))?;
        Ok((
            winner,
            match how {
                0 => Held::Theirs,
                1 => Held::Wrote,
                // A newer secret that cannot be read signed nothing anyone could check.
                _ => SharedSecret::decode(&replaced).map_or(Held::Wrote, Held::Replaced),
            },
        ))
    }

    /// Checks that Redis still holds this node's identity secret (see the module doc);
    /// what the node's [`Identities`](super::identity::Identities) must change, if
    /// anything. Nothing to do when the operator gave the secret.
    pub(crate) async fn keep_secret(&self) -> Result<SecretChange, ClusterError> {
        let Some(lock) = &self.secret else {
            return Ok(SecretChange::default());
        };
        let mine = *lock.lock().unwrap_or_else(|e| e.into_inner());
        let (winner, how) = self.hold_secret(&mine).await?;
        let mut change = SecretChange::default();
        match how {
            Held::Theirs if winner != mine => {
                tracing::warn!(
                    "chat: Redis holds an older identity secret than this node's; signing with it from now on"
                );
                change.adopt = Some(winner.bytes);
                *lock.lock().unwrap_or_else(|e| e.into_inner()) = winner;
            }
            Held::Theirs => {}
            Held::Wrote => {
                tracing::warn!(
                    "chat: Redis had lost the identity secret; this node wrote its own back"
                );
            }
            Held::Replaced(newer) => {
                tracing::warn!(
                    "chat: Redis held a newer identity secret than this node's; wrote this node's back"
                );
                change.accept = Some(newer.bytes);
            }
        }
        Ok(change)
    }

    /// Checks (`take` false) or spends (`take` true) one unit of `client`'s budget
    /// `kind` for every node: `Ok(Err(retry_after))` when none is left. Waits at most
    /// [`BUDGET_PATIENCE`]: the caller then counts on its own.
    pub(crate) async fn budget(
        &self,
        kind: &str,
        client: super::ClientKey,
        rate: super::budget::Rate,
        take: bool,
    ) -> Result<Result<(), Duration>, ClusterError> {
        let key = format!("lucarne:budget:{kind}:{}", client.hex());
        let every = rate.every.as_millis().max(1) as u64;
        let retry_ms: u64 = again_if_dropped(|| {
            let mut conn = self.conn.clone();
            let key = &key;
            async move {
                let mut call = self.budget.key(key);
                call.arg(every).arg(rate.burst.max(1)).arg(u8::from(take));
                match tokio::time::timeout(BUDGET_PATIENCE, call.invoke_async(&mut conn)).await {
                    Ok(r) => Ok(r?),
                    Err(_) => Err(ClusterError::Timeout),
                }
            }
        })
        .await?;
        Ok(match retry_ms {
            0 => Ok(()),
            ms => Err(Duration::from_millis(ms)),
        })
    }

    /// Whether Redis answers now (for `/readyz`).
    pub async fn ping(&self) -> Result<(), ClusterError> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .patiently()
            .await?;
        Ok(())
    }

    /// The room's epoch (made now if it has none), last seq, stream and state.
    pub(crate) async fn open_room(&self, room: &str) -> Result<Opened, ClusterError> {
        again_if_dropped(|| self.open_room_once(room)).await
    }

    async fn open_room_once(&self, room: &str) -> Result<Opened, ClusterError> {
        let mut conn = self.conn.clone();
        let fresh: Epoch = rand::random::<u64>() >> 11;
        let _: Option<String> = redis::cmd("SET")
            .arg(key(room, "epoch"))
            .arg(fresh)
            .arg("NX")
            .query_async(&mut conn)
            .patiently()
            .await?;
        type Snapshot = (
            Epoch,
            Option<Seq>,
            Vec<Entry>,
            HashMap<String, String>,
            (Option<u32>, Option<String>),
            Option<u64>,
            Vec<Entry>,
            HashMap<String, u32>,
        );
        let (epoch, seq, entries, bans, (slow, words), hearts_total, last_hearts, votes): Snapshot =
            redis::pipe()
                .atomic()
                .cmd("GET")
                .arg(key(room, "epoch"))
                .cmd("GET")
                .arg(key(room, "seq"))
                .cmd("XRANGE")
                .arg(key(room, "log"))
                .arg("-")
                .arg("+")
                .cmd("HGETALL")
                .arg(key(room, "bans"))
                .cmd("HMGET")
                .arg(key(room, "settings"))
                .arg("slow")
                .arg("words")
                .cmd("GET")
                .arg(key(room, "hearts-total"))
                .cmd("XREVRANGE")
                .arg(key(room, "hearts"))
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .cmd("HGETALL")
                .arg(key(room, "votes"))
                .query_async(&mut conn)
                .patiently()
                .await?;
        let seq = seq.unwrap_or(0);
        let cursor = Cursor {
            log: entries
                .last()
                .map_or_else(|| "0-0".to_owned(), |(id, _)| id.clone()),
            hearts: last_hearts
                .first()
                .map_or_else(|| "0-0".to_owned(), |(id, _)| id.clone()),
        };
        let mut events = Vec::new();
        for e in &entries {
            // Control entries: the state keys, read in the same MULTI, hold their result.
            if let Some(Item::Event(e)) = decode(epoch, e, None)? {
                if e.event.seq() <= seq {
                    events.push(e);
                }
            }
        }
        let now = super::now_ms();
        let bans = bans
            .into_iter()
            .filter_map(|(viewer_id, v)| {
                let v: BanValue = serde_json::from_str(&v).ok()?;
                Some(Ban {
                    viewer_id,
                    until_ms: v.until_ms,
                    reason: v.reason,
                })
            })
            .filter(|b| b.until_ms.is_none_or(|u| u > now))
            .collect();
        Ok(Opened {
            epoch,
            seq,
            events,
            bans,
            slow_mode_secs: slow,
            blocked_words: words.and_then(|w| serde_json::from_str(&w).ok()),
            hearts_total: hearts_total.unwrap_or(0),
            votes: votes.into_iter().collect(),
            cursor,
        })
    }

    /// The room's epoch in Redis, on the follower's connection; `None` when Redis no
    /// longer has the room (it restarted without its data).
    pub(crate) async fn epoch(
        &self,
        conn: &mut MultiplexedConnection,
        room: &str,
    ) -> Result<Option<Epoch>, ClusterError> {
        redis::cmd("GET")
            .arg(key(room, "epoch"))
            .query_async(conn)
            .patiently()
            .await
    }

    /// The room's last seq in Redis.
    pub(crate) async fn seq(&self, room: &str) -> Result<Seq, ClusterError> {
        let seq: Option<Seq> = again_if_dropped(|| {
            let mut conn = self.conn.clone();
            async move {
                redis::cmd("GET")
                    .arg(key(room, "seq"))
                    .query_async(&mut conn)
                    .patiently()
                    .await
            }
        })
        .await?;
        Ok(seq.unwrap_or(0))
    }

    /// Gives `event` (its seq and id left empty) the room's next seq and stores it in the
    /// stream; returns the seq once Redis has it.
    /// A chat message with a client id is appended once per `(viewer, clientId)`
    /// however many nodes it is sent through (see [`Appended`]).
    pub(crate) async fn append(
        &self,
        room: &str,
        epoch: Epoch,
        ts: u64,
        event: &RoomEvent,
        gate: Option<Gated<'_>>,
        config: &super::HubConfig,
    ) -> Result<Appended, ClusterError> {
        let mut conn = self.conn.clone();
        let json = serde_json::to_string(event).expect("events serialise");
        let once = match event {
            RoomEvent::Chat(m) => m
                .client_id
                .as_ref()
                .map(|c| key(room, &format!("cid:{}:{c}", m.viewer_id))),
            _ => None,
        };
        let burst = config.chat_burst.max(1);
        let period = (config.chat_window_ms / u64::from(burst)).max(1);
        let mut call = self.post.prepare_invoke();
        call.key(key(room, "seq"))
            .key(key(room, "log"))
            .key(key(room, "epoch"))
            .key(once.clone().unwrap_or_else(|| key(room, "cid")))
            .key(key(
                room,
                &format!("viewer:{}", gate.map_or("", |g| g.viewer_id)),
            ))
            .key(key(room, "settings"))
            .arg(super::room::MAX_EVENTS)
            .arg(ts)
            .arg(json)
            .arg(epoch)
            .arg(once.map_or(String::new(), |_| CLIENT_ID_TTL.as_millis().to_string()))
            .arg(u8::from(gate.is_some()))
            .arg(period)
            .arg(burst)
            .arg(config.mute_secs.saturating_mul(1000))
            .arg(u8::from(gate.is_some_and(|g| g.blocked)));
        let (what, n, until): (u8, u64, u64) = call.invoke_async(&mut conn).patiently().await?;
        Ok(match what {
            0 => Appended::New(n),
            5 => Appended::Duplicate(n),
            1 => Appended::Refused(Verdict::Muted { retry_ms: n }),
            2 => Appended::Refused(Verdict::Slow { retry_ms: n }),
            3 => Appended::Refused(Verdict::Blocked),
            _ => Appended::Refused(Verdict::Flooded { until_ms: until }),
        })
    }

    /// Adds this node's hearts batch to the room's total and hearts stream.
    pub(crate) async fn hearts(
        &self,
        room: &str,
        counts: &[(&'static str, u32)],
    ) -> Result<u64, ClusterError> {
        let mut conn = self.conn.clone();
        let n: u64 = counts.iter().map(|(_, n)| u64::from(*n)).sum();
        let json = serde_json::to_string(counts).expect("counts serialise");
        let total: u64 = self
            .hearts
            .key(key(room, "hearts-total"))
            .key(key(room, "hearts"))
            .arg(n)
            .arg(HEARTS_KEPT)
            .arg(json)
            .arg(HEARTS_TTL.as_millis() as u64)
            .invoke_async(&mut conn)
            .patiently()
            .await?;
        Ok(total)
    }

    /// Counts `viewer_id`'s vote on `question` for every node: the total after it, or
    /// `None` when this viewer had voted on it before.
    pub(crate) async fn vote(
        &self,
        room: &str,
        question: &str,
        viewer_id: &str,
    ) -> Result<Option<u32>, ClusterError> {
        let mut conn = self.conn.clone();
        let total: i64 = self
            .vote
            .key(key(room, &format!("voters:{question}")))
            .key(key(room, "votes"))
            .key(key(room, "hearts"))
            .arg(viewer_id)
            .arg(question)
            .arg(HEARTS_KEPT)
            .arg(HEARTS_TTL.as_millis() as u64)
            .arg(VOTES_TTL.as_millis() as u64)
            .invoke_async(&mut conn)
            .patiently()
            .await?;
        Ok(u32::try_from(total).ok())
    }

    /// Writes a moderation change to the room's state and stream; false when there was
    /// nothing to change (an unban of someone not banned).
    pub(crate) async fn control(&self, room: &str, change: &Control) -> Result<bool, ClusterError> {
        let (op, field, value) = match change {
            Control::Ban {
                viewer_id,
                until_ms,
                reason,
            } => {
                let v = BanValue {
                    until_ms: *until_ms,
                    reason: reason.clone(),
                };
                let v = serde_json::to_string(&v).expect("bans serialise");
                ("ban", viewer_id.as_str(), v)
            }
            Control::Unban { viewer_id } => ("unban", viewer_id.as_str(), String::new()),
            Control::Slow { secs } => ("slow", "", secs.to_string()),
            Control::Words { words } => (
                "words",
                "",
                serde_json::to_string(words).expect("words serialise"),
            ),
        };
        let mut conn = self.conn.clone();
        let changed: u8 = self
            .control
            .key(key(room, "seq"))
            .key(key(room, "log"))
            .key(key(room, "bans"))
            .key(key(room, "settings"))
            .arg(super::room::MAX_EVENTS)
            .arg(&self.node)
            .arg(op)
            .arg(field)
            .arg(value)
            .arg(serde_json::to_string(change).expect("controls serialise"))
            .invoke_async(&mut conn)
            .patiently()
            .await?;
        Ok(changed == 1)
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
            .patiently()
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

    /// What the room's stream and hearts stream hold after `cursor`, waiting up to
    /// [`FOLLOW_BLOCK`] for something; moves `cursor` past it. This node's own control
    /// entries are skipped (it applied them when it made them).
    pub(crate) async fn read(
        &self,
        conn: &mut MultiplexedConnection,
        room: &str,
        epoch: Epoch,
        cursor: &mut Cursor,
    ) -> Result<Read, ClusterError> {
        let (log, hearts) = (key(room, "log"), key(room, "hearts"));
        let reply: Option<Vec<(String, Vec<Entry>)>> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(FOLLOW_COUNT)
            .arg("BLOCK")
            .arg(FOLLOW_BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(&log)
            .arg(&hearts)
            .arg(&cursor.log)
            .arg(&cursor.hearts)
            .query_async(conn)
            .await?;
        let mut read = Read::default();
        for (stream, entries) in reply.into_iter().flatten() {
            if stream == log {
                for e in &entries {
                    if let Some(item) = decode(epoch, e, Some(&self.node))? {
                        read.items.push(item);
                    }
                }
                if let Some((id, _)) = entries.last() {
                    cursor.log.clone_from(id);
                }
            } else if stream == hearts {
                // A batch that cannot be read is dropped: hearts are not worth a stall.
                for entry in &entries {
                    match decode_vote(entry) {
                        Some(vote) => read.votes.push(vote),
                        None => read.hearts.extend(decode_hearts(entry)),
                    }
                }
                if let Some((id, _)) = entries.last() {
                    cursor.hearts.clone_from(id);
                }
            }
        }
        Ok(read)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// A vote entry of the hearts stream: `q` the question, `v` its total.
fn decode_vote((_, fields): &Entry) -> Option<(String, u32)> {
    Some((fields.get("q")?.clone(), fields.get("v")?.parse().ok()?))
}

/// A hearts stream entry: `t` the total, `h` the counts as `[[colour, n], …]`.
fn decode_hearts((_, fields): &Entry) -> Option<HeartsBatch> {
    Some(HeartsBatch {
        total: fields.get("t")?.parse().ok()?,
        counts: serde_json::from_str(fields.get("h")?).ok()?,
    })
}

/// A stream entry as what it carries: an event (`ts`, `e`; its seq, and a chat's id,
/// filled in from the entry id `<seq>-0`) or a control entry (`n` the node, `c` the
/// change; `None` when it is `own` node's).
fn decode(
    epoch: Epoch,
    (id, fields): &Entry,
    own: Option<&str>,
) -> Result<Option<Item>, ClusterError> {
    let bad = || ClusterError::Entry(id.clone());
    if let Some(change) = fields.get("c") {
        if own.is_some_and(|own| fields.get("n").is_some_and(|n| n == own)) {
            return Ok(None);
        }
        return serde_json::from_str(change)
            .map(|c| Some(Item::Control(c)))
            .map_err(|_| bad());
    }
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
        RoomEvent::Pinned(p) => p.seq = seq,
        RoomEvent::Answered(a) => a.seq = seq,
        RoomEvent::Unknown => return Err(bad()),
    }
    Ok(Some(Item::Event(StoredEvent { ts, event })))
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
            question: false,
        });
        let fields = HashMap::from([
            ("ts".to_owned(), "5".to_owned()),
            ("e".to_owned(), serde_json::to_string(&chat).unwrap()),
        ]);
        let Some(Item::Event(e)) = decode(0x1f, &("42-0".into(), fields.clone()), None).unwrap()
        else {
            panic!("an event")
        };
        assert_eq!(e.ts, 5);
        match e.event {
            RoomEvent::Chat(m) => assert_eq!((m.seq, m.id.as_str()), (42, "1f-42")),
            other => panic!("{other:?}"),
        }
        assert!(
            decode(1, &("42-1".into(), fields), None).is_err(),
            "not ours"
        );
        assert_eq!(key("demo", "seq"), "lucarne:{demo}:seq");
    }

    #[test]
    fn control_entries_are_read_back_except_this_nodes_own() {
        let change = Control::Ban {
            viewer_id: "v1".into(),
            until_ms: Some(9),
            reason: None,
        };
        let fields = HashMap::from([
            ("n".to_owned(), "node-a".to_owned()),
            ("c".to_owned(), serde_json::to_string(&change).unwrap()),
        ]);
        let entry = ("7-2".to_owned(), fields);
        match decode(1, &entry, Some("node-b")).unwrap() {
            Some(Item::Control(c)) => assert_eq!(c, change),
            other => panic!("{other:?}"),
        }
        assert!(decode(1, &entry, Some("node-a")).unwrap().is_none());
        let hearts = HashMap::from([
            ("t".to_owned(), "12".to_owned()),
            ("h".to_owned(), r##"[["#ff6b6b",3]]"##.to_owned()),
        ]);
        assert_eq!(
            decode_hearts(&("1-0".into(), hearts)),
            Some(HeartsBatch {
                counts: vec![("#ff6b6b".into(), 3)],
                total: 12
            })
        );
        let secret = [7u8; 32];
        assert_eq!(unhex32(&hex(&secret)), Some(secret));
        assert_eq!(unhex32("07"), None);
    }
}
