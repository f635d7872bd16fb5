//! The soak's audience (`src/bin/soak.rs`): low-latency push viewers on
//! `/live/{id}/ll` ([`PushCrowd`]) and chat viewers on `/chat/{room}` ([`ChatCrowd`]),
//! each an async task in this process, adding what it receives to shared [`Counters`].
//!
//! Owns its sockets and nothing else. It never reads the server's state except through
//! what a viewer receives, and never changes the server's options.
//!
//! # What each viewer does
//! - A push viewer reads every frame as soon as it arrives and counts binary frames
//!   (media chunks) and bytes. A silence of more than [`STALL`] between two chunks is a
//!   stall; [`PushCrowd::silent`] also reports viewers silent right now (a stall that
//!   has not ended). A closed socket is counted and reopened after a second.
//! - A chat viewer says `hello`, reads and decodes every frame, and checks the room's
//!   ordering promise: each `chat` event's seq must be exactly one above the last it
//!   saw (the soak deletes nothing, so the room has no gaps): a jump is counted as
//!   lost messages, a repeat as a duplicate. It pings every [`PING_EVERY`] as the
//!   widget does. Some viewers post (a name in `hello`, a unique `clientId` per message,
//!   re-sent after a reconnect until its echo arrives), some tap hearts.
//! - Churn: each chat viewer leaves after an exponentially distributed time (so a fixed
//!   fraction of the room leaves each minute, at random moments), half of them with a
//!   close frame and half by dropping the socket, and comes back within two seconds
//!   with `hello.resume`: the welcome must say `recovered`, and its history continues
//!   the seq without a gap.
//!
//! # Source addresses
//! Viewer `i` connects from `127.0.0.(2 + i mod sources)`: a real audience comes from
//! many addresses, and the server's limits per address (abuse control: by default 10
//! new viewer identities per address per minute, `--new-viewers-per-ip`) must not turn
//! a 2,000-viewer room on one machine into refusals. With 250 addresses, 2,000 viewers
//! are 8 per address, within that burst; returning viewers (resume) are not counted.
//! `sources = 1` uses 127.0.0.1 only. A join refused all the same (an error frame
//! instead of the welcome) is counted apart and retried.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use lucarne_protocol::{
    ClientMessage, Hello, Ping, Resume, RoomEvent, SendChat, SendHearts, ServerMessage, Welcome,
    PROTOCOL_VERSION,
};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

type Ws = WebSocketStream<TcpStream>;

/// A push viewer that receives no chunk for this long has stalled (the stream sends
/// one every 100 ms while live).
pub const STALL: Duration = Duration::from_secs(3);
/// Chat viewers ping this often (the server closes after 60 s of silence).
pub const PING_EVERY: Duration = Duration::from_secs(25);
/// Each poster posts this often (the flood limit allows 3 per 2 s).
const POST_EVERY: Duration = Duration::from_secs(5);
/// Each heart tapper sends a batch this often.
const HEARTS_EVERY: Duration = Duration::from_secs(2);
/// First connections in flight at once.
const JOINING: usize = 64;
/// A handshake plus welcome that takes longer fails.
const JOIN_TIMEOUT: Duration = Duration::from_secs(20);
/// Distinct problems kept for the report.
const KEEP_PROBLEMS: usize = 12;

/// What the crowds are told to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Watch, post, tap hearts, churn.
    Run,
    /// Keep reading and pinging; no posts, hearts or churn (the end-of-run check).
    Quiet,
    /// Close and end the tasks.
    Stop,
}

