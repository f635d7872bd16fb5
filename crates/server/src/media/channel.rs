//! A channel: a stream id that publishers go live on (RTMP ingest), with its lifecycle.
//!
//! ```text
//!   Offline ──publisher sends video──▶ Live ──publisher leaves──▶ Offline (grace)
//!      ▲                               ▲                              │
//!      │                               └──── publisher returns ───────┤
//!      └──────── next broadcast ─────── Ended ◀──── grace expires ─────┘
//!
//!   any state ──publisher refused: media lucarne cannot play──▶ Unsupported
//!   Unsupported ──a publisher sends video──▶ Live   (grace expires ──▶ Ended)
//! ```
//!
//! A publisher that returns within the grace period continues the same broadcast: same
//! [`LiveStream`], media timeline and segment numbers continuing where they stopped, so
//! players just see a pause. If its codec configuration changed, the stream gets a new
//! init segment (a new [`LiveStream`] whose playlist names a new init URI; push
//! subscribers are moved to it). When the grace period expires the broadcast ends: its
//! recording becomes a replay.
//!
//! A publisher whose media cannot be played without transcoding (a video codec other
//! than H.264) is refused, and viewers are told so (`Unsupported`) instead of waiting on
//! "offline" for a broadcast that will not come. The state stays until a publisher goes
//! live or the interrupted broadcast ends.
//!
//! State is observed through a `watch` channel: the low-latency push and the chat hub
//! follow it, both saying it as a [`StreamState`].
//!
//! A channel also keeps its broadcast's [`health`](super::health) for the console:
//! the video frames its publishers sent (reset when a broadcast starts) and the
//! latencies its push viewers report.
//!
//! When the server stops, [`Channel::close`] ends the broadcast at once (there is no
//! grace period across a restart): the recording is finished into a replay, viewers
//! hear "ended", and the channel takes no publisher after that.

use super::health::{FrameTally, ViewerLatencies};
use super::live::{LiveStream, PackagedChunk};
use super::remux::{Output, RemuxError, Remuxer};
use super::replay::{Recorder, ReplayStore};
use bytes::Bytes;
use lucarne_protocol::StreamState;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;

/// What viewers of a channel can see.
#[derive(Debug, Clone)]
pub enum ChannelState {
    /// Nobody is publishing (not started yet, or the publisher dropped and the grace
    /// period is running).
    Offline,
    /// Playing this stream.
    Live(Arc<LiveStream>),
    /// The last broadcast is over.
    Ended,
    /// Nobody is publishing: the last publisher was refused, its media cannot be played
    /// without transcoding.
    Unsupported,
}

impl ChannelState {
    /// The state as the push socket, the API and the chat say it.
    pub fn stream_state(&self) -> StreamState {
        match self {
            ChannelState::Offline => StreamState::Offline,
            ChannelState::Live(_) => StreamState::Live,
            ChannelState::Ended => StreamState::Ended,
            ChannelState::Unsupported => StreamState::Unsupported,
        }
    }
}

/// How channels package and keep broadcasts.
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    /// Segments per live playlist.
    pub window: usize,
    /// Low-latency chunk length.
    pub chunk_ms: u32,
    /// How long a dropped publisher may take to come back to the same broadcast.
    pub grace: Duration,
    /// Where broadcasts are recorded; `None` records nothing.
    pub replays: Option<ReplayStore>,
}

/// Why a channel does not take a publisher.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// Another publisher holds the channel.
    #[error("stream {0} is already being published")]
    Busy(String),
    /// The server is stopping.
    #[error("stream {0} is closing: the server is stopping")]
    Closing(String),
}

#[derive(Debug, Default)]
struct Inner {
    /// Session number of the publisher holding the channel.
    publisher: Option<u64>,
    sessions: u64,
    /// The broadcast's stream, kept through the grace period.
    stream: Option<Arc<LiveStream>>,
    init: Option<Bytes>,
    init_generation: u32,
    /// Where the last publisher stopped: (media ms, next segment number).
    resume: Option<(u64, u64)>,
    /// The highest segment number used so far (numbers never go back, even across
    /// broadcasts, so a player's cursor never points past a new playlist).
    last_msn: u64,
    grace: Option<tokio::task::JoinHandle<()>>,
    recorder: Option<Recorder>,
    /// Set by [`Channel::close`]: nothing starts here any more.
    closed: bool,
}

