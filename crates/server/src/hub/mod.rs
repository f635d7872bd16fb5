//! The chat hub: rooms of viewers exchanging chat messages and hearts over WebSocket, with
//! presence counts, limits and moderation. The wire format is `lucarne-protocol`.
//!
//! # Layout
//! - [`Hub`]: the set of rooms (loaded on demand, one per stream id), the identity
//!   signer, the store, the configured tokens, the per-client budgets; what the HTTP
//!   handlers share.
//! - [`room`]: one room, tying its parts under one lock, and its bans; records changes.
//!   - `log`: the event log (epoch, seq, message ids) over `window`, the resume
//!     window bounded in count, age and bytes.
//!   - `gate`: the post gate (flood limit, mutes, slow mode, blocked words).
//!   - `ticker`: hearts aggregation and the viewer count; `hearts`: when the hearts
//!     total is saved.
//!   - `fanout`: the broadcast ring a room's sessions read.
//! - `admission`: which rooms are held: streams' always, made-up ones bounded.
//! - `budget`: per-client-address budgets (new identities, made-up rooms, token guesses);
//!   `budgets`: the hub's, shared through Redis with `--redis`.
//! - `confusable`: names compared as they look (Unicode TR39 skeletons).
//! - `session`: one WebSocket (any `Sink`/`Stream` of messages): hello/welcome, limits,
//!   forwarding the room to the socket.
//! - `upgrade`: the WebSocket handshake (tungstenite's socket, not axum's wrapper).
//! - [`moderation`]: moderation actions, shared by staff sockets and [`api`].
//! - `questions`: which messages are open questions, their votes, the pinned one.
//! - [`api`]: moderation over HTTP for tools (bearer tokens).
//! - [`origins`]: which web pages may open a chat socket.
//! - [`identity`]: anonymous viewer identities (signed ids).
//! - [`rules`]: pure checks (names, texts, blocked words, colours).
//! - [`store`]: persistence behind one trait (SQLite by default).
//! - [`cluster`]: with `--redis`, what several nodes share: the seq, epoch and history,
//!   viewer count, hearts, flood limits, moderation.
//!
//! Limits are enforced here, never trusted to the widget.

mod admission;
pub mod api;
mod budget;
mod budgets;
pub mod cluster;
mod confusable;
mod fanout;
mod gate;
mod hearts;
pub mod identity;
mod log;
pub mod moderation;
pub mod origins;
mod questions;
pub mod room;
pub mod rules;
mod session;
pub mod store;
mod ticker;
mod upgrade;
mod window;