macro_rules! counters {
    ($($name:ident: $doc:literal),* $(,)?) => {
        /// Event counts shared by every viewer task (monotonic unless marked "now").
        #[derive(Debug, Default)]
        pub struct Counters {
            $(#[doc = $doc] pub $name: AtomicU64,)*
        }

        /// The [`Counters`] at one moment; subtracting two gives what happened between.
        #[derive(Clone, Copy, Debug, Default)]
        pub struct Totals {
            $(#[doc = $doc] pub $name: u64,)*
        }

        impl Counters {
            /// Reads every counter.
            pub fn totals(&self) -> Totals {
                Totals { $($name: self.$name.load(Relaxed),)* }
            }
        }

        impl std::ops::Sub for Totals {
            type Output = Totals;
            fn sub(self, earlier: Totals) -> Totals {
                Totals { $($name: self.$name.saturating_sub(earlier.$name),)* }
            }
        }
    };
}

counters! {
    push_connected: "Push sockets open now.",
    push_connects: "Push sockets opened.",
    push_connect_failures: "Push sockets that could not be opened.",
    push_closed: "Push sockets the server closed (or that failed) while the soak ran.",
    push_chunks: "Binary frames received by push viewers.",
    push_bytes: "Bytes of binary frames received by push viewers.",
    push_stalls: "Silences longer than STALL between two chunks of one push viewer.",
    chat_connected: "Chat sockets open (welcomed) now.",
    chat_connects: "Chat welcomes received (first joins and reconnects).",
    chat_connect_failures: "Chat connections that failed before their welcome (not refusals).",
    chat_join_refused: "Joins refused with an error frame (a new-viewer rate limit), retried.",
    chat_churned: "Chat viewers that left on purpose (churn) and came back.",
    chat_dropped: "Chat sockets the server closed (or that failed) unasked.",
    chat_resumed: "Reconnects whose welcome said recovered.",
    chat_not_recovered: "Reconnects whose welcome said not recovered.",
    chat_delivered: "Chat events received by viewers (live and resumed).",
    chat_lost: "Chat events skipped over (seq gaps) by viewers.",
    chat_duplicates: "Chat events received twice by one viewer.",
    chat_posted: "Chat messages posted (first sends, not re-sends).",
    chat_acked: "Posted messages whose echo reached their author.",
    chat_refused: "Error or mute frames received.",
    chat_bad_frames: "Frames that did not decode as the protocol.",
    hearts_sent: "Hearts tapped.",
    hearts_frames: "Hearts frames received.",
    pongs: "Pongs received.",
}

/// Delivery delays of chat events in 5 ms buckets up to 10 s (the last bucket holds
/// everything later), emptied by each [`Delays::take`].
#[derive(Debug)]
pub struct Delays {
    buckets: Vec<AtomicU64>,
}

impl Default for Delays {
    fn default() -> Self {
        Self {
            buckets: (0..=Self::BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl Delays {
    const BUCKET_MS: u64 = 5;
    const BUCKETS: usize = 2000;

    fn record(&self, ms: u64) {
        let i = ((ms / Self::BUCKET_MS) as usize).min(Self::BUCKETS);
        self.buckets[i].fetch_add(1, Relaxed);
    }

    /// The `p`-th percentile (0..=100) in ms of the delays since the last call, and
    /// how many there were; empties the histogram.
    pub fn take(&self, p: f64) -> (Option<u64>, u64) {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.swap(0, Relaxed)).collect();
        (
            bucket_percentile(&counts, p, Self::BUCKET_MS),
            counts.iter().sum(),
        )
    }
}

/// The upper edge of the bucket holding the `p`-th percentile.
fn bucket_percentile(counts: &[u64], p: f64, width: u64) -> Option<u64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((p.clamp(0.0, 100.0) / 100.0) * total as f64)
        .ceil()
        .max(1.0) as u64;
    let mut seen = 0;
    for (i, c) in counts.iter().enumerate() {
        seen += c;
        if seen >= rank {
            return Some((i as u64 + 1) * width);
        }
    }
    None
}

/// Problems worth quoting (distinct texts, the first few), with how often each came.
#[derive(Debug, Default)]
pub struct Problems {
    seen: Mutex<Vec<(String, u64)>>,
}

impl Problems {
    fn note(&self, what: String) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = seen.iter_mut().find(|(w, _)| *w == what) {
            entry.1 += 1;
        } else if seen.len() < KEEP_PROBLEMS {
            seen.push((what, 1));
        }
    }

    /// `(text, count)` pairs, in the order first seen.
    pub fn list(&self) -> Vec<(String, u64)> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Where the crowds connect and from which addresses.
#[derive(Clone, Debug)]
pub struct Target {
    /// The server's HTTP address.
    pub server: SocketAddr,
    /// The stream id, which is also the chat room.
    pub stream: String,
    /// Loopback source addresses to spread viewers over (see the module doc).
    pub sources: u8,
}

impl Target {
    fn source(&self, i: usize) -> Ipv4Addr {
        if self.sources <= 1 {
            return Ipv4Addr::LOCALHOST;
        }
        Ipv4Addr::new(127, 0, 0, 2 + (i % self.sources as usize) as u8)
    }

    async fn open(&self, i: usize, path: &str, read_buffer: usize) -> Result<Ws> {
        let socket = TcpSocket::new_v4()?;
        socket
            .bind(SocketAddr::new(self.source(i).into(), 0))
            .with_context(|| format!("binding to {}", self.source(i)))?;
        let tcp = socket.connect(self.server).await?;
        tcp.set_nodelay(true)?;
        let req = format!("ws://{}{path}", self.server).into_client_request()?;
        let config = WebSocketConfig::default()
            .read_buffer_size(read_buffer)
            .write_buffer_size(0);
        let (ws, _) = tokio_tungstenite::client_async_with_config(req, tcp, Some(config)).await?;
        Ok(ws)
    }
}

/// A small xorshift generator: the soak's randomness is reproducible from its seed.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn within(&mut self, d: Duration) -> Duration {
        d.mul_f64(self.unit())
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Waits until `phase` is `Stop` (or its sender is gone).
async fn stopped(phase: &mut watch::Receiver<Phase>) {
    loop {
        if *phase.borrow_and_update() == Phase::Stop || phase.changed().await.is_err() {
            return;
        }
    }
}

/// One push viewer's liveness, read by [`PushCrowd::silent`].
#[derive(Debug, Default)]
struct PushSlot {
    /// Unix ms of its latest chunk (0 before the first).
    last_chunk_ms: AtomicU64,
    /// Its socket is open.
    open: AtomicBool,
}

/// Low-latency push viewers.
#[derive(Debug)]
pub struct PushCrowd {
    slots: Arc<Vec<PushSlot>>,
    phase: watch::Sender<Phase>,
    tasks: JoinSet<()>,
}

impl PushCrowd {
    /// Opens `viewers` push sockets and waits until each has received a chunk.
    pub async fn join(target: &Target, viewers: usize, counters: Arc<Counters>) -> Result<Self> {
        let slots: Arc<Vec<PushSlot>> =
            Arc::new((0..viewers).map(|_| PushSlot::default()).collect());
        let (phase, rx) = watch::channel(Phase::Run);
        let mut tasks = JoinSet::new();
        for i in 0..viewers {
            let (target, slots, counters, rx) =
                (target.clone(), slots.clone(), counters.clone(), rx.clone());
            tasks.spawn(push_viewer(i, target, slots, counters, rx));
        }
        let crowd = Self {
            slots,
            phase,
            tasks,
        };
        let start = Instant::now();
        loop {
            let waiting = crowd
                .slots
                .iter()
                .filter(|s| s.last_chunk_ms.load(Relaxed) == 0)
                .count();
            if waiting == 0 {
                return Ok(crowd);
            }
            if start.elapsed() > Duration::from_secs(60) {
                bail!("{waiting} of {viewers} push viewers received nothing in 60 s");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Viewers whose latest chunk is older than [`STALL`] now (a stall still going on).
    pub fn silent(&self) -> usize {
        let now = now_ms();
        let stall = STALL.as_millis() as u64;
        self.slots
            .iter()
            .filter(|s| now.saturating_sub(s.last_chunk_ms.load(Relaxed)) > stall)
            .count()
    }

    /// Closes every socket.
    pub async fn stop(mut self) {
        let _ = self.phase.send(Phase::Stop);
        while self.tasks.join_next().await.is_some() {}
        debug_assert!(self.slots.iter().all(|s| !s.open.load(Relaxed)));
    }
}

async fn push_viewer(
    i: usize,
    target: Target,
    slots: Arc<Vec<PushSlot>>,
    counters: Arc<Counters>,
    mut phase: watch::Receiver<Phase>,
) {
    let path = format!("/live/{}/ll", target.stream);
    let slot = &slots[i];
    let stall_ms = STALL.as_millis() as u64;
    loop {
        let mut ws = tokio::select! {
            ws = target.open(i, &path, 64 * 1024) => match ws {
                Ok(ws) => ws,
                Err(_) => {
                    counters.push_connect_failures.fetch_add(1, Relaxed);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
            _ = stopped(&mut phase) => return,
        };
        counters.push_connects.fetch_add(1, Relaxed);
        counters.push_connected.fetch_add(1, Relaxed);
        slot.open.store(true, Relaxed);
        let mut last: Option<u64> = None;
        let end = loop {
            let msg = tokio::select! {
                m = ws.next() => m,
                _ = stopped(&mut phase) => break true,
            };
            match msg {
                Some(Ok(Message::Binary(b))) => {
                    let now = now_ms();
                    if last.is_some_and(|l| now.saturating_sub(l) > stall_ms) {
                        counters.push_stalls.fetch_add(1, Relaxed);
                    }
                    last = Some(now);
                    slot.last_chunk_ms.store(now, Relaxed);
                    counters.push_chunks.fetch_add(1, Relaxed);
                    counters.push_bytes.fetch_add(b.len() as u64, Relaxed);
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break false,
            }
        };
        counters.push_connected.fetch_sub(1, Relaxed);
        slot.open.store(false, Relaxed);
        if end {
            let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
            return;
        }
        counters.push_closed.fetch_add(1, Relaxed);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// What the chat crowd does.
#[derive(Clone, Debug)]
pub struct ChatPlan {
    /// Viewers in the room.
    pub viewers: usize,
    /// Chat messages per second in the whole room.
    pub posts_per_s: f64,
    /// Viewers tapping hearts.
    pub heart_tappers: usize,
    /// Fraction of the room that leaves and comes back each minute.
    pub churn_per_min: f64,
    /// Seed of the churn and timing randomness.
    pub seed: u64,
}

impl ChatPlan {
    /// Viewers that post, each every [`POST_EVERY`].
    pub fn posters(&self) -> usize {
        ((self.posts_per_s * POST_EVERY.as_secs_f64()).round() as usize).min(self.viewers)
    }
}

/// One chat viewer's progress, read by the end-of-run check.
#[derive(Debug, Default)]
struct ChatSlot {
    /// The highest seq it has seen.
    last_seq: AtomicU64,
    /// Welcomed and not yet closed.
    connected: AtomicBool,
    /// Welcomed at least once (churn keeps a few viewers away at any moment, so the
    /// join waits for this rather than for everyone connected at once).
    joined: AtomicBool,
    /// Messages it posted whose echo it has not seen.
    unacked: AtomicU64,
}

/// Shared by every chat viewer task.
#[derive(Debug)]
struct ChatShared {
    target: Target,
    plan: ChatPlan,
    slots: Vec<ChatSlot>,
    counters: Arc<Counters>,
    delays: Arc<Delays>,
    problems: Arc<Problems>,
    joining: Arc<Semaphore>,
}

/// The end-of-run check: did every viewer end on the room's last seq?
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChatEnd {
    /// The highest seq any viewer saw.
    pub last_seq: u64,
    /// Viewers connected at the check.
    pub connected: usize,
    /// Connected viewers whose last seq is below `last_seq`.
    pub behind: usize,
    /// Posts never echoed to their author.
    pub unacked: u64,
}

/// Chat viewers in one room.
#[derive(Debug)]
pub struct ChatCrowd {
    shared: Arc<ChatShared>,
    phase: watch::Sender<Phase>,
    tasks: JoinSet<()>,
}

impl ChatCrowd {
    /// Starts the viewers ([`JOINING`] joins at a time) and waits until each has been
    /// welcomed.
    pub async fn join(
        target: &Target,
        plan: ChatPlan,
        counters: Arc<Counters>,
        delays: Arc<Delays>,
        problems: Arc<Problems>,
    ) -> Result<Self> {
        let viewers = plan.viewers;
        let shared = Arc::new(ChatShared {
            target: target.clone(),
            slots: (0..viewers).map(|_| ChatSlot::default()).collect(),
            plan,
            counters,
            delays,
            problems,
            joining: Arc::new(Semaphore::new(JOINING)),
        });
        let (phase, rx) = watch::channel(Phase::Run);
        let mut tasks = JoinSet::new();
        for i in 0..viewers {
            tasks.spawn(chat_viewer(i, shared.clone(), rx.clone()));
        }
        let crowd = Self {
            shared,
            phase,
            tasks,
        };
        let start = Instant::now();
        let joined = || {
            crowd
                .shared
                .slots
                .iter()
                .filter(|s| s.joined.load(Relaxed))
                .count()
        };
        while joined() < viewers {
            if start.elapsed() > Duration::from_secs(120) {
                bail!(
                    "only {} of {viewers} chat viewers joined in 120 s",
                    joined()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(crowd)
    }

    /// Viewers welcomed and connected now.
    pub fn connected(&self) -> usize {
        self.shared
            .slots
            .iter()
            .filter(|s| s.connected.load(Relaxed))
            .count()
    }

    /// Stops posting, hearts and churn; viewers keep reading.
    pub fn quiet(&self) {
        let _ = self.phase.send(Phase::Quiet);
    }

    /// After [`ChatCrowd::quiet`]: waits until every viewer is connected and on the
    /// same last seq, or `deadline` passes, and returns what it saw last.
    pub async fn settle(&self, deadline: Duration) -> ChatEnd {
        let start = Instant::now();
        loop {
            let end = self.end();
            let all = end.connected == self.shared.plan.viewers;
            if (all && end.behind == 0 && end.unacked == 0) || start.elapsed() > deadline {
                return end;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    fn end(&self) -> ChatEnd {
        let slots = &self.shared.slots;
        let last_seq = slots
            .iter()
            .map(|s| s.last_seq.load(Relaxed))
            .max()
            .unwrap_or(0);
        let connected: Vec<&ChatSlot> =
            slots.iter().filter(|s| s.connected.load(Relaxed)).collect();
        ChatEnd {
            last_seq,
            connected: connected.len(),
            behind: connected
                .iter()
                .filter(|s| s.last_seq.load(Relaxed) < last_seq)
                .count(),
            unacked: slots.iter().map(|s| s.unacked.load(Relaxed)).sum(),
        }
    }

    /// Closes every socket.
    pub async fn stop(mut self) {
        let _ = self.phase.send(Phase::Stop);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// What a chat viewer carries across its connections.
#[derive(Debug, Default)]
struct Viewer {
    /// Its index in the crowd (names and clientIds).
    index: usize,
    /// `viewerId` and `viewerToken` from the first welcome.
    identity: Option<(String, String)>,
    /// The room's epoch, once welcomed.
    epoch: Option<u64>,
    /// Display name (posters only).
    name: Option<String>,
    /// A posted message whose echo has not come: (clientId, text).
    pending: Option<(String, String)>,
    /// Messages posted so far.
    sent: u64,
}

/// The server answered `hello` with an error frame instead of a welcome.
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused: {}", self.0)
    }
}

impl std::error::Error for Refused {}

/// Why a chat connection ended.
enum Left {
    /// Churn: leaving on purpose, to come back.
    Churn,
    /// The server closed it, or it failed.
    Dropped(String),
    /// The soak is over.
    Stop,
}

async fn chat_viewer(i: usize, shared: Arc<ChatShared>, mut phase: watch::Receiver<Phase>) {
    let plan = &shared.plan;
    let mut rng = Rng::new(plan.seed ^ (i as u64 + 1));
    let posters = plan.posters();
    let poster = i < posters;
    let tapper = !poster && i < posters + plan.heart_tappers;
    let mut me = Viewer {
        index: i,
        name: poster.then(|| format!("soak {i}")),
        ..Viewer::default()
    };
    let mut permit = Some(shared.joining.clone().acquire_owned().await);
    loop {
        if *phase.borrow() == Phase::Stop {
            return;
        }
        let joined = tokio::select! {
            j = tokio::time::timeout(JOIN_TIMEOUT, join_room(i, &shared, &mut me)) => j,
            _ = stopped(&mut phase) => return,
        };
        let mut ws = match joined {
            Ok(Ok(ws)) => ws,
            Ok(Err(e)) => {
                let counter = match e.downcast_ref::<Refused>() {
                    Some(_) => &shared.counters.chat_join_refused,
                    None => &shared.counters.chat_connect_failures,
                };
                counter.fetch_add(1, Relaxed);
                shared.problems.note(format!("chat join failed: {e:#}"));
                tokio::time::sleep(Duration::from_secs(1) + rng.within(Duration::from_secs(1)))
                    .await;
                continue;
            }
            Err(_) => {
                shared.counters.chat_connect_failures.fetch_add(1, Relaxed);
                shared.problems.note("chat join timed out".into());
                continue;
            }
        };
        drop(permit.take());
        let slot = &shared.slots[i];
        slot.connected.store(true, Relaxed);
        slot.joined.store(true, Relaxed);
        shared.counters.chat_connected.fetch_add(1, Relaxed);
        let left = session(
            &mut ws,
            &shared,
            slot,
            &mut me,
            &mut rng,
            &mut phase,
            (poster, tapper),
        )
        .await;
        slot.connected.store(false, Relaxed);
        shared.counters.chat_connected.fetch_sub(1, Relaxed);
        match left {
            Left::Stop => {
                let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                return;
            }
            Left::Churn => {
                shared.counters.chat_churned.fetch_add(1, Relaxed);
                if rng.next().is_multiple_of(2) {
                    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                }
                drop(ws);
                tokio::time::sleep(
                    Duration::from_millis(200) + rng.within(Duration::from_millis(1800)),
                )
                .await;
            }
            Left::Dropped(why) => {
                shared.counters.chat_dropped.fetch_add(1, Relaxed);
                shared.problems.note(format!("chat socket dropped: {why}"));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

fn frame(msg: &ClientMessage) -> Message {
    // Serialising the protocol's own types cannot fail.
    Message::text(serde_json::to_string(msg).unwrap_or_default())
}

/// Connects, says hello (resuming when it has been here before), reads the welcome and
/// its history, re-sends an unechoed post.
async fn join_room(i: usize, shared: &ChatShared, me: &mut Viewer) -> Result<Ws> {
    let slot = &shared.slots[i];
    let mut ws = shared
        .target
        .open(i, &format!("/chat/{}", shared.target.stream), 4096)
        .await?;
    let resume = me.epoch.map(|epoch| Resume {
        epoch,
        last_seq: slot.last_seq.load(Relaxed),
    });
    let hello = Hello {
        protocol_version: PROTOCOL_VERSION,
        viewer_id: me.identity.as_ref().map(|(id, _)| id.clone()),
        viewer_token: me.identity.as_ref().map(|(_, t)| t.clone()),
        name: me.name.clone(),
        resume,
        auth_token: None,
        backstage: false,
    };
    ws.send(frame(&ClientMessage::Hello(hello))).await?;
    let welcome: Welcome = loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => match serde_json::from_str::<ServerMessage>(t.as_str()) {
                Ok(ServerMessage::Welcome(w)) => break w,
                Ok(ServerMessage::Error(e)) => {
                    return Err(Refused(format!("{:?}: {}", e.code, e.message)).into())
                }
                _ => {}
            },
            Some(Ok(Message::Close(c))) => bail!("closed before welcome: {c:?}"),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => bail!("closed before welcome"),
        }
    };
    let counters = &shared.counters;
    counters.chat_connects.fetch_add(1, Relaxed);
    me.identity = Some((welcome.viewer_id.clone(), welcome.viewer_token.clone()));
    me.epoch = Some(welcome.epoch);
    match resume {
        Some(_) if welcome.recovered => {
            counters.chat_resumed.fetch_add(1, Relaxed);
            for event in &welcome.history {
                if let RoomEvent::Chat(m) = event {
                    on_chat(m.seq, m.client_id.as_deref(), None, slot, me, shared);
                }
            }
        }
        Some(_) => {
            counters.chat_not_recovered.fetch_add(1, Relaxed);
            shared
                .problems
                .note("a resume was not recovered (history lost)".into());
            slot.last_seq.store(welcome.seq, Relaxed);
        }
        None => slot.last_seq.store(welcome.seq, Relaxed),
    }
    if let Some((client_id, text)) = me.pending.clone() {
        let chat = SendChat {
            text,
            client_id: Some(client_id),
            question: false,
        };
        ws.send(frame(&ClientMessage::Chat(chat))).await?;
    }
    Ok(ws)
}

/// Checks one chat event against the viewer's last seq and counts it.
fn on_chat(
    seq: u64,
    client_id: Option<&str>,
    sent_ms: Option<u64>,
    slot: &ChatSlot,
    me: &mut Viewer,
    shared: &ChatShared,
) {
    let counters = &shared.counters;
    let last = slot.last_seq.load(Relaxed);
    if seq <= last {
        counters.chat_duplicates.fetch_add(1, Relaxed);
        return;
    }
    if seq > last + 1 {
        counters.chat_lost.fetch_add(seq - last - 1, Relaxed);
        shared
            .problems
            .note("a viewer saw a gap in the room's seq".into());
    }
    slot.last_seq.store(seq, Relaxed);
    counters.chat_delivered.fetch_add(1, Relaxed);
    if let Some(ts) = sent_ms {
        shared.delays.record(now_ms().saturating_sub(ts));
    }
    if me
        .pending
        .as_ref()
        .is_some_and(|(id, _)| Some(id.as_str()) == client_id)
    {
        me.pending = None;
        slot.unacked.fetch_sub(1, Relaxed);
        counters.chat_acked.fetch_add(1, Relaxed);
    }
}

/// Reads and answers one connection until it ends.
async fn session(
    ws: &mut Ws,
    shared: &ChatShared,
    slot: &ChatSlot,
    me: &mut Viewer,
    rng: &mut Rng,
    phase: &mut watch::Receiver<Phase>,
    (poster, tapper): (bool, bool),
) -> Left {
    let counters = &shared.counters;
    let now = tokio::time::Instant::now();
    // Exponential: a fixed fraction leaves each minute, memoryless.
    let rate = shared.plan.churn_per_min.max(1e-9) / 60.0;
    let stay = Duration::from_secs_f64((-(1.0 - rng.unit()).ln() / rate).min(1e7));
    let leave = tokio::time::sleep_until(now + stay);
    tokio::pin!(leave);
    let mut ping = tokio::time::interval_at(now + rng.within(PING_EVERY), PING_EVERY);
    let mut post = tokio::time::interval_at(now + rng.within(POST_EVERY), POST_EVERY);
    let mut hearts = tokio::time::interval_at(now + rng.within(HEARTS_EVERY), HEARTS_EVERY);
    for t in [&mut ping, &mut post, &mut hearts] {
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    }
    loop {
        let running = *phase.borrow() == Phase::Run;
        let sent = tokio::select! {
            msg = ws.next() => {
                match msg {
                    Some(Ok(Message::Text(t))) => on_text(t.as_str(), shared, slot, me),
                    Some(Ok(Message::Close(c))) => {
                        return Left::Dropped(c.map_or("close without a code".into(), |c| format!("close {}", c.code)));
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Left::Dropped(format!("{e}")),
                    None => return Left::Dropped("end of stream".into()),
                }
                Ok(())
            }
            _ = ping.tick() => ws.send(frame(&ClientMessage::Ping(Ping { t: Some(now_ms()) }))).await,
            _ = post.tick(), if poster && running && me.pending.is_none() => {
                me.sent += 1;
                let client_id = format!("v{}-{}", me.index, me.sent);
                let text = format!("soak message {} from viewer {}", me.sent, me.index);
                me.pending = Some((client_id.clone(), text.clone()));
                slot.unacked.fetch_add(1, Relaxed);
                counters.chat_posted.fetch_add(1, Relaxed);
                ws.send(frame(&ClientMessage::Chat(SendChat { text, client_id: Some(client_id), question: false }))).await
            }
            _ = hearts.tick(), if tapper && running => {
                let count = 1 + (rng.next() % 5) as u32;
                counters.hearts_sent.fetch_add(count as u64, Relaxed);
                ws.send(frame(&ClientMessage::Hearts(SendHearts { count, colour: None }))).await
            }
            _ = &mut leave, if running => return Left::Churn,
            changed = phase.changed() => {
                if changed.is_err() || *phase.borrow() == Phase::Stop {
                    return Left::Stop;
                }
                Ok(())
            }
        };
        if let Err(e) = sent {
            return Left::Dropped(format!("send failed: {e}"));
        }
    }
}

/// Handles one text frame. Hearts, viewer counts and pongs (most of the traffic) are
/// recognised by their prefix; everything else is decoded.
fn on_text(text: &str, shared: &ChatShared, slot: &ChatSlot, me: &mut Viewer) {
    let counters = &shared.counters;
    if text.starts_with(r#"{"type":"hearts""#) {
        counters.hearts_frames.fetch_add(1, Relaxed);
        return;
    }
    if text.starts_with(r#"{"type":"viewerCount""#) {
        return;
    }
    if text.starts_with(r#"{"type":"pong""#) {
        counters.pongs.fetch_add(1, Relaxed);
        return;
    }
    match serde_json::from_str::<ServerMessage>(text) {
        Ok(ServerMessage::Chat(m)) => {
            on_chat(m.seq, m.client_id.as_deref(), Some(m.ts), slot, me, shared)
        }
        Ok(ServerMessage::Error(e)) => {
            counters.chat_refused.fetch_add(1, Relaxed);
            shared
                .problems
                .note(format!("error frame: {:?} {}", e.code, e.message));
        }
        Ok(ServerMessage::Notice(n)) => {
            counters.chat_refused.fetch_add(1, Relaxed);
            shared.problems.note(format!("notice: {:?}", n.code));
        }
        Ok(_) => {}
        Err(e) => {
            counters.chat_bad_frames.fetch_add(1, Relaxed);
            shared.problems.note(format!("undecodable frame: {e}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_percentiles_come_from_the_buckets() {
        let d = Delays::default();
        for ms in [1, 2, 3, 4, 12, 13, 14, 15, 16, 999_999] {
            d.record(ms);
        }
        let (p50, n) = d.take(50.0);
        assert_eq!(n, 10);
        // Four of ten are under 5 ms; the fifth (12 ms) is in the 10-15 ms bucket.
        assert_eq!(p50, Some(15));
        d.record(12);
        assert_eq!(d.take(95.0), (Some(15), 1));
        assert_eq!(d.take(50.0), (None, 0));
    }

    #[test]
    fn a_plan_of_four_posts_a_second_has_twenty_posters() {
        let plan = ChatPlan {
            viewers: 2000,
            posts_per_s: 4.0,
            heart_tappers: 40,
            churn_per_min: 0.05,
            seed: 1,
        };
        assert_eq!(plan.posters(), 20);
    }

    #[test]
    fn viewers_spread_over_loopback_addresses() {
        let t = Target {
            server: "127.0.0.1:1".parse().unwrap(),
            stream: "s".into(),
            sources: 100,
        };
        assert_eq!(t.source(0), Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(t.source(199), Ipv4Addr::new(127, 0, 0, 101));
        let one = Target { sources: 1, ..t };
        assert_eq!(one.source(7), Ipv4Addr::LOCALHOST);
    }
}