/// One ingest stream id.
#[derive(Debug)]
pub struct Channel {
    /// Stream id, as in `/live/{id}/...`.
    pub id: String,
    config: ChannelConfig,
    state: watch::Sender<ChannelState>,
    inner: Mutex<Inner>,
    /// Taken after `inner` when both are.
    health: Mutex<Health>,
    /// An edge's mirror of the origin's channel (see [`Channel::mirror`]): its
    /// broadcasts are the origin's to end, not this node's.
    mirror: bool,
}

/// A channel's broadcast health (see [`super::health`]).
#[derive(Debug, Default)]
struct Health {
    frames: FrameTally,
    viewers: ViewerLatencies,
    /// The last push socket number given out.
    sockets: u64,
    /// Push sockets open now (each holds a [`LatencyReports`]).
    open: usize,
}

/// What [`Channel::ingest_health`] reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IngestHealth {
    /// Video frames received per second lately; `None` in a broadcast's first second.
    pub frame_rate: Option<f64>,
    /// Frames missing from the publisher's timeline since the broadcast started.
    pub dropped_frames: u64,
    /// Video frames received since the broadcast started.
    pub frames_received: u64,
    /// The viewers' latency p50 (seconds) and how many viewers it is of.
    pub viewer_latency: Option<(f64, usize)>,
}

/// A push socket's right to report its player's latency; dropping it (the socket
/// closed) withdraws the socket's report.
#[derive(Debug)]
pub struct LatencyReports {
    channel: Arc<Channel>,
    socket: u64,
}

impl LatencyReports {
    /// The socket's player says it is `ms` behind (clamped, see
    /// [`ViewerLatencies::report`]).
    pub fn report(&self, ms: u32) {
        let now = seconds(super::now_ns());
        self.channel.health().viewers.report(self.socket, ms, now);
    }
}

impl Drop for LatencyReports {
    fn drop(&mut self) {
        let mut h = self.channel.health();
        h.viewers.forget(self.socket);
        h.open = h.open.saturating_sub(1);
    }
}

fn seconds(ns: u128) -> f64 {
    ns as f64 / 1e9
}

