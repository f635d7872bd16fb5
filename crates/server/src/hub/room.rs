//! A chat room: one per stream id. It ties its parts together under one lock: the event
//! log (`log`: epoch, seq, resume window, message ids), the gate (`gate`: flood limit,
//! mutes, slow mode, blocked words, bans), the ticker (`ticker`: hearts, viewer count)
//! and the fan-out (`fanout`); and it records every durable change in the [`Store`]. It
//! never touches a socket: sessions read its fan-out.
//!
//! # Ordering
//! Every durable event is given the next seq, appended to the log, recorded in the
//! store and sent on the broadcast channel while the room's lock is held, and a viewer
//! joins (subscribe + snapshot) under the same lock. So the snapshot and the channel
//! meet exactly: nothing is missed, nothing is seen twice. The store sees changes in
//! the order they happened (see [`Store`]'s contract).
//!
//! A publish never waits for a viewer (back-pressure: see `fanout`). A resume from
//! `lastSeq >= floor` in the same epoch is exact (retention: see `window`). Viewers'
//! posts go through the gate, staff's do not; hearts are limited per connection by the
//! session (harmless to aggregate, and lock-free there).
//!
//! # On several nodes (`--redis`)
//! The seq is given by Redis, not by the log: a post passes the gate here, is appended
//! to the room's Redis stream (see `cluster`), and comes back, like every node's posts,
//! through the room's follower task, which applies the stream's events to the log and
//! the ring in seq order under the same lock. So the Ordering above holds on each node.
//! The gate's marks (flood limit, mutes, slow mode) are Redis's; bans and settings are
//! written to Redis and come to the other nodes as control entries of the stream;
//! hearts go out once a tick and are shown as they come back (see `cluster`).

use super::cluster::{
    Appended, Cluster, ClusterError, Control, Cursor, Gated, Item, Opened, Read, Verdict,
    FOLLOW_COUNT, FOLLOW_GATHER, UNREACHABLE,
};
use super::fanout::{Fanout, Outbound};
use super::gate::{Gate, PostRefusal};
use super::log::{Log, Removal};
use super::questions::Questions;
use super::rules::{self, Refusal};
use super::store::{Ban, Change, Store, StoredRoom};
use super::ticker::{self, Ticker};
use super::{now_ms, HubConfig};
use lucarne_protocol::{
    Answered, ChatMessage, Deleted, Epoch, ErrorCode, Pinned, Resume, Role, RoomEvent,
    RoomSettings, Seq, ServerMessage, StreamState, StreamStateChange,
};
use redis::aio::MultiplexedConnection;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, Notify};

pub use super::ticker::{COUNT_INTERVAL, HEARTS_TICK};
use super::window::Snapshot;
pub use super::window::{MAX_BYTES, MAX_EVENTS, MIN_CHATS, WINDOW_MS};

/// Who posts.
#[derive(Debug, Clone)]
pub(crate) struct Author {
    pub(crate) viewer_id: Arc<str>,
    pub(crate) name: String,
    pub(crate) colour: &'static str,
    pub(crate) role: Role,
}

/// What a joining viewer needs for its welcome.
#[derive(Debug)]
pub(crate) struct Joined {
    pub(crate) rx: broadcast::Receiver<Outbound>,
    pub(crate) epoch: Epoch,
    pub(crate) seq: Seq,
    /// Whether the resume was exact, the welcome's history, the backlog after it.
    pub(crate) snapshot: Snapshot,
    pub(crate) viewer_count: u32,
    pub(crate) hearts_total: u64,
    pub(crate) stream_state: StreamState,
    pub(crate) settings: RoomSettings,
    pub(crate) pinned: Option<Box<ChatMessage>>,
    pub(crate) votes: std::collections::BTreeMap<String, u32>,
}

/// Why a join failed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum JoinError {
    /// The identity is banned.
    Banned,
    /// The room was unloaded meanwhile: get it again from the hub.
    Retired,
}

/// Public facts about a room (`GET /api/rooms/{id}`).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomInfo {
    /// The room's epoch.
    pub epoch: Epoch,
    /// Its latest seq.
    pub seq: Seq,
    /// Open chat connections.
    pub viewer_count: u32,
    /// Hearts ever sent.
    pub hearts_total: u64,
    /// Slow mode interval, 0 when off.
    pub slow_mode_secs: u32,
    /// The broadcast's state.
    pub stream_state: StreamState,
}

/// How a post went.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Posted {
    /// Published with this seq.
    New(Seq),
    /// Already published (same identity and clientId) with this seq.
    Duplicate(Seq),
}

/// Everything behind the room's lock.
#[derive(Debug)]
struct State {
    log: Log,
    gate: Gate,
    ticker: Ticker,
    questions: Questions,
    stream_state: StreamState,
    retired: bool,
    /// False until the room's first durable change: visiting a room (or probing random
    /// ids) writes nothing to the store.
    persisted: bool,
}