use crate::edge::EdgeError;
use crate::media::Origin;
use crate::AppState;
use admission::Kind;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Request, State};
use axum::http::{header, request::Parts, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
pub use budget::ClientKey;
use budget::Keyer;
use budgets::{Budgets, Spend};
use identity::Identities;
use lucarne_protocol::{ChatDoor, Refusal, Role, StreamState, MAX_FRAME_BYTES};
use room::Room;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use store::Store;
use tokio::sync::{watch, Notify, OnceCell};

/// Chat options (flattened into the server's [`crate::Config`]).
#[derive(Debug, Clone, clap::Args)]
pub struct HubConfig {
    /// Origins (`scheme://host[:port]`) of pages allowed to open the chat besides the
    /// server's own; `*` allows any. Repeat, or separate with commas.
    #[arg(
        long = "embed-origin",
        env = "LUCARNE_EMBED_ORIGINS",
        value_delimiter = ','
    )]
    pub embed_origins: Vec<String>,
    /// Token that makes a chat client (or an HTTP tool) the broadcaster.
    #[arg(long, env = "LUCARNE_BROADCASTER_TOKEN", hide_env_values = true)]
    pub broadcaster_token: Option<String>,
    /// Tokens that make a chat client (or an HTTP tool) a moderator. Repeat, or separate
    /// with commas.
    #[arg(
        long = "moderator-token",
        env = "LUCARNE_MODERATOR_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub moderator_tokens: Vec<String>,
    /// The broadcaster's display name; no viewer may take it.
    #[arg(long, default_value = "Broadcaster", env = "LUCARNE_BROADCASTER_NAME")]
    pub broadcaster_name: String,
    /// Chat database file (default `<data-dir>/chat.sqlite3`); `:memory:` keeps nothing
    /// across restarts.
    #[arg(long, env = "LUCARNE_CHAT_DB")]
    pub chat_db: Option<PathBuf>,
    /// Chat messages a viewer may post in a burst ...
    #[arg(long, default_value_t = 3)]
    pub chat_burst: u32,
    /// ... per this many milliseconds; posting faster mutes the viewer.
    #[arg(long, default_value_t = 2000)]
    pub chat_window_ms: u64,
    /// How long a flooding viewer stays muted, in seconds.
    #[arg(long, default_value_t = 30)]
    pub mute_secs: u64,
    /// Close a chat connection that sent nothing for this long, in seconds (the widget
    /// pings well within it).
    #[arg(long, default_value_t = 60)]
    pub chat_idle_timeout_secs: u64,
    /// Drop a viewer whose socket accepts nothing for this long, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub chat_send_timeout_ms: u64,
    /// Room events a viewer may fall behind before it is dropped (it then resumes).
    #[arg(long, default_value_t = 512)]
    pub chat_queue: usize,
    /// Also open chat rooms for ids that are no stream's (`/chat/anything`). Off by
    /// default: only `demo` and the `--stream-key` streams have a chat room, and any
    /// other id is answered 404. Made-up rooms never take the place of a stream's room.
    #[arg(long, env = "LUCARNE_FREE_ROOMS")]
    pub free_rooms: bool,
    /// Made-up rooms (`--free-rooms`) kept in memory at most; empty ones are unloaded
    /// to make room, and when all have viewers a new one is refused (503). A room holds
    /// at most about 6 MB (a 4 MiB resume window, a fan-out ring of `--chat-queue`
    /// frames, per-viewer marks); streams' rooms are not counted.
    #[arg(long, default_value_t = 100)]
    pub max_rooms: usize,
    /// New viewer identities one client address may get per minute (a burst of that
    /// many, then evenly); each brings its own chat allowance, so this bounds what one
    /// address can post. Returning viewers are not counted. 0: no limit. IPv6 counts
    /// per /64. Behind a proxy, see `--client-ip-header`.
    #[arg(long, default_value_t = 10, env = "LUCARNE_NEW_VIEWERS_PER_IP")]
    pub new_viewers_per_ip: u32,
    /// Header holding the client's address, set by the reverse proxy in front (e.g.
    /// `X-Real-IP`, or `X-Forwarded-For`, whose last entry is taken). Without it the
    /// TCP peer is the client: behind a proxy, every viewer would share one address.
    #[arg(long, env = "LUCARNE_CLIENT_IP_HEADER")]
    pub client_ip_header: Option<String>,
    /// Redis (`redis://host:port[/db]`) shared by several nodes: rooms' seqs, epochs and
    /// history live there, so a viewer may resume on any node (see `hub::cluster`).
    /// Without it, one node: the chat store alone.
    #[arg(long, env = "LUCARNE_REDIS")]
    pub redis: Option<String>,
    /// File holding the secret that signs viewer identities (at least 32 bytes, e.g.
    /// `openssl rand -hex 32`). It wins over the one the chat store or Redis keeps: give
    /// every node the same file and identities survive losing either. Without it, one
    /// node keeps its secret in the chat store, several share one through Redis.
    #[arg(long, env = "LUCARNE_IDENTITY_SECRET_FILE")]
    pub identity_secret_file: Option<PathBuf>,
}

impl Default for HubConfig {
    /// The command line's defaults.
    fn default() -> Self {
        HubConfig {
            embed_origins: Vec::new(),
            broadcaster_token: None,
            moderator_tokens: Vec::new(),
            broadcaster_name: "Broadcaster".into(),
            chat_db: None,
            chat_burst: 3,
            chat_window_ms: 2000,
            mute_secs: 30,
            chat_idle_timeout_secs: 60,
            chat_send_timeout_ms: 10_000,
            chat_queue: 512,
            free_rooms: false,
            max_rooms: 100,
            new_viewers_per_ip: 10,
            client_ip_header: None,
            redis: None,
            identity_secret_file: None,
        }
    }
}