impl Channel {
    /// A channel with nothing published yet: `Ended` if a replay of an earlier
    /// broadcast exists, else `Offline`.
    pub fn new(id: &str, config: ChannelConfig) -> Arc<Channel> {
        let has_replay = config
            .replays
            .as_ref()
            .is_some_and(|r| r.latest(id).is_some());
        let initial = if has_replay {
            ChannelState::Ended
        } else {
            ChannelState::Offline
        };
        Arc::new(Channel {
            id: id.to_owned(),
            config,
            state: watch::channel(initial).0,
            inner: Mutex::new(Inner::default()),
            health: Mutex::new(Health::default()),
            mirror: false,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn health(&self) -> MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The broadcast's frame rate and dropped frames, and its push viewers' latency.
    pub fn ingest_health(&self) -> IngestHealth {
        let now = seconds(super::now_ns());
        let mut h = self.health();
        IngestHealth {
            frame_rate: h.frames.frame_rate(now),
            dropped_frames: h.frames.dropped(),
            frames_received: h.frames.received(),
            viewer_latency: h.viewers.p50(now),
        }
    }

    /// A push socket's latency reports, counted for this channel's viewers' p50.
    pub fn latency_reports(self: &Arc<Self>) -> LatencyReports {
        let mut h = self.health();
        h.sockets += 1;
        h.open += 1;
        LatencyReports {
            channel: self.clone(),
            socket: h.sockets,
        }
    }

    fn on_frame(&self, session: u64, ts_ms: u32) {
        let now = seconds(super::now_ns());
        self.health().frames.frame(now, session, ts_ms);
    }

    /// Follows the channel's state.
    pub fn watch(&self) -> watch::Receiver<ChannelState> {
        self.state.subscribe()
    }

    /// The state now.
    pub fn state(&self) -> ChannelState {
        self.state.borrow().clone()
    }

    /// The broadcast's stream while live or within the grace period.
    pub fn stream(&self) -> Option<Arc<LiveStream>> {
        self.lock().stream.clone()
    }

    /// The newest replay's playlist URL and file, if replays are kept.
    pub fn replay(&self) -> Option<(String, std::path::PathBuf)> {
        self.config.replays.as_ref()?.latest(&self.id)
    }

    /// Takes the channel for a new publisher connection. Within the grace period this
    /// continues the interrupted broadcast.
    pub fn publish(self: &Arc<Self>) -> Result<Publisher, Refused> {
        let mut inner = self.lock();
        if inner.closed {
            return Err(Refused::Closing(self.id.clone()));
        }
        if inner.publisher.is_some() {
            return Err(Refused::Busy(self.id.clone()));
        }
        if let Some(timer) = inner.grace.take() {
            timer.abort();
        }
        inner.sessions += 1;
        let session = inner.sessions;
        inner.publisher = Some(session);
        let now = super::now_ns();
        let (base_ms, first_msn) = inner.resume.unwrap_or_else(|| {
            let secs = (now / 1_000_000_000) as u64;
            ((now / 1_000_000) as u64, secs.max(inner.last_msn + 1))
        });
        Ok(Publisher {
            channel: self.clone(),
            session,
            remuxer: Remuxer::new(base_ms, first_msn, self.config.chunk_ms),
        })
    }

    fn on_init(&self, init: Bytes) {
        let mut inner = self.lock();
        if inner.closed {
            return;
        }
        if inner.stream.is_some() && inner.init.as_ref() == Some(&init) {
            // The same publisher settings coming back: the broadcast simply continues.
            if let Some(s) = inner.stream.clone() {
                self.state.send_replace(ChannelState::Live(s));
            }
            return;
        }
        if let Some(old) = inner.stream.take() {
            old.finish();
            inner.init_generation += 1;
        } else {
            // A new broadcast: record it, and count its frames from zero.
            inner.init_generation = 0;
            self.health().frames = FrameTally::default();
            let started = (super::now_ns() / 1_000_000_000) as u64;
            inner.recorder = self.config.replays.as_ref().and_then(|store| {
                store
                    .begin(&self.id, started)
                    .map_err(|e| tracing::error!(stream = %self.id, "cannot record: {e}"))
                    .ok()
            });
        }
        if let Some(r) = &inner.recorder {
            r.init(init.clone());
        }
        let uri = match inner.init_generation {
            0 => "init.mp4".to_owned(),
            g => format!("init.mp4?v={g}"),
        };
        let stream = Arc::new(LiveStream::with_init_uri(
            self.id.clone(),
            init.clone(),
            self.config.window,
            &uri,
        ));
        inner.init = Some(init);
        inner.stream = Some(stream.clone());
        drop(inner);
        tracing::info!(stream = %self.id, "live");
        self.state.send_replace(ChannelState::Live(stream));
    }

    fn on_chunk(&self, chunk: PackagedChunk) {
        let mut inner = self.lock();
        inner.last_msn = inner.last_msn.max(chunk.segment_msn);
        if let Some(r) = &inner.recorder {
            r.chunk(chunk.clone());
        }
        if let Some(s) = &inner.stream {
            s.push_chunk(chunk);
        }
    }

    /// The publisher of `session` sent media that cannot be played: it is about to be
    /// refused, and viewers hear why.
    fn unsupported(&self, session: u64) {
        if self.lock().publisher != Some(session) {
            return;
        }
        tracing::info!(stream = %self.id, "viewers told: the publisher's media is unsupported");
        self.state.send_replace(ChannelState::Unsupported);
    }

    /// The publisher of `session` left, having reached `resume`.
    fn unpublished(self: &Arc<Self>, session: u64, resume: (u64, u64), started: bool) {
        let mut inner = self.lock();
        if inner.publisher != Some(session) {
            return;
        }
        inner.publisher = None;
        if inner.stream.is_none() {
            return; // Never went live: nothing to wait for.
        }
        if started {
            inner.resume = Some(resume);
        }
        let channel = self.clone();
        let grace = self.config.grace;
        inner.grace = Some(tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            channel.end_broadcast().await;
        }));
        drop(inner);
        tracing::info!(stream = %self.id, "publisher gone; the broadcast ends in {} s unless it returns", grace.as_secs());
        // A refused publisher's reason stays what viewers see.
        self.state.send_if_modified(|s| {
            let told = matches!(s, ChannelState::Unsupported);
            if !told {
                *s = ChannelState::Offline;
            }
            !told
        });
    }

    /// The server is stopping: ends the broadcast now, whoever is publishing, and
    /// resolves once its replay is on disk. Later media from a still-connected
    /// publisher goes nowhere.
    pub async fn close(&self) {
        if self.mirror {
            // The broadcast goes on at the origin: viewers are only sent away (1001),
            // with no "ended", and come back through another node.
            return;
        }
        let ending = {
            let mut inner = self.lock();
            inner.closed = true;
            if let Some(timer) = inner.grace.take() {
                timer.abort();
            }
            // The publisher's hold is void: its drop starts no grace period.
            inner.publisher = None;
            Ending::take(&mut inner)
        };
        let was_on = ending.stream.is_some();
        ending
            .finish(self, was_on, "broadcast ended: the server is stopping")
            .await;
    }

    /// The broadcaster ended the broadcast (the console's "End"): it ends now, with no
    /// grace period, once its publisher has left (waiting up to `patience` for that),
    /// and its replay is offered. Nothing happens if a publisher is still (or again) on.
    pub async fn end_now(&self, patience: Duration) {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let ending = {
                let mut inner = self.lock();
                if inner.publisher.is_none() {
                    if inner.stream.is_none() {
                        return;
                    }
                    if let Some(timer) = inner.grace.take() {
                        timer.abort();
                    }
                    Some(Ending::take(&mut inner))
                } else {
                    None
                }
            };
            if let Some(ending) = ending {
                return ending
                    .finish(self, true, "broadcast ended by the broadcaster")
                    .await;
            }
            if tokio::time::Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Ends the broadcast; "ended" is announced once its replay is on disk, so a
    /// viewer who asks for the replay at once finds it.
    async fn end_broadcast(&self) {
        let ending = {
            let mut inner = self.lock();
            if inner.publisher.is_some() {
                return;
            }
            Ending::take(&mut inner)
        };
        ending.finish(self, true, "broadcast ended").await;
    }
}

/// Mirroring: an edge node (see `crate::edge`) shows a channel ingested on its origin
/// as a local channel with no publisher. The relay builds the broadcast's stream and
/// says what the origin's channel says; push sockets and the API follow the mirror as
/// they follow a channel fed by ingest.
impl Channel {
    /// A channel that only mirrors another node's: nothing is recorded, and no grace
    /// period runs here (the origin's decides).
    pub fn mirror(id: &str, window: usize) -> Arc<Channel> {
        Arc::new(Channel {
            id: id.to_owned(),
            config: ChannelConfig {
                window,
                chunk_ms: 0,
                grace: Duration::ZERO,
                replays: None,
            },
            state: watch::channel(ChannelState::Offline).0,
            // No publisher may take it: its media comes from the origin.
            inner: Mutex::new(Inner {
                closed: true,
                ..Inner::default()
            }),
            health: Mutex::new(Health::default()),
            mirror: true,
        })
    }

    /// The origin's broadcast is on with `stream` (a new one finishes the old).
    pub fn mirror_live(&self, stream: Arc<LiveStream>) {
        let mut inner = self.lock();
        if let Some(old) = inner.stream.replace(stream.clone()) {
            if !Arc::ptr_eq(&old, &stream) {
                old.finish();
            }
        }
        drop(inner);
        self.state.send_replace(ChannelState::Live(stream));
    }

    /// The origin's channel says `state` (its publisher dropped, was refused, or the
    /// broadcast ended). Offline and unsupported keep the stream, as the origin does
    /// through its grace period; ended finishes it.
    pub fn mirror_state(&self, state: StreamState) {
        let next = match state {
            StreamState::Live | StreamState::Unknown => return,
            StreamState::Offline => ChannelState::Offline,
            StreamState::Unsupported => ChannelState::Unsupported,
            StreamState::Ended => ChannelState::Ended,
        };
        let ended = matches!(next, ChannelState::Ended)
            .then(|| self.lock().stream.take())
            .flatten();
        self.state.send_replace(next);
        if let Some(s) = ended {
            s.finish();
        }
    }

    /// The mirrored `stream` is withdrawn (the origin is out of reach): viewers hear
    /// `offline`, as when a publisher drops.
    pub fn mirror_withdraw(&self, stream: &Arc<LiveStream>) {
        let mut inner = self.lock();
        if inner
            .stream
            .as_ref()
            .is_some_and(|s| Arc::ptr_eq(s, stream))
        {
            inner.stream = None;
            drop(inner);
            self.state.send_replace(ChannelState::Offline);
        }
        stream.finish();
    }

    /// Push sockets open on the channel.
    pub fn push_sockets(&self) -> usize {
        self.health().open
    }

    /// The mirror is withdrawn (its relay ended): whoever follows its state wakes up to
    /// find it gone from the origin. Its state is unchanged.
    pub fn retire_mirror(&self) {
        self.state.send_modify(|_| {});
    }
}

/// A broadcast being ended: what was taken from the channel under its lock, finished
/// outside it.
struct Ending {
    stream: Option<Arc<LiveStream>>,
    recorded: Option<tokio::sync::oneshot::Receiver<()>>,
}

impl Ending {
    /// Takes the broadcast's stream and recording, and forgets how to resume it.
    /// Drops (without aborting) the grace timer's handle: the grace task itself may be
    /// the one ending the broadcast.
    fn take(inner: &mut Inner) -> Ending {
        inner.grace = None;
        inner.resume = None;
        inner.init = None;
        Ending {
            stream: inner.stream.take(),
            recorded: inner.recorder.take().map(Recorder::finish),
        }
    }

    /// Waits for the replay to be on disk, then announces "ended" (when `announce`
    /// and nothing new started meanwhile) and moves low-latency subscribers on (to
    /// "ended", or to the new broadcast).
    async fn finish(self, channel: &Channel, announce: bool, log: &str) {
        if let Some(done) = self.recorded {
            // An error means the recording had stopped already (logged there).
            let _ = done.await;
        }
        let again = {
            let inner = channel.lock();
            inner.publisher.is_some() || inner.stream.is_some()
        };
        if announce && !again {
            tracing::info!(stream = %channel.id, "{log}");
            channel.state.send_replace(ChannelState::Ended);
        }
        if let Some(s) = self.stream {
            s.finish();
        }
    }
}

/// A publisher connection's hold on its channel; dropping it lets go (the grace
/// period starts).
#[derive(Debug)]
pub struct Publisher {
    channel: Arc<Channel>,
    session: u64,
    remuxer: Remuxer,
}

impl Publisher {
    /// The channel's id.
    pub fn stream_id(&self) -> &str {
        &self.channel.id
    }

    /// Feeds an FLV video tag. An [`RemuxError::Unsupported`] codec ends the publish
    /// (the caller drops this hold) and puts the channel in
    /// [`ChannelState::Unsupported`].
    pub fn video(&mut self, ts: u32, data: Bytes) -> Result<(), RemuxError> {
        let out = match self.remuxer.video(ts, data) {
            Ok(out) => out,
            Err(e) => {
                if matches!(e, RemuxError::Unsupported(_)) {
                    self.channel.unsupported(self.session);
                }
                return Err(e);
            }
        };
        self.apply(out);
        Ok(())
    }

    /// See [`Remuxer::position`].
    pub fn position(&self, ts: u32) -> Option<(u64, u64)> {
        self.remuxer.position(ts)
    }

    /// Feeds an FLV audio tag.
    pub fn audio(&mut self, ts: u32, data: Bytes) -> Result<(), RemuxError> {
        let out = self.remuxer.audio(ts, data)?;
        self.apply(out);
        Ok(())
    }

    fn apply(&self, out: Vec<Output>) {
        for o in out {
            match o {
                Output::Init(init) => self.channel.on_init(init),
                Output::Chunk(c) => self.channel.on_chunk(c),
                Output::Warning(w) => tracing::warn!(stream = %self.channel.id, "{w}"),
                Output::Frame(ts) => self.channel.on_frame(self.session, ts),
            }
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        match self.remuxer.flush() {
            Ok(out) => self.apply(out),
            Err(e) => tracing::warn!(stream = %self.channel.id, "last chunk lost: {e}"),
        }
        let resume = (self.remuxer.end_ms(), self.remuxer.next_msn());
        self.channel
            .unpublished(self.session, resume, self.remuxer.started());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> Arc<LiveStream> {
        Arc::new(LiveStream::new("s", Bytes::from_static(b"init"), 3))
    }

    #[test]
    fn a_mirror_follows_the_origins_broadcast_and_takes_no_publisher() {
        let mirror = Channel::mirror("s", 3);
        assert!(matches!(mirror.publish(), Err(Refused::Closing(_))));
        let first = stream();
        mirror.mirror_live(first.clone());
        assert!(matches!(mirror.state(), ChannelState::Live(s) if Arc::ptr_eq(&s, &first)));
        // The publisher dropped on the origin: the stream stays through its grace.
        mirror.mirror_state(StreamState::Offline);
        assert!(matches!(mirror.state(), ChannelState::Offline));
        assert!(mirror.stream().is_some() && !first.is_finished());
        // A new broadcast replaces (and finishes) the old stream.
        let second = stream();
        mirror.mirror_live(second.clone());
        assert!(first.is_finished() && !second.is_finished());
        mirror.mirror_state(StreamState::Ended);
        assert!(matches!(mirror.state(), ChannelState::Ended));
        assert!(second.is_finished() && mirror.stream().is_none());
    }

    #[tokio::test]
    async fn stopping_the_node_leaves_a_mirrored_broadcast_on() {
        let mirror = Channel::mirror("s", 3);
        let live = stream();
        mirror.mirror_live(live.clone());
        mirror.close().await;
        assert!(
            matches!(mirror.state(), ChannelState::Live(_)),
            "no 'ended'"
        );
        assert!(!live.is_finished());
    }
}
