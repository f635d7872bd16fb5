//! A chat room: one per stream id. It owns the room's ordered event log (epoch, seq,
//! the resume window), its fan-out channel, hearts aggregation, the viewer count, bans,
//! mutes and moderation settings. It never touches a socket: sessions read its channel.
//!
//! # Ordering
//! Every durable event is given the next seq, appended to the log, recorded in the
//! store and sent on the broadcast channel while the room's lock is held, and a viewer
//! joins (subscribe + snapshot) under the same lock. So the snapshot and the channel
//! meet exactly: nothing is missed, nothing is seen twice.
//!
//! # Back-pressure
//! The fan-out is a `tokio::sync::broadcast` ring: a publish never waits for a viewer,
//! and a viewer more than `chat_queue` events behind finds out (`Lagged`) and is dropped
//! by its session, to resume from its last seq.
//!
//! # Resume window
//! The log is a [`Window`] (see `window`: retention by age, count and bytes).
//! A resume from `lastSeq >= floor` in the same epoch is exact.
//!
//! # Rate limits
//! Chat flood control is a GCRA limiter (`governor`) keyed by viewer identity, so extra
//! tabs or reconnects do not buy a fresh allowance. Mutes and slow mode are timestamps
//! per identity here; hearts are limited per connection by the session (harmless to
//! aggregate, and lock-free there).

use super::hearts;
use super::rules::{self, Refusal};
use super::store::{Ban, Change, Store, StoredEvent, StoredRoom};
use super::window::Window;
use super::{now_ms, HubConfig};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use lucarne_protocol::{
    ChatMessage, Deleted, Epoch, ErrorCode, Hearts, Resume, Role, RoomEvent, RoomSettings, Seq,
    ServerMessage, StreamState, StreamStateChange, ViewerCount,
};
use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, Notify};
use tokio_tungstenite::tungstenite::Utf8Bytes;

pub use super::window::{MAX_BYTES, MAX_EVENTS, MIN_CHATS, WINDOW_MS};

/// Hearts are aggregated over this tick: each viewer gets at most 5 `hearts` frames/s.
pub const HEARTS_TICK: Duration = Duration::from_millis(200);
/// The viewer count is pushed at most this often.
pub const COUNT_INTERVAL: Duration = Duration::from_secs(1);

/// Per-identity marks are pruned when this many accumulate.
const PRUNE_MARKS_AT: usize = 4096;

/// What the fan-out carries. Frames are serialised once per room, not per viewer.
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
}

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
    pub(crate) recovered: bool,
    /// For the welcome.
    pub(crate) history: Vec<RoomEvent>,
    /// Missed events beyond the welcome's share, to send right after it.
    pub(crate) backlog: Vec<(Seq, Utf8Bytes)>,
    pub(crate) viewer_count: u32,
    pub(crate) hearts_total: u64,
    pub(crate) stream_state: StreamState,
    pub(crate) settings: RoomSettings,
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

/// Per-identity timestamps (mute, slow mode).
#[derive(Debug, Default, Clone, Copy)]
struct Marks {
    muted_until: Option<Instant>,
    last_post: Option<Instant>,
}

/// Everything behind the room's lock. Methods take the time as an argument: the log
/// rules are tested without a clock.
#[derive(Debug)]
struct State {
    epoch: Epoch,
    seq: Seq,
    window: Window,
    bans: HashMap<String, Ban>,
    slow_mode_secs: u32,
    blocked_words: Vec<String>,
    marks: HashMap<Arc<str>, Marks>,
    viewers: u32,
    count_sent: u32,
    count_sent_at: Option<Instant>,
    hearts: BTreeMap<&'static str, u32>,
    hearts_total: u64,
    hearts_total_saved: u64,
    hearts_saved_at: Option<Instant>,
    ticking: bool,
    stream_state: StreamState,
    retired: bool,
    /// False until the room's first durable change: visiting a room (or probing random
    /// ids) writes nothing to the store.
    persisted: bool,
}

