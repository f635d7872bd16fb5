//! The chat hub: rooms of viewers exchanging chat messages and hearts over WebSocket, with
//! presence counts, limits and moderation. The wire format is `lucarne-protocol`.
//!
//! # Layout
//! - [`Hub`]: the set of rooms (created on demand, one per stream id), the identity
//!   signer, the store, the configured tokens; what the HTTP handlers share.
//! - [`room`]: one room: ordered event log with resume, fan-out, hearts, count, bans.
//! - `session`: one WebSocket: hello/welcome, limits, forwarding the room to the socket.
//! - `upgrade`: the WebSocket handshake (tungstenite's socket, not axum's wrapper).
//! - [`moderation`]: moderation actions, shared by staff sockets and [`api`].
//! - [`api`]: moderation over HTTP for tools (bearer tokens).
//! - [`origins`]: which web pages may open a chat socket.
//! - [`identity`]: anonymous viewer identities (signed ids).
//! - [`rules`]: pure checks (names, texts, blocked words, colours).
//! - [`store`]: persistence behind one trait (SQLite by default).
//!
//! Limits are enforced here, never trusted to the widget.

pub mod api;
pub mod identity;
pub mod moderation;
pub mod origins;
pub mod room;
pub mod rules;
mod session;
pub mod store;
mod upgrade;

use crate::media::Origin;
use crate::AppState;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use identity::Identities;
use lucarne_protocol::{Role, StreamState, MAX_FRAME_BYTES};
use room::Room;
use std::collections::HashMap;
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
    /// Rooms kept in memory at most; empty ones are unloaded to make room.
    #[arg(long, default_value_t = 1000)]
    pub max_rooms: usize,
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
            max_rooms: 1000,
        }
    }
}

/// Why the hub could not serve a room.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The store failed.
    #[error("chat store: {0}")]
    Store(#[from] store::StoreError),
    /// Every room slot holds a room with viewers.
    #[error("too many chat rooms")]
    TooManyRooms,
    /// The hub is shutting down.
    #[error("shutting down")]
    Closing,
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
    identities: Identities,
    /// Streams, to tell a joining viewer whether its room is live.
    origin: Arc<Origin>,
    /// A slot per room id: the `OnceCell` lets one task load a room while others wait.
    rooms: Mutex<HashMap<String, Arc<OnceCell<Arc<Room>>>>>,
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
        Arc::new(Hub {
            identities: Identities::new(store.secret()),
            config: Arc::new(config),
            store,
            origin,
            rooms: Mutex::default(),
            closing: watch::channel(false).0,
            sessions: AtomicUsize::new(0),
            sessions_gone: Notify::new(),
        })
    }

    /// The hub's options.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// The room `id`, loaded or created on first use.
    pub async fn room(&self, id: &str) -> Result<Arc<Room>, HubError> {
        if *self.closing.borrow() {
            return Err(HubError::Closing);
        }
        let cell = {
            let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(cell) = rooms.get(id) {
                cell.clone()
            } else {
                if rooms.len() >= self.config.max_rooms {
                    let idle = rooms
                        .iter()
                        .find(|(_, c)| c.get().is_some_and(|r| r.try_retire()))
                        .map(|(k, _)| k.clone());
                    match idle {
                        Some(k) => {
                            rooms.remove(&k);
                        }
                        None => return Err(HubError::TooManyRooms),
                    }
                }
                let cell = Arc::new(OnceCell::new());
                rooms.insert(id.to_owned(), cell.clone());
                cell
            }
        };
        let room = cell
            .get_or_try_init(|| async {
                let stored = self.store.load_room(id, room::MAX_EVENTS).await?;
                let live = self.origin.stream_state(id).unwrap_or(StreamState::Offline);
                Ok::<_, HubError>(Room::open(
                    id,
                    stored,
                    live,
                    self.config.clone(),
                    self.store.clone(),
                ))
            })
            .await?;
        Ok(room.clone())
    }

    /// Tells a room's viewers that its broadcast changed state (for the live origin).
    pub async fn set_stream_state(&self, room: &str, state: StreamState) -> Result<(), HubError> {
        self.room(room).await?.set_stream_state(state);
        Ok(())
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
            .filter_map(|(_, c)| c.get().cloned())
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
            .values()
            .filter_map(|c| c.get())
        {
            r.shut();
        }
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

/// `GET /chat/{room}`: the chat WebSocket.
pub async fn chat_socket(
    State(state): State<AppState>,
    Path(room): Path<String>,
    req: Request,
) -> Response {
    let hub = state.hub.clone();
    if !rules::valid_room_id(&room) {
        return (StatusCode::NOT_FOUND, "no such chat room").into_response();
    }
    if !origins::allowed(req.headers(), &hub.config.embed_origins) {
        tracing::debug!(origin = ?req.headers().get("origin"), "chat socket refused: origin not allowed");
        return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
    }
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
        session::run(socket, guard.0.clone(), room).await;
        drop(guard);
    })
}

/// The moderation routes (see [`api`]).
pub fn routes() -> axum::Router<AppState> {
    api::routes()
}