/// Why the hub could not serve a room.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The store failed.
    #[error("chat store: {0}")]
    Store(#[from] store::StoreError),
    /// Every made-up room slot holds a room with viewers.
    #[error("too many chat rooms")]
    TooManyRooms,
    /// No stream has this id, and made-up rooms are off.
    #[error("no such chat room")]
    NoSuchRoom,
    /// This client opened too many made-up rooms lately.
    #[error("too many new chat rooms from this address; retry in {} s", .0.as_secs() + 1)]
    ClientLimit(Duration),
    /// The hub is shutting down.
    #[error("shutting down")]
    Closing,
    /// Redis (`--redis`) failed.
    #[error("chat cluster: {0}")]
    Cluster(#[from] cluster::ClusterError),
}

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The rooms and what they share.
pub struct Hub {
    config: Arc<HubConfig>,
    store: Arc<dyn Store>,
    /// `--redis`: rooms shared with other nodes.
    cluster: Option<Arc<cluster::Cluster>>,
    identities: Identities,
    /// Streams, to tell a joining viewer whether its room is live.
    origin: Arc<Origin>,
    /// A slot per room id: the `OnceCell` lets one task load a room while others wait.
    rooms: Mutex<admission::Table<Arc<OnceCell<Arc<Room>>>>>,
    /// Held while a client pays for a made-up room and its slot is made (see `open`).
    creating: tokio::sync::Mutex<()>,
    keyer: Keyer,
    /// Per client address: new identities, made-up rooms opened, wrong staff tokens.
    budgets: Budgets,
    closing: watch::Sender<bool>,
    sessions: AtomicUsize,
    sessions_gone: Notify,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("store", &self.store)
            .field("sessions", &self.sessions.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// A hub over `store`.
    pub fn new(config: HubConfig, store: Arc<dyn Store>, origin: Arc<Origin>) -> Arc<Hub> {
        Hub::clustered(config, store, None, None, origin)
    }

    /// A hub over `store` whose rooms are shared through `cluster` (`--redis`), signing
    /// identities with `secret` when the operator gave one (`--identity-secret-file`).
    pub fn clustered(
        config: HubConfig,
        store: Arc<dyn Store>,
        cluster: Option<Arc<cluster::Cluster>>,
        secret: Option<[u8; 32]>,
        origin: Arc<Origin>,
    ) -> Arc<Hub> {
        // With Redis, one secret for every node: an identity is the same viewer on all
        // of them (see `cluster`), and one address is one client key on all of them.
        let shared = secret.or_else(|| cluster.as_ref().and_then(|c| c.secret()));
        let secret = shared.unwrap_or_else(|| store.secret());
        let keyer = match (&cluster, shared) {
            (Some(_), Some(s)) => Keyer::shared(&s),
            _ => Keyer::default(),
        };
        let hub = Arc::new(Hub {
            identities: Identities::new(secret),
            budgets: Budgets::new(config.new_viewers_per_ip, cluster.clone()),
            cluster,
            keyer,
            config: Arc::new(config),
            store,
            origin,
            rooms: Mutex::default(),
            creating: tokio::sync::Mutex::new(()),
            closing: watch::channel(false).0,
            sessions: AtomicUsize::new(0),
            sessions_gone: Notify::new(),
        });
        if hub.cluster.as_ref().is_some_and(|c| c.secret().is_some()) {
            tokio::spawn(keep_secret(Arc::downgrade(&hub)));
        }
        hub
    }

    /// The hub's options.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// Whether `id` may have a room: a stream's id, or any valid id with `--free-rooms`.
    pub fn admits(&self, id: &str) -> bool {
        rules::valid_room_id(id) && (self.config.free_rooms || self.is_stream(id))
    }

    /// Why a chat handshake for room `id` with these headers is refused for good, if it is.
    fn refusal(&self, id: &str, headers: &HeaderMap) -> Option<Refusal> {
        if !self.admits(id) {
            Some(Refusal::Room)
        } else if !origins::allowed(headers, &self.config.embed_origins) {
            Some(Refusal::Origin)
        } else {
            None
        }
    }

    fn is_stream(&self, id: &str) -> bool {
        self.origin.stream_state(id).is_some()
    }

    /// The room `id`, loaded or created on first use (for the server itself: no
    /// client's budget is spent).
    pub async fn room(&self, id: &str) -> Result<Arc<Room>, HubError> {
        self.open(id, None).await
    }

    /// The room `id` for a client, whose budget pays for a made-up room it creates.
    pub(crate) async fn room_for(
        &self,
        id: &str,
        client: ClientKey,
    ) -> Result<Arc<Room>, HubError> {
        self.open(id, Some(client)).await
    }

    async fn open(&self, id: &str, client: Option<ClientKey>) -> Result<Arc<Room>, HubError> {
        if *self.closing.borrow() {
            return Err(HubError::Closing);
        }
        if !self.admits(id) {
            return Err(HubError::NoSuchRoom);
        }
        // A made-up room is paid for by its client before it is created. The budget may
        // be in Redis, so it is spent outside the table's lock, under `creating`: clients
        // racing to open the same new room wait there and find it made (only the first
        // pays, and none is refused because others paid).
        let mut creating = None;
        let mut paid = false;
        let cell = loop {
            let unpaid = {
                let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
                // A room lost with Redis (`--redis`) is retired in its slot: load it again.
                let held = rooms
                    .get(id)
                    .filter(|c| !c.get().is_some_and(|r| r.is_retired()));
                if let Some(cell) = held {
                    break cell;
                }
                let kind = if self.is_stream(id) {
                    Kind::Stream
                } else {
                    Kind::Free
                };
                match (kind, client) {
                    (Kind::Free, Some(client)) if !paid => client,
                    _ => {
                        rooms.remove(id);
                        let slot = Arc::new(OnceCell::new());
                        break rooms
                            .insert(id, kind, self.config.max_rooms, slot, |c| {
                                c.get().is_some_and(|r| r.try_retire())
                            })
                            .map_err(|_| HubError::TooManyRooms)?;
                    }
                }
            };
            if creating.is_none() {
                creating = Some(self.creating.lock().await);
                // Look again: it may have been made while this one waited.
                continue;
            }
            self.budgets
                .take(Spend::NewRoom, unpaid)
                .await
                .map_err(HubError::ClientLimit)?;
            paid = true;
        };
        drop(creating);
        let room = cell
            .get_or_try_init(|| async {
                let stored = self.store.load_room(id, room::MAX_EVENTS).await?;
                let live = self.origin.stream_state(id).unwrap_or(StreamState::Offline);
                let shared = match &self.cluster {
                    Some(c) => Some((c.clone(), c.open_room(id).await?)),
                    None => None,
                };
                Ok::<_, HubError>(Room::open(
                    id,
                    stored,
                    live,
                    self.config.clone(),
                    self.store.clone(),
                    shared,
                ))
            })
            .await?;
        if *self.closing.borrow() {
            // Loaded while the hub was shutting down: its viewers must hear it too.
            room.shut();
            return Err(HubError::Closing);
        }
        Ok(room.clone())
    }

    /// Tells a room's viewers that its broadcast changed state (for the live origin).
    pub async fn set_stream_state(&self, room: &str, state: StreamState) -> Result<(), HubError> {
        self.room(room).await?.set_stream_state(state);
        Ok(())
    }

    /// The role `token` grants `client`, if any; `Err(retry_after)` when the client
    /// sent too many wrong tokens lately (then the token is not even compared).
    pub(crate) async fn staff_role(
        &self,
        token: &str,
        client: ClientKey,
    ) -> Result<Option<Role>, Duration> {
        self.budgets.check(Spend::Guess, client).await?;
        let role = self.role_for_token(token);
        if role.is_none() {
            self.budgets.take(Spend::Guess, client).await?;
        }
        Ok(role)
    }

    /// Runs `check` (a comparison of a secret `client` sent: the broadcaster console's)
    /// under the same budget as wrong staff tokens: `Err(retry_after)` when the client
    /// sent too many wrong secrets lately (then `check` is not run); a wrong one spends
    /// one guess.
    pub(crate) async fn secret_attempt(
        &self,
        client: ClientKey,
        check: impl FnOnce() -> bool,
    ) -> Result<bool, Duration> {
        self.budgets.check(Spend::Guess, client).await?;
        let right = check();
        if !right {
            self.budgets.take(Spend::Guess, client).await?;
        }
        Ok(right)
    }

    /// Spends one of `client`'s new identities; `Err(retry_after)` when none is left.
    pub(crate) async fn new_viewer(&self, client: ClientKey) -> Result<(), Duration> {
        self.budgets.take(Spend::NewViewer, client).await
    }

    /// The client behind a request: `--client-ip-header` when configured and present,
    /// else the TCP peer the serve loop recorded (`ConnectInfo<SocketAddr>`).
    pub fn client_key(
        &self,
        headers: &HeaderMap,
        extensions: &axum::http::Extensions,
    ) -> ClientKey {
        let from_header = self.config.client_ip_header.as_deref().and_then(|h| {
            let value = headers.get(h)?.to_str().ok()?;
            value.rsplit(',').next()?.trim().parse::<IpAddr>().ok()
        });
        let ip = from_header
            .or_else(|| {
                extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|c| c.0.ip())
            })
            .unwrap_or_else(|| {
                // The serve loop must record the peer; without it everyone shares one
                // budget, which is safe but tight.
                static WARNED: std::sync::Once = std::sync::Once::new();
                WARNED.call_once(|| tracing::warn!("chat: no client address on requests"));
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            });
        self.keyer.key(ip)
    }

    /// The role a moderator/broadcaster token grants, if any.
    pub fn role_for_token(&self, token: &str) -> Option<Role> {
        let c = &self.config;
        if c.broadcaster_token
            .as_deref()
            .is_some_and(|t| identity::secrets_equal(t, token))
        {
            Some(Role::Broadcaster)
        } else if c
            .moderator_tokens
            .iter()
            .any(|t| identity::secrets_equal(t, token))
        {
            Some(Role::Moderator)
        } else {
            None
        }
    }

    /// The rooms loaded now: every stream's, and made-up ones in use (for metrics).
    pub fn rooms(&self) -> Vec<Arc<Room>> {
        lock(&self.rooms)
            .slots()
            .filter_map(|c| c.get().cloned())
            .collect()
    }

    /// Open chat connections: sockets past the handshake, joined or not yet.
    pub fn connections(&self) -> usize {
        self.sessions.load(Ordering::Acquire)
    }

    /// Whether the store can take a write now (see [`Store::ping`]) and, with
    /// `--redis`, whether Redis answers; for `/readyz`.
    pub async fn ping_store(&self) -> Result<(), store::StoreError> {
        self.store.ping().await?;
        if let Some(c) = &self.cluster {
            c.ping().await.map_err(|e| store::StoreError::Backend {
                backend: "redis",
                source: match e {
                    cluster::ClusterError::Redis(e) => Box::new(e),
                    other => Box::new(other),
                },
            })?;
        }
        Ok(())
    }

    fn session_started(self: &Arc<Self>) -> SessionGuard {
        self.sessions.fetch_add(1, Ordering::AcqRel);
        SessionGuard(self.clone())
    }

    /// Closes every chat connection (close code 1001: clients resume elsewhere or
    /// later), then flushes the store. Waits at most `grace` for the connections.
    pub async fn shutdown(&self, grace: Duration) {
        self.closing.send_replace(true);
        let rooms: Vec<_> = self
            .rooms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .into_iter()
            .filter_map(|c| c.get().cloned())
            .collect();
        for r in &rooms {
            r.shut();
        }
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let gone = self.sessions_gone.notified();
            if self.sessions.load(Ordering::Acquire) == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, gone).await.is_err() {
                tracing::warn!(
                    "{} chat sessions still open at shutdown",
                    self.sessions.load(Ordering::Acquire)
                );
                break;
            }
        }
        self.store.close().await;
    }

    /// Starts closing without waiting (for `Drop`).
    pub fn start_closing(&self) {
        self.closing.send_replace(true);
        for r in self
            .rooms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .slots()
            .filter_map(|c| c.get())
        {
            r.shut();
        }
    }
}