impl State {
    fn from_stored(s: StoredRoom, now_ms: u64) -> State {
        let mut st = State {
            epoch: s.epoch,
            seq: s.last_seq,
            window: Window::new(s.floor_seq),
            bans: s
                .bans
                .into_iter()
                .map(|b| (b.viewer_id.clone(), b))
                .collect(),
            slow_mode_secs: s.slow_mode_secs,
            blocked_words: s.blocked_words,
            marks: HashMap::new(),
            viewers: 0,
            count_sent: 0,
            count_sent_at: None,
            hearts: BTreeMap::new(),
            hearts_total: s.hearts_total,
            hearts_total_saved: s.hearts_total,
            hearts_saved_at: None,
            ticking: false,
            stream_state: StreamState::Offline,
            retired: false,
            persisted: true,
        };
        for e in s.events {
            st.seq = st.seq.max(e.event.seq());
            st.window.push(e.ts, &e.event);
        }
        st.window.trim(now_ms);
        st
    }

    /// Gives `event` the next seq and logs it; returns the event for the store.
    fn publish(
        &mut self,
        now_ms: u64,
        make: impl FnOnce(Seq) -> RoomEvent,
    ) -> (Seq, Utf8Bytes, RoomEvent) {
        self.seq += 1;
        let seq = self.seq;
        let event = make(seq);
        let frame = self.window.push(now_ms, &event);
        self.window.trim(now_ms);
        (seq, frame, event)
    }

    /// The welcome's history and the backlog after it.
    fn snapshot(&self, resume: Option<&Resume>) -> (bool, Vec<RoomEvent>, Vec<(Seq, Utf8Bytes)>) {
        let after = resume
            .filter(|r| r.epoch == self.epoch && r.last_seq <= self.seq)
            .map(|r| r.last_seq);
        let s = self.window.snapshot(after);
        (s.recovered, s.history, s.backlog)
    }

    fn banned(&self, viewer_id: &str, now_ms: u64) -> bool {
        self.bans
            .get(viewer_id)
            .is_some_and(|b| b.until_ms.is_none_or(|u| u > now_ms))
    }
}

/// How a post went.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Posted {
    /// Published with this seq.
    New(Seq),
    /// Already published (same identity and clientId) with this seq.
    Duplicate(Seq),
}

/// A refused post; `muted_until_ms` is set when this post started a mute.
#[derive(Debug)]
pub(crate) struct PostRefusal {
    pub(crate) refusal: Refusal,
    pub(crate) retry_after_ms: Option<u64>,
    pub(crate) muted_until_ms: Option<u64>,
}

/// One chat room.
#[derive(Debug)]
pub struct Room {
    /// The room (stream) id.
    pub id: Arc<str>,
    state: Mutex<State>,
    tx: broadcast::Sender<Outbound>,
    /// Wakes the ticker (hearts, viewer count).
    wake: Notify,
    flood: DefaultKeyedRateLimiter<Arc<str>>,
    config: Arc<HubConfig>,
    store: Arc<dyn Store>,
}