/// One chat room.
#[derive(Debug)]
pub struct Room {
    /// The room (stream) id.
    pub id: Arc<str>,
    state: Mutex<State>,
    fanout: Fanout,
    /// Wakes the ticker (hearts, viewer count).
    wake: Notify,
    store: Arc<dyn Store>,
    /// Chat messages published since the room was loaded: `/metrics` turns it into
    /// messages per second (a reload starts it again at 0, which a rate reads as a reset).
    chats: AtomicU64,
    /// With `--redis`: the sequencer and log shared by every node (see `cluster`).
    cluster: Option<Arc<Cluster>>,
    config: Arc<HubConfig>,
    /// Wakes joins waiting for the follower to catch up with Redis.
    applied: Notify,
}

impl Room {
    /// A room from its persisted state, or a new epoch when there is none.
    pub(crate) fn open(
        id: &str,
        stored: Option<StoredRoom>,
        stream_state: StreamState,
        config: Arc<HubConfig>,
        store: Arc<dyn Store>,
        cluster: Option<(Arc<Cluster>, Opened)>,
    ) -> Arc<Room> {
        let persisted = stored.is_some();
        let (cluster, stored) = match cluster {
            None => (None, stored),
            // Redis holds the epoch, seq, events, bans, settings and hearts total; the
            // store keeps a copy of this node's moderation (settings Redis never had
            // are taken from it).
            Some((c, opened)) => {
                let floor = opened
                    .events
                    .first()
                    .map_or(opened.seq, |e| e.event.seq() - 1);
                let local = stored.unwrap_or_default();
                let room = StoredRoom {
                    epoch: opened.epoch,
                    last_seq: opened.seq,
                    floor_seq: floor,
                    events: opened.events,
                    hearts_total: opened.hearts_total,
                    bans: opened.bans,
                    slow_mode_secs: opened.slow_mode_secs.unwrap_or(local.slow_mode_secs),
                    blocked_words: opened.blocked_words.unwrap_or(local.blocked_words),
                    votes: Vec::new(),
                };
                (Some((c, opened.cursor, opened.votes)), Some(room))
            }
        };
        let mut stored = stored.unwrap_or_else(|| StoredRoom {
            // Seqs restart at 0 with a new epoch; below 2^53 so JavaScript reads it exactly.
            epoch: rand::random::<u64>() >> 11,
            ..StoredRoom::default()
        });
        let mut gate = Gate::new(&config);
        gate.set_slow_mode(stored.slow_mode_secs);
        gate.set_blocked_words(std::mem::take(&mut stored.blocked_words));
        for ban in std::mem::take(&mut stored.bans) {
            gate.ban(ban);
        }
        let mut questions = Questions::new();
        for e in &stored.events {
            questions.see(&e.event);
        }
        for (question, viewer) in std::mem::take(&mut stored.votes) {
            questions.voted(&question, &viewer);
        }
        if let Some((_, _, totals)) = &cluster {
            for (question, total) in totals {
                questions.set_total(question, *total);
            }
            questions.frame();
        }
        let state = State {
            questions,
            log: Log::from_stored(&mut stored, now_ms()),
            gate,
            ticker: match cluster {
                Some(_) => Ticker::shared(stored.hearts_total),
                None => Ticker::new(stored.hearts_total),
            },
            stream_state,
            retired: false,
            persisted,
        };
        let room = Arc::new(Room {
            id: Arc::from(id),
            state: Mutex::new(state),
            fanout: Fanout::new(config.chat_queue),
            wake: Notify::new(),
            store,
            chats: AtomicU64::new(0),
            cluster: cluster.as_ref().map(|(c, _, _)| c.clone()),
            config: config.clone(),
            applied: Notify::new(),
        });
        let r = room.clone();
        tokio::spawn(async move { ticker::run(&r.wake, || r.lock().retired, || r.tick()).await });
        if let Some((c, cursor, _)) = cluster {
            tokio::spawn(follow(c.clone(), Arc::downgrade(&room), cursor));
            tokio::spawn(presence(c, Arc::downgrade(&room)));
        }
        room
    }

    /// With `--redis`: waits (a bounded time) until this node has applied every event
    /// Redis had when called, so a resume from another node's seq is exact.
    /// Fails when Redis does not answer (within [`PATIENCE`](super::cluster::PATIENCE)):
    /// the viewer is refused and comes back later, rather than joining a room whose
    /// posts would all be refused.
    pub(crate) async fn caught_up(&self) -> Result<(), ClusterError> {
        let Some(cluster) = &self.cluster else {
            return Ok(());
        };
        let target = cluster.seq(&self.id).await?;
        let deadline = tokio::time::Instant::now() + CATCH_UP;
        loop {
            let applied = self.applied.notified();
            if self.lock().log.seq() >= target {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, applied).await.is_err() {
                tracing::warn!(room = %self.id, target, "chat: redis follower behind");
                return Ok(());
            }
        }
    }