/// Keeps the identity secret a node shares through Redis (see `cluster`): every
/// [`cluster::SECRET_CHECK`], writes it back if Redis lost it, or takes the older one
/// Redis holds; ends with the hub.
async fn keep_secret(hub: std::sync::Weak<Hub>) {
    let mut every = tokio::time::interval(cluster::SECRET_CHECK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(hub) = hub.upgrade() else { return };
        if *hub.closing.borrow() {
            return;
        }
        let Some(cluster) = hub.cluster.clone() else {
            return;
        };
        match cluster.keep_secret().await {
            Ok(change) => {
                if let Some(newer) = change.accept {
                    hub.identities.accept(newer);
                }
                if let Some(older) = change.adopt {
                    hub.identities.adopt(older);
                }
            }
            // Redis away: the room followers report it; the next check writes it back.
            Err(e) => tracing::debug!("chat: identity secret not checked: {e}"),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The requesting client, for handlers (see [`Hub::client_key`]).
#[derive(Debug, Clone, Copy)]
pub struct Client(pub ClientKey);

impl FromRequestParts<AppState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Client(
            state.hub.client_key(&parts.headers, &parts.extensions),
        ))
    }
}

struct SessionGuard(Arc<Hub>);

impl Drop for SessionGuard {
    fn drop(&mut self) {
        if self.0.sessions.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.sessions_gone.notify_waiters();
        }
    }
}