impl Room {
    /// A room from its persisted state, or a new epoch when there is none.
    pub(crate) fn open(
        id: &str,
        stored: Option<StoredRoom>,
        stream_state: StreamState,
        config: Arc<HubConfig>,
        store: Arc<dyn Store>,
    ) -> Arc<Room> {
        let now = now_ms();
        let fresh = stored.is_none();
        let stored = stored.unwrap_or_else(|| StoredRoom {
            // Seqs restart at 0 with a new epoch; below 2^53 so JavaScript reads it exactly.
            epoch: rand::random::<u64>() >> 11,
            ..StoredRoom::default()
        });
        let mut state = State::from_stored(stored, now);
        state.stream_state = stream_state;
        state.persisted = !fresh;
        let burst = NonZeroU32::new(config.chat_burst.max(1)).expect("non-zero");
        let period = Duration::from_millis(config.chat_window_ms.max(1)) / burst.get();
        let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
            .expect("non-zero period")
            .allow_burst(burst);
        let (tx, _) = broadcast::channel(config.chat_queue.max(16));
        let room = Arc::new(Room {
            id: Arc::from(id),
            state: Mutex::new(state),
            tx,
            wake: Notify::new(),
            flood: RateLimiter::keyed(quota),
            config,
            store,
        });
        tokio::spawn(ticker(room.clone()));
        room
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send(&self, out: Outbound) {
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(out);
    }

    /// Adds a viewer: subscribes it and snapshots what it missed, atomically.
    pub(crate) fn join(
        &self,
        viewer_id: &str,
        role: Role,
        resume: Option<&Resume>,
    ) -> Result<Joined, JoinError> {
        let mut st = self.lock();
        if st.retired {
            return Err(JoinError::Retired);
        }
        if st.banned(viewer_id, now_ms()) {
            return Err(JoinError::Banned);
        }
        let rx = self.tx.subscribe();
        let (recovered, history, backlog) = st.snapshot(resume);
        st.viewers += 1;
        self.arm_ticker(&mut st);
        Ok(Joined {
            rx,
            epoch: st.epoch,
            seq: st.seq,
            recovered,
            history,
            backlog,
            viewer_count: st.viewers,
            hearts_total: st.hearts_total,
            stream_state: st.stream_state,
            settings: RoomSettings {
                slow_mode_secs: st.slow_mode_secs,
                blocked_words: (!role.is_viewer()).then(|| st.blocked_words.clone()),
            },
        })
    }

    /// Removes a viewer.
    pub(crate) fn leave(&self) {
        let mut st = self.lock();
        st.viewers = st.viewers.saturating_sub(1);
        self.arm_ticker(&mut st);
    }

    fn arm_ticker(&self, st: &mut State) {
        if !st.ticking {
            st.ticking = true;
            self.wake.notify_one();
        }
    }

    /// Posts a chat message (`text` already checked by [`rules::chat_text`]).
    pub(crate) fn post(
        &self,
        author: &Author,
        text: String,
        client_id: Option<String>,
    ) -> Result<Posted, PostRefusal> {
        let now = Instant::now();
        let now_ms = now_ms();
        let staff = !author.role.is_viewer();
        let mut st = self.lock();
        if let Some(c) = &client_id {
            // A re-send after a reconnect: already posted, say so and do nothing.
            if let Some(seq) = st.window.duplicate(&author.viewer_id, c) {
                return Ok(Posted::Duplicate(seq));
            }
        }
        if !staff {
            let marks = st.marks.get(&author.viewer_id).copied().unwrap_or_default();
            if let Some(until) = marks.muted_until.filter(|u| *u > now) {
                return Err(PostRefusal {
                    refusal: Refusal {
                        code: ErrorCode::Muted,
                        message: "You are muted for posting too fast.".into(),
                    },
                    retry_after_ms: Some(ms(until - now)),
                    muted_until_ms: None,
                });
            }
            let slow = Duration::from_secs(u64::from(st.slow_mode_secs));
            if let Some(next) = marks.last_post.map(|t| t + slow).filter(|n| *n > now) {
                return Err(PostRefusal {
                    refusal: Refusal {
                        code: ErrorCode::SlowMode,
                        message: format!("Slow mode: one message every {} s.", st.slow_mode_secs),
                    },
                    retry_after_ms: Some(ms(next - now)),
                    muted_until_ms: None,
                });
            }
            if let Some(word) = rules::find_blocked(&text, &st.blocked_words) {
                return Err(PostRefusal {
                    refusal: Refusal {
                        code: ErrorCode::BlockedWord,
                        message: format!("\"{word}\" is not allowed here."),
                    },
                    retry_after_ms: None,
                    muted_until_ms: None,
                });
            }
            if self.flood.check_key(&author.viewer_id).is_err() {
                let mute = Duration::from_secs(self.config.mute_secs);
                st.marks
                    .entry(author.viewer_id.clone())
                    .or_default()
                    .muted_until = Some(now + mute);
                return Err(PostRefusal {
                    refusal: Refusal {
                        code: ErrorCode::RateLimited,
                        message: format!(
                            "Too many messages: muted for {} s.",
                            self.config.mute_secs
                        ),
                    },
                    retry_after_ms: Some(ms(mute)),
                    muted_until_ms: Some(now_ms + ms(mute)),
                });
            }
            st.marks
                .entry(author.viewer_id.clone())
                .or_default()
                .last_post = Some(now);
            if st.marks.len() > PRUNE_MARKS_AT {
                st.marks.retain(|_, m| {
                    m.muted_until.is_some_and(|u| u > now)
                        || m.last_post.is_some_and(|t| t + slow > now)
                });
            }
            if self.flood.len() > PRUNE_MARKS_AT {
                self.flood.retain_recent();
            }
        }
        let epoch = st.epoch;
        let (seq, frame, event) = st.publish(now_ms, |seq| {
            RoomEvent::Chat(ChatMessage {
                seq,
                id: format!("{epoch:x}-{seq}"),
                viewer_id: author.viewer_id.to_string(),
                name: author.name.clone(),
                colour: author.colour.to_owned(),
                text,
                ts: now_ms,
                role: author.role,
                client_id,
            })
        });
        self.record(&mut st, Change::Appended(StoredEvent { ts: now_ms, event }));
        self.send(Outbound::Event { seq, frame });
        Ok(Posted::New(seq))
    }

    /// Records a change, creating the room in the store first if needed (called under
    /// the lock, so changes are recorded in order).
    fn record(&self, st: &mut State, change: Change) {
        if !st.persisted {
            st.persisted = true;
            self.store
                .record(&self.id, Change::Created { epoch: st.epoch });
        }
        self.store.record(&self.id, change);
    }

    /// Counts hearts (already limited per viewer) towards the next `hearts` frame.
    pub(crate) fn add_hearts(&self, colour: &'static str, n: u32) {
        if n == 0 {
            return;
        }
        let mut st = self.lock();
        *st.hearts.entry(colour).or_default() += n;
        st.hearts_total += u64::from(n);
        self.arm_ticker(&mut st);
    }

    /// One tick: the hearts frame and the viewer count, if due. Returns whether another
    /// tick is needed.
    fn tick(&self) -> bool {
        let now = Instant::now();
        let mut st = self.lock();
        let mut more = false;
        let flowing = !st.hearts.is_empty();
        if flowing {
            let counts = std::mem::take(&mut st.hearts)
                .into_iter()
                .map(|(c, n)| (c.to_owned(), n))
                .collect();
            let frame = encode(&ServerMessage::Hearts(Hearts {
                counts,
                total: st.hearts_total,
            }));
            self.send(Outbound::State(frame));
            // Keep ticking: the next taps must wait a full tick too.
            more = true;
        }
        let (total, saved_at) = (st.hearts_total, st.hearts_saved_at);
        if hearts::save_due(total, st.hearts_total_saved, saved_at, flowing, now) {
            st.hearts_total_saved = total;
            st.hearts_saved_at = Some(now);
            self.record(&mut st, Change::HeartsTotal(total));
        }
        if st.viewers != st.count_sent {
            match st.count_sent_at {
                Some(at) if now.duration_since(at) < COUNT_INTERVAL => more = true,
                _ => {
                    st.count_sent = st.viewers;
                    st.count_sent_at = Some(now);
                    let frame = encode(&ServerMessage::ViewerCount(ViewerCount {
                        count: st.viewers,
                    }));
                    self.send(Outbound::State(frame));
                    more = true;
                }
            }
        }
        st.ticking = more;
        more
    }

    /// Moderation: removes a message for everyone, history included.
    pub(crate) fn delete(&self, id: &str) -> Result<Seq, Refusal> {
        let now_ms = now_ms();
        let mut st = self.lock();
        let present = st.window.remove_chat(id);
        // Older than the window: it may still be on disk, if the id is plausible.
        let plausible = || {
            id.split_once('-').is_some_and(|(e, s)| {
                u64::from_str_radix(e, 16) == Ok(st.epoch)
                    && s.parse::<u64>().is_ok_and(|s| s <= st.window.floor())
            })
        };
        if !present && !plausible() {
            return Err(Refusal {
                code: ErrorCode::NotFound,
                message: "No such message.".into(),
            });
        }
        self.record(&mut st, Change::Removed { id: id.to_owned() });
        let (seq, frame, event) = st.publish(now_ms, |seq| {
            RoomEvent::Deleted(Deleted {
                seq,
                id: id.to_owned(),
            })
        });
        self.record(&mut st, Change::Appended(StoredEvent { ts: now_ms, event }));
        self.send(Outbound::Event { seq, frame });
        Ok(seq)
    }

    /// Moderation: bans an identity and closes its connections.
    pub(crate) fn ban(&self, ban: Ban) {
        let mut st = self.lock();
        let viewer_id: Arc<str> = Arc::from(ban.viewer_id.as_str());
        st.bans.insert(ban.viewer_id.clone(), ban.clone());
        self.record(&mut st, Change::Banned(ban));
        let frame = encode(&ServerMessage::Error(lucarne_protocol::ErrorFrame {
            code: ErrorCode::Banned,
            message: "You are banned from this chat.".into(),
            client_id: None,
            retry_after_ms: None,
        }));
        self.send(Outbound::Kick { viewer_id, frame });
    }

    /// Moderation: lifts a ban; false if there was none.
    pub(crate) fn unban(&self, viewer_id: &str) -> bool {
        let mut st = self.lock();
        let had = st.bans.remove(viewer_id).is_some();
        if had {
            let change = Change::Unbanned {
                viewer_id: viewer_id.to_owned(),
            };
            self.record(&mut st, change);
        }
        had
    }

    /// Whether an identity is banned now.
    #[cfg(test)]
    pub(crate) fn is_banned(&self, viewer_id: &str) -> bool {
        self.lock().banned(viewer_id, now_ms())
    }

    /// Moderation: sets slow mode (0 = off).
    pub(crate) fn set_slow_mode(&self, secs: u32) {
        let mut st = self.lock();
        st.slow_mode_secs = secs;
        self.save_settings(&mut st);
        let frame = encode(&ServerMessage::Settings(RoomSettings {
            slow_mode_secs: secs,
            blocked_words: None,
        }));
        self.send(Outbound::State(frame));
    }

    /// Moderation: replaces the blocked-words list.
    pub(crate) fn set_blocked_words(&self, words: &[String]) -> Result<(), Refusal> {
        let words = rules::blocked_words(words)?;
        let mut st = self.lock();
        st.blocked_words = words;
        self.save_settings(&mut st);
        // Only staff see the list: viewers learn of a word when they use it.
        let frame = encode(&ServerMessage::Settings(RoomSettings {
            slow_mode_secs: st.slow_mode_secs,
            blocked_words: Some(st.blocked_words.clone()),
        }));
        self.send(Outbound::Staff(frame));
        Ok(())
    }

    /// The blocked words (for staff tools).
    pub(crate) fn blocked_words(&self) -> Vec<String> {
        self.lock().blocked_words.clone()
    }

    fn save_settings(&self, st: &mut State) {
        let change = Change::Settings {
            slow_mode_secs: st.slow_mode_secs,
            blocked_words: st.blocked_words.clone(),
        };
        self.record(st, change);
    }

    /// Tells viewers the broadcast's state changed.
    pub fn set_stream_state(&self, state: StreamState) {
        let mut st = self.lock();
        if st.stream_state != state {
            st.stream_state = state;
            let frame = encode(&ServerMessage::StreamState(StreamStateChange { state }));
            self.send(Outbound::State(frame));
        }
    }

    /// Public facts.
    pub fn info(&self) -> RoomInfo {
        let st = self.lock();
        RoomInfo {
            epoch: st.epoch,
            seq: st.seq,
            viewer_count: st.viewers,
            hearts_total: st.hearts_total,
            slow_mode_secs: st.slow_mode_secs,
            stream_state: st.stream_state,
        }
    }

    /// Bytes its resume window holds, as the window's bounds count them.
    pub fn window_bytes(&self) -> usize {
        self.lock().window.bytes()
    }

    /// Marks an empty room as unloaded (its state is in the store); false if anyone is
    /// in it.
    pub(crate) fn try_retire(&self) -> bool {
        let mut st = self.lock();
        if st.viewers == 0 && !st.retired {
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
        self.send(Outbound::Shutdown);
    }

    fn retire(&self, st: &mut State) {
        st.retired = true;
        if st.hearts_total != st.hearts_total_saved {
            st.hearts_total_saved = st.hearts_total;
            let total = st.hearts_total;
            self.record(st, Change::HeartsTotal(total));
        }
        self.wake.notify_one();
    }
}

/// Serialises a server frame.
pub(crate) fn encode(msg: &ServerMessage) -> Utf8Bytes {
    Utf8Bytes::from(serde_json::to_string(msg).expect("server messages serialise"))
}

fn ms(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}

/// Hearts and viewer count: sleeps while there is nothing to send, so idle rooms cost
/// no timer.
async fn ticker(room: Arc<Room>) {
    loop {
        room.wake.notified().await;
        loop {
            if room.lock().retired {
                return;
            }
            tokio::time::sleep(HEARTS_TICK).await;
            if !room.tick() {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::store::memory::MemoryStore;

    fn chat(seq: Seq) -> RoomEvent {
        RoomEvent::Chat(ChatMessage {
            seq,
            id: format!("1-{seq}"),
            viewer_id: "v1".into(),
            name: "Ana".into(),
            colour: "#ff6b6b".into(),
            text: format!("m{seq}"),
            ts: 0,
            role: Role::Viewer,
            client_id: Some(format!("c{seq}")),
        })
    }

    fn state_with(n: u64, ts: u64) -> State {
        let mut st = State::from_stored(
            StoredRoom {
                epoch: 1,
                ..StoredRoom::default()
            },
            ts,
        );
        for _ in 0..n {
            st.publish(ts, chat);
        }
        st
    }

    fn seqs(events: &[RoomEvent]) -> Vec<Seq> {
        events.iter().map(RoomEvent::seq).collect()
    }

    #[test]
    fn outside_the_epoch_or_from_the_future_the_last_messages_come_instead() {
        let st = state_with(120, 1_000);
        // Another epoch, or a seq this room never gave (it lost data the client saw).
        for (epoch, last_seq) in [(2, 40), (1, 121)] {
            let (recovered, history, backlog) = st.snapshot(Some(&Resume { epoch, last_seq }));
            assert!(!recovered);
            assert_eq!(seqs(&history), (71..=120).collect::<Vec<_>>());
            assert!(backlog.is_empty());
        }
    }

    #[test]
    fn a_reloaded_room_resumes_where_it_stopped() {
        let stored = StoredRoom {
            epoch: 9,
            last_seq: 12,
            floor_seq: 2,
            events: (3..=12)
                .map(|s| StoredEvent {
                    ts: 1_000,
                    event: chat(s),
                })
                .collect(),
            ..StoredRoom::default()
        };
        let st = State::from_stored(stored, 2_000);
        assert_eq!((st.epoch, st.seq, st.window.floor()), (9, 12, 2));
        let (recovered, history, _) = st.snapshot(Some(&Resume {
            epoch: 9,
            last_seq: 7,
        }));
        assert!(recovered);
        assert_eq!(seqs(&history), [8, 9, 10, 11, 12]);
        // Dedup knows the reloaded messages.
        assert_eq!(st.window.duplicate("v1", "c4"), Some(4));
    }

    fn room(config: HubConfig) -> Arc<Room> {
        Room::open(
            "r",
            None,
            StreamState::Live,
            Arc::new(config),
            Arc::new(MemoryStore::new()),
        )
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
        let room = room(HubConfig::default());
        let ana = author("v1", Role::Viewer);
        let mut rx = room.join("v1", Role::Viewer, None).unwrap().rx;
        assert_eq!(
            room.post(&ana, "a".into(), Some("c1".into())).unwrap(),
            Posted::New(1)
        );
        assert_eq!(
            room.post(&ana, "a".into(), Some("c1".into())).unwrap(),
            Posted::Duplicate(1)
        );
        room.post(&ana, "b".into(), None).unwrap();
        room.post(&ana, "c".into(), None).unwrap();
        let refused = room.post(&ana, "d".into(), None).unwrap_err();
        assert_eq!(refused.refusal.code, ErrorCode::RateLimited);
        assert!(refused.muted_until_ms.is_some());
        let refused = room.post(&ana, "e".into(), None).unwrap_err();
        assert_eq!(refused.refusal.code, ErrorCode::Muted);
        assert!(refused.retry_after_ms.unwrap() > 25_000);
        // Someone else is not affected; staff is never limited.
        room.post(&author("v2", Role::Viewer), "hi".into(), None)
            .unwrap();
        let mod_ = author("v3", Role::Moderator);
        for _ in 0..10 {
            room.post(&mod_, "x".into(), None).unwrap();
        }
        let mut seqs = Vec::new();
        while let Ok(Outbound::Event { seq, .. }) = rx.try_recv() {
            seqs.push(seq);
        }
        assert_eq!(seqs, (1..=14).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn slow_mode_and_blocked_words() {
        let room = room(HubConfig::default());
        room.set_slow_mode(30);
        room.set_blocked_words(&["spam".into()]).unwrap();
        let ana = author("v1", Role::Viewer);
        let refused = room.post(&ana, "SPAM!".into(), None).unwrap_err();
        assert_eq!(refused.refusal.code, ErrorCode::BlockedWord);
        room.post(&ana, "hello".into(), None).unwrap();
        let refused = room.post(&ana, "again".into(), None).unwrap_err();
        assert_eq!(refused.refusal.code, ErrorCode::SlowMode);
        assert!(refused.retry_after_ms.unwrap() > 29_000);
        room.post(
            &author("v9", Role::Broadcaster),
            "spam is fine for me".into(),
            None,
        )
        .unwrap();
    }

    #[tokio::test]
    async fn hearts_are_aggregated_per_colour_and_counted() {
        let room = room(HubConfig::default());
        let mut rx = room.join("v1", Role::Viewer, None).unwrap().rx;
        room.add_hearts("#ff6b6b", 3);
        room.add_hearts("#48dbfb", 1);
        room.add_hearts("#ff6b6b", 2);
        assert!(room.tick());
        let mut hearts = None;
        while let Ok(out) = rx.try_recv() {
            if let Outbound::State(f) = out {
                if f.as_str().contains("\"hearts\"") {
                    hearts = Some(f);
                }
            }
        }
        let hearts: ServerMessage = serde_json::from_str(hearts.unwrap().as_str()).unwrap();
        assert_eq!(
            hearts,
            ServerMessage::Hearts(Hearts {
                counts: BTreeMap::from([("#ff6b6b".into(), 5), ("#48dbfb".into(), 1)]),
                total: 6
            })
        );
        assert_eq!(room.info().hearts_total, 6);
    }

    #[tokio::test]
    async fn bans_refuse_joins_and_kick() {
        let room = room(HubConfig::default());
        let mut rx = room.join("v2", Role::Viewer, None).unwrap().rx;
        room.ban(Ban {
            viewer_id: "v1".into(),
            until_ms: None,
            reason: None,
        });
        assert_eq!(
            room.join("v1", Role::Viewer, None).unwrap_err(),
            JoinError::Banned
        );
        assert!(
            matches!(rx.try_recv(), Ok(Outbound::Kick { viewer_id, .. }) if &*viewer_id == "v1")
        );
        assert!(room.unban("v1"));
        assert!(room.join("v1", Role::Viewer, None).is_ok());
        // Expired bans do not count.
        room.ban(Ban {
            viewer_id: "v3".into(),
            until_ms: Some(1),
            reason: None,
        });
        assert!(!room.is_banned("v3"));
    }

    #[tokio::test]
    async fn a_visited_room_writes_nothing_until_something_happens() {
        use crate::hub::store::Store;
        let store = Arc::new(MemoryStore::new());
        let room = Room::open(
            "r",
            None,
            StreamState::Live,
            Arc::new(HubConfig::default()),
            store.clone(),
        );
        let _joined = room.join("v1", Role::Viewer, None).unwrap();
        assert!(store.load_room("r", 10).await.unwrap().is_none());
        room.post(&author("v1", Role::Viewer), "hi".into(), None)
            .unwrap();
        let stored = store.load_room("r", 10).await.unwrap().unwrap();
        assert_eq!(stored.epoch, room.info().epoch);
        assert_eq!(stored.last_seq, 1);
    }

    #[tokio::test]
    async fn only_empty_rooms_retire() {
        let room = room(HubConfig::default());
        let joined = room.join("v1", Role::Viewer, None).unwrap();
        assert!(!room.try_retire());
        room.leave();
        drop(joined);
        assert!(room.try_retire());
        assert_eq!(
            room.join("v1", Role::Viewer, None).unwrap_err(),
            JoinError::Retired
        );
    }
}