    /// Unloaded for good (its slot is replaced on the next join).
    pub(crate) fn is_retired(&self) -> bool {
        self.lock().retired
    }

    /// With `--redis`: Redis has been out of reach too long, or lost the room. The room
    /// is unloaded and every connection closed with "try again later"; viewers come
    /// back with resume and the next join loads the room from Redis again.
    fn lose(&self, why: &str) {
        tracing::warn!(room = %self.id, "chat: {why}: closing the room's sockets; viewers resume when Redis answers");
        let mut st = self.lock();
        if !st.retired {
            self.retire(&mut st);
        }
        self.fanout.send(Outbound::Unavailable);
    }

    /// The other nodes' viewers (`--redis`).
    fn set_others(&self, n: u32) {
        if self.lock().ticker.set_others(n) {
            self.wake.notify_one();
        }
    }

    /// Applies what the follower read from the room's Redis streams: events and other
    /// nodes' moderation in stream order, hearts batches for the next tick.
    fn apply(&self, read: Read) {
        let now = now_ms();
        let mut st = self.lock();
        for item in read.items {
            match item {
                Item::Event(e) => {
                    if let RoomEvent::Deleted(d) = &e.event {
                        st.log.remove_chat(&d.id);
                    }
                    if let Some(frame) = st.log.apply(now, &e) {
                        st.questions.see(&e.event);
                        let seq = e.event.seq();
                        self.fanout.send(Outbound::Event { seq, frame });
                    }
                }
                Item::Control(c) => self.control(&mut st, c),
            }
        }
        let mut wake = false;
        for batch in read.hearts {
            // Colours are the palette's; anything else is not ours and is dropped.
            let counts = batch.counts.iter().filter_map(|(c, n)| {
                rules::PALETTE
                    .iter()
                    .find(|p| **p == c.as_str())
                    .map(|p| (*p, *n))
            });
            wake |= st.ticker.add_batch(counts, batch.total);
        }
        for (question, total) in read.votes {
            st.questions.set_total(&question, total);
        }
        if st.questions.changed() {
            wake |= st.ticker.poke();
        }
        drop(st);
        if wake {
            self.wake.notify_one();
        }
        self.applied.notify_waiters();
    }

    /// Applies a moderation change made on another node (or on this one, for the local
    /// part of [`Room::ban`] and the like): the same effects, nothing recorded (the node
    /// that made it did).
    fn control(&self, st: &mut State, change: Control) {
        match change {
            Control::Ban {
                viewer_id,
                until_ms,
                reason,
            } => {
                st.gate.ban(Ban {
                    viewer_id: viewer_id.clone(),
                    until_ms,
                    reason,
                });
                let frame = ServerMessage::Error(lucarne_protocol::ErrorFrame {
                    code: ErrorCode::Banned,
                    message: "You are banned from this chat.".into(),
                    client_id: None,
                    retry_after_ms: None,
                });
                self.fanout.kick(&viewer_id, &frame);
            }
            Control::Unban { viewer_id } => {
                st.gate.unban(&viewer_id);
            }
            Control::Slow { secs } => {
                if st.gate.slow_mode_secs() != secs {
                    st.gate.set_slow_mode(secs);
                    self.fanout
                        .state(&ServerMessage::Settings(st.gate.settings(false)));
                }
            }
            Control::Words { words } => {
                if st.gate.blocked_words() != words.as_slice() {
                    st.gate.set_blocked_words(words);
                    self.fanout
                        .staff(&ServerMessage::Settings(st.gate.settings(true)));
                }
            }
        }
    }

    /// With `--redis`: writes a moderation change to Redis (state and stream, for the
    /// other nodes), then applies it here; refused `unavailable` when Redis does not
    /// answer (nothing changed anywhere). `Ok(false)`: there was nothing to change.
    async fn share(&self, cluster: &Cluster, change: Control) -> Result<bool, Refusal> {
        match cluster.control(&self.id, &change).await {
            Ok(false) => Ok(false),
            Ok(true) => {
                let mut st = self.lock();
                self.control(&mut st, change);
                Ok(true)
            }
            Err(e) => {
                tracing::warn!(room = %self.id, "chat: redis: {e}");
                Err(unavailable())
            }
        }
    }