/// Tungstenite's own frame limit: frames up to this size are read whole and refused
/// with a clean 1009 close; larger ones are cut off by tungstenite (1009 too, best
/// effort, as the rest of the frame is never read).
const HARD_FRAME_LIMIT: usize = 64 * 1024;

/// `GET /chat/{room}`: the chat WebSocket. A plain `GET` (no `Upgrade`) answers the
/// [`ChatDoor`]: whether this page's handshake would be refused for good, and why, which
/// a page cannot learn from a failed `WebSocket` (see [`Refusal`]).
pub async fn chat_socket(
    State(state): State<AppState>,
    Path(room): Path<String>,
    req: Request,
) -> Response {
    let hub = state.hub.clone();
    // On an edge, the chat may be the first request for a stream: ask the origin before
    // refusing its room. A relay that finds the stream (live, or a channel offline)
    // makes the local origin remember it (`Origin::remember_relayed`), which admits the
    // room; it is also the relay the player is about to need.
    let mut origin_away = false;
    if let Some(edge) = state.edge.as_ref().filter(|_| !hub.admits(&room)) {
        origin_away = matches!(edge.stream(&room).await, Err(EdgeError::Unavailable(..)));
    }
    let refused = hub.refusal(&room, req.headers()).filter(|_| !origin_away);
    if !upgrade::is_handshake(req.headers()) {
        return door(refused, req.headers());
    }
    if origin_away {
        // Not a refusal for good: the widget retries with backoff.
        return (StatusCode::SERVICE_UNAVAILABLE, "the origin is unavailable").into_response();
    }
    match refused {
        Some(Refusal::Room) => return (StatusCode::NOT_FOUND, "no such chat room").into_response(),
        Some(_) => {
            tracing::debug!(origin = ?req.headers().get("origin"), "chat socket refused: origin not allowed");
            return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
        }
        None => {}
    }
    let client = hub.client_key(req.headers(), req.extensions());
    const { assert!(MAX_FRAME_BYTES < HARD_FRAME_LIMIT) };
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(HARD_FRAME_LIMIT))
        .max_frame_size(Some(HARD_FRAME_LIMIT))
        // Small buffers: an idle viewer should cost a few KB (the defaults are 128 KB,
        // and tungstenite touches its whole read buffer).
        .read_buffer_size(session::READ_BUFFER)
        .write_buffer_size(session::WRITE_BUFFER)
        .max_write_buffer_size(session::MAX_WRITE_BUFFER);
    let guard = hub.session_started();
    upgrade::accept(req, config, move |socket| async move {
        session::run(socket, guard.0.clone(), room, client).await;
        drop(guard);
    })
}

/// The [`ChatDoor`] answer: `200` when a handshake would be accepted, else the
/// handshake's own status (`403`, `404`) with the reason. Readable by any page (CORS `*`
/// from the router): it tells a page only about itself.
fn door(refused: Option<Refusal>, headers: &HeaderMap) -> Response {
    let status = match refused {
        None => StatusCode::OK,
        Some(Refusal::Room) => StatusCode::NOT_FOUND,
        Some(_) => StatusCode::FORBIDDEN,
    };
    let origin = match refused {
        Some(Refusal::Origin) => headers
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .filter(|o| o.len() <= 256)
            .map(str::to_owned),
        _ => None,
    };
    let door = ChatDoor { refused, origin };
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(door),
    )
        .into_response()
}

/// The moderation routes (see [`api`]).
pub fn routes() -> axum::Router<AppState> {
    api::routes()
}