    /// Posts a chat message: [`Room::post`] on one node; with `--redis`, the seq and
    /// the event go to Redis first and the post is accepted once Redis has it.
    pub(crate) async fn submit(
        &self,
        author: &Author,
        text: String,
        client_id: Option<String>,
        question: bool,
    ) -> Result<Posted, PostRefusal> {
        let Some(cluster) = &self.cluster else {
            return self.post(author, text, client_id, question);
        };
        let now_ms = now_ms();
        {
            let st = self.lock();
            if let Some(c) = &client_id {
                if let Some(seq) = st.log.duplicate(&author.viewer_id, c) {
                    return Ok(Posted::Duplicate(seq));
                }
            }
        }
        // A viewer's post is gated by Redis for every node, in the append's round trip:
        // blocked words are looked for here (the list is kept in step by the stream).
        let (word, slow_secs, mute) = {
            let st = self.lock();
            (
                st.gate.blocked_word(&text).map(str::to_owned),
                st.gate.slow_mode_secs(),
                st.gate.mute(),
            )
        };
        let gate = author.role.is_viewer().then_some(Gated {
            viewer_id: &author.viewer_id,
            blocked: word.is_some(),
        });
        let event = RoomEvent::Chat(ChatMessage {
            seq: 0,
            id: String::new(),
            viewer_id: author.viewer_id.to_string(),
            name: author.name.clone(),
            colour: author.colour.to_owned(),
            text,
            ts: now_ms,
            role: author.role,
            client_id,
            question,
        });
        let epoch = self.lock().log.epoch();
        match cluster
            .append(&self.id, epoch, now_ms, &event, gate, &self.config)
            .await
        {
            Ok(Appended::New(seq)) => {
                self.chats.fetch_add(1, Ordering::Relaxed);
                Ok(Posted::New(seq))
            }
            // The first attempt (through this node or another) comes back through the
            // stream, to this viewer too.
            Ok(Appended::Duplicate(seq)) => Ok(Posted::Duplicate(seq)),
            Ok(Appended::Refused(verdict)) => Err(match verdict {
                Verdict::Muted { retry_ms } => PostRefusal::muted(retry_ms),
                Verdict::Slow { retry_ms } => PostRefusal::slow(slow_secs, retry_ms),
                Verdict::Blocked => PostRefusal::blocked(word.as_deref().unwrap_or("")),
                Verdict::Flooded { until_ms } => PostRefusal::flooded(mute, until_ms),
            }),
            Err(e) => {
                tracing::warn!(room = %self.id, "chat: redis: {e}");
                Err(post_unavailable())
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a viewer: subscribes it and snapshots what it missed, atomically.
    /// A `backstage` connection (the console, an overlay) is not counted as a viewer.
    pub(crate) fn join(
        &self,
        viewer_id: &str,
        role: Role,
        resume: Option<&Resume>,
        backstage: bool,
    ) -> Result<Joined, JoinError> {
        let mut st = self.lock();
        if st.retired {
            return Err(JoinError::Retired);
        }
        if st.gate.banned(viewer_id, now_ms()) {
            return Err(JoinError::Banned);
        }
        let rx = self.fanout.subscribe();
        let snapshot = st.log.snapshot(resume);
        if !backstage && st.ticker.join() {
            self.wake.notify_one();
        }
        Ok(Joined {
            rx,
            epoch: st.log.epoch(),
            seq: st.log.seq(),
            snapshot,
            viewer_count: st.ticker.shown(),
            hearts_total: st.ticker.hearts_total(),
            stream_state: st.stream_state,
            settings: st.gate.settings(!role.is_viewer()),
            pinned: st.questions.pinned().cloned().map(Box::new),
            votes: st.questions.totals(),
        })
    }

    /// Removes a viewer (`backstage` as it joined).
    pub(crate) fn leave(&self, backstage: bool) {
        if !backstage && self.lock().ticker.leave() {
            self.wake.notify_one();
        }
    }

    /// Posts a chat message (`text` already checked by [`rules::chat_text`]).
    pub(crate) fn post(
        &self,
        author: &Author,
        text: String,
        client_id: Option<String>,
        question: bool,
    ) -> Result<Posted, PostRefusal> {
        let now_ms = now_ms();
        let mut st = self.lock();
        if let Some(c) = &client_id {
            // A re-send after a reconnect: already posted, say so and do nothing.
            if let Some(seq) = st.log.duplicate(&author.viewer_id, c) {
                return Ok(Posted::Duplicate(seq));
            }
        }
        if author.role.is_viewer() {
            st.gate
                .admit(&author.viewer_id, &text, Instant::now(), now_ms)?;
        }
        let (seq, frame, event) = st.log.publish(now_ms, |id| {
            RoomEvent::Chat(ChatMessage {
                seq: id.seq,
                id: id.to_string(),
                viewer_id: author.viewer_id.to_string(),
                name: author.name.clone(),
                colour: author.colour.to_owned(),
                text,
                ts: now_ms,
                role: author.role,
                client_id,
                question,
            })
        });
        st.questions.see(&event.event);
        self.record(&mut st, Change::Appended(event));
        self.fanout.send(Outbound::Event { seq, frame });
        self.chats.fetch_add(1, Ordering::Relaxed);
        Ok(Posted::New(seq))
    }

    /// Chat messages published since the room was loaded (re-sends not counted).
    pub fn chats_posted(&self) -> u64 {
        self.chats.load(Ordering::Relaxed)
    }

    /// Records a change, creating the room in the store first if needed (called under
    /// the lock, so changes are recorded in order).
    fn record(&self, st: &mut State, change: Change) {
        if self.cluster.is_some() && matches!(change, Change::Appended(_)) {
            // Redis keeps the events.
            return;
        }
        if !st.persisted {
            st.persisted = true;
            let epoch = st.log.epoch();
            self.store.record(&self.id, Change::Created { epoch });
        }
        self.store.record(&self.id, change);
    }

    /// Counts hearts (already limited per viewer) towards the next `hearts` frame.
    pub(crate) fn add_hearts(&self, colour: &'static str, n: u32) {
        if n > 0 && self.lock().ticker.add_hearts(colour, n) {
            self.wake.notify_one();
        }
    }

    /// One tick: the hearts frame and the viewer count, if due. Returns whether another
    /// tick is needed.
    fn tick(&self) -> bool {
        let mut st = self.lock();
        let tick = st.ticker.tick(Instant::now());
        for frame in &tick.frames {
            self.fanout.state(frame);
        }
        if let Some(frame) = st.questions.frame() {
            self.fanout.state(&frame);
        }
        if let (Some(cluster), false) = (&self.cluster, tick.flush.is_empty()) {
            // Shown when it comes back through the hearts stream (see `ticker`); lost
            // if Redis does not take it, as taps are not worth a retry.
            let (cluster, id, batch) = (cluster.clone(), self.id.clone(), tick.flush);
            tokio::spawn(async move {
                if let Err(e) = cluster.hearts(&id, &batch).await {
                    tracing::warn!(room = %id, "chat: redis hearts: {e}");
                }
            });
        }
        if let Some(total) = tick.save {
            self.record(&mut st, Change::HeartsTotal(total));
        }
        tick.more
    }

    /// Moderation: removes a message for everyone, history included. With `--redis`
    /// the removal is a `deleted` event in the room's stream: every node drops the
    /// message from its window when it applies it (and a node loading the room later,
    /// when it reads it), so no viewer on any node gets it again, resume included.
    pub(crate) async fn delete(&self, id: &str) -> Result<Seq, Refusal> {
        let not_found = || Refusal {
            code: ErrorCode::NotFound,
            message: "No such message.".into(),
        };
        let now_ms = now_ms();
        if let Some(cluster) = &self.cluster {
            if self.lock().log.find_chat(id) != Removal::Removed {
                // Older than the window is older than the stream: nothing to remove.
                return Err(not_found());
            }
            let event = RoomEvent::Deleted(Deleted {
                seq: 0,
                id: id.to_owned(),
            });
            return self.append_shared(cluster, now_ms, &event).await;
        }
        let mut st = self.lock();
        if st.log.remove_chat(id) == Removal::Unknown {
            return Err(not_found());
        }
        // Removed from the window, or older: the store may still have it.
        self.record(&mut st, Change::Removed { id: id.to_owned() });
        let id = id.to_owned();
        Ok(self.publish_local(&mut st, now_ms, |seq| {
            RoomEvent::Deleted(Deleted { seq, id })
        }))
    }

    /// A viewer's +1 on an open question; `Ok(false)` when it did not count (not an
    /// open question, or this viewer's vote is already counted). With `--redis`, Redis
    /// counts it for every node; refused `unavailable` when Redis does not answer.
    pub(crate) async fn vote(&self, question: &str, viewer_id: &str) -> Result<bool, Refusal> {
        let Some(cluster) = &self.cluster else {
            let mut st = self.lock();
            if !st.questions.vote(question, viewer_id) {
                return Ok(false);
            }
            self.record(
                &mut st,
                Change::Voted {
                    question: question.to_owned(),
                    viewer_id: viewer_id.to_owned(),
                },
            );
            if st.ticker.poke() {
                self.wake.notify_one();
            }
            return Ok(true);
        };
        // Checked here first: the id names a Redis key.
        if !self.lock().questions.is_open(question) {
            return Ok(false);
        }
        match cluster.vote(&self.id, question, viewer_id).await {
            // Shown when it comes back through the hearts stream, like every node's.
            Ok(total) => Ok(total.is_some()),
            Err(e) => {
                tracing::warn!(room = %self.id, "chat: redis: {e}");
                Err(unavailable())
            }
        }
    }

    /// Moderation: pins an open question over every viewer's video (`None` unpins).
    pub(crate) async fn pin(&self, id: Option<&str>) -> Result<(), Refusal> {
        let question = match id {
            None => None,
            Some(id) => {
                let st = self.lock();
                if !st.questions.is_open(id) {
                    return Err(Refusal {
                        code: ErrorCode::NotFound,
                        message: "No such open question.".into(),
                    });
                }
                st.log.chat(id)
            }
        };
        if id.is_some() && question.is_none() {
            return Err(Refusal {
                code: ErrorCode::NotFound,
                message: "That question is no longer in the chat's history.".into(),
            });
        }
        self.publish_event(|seq| RoomEvent::Pinned(Pinned { seq, question }))
            .await
    }

    /// Moderation: marks an open question answered (it leaves the open questions, and
    /// the pin if it was pinned).
    pub(crate) async fn answer(&self, id: &str) -> Result<(), Refusal> {
        if !self.lock().questions.is_open(id) {
            return Err(Refusal {
                code: ErrorCode::NotFound,
                message: "No such open question.".into(),
            });
        }
        let id = id.to_owned();
        self.publish_event(|seq| RoomEvent::Answered(Answered { seq, id }))
            .await
    }

    /// Publishes a staff's durable event: on one node now, with `--redis` through the
    /// room's stream (it comes back to every node, this one too, by the follower).
    async fn publish_event(&self, make: impl FnOnce(Seq) -> RoomEvent) -> Result<(), Refusal> {
        let now_ms = now_ms();
        if let Some(cluster) = &self.cluster {
            return self
                .append_shared(cluster, now_ms, &make(0))
                .await
                .map(|_| ());
        }
        self.publish_local(&mut self.lock(), now_ms, make);
        Ok(())
    }

    /// With `--redis`: appends a staff's event (seq left 0) to the room's stream; it
    /// comes back to every node by the follower. Refused `unavailable` without Redis.
    async fn append_shared(
        &self,
        cluster: &Cluster,
        now_ms: u64,
        event: &RoomEvent,
    ) -> Result<Seq, Refusal> {
        let epoch = self.lock().log.epoch();
        match cluster
            .append(&self.id, epoch, now_ms, event, None, &self.config)
            .await
        {
            Ok(Appended::New(seq) | Appended::Duplicate(seq)) => Ok(seq),
            // Staff events pass no gate.
            Ok(Appended::Refused(_)) => Err(unavailable()),
            Err(e) => {
                tracing::warn!(room = %self.id, "chat: redis: {e}");
                Err(unavailable())
            }
        }
    }

    /// On one node: gives a staff's event the next seq, follows it in the questions,
    /// records it and sends it, under the lock the caller holds.
    fn publish_local(
        &self,
        st: &mut State,
        now_ms: u64,
        make: impl FnOnce(Seq) -> RoomEvent,
    ) -> Seq {
        let (seq, frame, event) = st.log.publish(now_ms, |id| make(id.seq));
        st.questions.see(&event.event);
        self.record(st, Change::Appended(event));
        self.fanout.send(Outbound::Event { seq, frame });
        seq
    }

    /// Moderation: bans an identity and closes its connections (on every node).
    pub(crate) async fn ban(&self, ban: Ban) -> Result<(), Refusal> {
        let change = Control::ban(&ban);
        if let Some(cluster) = &self.cluster {
            self.share(cluster, change).await?;
            self.record(&mut self.lock(), Change::Banned(ban));
            return Ok(());
        }
        let mut st = self.lock();
        self.record(&mut st, Change::Banned(ban));
        self.control(&mut st, change);
        Ok(())
    }

    /// Moderation: lifts a ban; false if there was none.
    pub(crate) async fn unban(&self, viewer_id: &str) -> Result<bool, Refusal> {
        let change = Change::Unbanned {
            viewer_id: viewer_id.to_owned(),
        };
        if let Some(cluster) = &self.cluster {
            let unban = Control::Unban {
                viewer_id: viewer_id.to_owned(),
            };
            let had = self.share(cluster, unban).await?;
            if had {
                self.record(&mut self.lock(), change);
            }
            return Ok(had);
        }
        let mut st = self.lock();
        let had = st.gate.unban(viewer_id);
        if had {
            self.record(&mut st, change);
        }
        Ok(had)
    }

    /// Moderation: sets slow mode (0 = off); everyone is told.
    pub(crate) async fn set_slow_mode(&self, secs: u32) -> Result<(), Refusal> {
        if let Some(cluster) = &self.cluster {
            self.share(cluster, Control::Slow { secs }).await?;
            self.settings_recorded(&mut self.lock());
            return Ok(());
        }
        let mut st = self.lock();
        st.gate.set_slow_mode(secs);
        self.settings_changed(&mut st, false);
        Ok(())
    }

    /// Moderation: replaces the blocked-words list; only staff are told (viewers learn
    /// of a word when they use it).
    pub(crate) async fn set_blocked_words(&self, words: &[String]) -> Result<(), Refusal> {
        let words = rules::blocked_words(words)?;
        if let Some(cluster) = &self.cluster {
            self.share(cluster, Control::Words { words }).await?;
            self.settings_recorded(&mut self.lock());
            return Ok(());
        }
        let mut st = self.lock();
        st.gate.set_blocked_words(words);
        self.settings_changed(&mut st, true);
        Ok(())
    }

    /// The blocked words (for staff tools).
    pub(crate) fn blocked_words(&self) -> Vec<String> {
        self.lock().gate.blocked_words().to_vec()
    }

    fn settings_changed(&self, st: &mut State, staff_only: bool) {
        self.settings_recorded(st);
        let frame = ServerMessage::Settings(st.gate.settings(staff_only));
        match staff_only {
            true => self.fanout.staff(&frame),
            false => self.fanout.state(&frame),
        }
    }

    /// Records the gate's settings in the store.
    fn settings_recorded(&self, st: &mut State) {
        let slow_mode_secs = st.gate.slow_mode_secs();
        let blocked_words = st.gate.blocked_words().to_vec();
        self.record(
            st,
            Change::Settings {
                slow_mode_secs,
                blocked_words,
            },
        );
    }

    /// Tells viewers the broadcast's state changed.
    pub fn set_stream_state(&self, state: StreamState) {
        let mut st = self.lock();
        if st.stream_state != state {
            st.stream_state = state;
            self.fanout
                .state(&ServerMessage::StreamState(StreamStateChange { state }));
        }
    }

    /// Public facts.
    pub fn info(&self) -> RoomInfo {
        let st = self.lock();
        RoomInfo {
            epoch: st.log.epoch(),
            seq: st.log.seq(),
            viewer_count: st.ticker.shown(),
            hearts_total: st.ticker.hearts_total(),
            slow_mode_secs: st.gate.slow_mode_secs(),
            stream_state: st.stream_state,
        }
    }

    /// Bytes its resume window holds, as the window's bounds count them.
    pub fn window_bytes(&self) -> usize {
        self.lock().log.bytes()
    }

    /// Marks an empty room as unloaded (its state is in the store); false if anyone is
    /// in it.
    pub(crate) fn try_retire(&self) -> bool {
        let mut st = self.lock();
        if st.ticker.viewers() == 0 && !st.retired {
            self.retire(&mut st);
            true
        } else {
            false
        }
    }

    /// Server shutdown: no more joins, every connection is told to close.
    pub(crate) fn shut(&self) {
        let mut st = self.lock();
        if !st.retired {
            self.retire(&mut st);
        }
        self.fanout.send(Outbound::Shutdown);
    }

    fn retire(&self, st: &mut State) {
        st.retired = true;
        if let Some(total) = st.ticker.unsaved() {
            self.record(st, Change::HeartsTotal(total));
        }
        self.wake.notify_one();
    }
}

/// The refusal of a moderation action Redis did not take.
fn unavailable() -> Refusal {
    Refusal {
        code: ErrorCode::Unavailable,
        message: "The chat is unavailable; retry later.".into(),
    }
}

/// The refusal of a post Redis did not take (or could not check).
fn post_unavailable() -> PostRefusal {
    PostRefusal {
        refusal: unavailable(),
        retry_after_ms: Some(1000),
        muted_until_ms: None,
    }
}

/// How long a join waits for the follower to catch up with Redis.
const CATCH_UP: Duration = Duration::from_secs(2);

/// A room's follower: reads its Redis streams (events and control entries, hearts)
/// from where it stopped, for as long as the room is loaded; reconnects (with a pause)
/// when Redis goes away, and loses the room (see [`Room::lose`]) when Redis has not
/// answered for [`UNREACHABLE`] or no longer has the room's epoch.
async fn follow(cluster: Arc<Cluster>, room: Weak<Room>, mut cursor: Cursor) {
    let (id, epoch) = match room.upgrade() {
        Some(r) => (r.id.clone(), r.lock().log.epoch()),
        None => return,
    };
    let mut conn = None;
    let mut answered = tokio::time::Instant::now();
    loop {
        match room.upgrade() {
            Some(r) if !r.lock().retired => {}
            _ => return,
        }
        if answered.elapsed() >= UNREACHABLE {
            if let Some(r) = room.upgrade() {
                r.lose(&format!(
                    "redis has not answered for {} s",
                    UNREACHABLE.as_secs()
                ));
            }
            return;
        }
        let c = match &mut conn {
            Some(c) => c,
            None => {
                match connect_follower(&cluster, &id).await {
                    Ok(Some((c, e))) if e == epoch => conn.insert(c),
                    Ok(Some(_)) | Ok(None) => {
                        if let Some(r) = room.upgrade() {
                            r.lose("redis no longer has this room's epoch (restarted without its data?)");
                        }
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(room = %id, "chat: redis follower: {e}");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                }
            }
        };
        match cluster.read(c, &id, epoch, &mut cursor).await {
            Ok(read) => {
                answered = tokio::time::Instant::now();
                if read.items.is_empty() && read.hearts.is_empty() && read.votes.is_empty() {
                    continue;
                }
                let full = read.items.len() >= FOLLOW_COUNT;
                match room.upgrade() {
                    Some(r) => r.apply(read),
                    None => return,
                }
                // Under a steady flow each XREAD would return one entry: let a few
                // gather, so Redis and this node do one read for several (at most
                // FOLLOW_GATHER more delay; none when the read was full).
                if !full {
                    tokio::time::sleep(FOLLOW_GATHER).await;
                }
            }
            Err(e) => {
                tracing::warn!(room = %id, "chat: redis follower: {e}");
                conn = None;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// A follower's own connection, and the room's epoch as Redis has it now (`None`: Redis
/// no longer has the room).
async fn connect_follower(
    cluster: &Cluster,
    room: &str,
) -> Result<Option<(MultiplexedConnection, Epoch)>, ClusterError> {
    let mut c = cluster.follower().await?;
    Ok(cluster.epoch(&mut c, room).await?.map(|e| (c, e)))
}

/// A room's presence (`--redis`): every [`PRESENCE_EVERY`] this node writes its viewer
/// count to Redis and reads the other nodes'; the last write of an unloaded room is 0.
async fn presence(cluster: Arc<Cluster>, room: Weak<Room>) {
    let mut every = tokio::time::interval(PRESENCE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let (id, local, retired) = match room.upgrade() {
            Some(r) => {
                let st = r.lock();
                (r.id.clone(), st.ticker.viewers(), st.retired)
            }
            None => return,
        };
        let mine = if retired { 0 } else { local };
        match cluster.presence(&id, mine).await {
            Ok(total) => {
                if let Some(r) = room.upgrade() {
                    r.set_others(total.saturating_sub(mine));
                }
            }
            Err(e) => tracing::warn!(room = %id, "chat: redis presence: {e}"),
        }
        if retired {
            return;
        }
    }
}

/// How often a node writes its viewer count of a room to Redis and reads the total.
const PRESENCE_EVERY: Duration = Duration::from_secs(1);

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::hub::store::memory::MemoryStore;

    pub(crate) fn room(store: Arc<MemoryStore>) -> Arc<Room> {
        let config = Arc::new(HubConfig::default());
        Room::open("r", None, StreamState::Live, config, store, None)
    }

    fn author(id: &str, role: Role) -> Author {
        Author {
            viewer_id: Arc::from(id),
            name: "Ana".into(),
            colour: "#ff6b6b",
            role,
        }
    }

    #[tokio::test]
    async fn flooding_mutes_and_resends_are_posted_once() {
        let room = room(Arc::default());
        let ana = author("v1", Role::Viewer);
        let mut rx = room.join("v1", Role::Viewer, None, false).unwrap().rx;
        let post = |a: &Author, c: Option<&str>| room.post(a, "a".into(), c.map(Into::into), false);
        assert_eq!(post(&ana, Some("c1")).unwrap(), Posted::New(1));
        assert_eq!(post(&ana, Some("c1")).unwrap(), Posted::Duplicate(1));
        post(&ana, None).unwrap();
        post(&ana, None).unwrap();
        let code = |r: Result<Posted, PostRefusal>| r.unwrap_err().refusal.code;
        assert_eq!(code(post(&ana, None)), ErrorCode::RateLimited);
        // Even a muted viewer's re-send is answered as the duplicate it is.
        assert_eq!(post(&ana, Some("c1")).unwrap(), Posted::Duplicate(1));
        assert_eq!(code(post(&ana, None)), ErrorCode::Muted);
        // Someone else is not affected; staff is never limited.
        post(&author("v2", Role::Viewer), None).unwrap();
        for _ in 0..10 {
            post(&author("v3", Role::Moderator), None).unwrap();
        }
        let mut seqs = Vec::new();
        while let Ok(Outbound::Event { seq, .. }) = rx.try_recv() {
            seqs.push(seq);
        }
        assert_eq!(seqs, (1..=14).collect::<Vec<_>>());
        assert_eq!(
            room.chats_posted(),
            14,
            "re-sends and refusals are not counted"
        );
    }

    #[tokio::test]
    async fn a_visited_room_writes_nothing_until_something_happens() {
        let store = Arc::new(MemoryStore::new());
        let room = room(store.clone());
        let _joined = room.join("v1", Role::Viewer, None, false).unwrap();
        assert!(store.load_room("r", 10).await.unwrap().is_none());
        room.post(&author("v1", Role::Viewer), "hi".into(), None, false)
            .unwrap();
        let stored = store.load_room("r", 10).await.unwrap().unwrap();
        assert_eq!(stored.epoch, room.info().epoch);
        assert_eq!(stored.last_seq, 1);
    }

    #[tokio::test]
    async fn only_empty_rooms_retire_and_save_their_hearts_first() {
        let store = Arc::new(MemoryStore::new());
        let room = room(store.clone());
        let _joined = room.join("v1", Role::Viewer, None, false).unwrap();
        room.add_hearts("#ff6b6b", 3);
        assert!(!room.try_retire());
        room.leave(false);
        assert!(room.try_retire());
        assert_eq!(
            room.join("v1", Role::Viewer, None, false).unwrap_err(),
            JoinError::Retired
        );
        let stored = store.load_room("r", 10).await.unwrap().unwrap();
        assert_eq!(stored.hearts_total, 3);
    }
}
