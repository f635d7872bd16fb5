//! lucarne-server: serves the lucarne widget, publishes live streams (HLS with CMAF
//! segments and a low-latency WebSocket push) and runs the chat hub.
//!
//! # Layout
//! - [`media`]: the live origin — CMAF muxing, FLV → CMAF remuxing, the demo loop,
//!   channels and their state, replays.
//! - [`http`]: routes, headers, the low-latency push, errors; `/healthz`, `/readyz`,
//!   `/metrics` and the drain state ([`http::ops`]).
//! - [`hub`]: chat, hearts and viewer count over WebSocket; moderation; persistence.
//! - [`ingest`]: RTMP publishers going live (the RTMP session and who may publish;
//!   their media goes to a [`media`] channel).
//! - [`edge`]: `--origin`: streams ingested on another node, relayed on demand from its
//!   push into local [`media`] streams and served from here.
//! - [`client`]: what counts as one client for per-address limits (ingest and hub).
//! - [`serve`]: accepting connections: header-read timeout, connection cap, shutdown.
//! - [`metrics`]: what `/metrics` reports, read from the hub and the origin at scrape.
//! - [`studio`]: the broadcaster console (`/studio/{stream}`): going live from the
//!   browser's camera (re-published to the RTMP ingest by ffmpeg), and the chat,
//!   hearts and viewer count while live.
//! - [`access`]: private broadcasts (`--private`): which streams need a signed playback
//!   token, and the token rule; `http::access` applies it.
//! - [`Config`] and [`Server`]: what `main.rs` parses and starts; tests start the same
//!   server on `127.0.0.1:0`.
//!
//! Layers import only those below them: `http` → `hub`, `ingest`, `edge` and `studio` →
//! `media`.

pub mod access;
pub mod client;
pub mod edge;
pub mod http;
pub mod hub;
pub mod ingest;
pub mod media;
pub mod metrics;
pub mod serve;
pub mod studio;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use media::clip::Clip;
use media::Origin;

/// Everything the server can be told. `main.rs` fills it from the command line.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "lucarne-server",
    version,
    about = "Live video, chat and hearts for any web page: the widget, the live origin and the hub."
)]
pub struct Config {
    /// Address to listen on (port 0 picks a free port; the chosen one is printed).
    #[arg(long, default_value = "127.0.0.1:8080", env = "LUCARNE_LISTEN")]
    pub listen: SocketAddr,
    /// Directory of the built widget (`cargo xtask dist` writes it).
    #[arg(long, default_value = "dist", env = "LUCARNE_DIST")]
    pub dist: PathBuf,
    /// Directory of the pages served at `/` (the demo pages).
    #[arg(long, default_value = "static", env = "LUCARNE_PAGES")]
    pub pages: PathBuf,
    /// Directory holding `demo.mp4`, the clip looped as the `demo` stream.
    #[arg(long, default_value = "media", env = "LUCARNE_MEDIA")]
    pub media: PathBuf,
    /// Do not publish the built-in `demo` stream.
    #[arg(long)]
    pub no_demo: bool,
    /// Segments listed in each HLS playlist (each lasts about one second).
    #[arg(long, default_value_t = 6)]
    pub hls_window: usize,
    /// Target length of a low-latency chunk, in milliseconds (chunks also end at every
    /// keyframe). Shorter chunks lower latency and add a little overhead.
    #[arg(long, default_value_t = 100)]
    pub chunk_ms: u32,
    /// Directory for the server's data (the chat database).
    #[arg(long, default_value = "data", env = "LUCARNE_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Chat options.
    #[command(flatten)]
    pub hub: hub::HubConfig,
    /// RTMP ingest options.
    #[command(flatten)]
    pub ingest: ingest::IngestConfig,
    /// Connection options (timeouts, cap, public origins).
    #[command(flatten)]
    pub serve: serve::ServeConfig,
    /// Private broadcasts.
    #[command(flatten)]
    pub access: access::AccessConfig,
    /// Edge node options (`--origin`).
    #[command(flatten)]
    pub edge: edge::EdgeConfig,
}

/// Shared by every request handler.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The server's configuration.
    pub config: Arc<Config>,
    /// The live streams.
    pub origin: Arc<Origin>,
    /// The chat rooms.
    pub hub: Arc<hub::Hub>,
    /// Whether the node is stopping (`/readyz`, push sockets), open push sockets.
    pub drain: Arc<http::ops::Drain>,
    /// What `/metrics` reports.
    pub metrics: Arc<metrics::Metrics>,
    /// Which streams are private, and their tokens' key.
    pub access: Arc<access::Access>,
    /// The broadcaster consoles: who may go live from the browser, who is.
    pub studio: Arc<studio::Studio>,
    /// With `--origin`: the streams relayed from the origin.
    pub edge: Option<Arc<edge::Edge>>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The demo clip is missing or unusable.
    #[error("demo clip: {0}")]
    Clip(#[from] media::clip::ClipError),
    /// The demo clip could not be packaged.
    #[error("demo packaging: {0}")]
    Mux(#[from] media::cmaf::MuxError),
    /// The chat database could not be opened.
    #[error("chat store: {0}")]
    Store(#[from] hub::store::StoreError),
    /// `--identity-secret-file` is unusable.
    #[error("{0}")]
    IdentitySecret(#[from] hub::identity::SecretFileError),
    /// `--redis` was given and Redis did not answer.
    #[error("chat cluster: {0}")]
    Cluster(#[from] hub::cluster::ClusterError),
    /// A `--stream-key` is malformed.
    #[error("{0}")]
    Key(#[from] ingest::KeyError),
    /// `--private` without a usable `--playback-secret`.
    #[error("{0}")]
    Access(#[from] access::AccessError),
    /// `--origin` is not an `http://` URL.
    #[error("{0}")]
    Edge(#[from] edge::EdgeConfigError),
    /// `--ladder` without a usable ffmpeg.
    #[error("{0}")]
    Ladder(#[from] media::ladder::LadderError),
    /// The RTMP address could not be bound.
    #[error("cannot listen for RTMP on {addr}: {source}")]
    RtmpBind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    rtmp_addr: Option<SocketAddr>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    /// The accept loop; taken by `wait` or `shutdown`.
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    sources: Vec<tokio::task::JoinHandle<()>>,
    hub: Arc<hub::Hub>,
    /// Its channels' broadcasts are ended (and recorded) at shutdown.
    origin: Arc<Origin>,
    /// Turns `/readyz` to 503 first at shutdown, and closes push sockets last.
    drain: Arc<http::ops::Drain>,
    /// How long `/readyz` says 503 before anything closes (`--drain-delay-secs`).
    drain_delay: std::time::Duration,
}

impl Server {
    /// Binds, starts the demo source and serves in the background.
    pub async fn start(config: Config) -> Result<Server, StartError> {
        let access = Arc::new(access::Access::new(&config.access)?);
        if config.edge.origin.is_some() && !config.ingest.ladder.is_empty() {
            return Err(edge::EdgeConfigError::Ladder.into());
        }
        let ladder = match config.ingest.ladder.as_slice() {
            [] => None,
            heights => Some(Arc::new(media::ladder::Ladder::new(
                heights,
                config.ingest.ffmpeg.as_deref(),
                &config.ingest.ladder_preset,
                config.hls_window,
                config.chunk_ms,
            )?)),
        };
        let origin = Arc::new(Origin::default());
        let edge = edge::Edge::new(
            &config.edge,
            origin.clone(),
            config.hls_window,
            access.clone(),
        )?;
        let mut sources = Vec::new();
        // An edge's `demo` is the origin's.
        if !config.no_demo && edge.is_none() {
            let clip = Arc::new(Clip::load(&config.media.join("demo.mp4"))?);
            sources.push(origin.start_demo("demo", clip, config.hls_window, config.chunk_ms)?);
            if let Some(l) = &ladder {
                sources.extend(media::ladder::start_demo_ladder(
                    l,
                    &origin,
                    "demo",
                    &config.media.join("demo.mp4"),
                ));
            }
        }
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        let keys = ingest::keys::Keys::new(ingest::parse_keys(&config.ingest.stream_keys)?);
        let replays = (config.ingest.replay_retention_hours > 0).then(|| {
            media::replay::ReplayStore::new(
                config.data_dir.join("replays"),
                std::time::Duration::from_secs(config.ingest.replay_retention_hours * 3600),
            )
        });
        if let Some(r) = &replays {
            r.purge();
            // Broadcasts a killed process left unfinished become replays.
            r.recover();
        }
        for id in keys.fixed().values() {
            if origin.channel(id).is_none() {
                origin.add_channel(media::channel::Channel::new(
                    id,
                    media::channel::ChannelConfig {
                        window: config.hls_window,
                        chunk_ms: config.chunk_ms,
                        grace: std::time::Duration::from_secs(config.ingest.ingest_grace_secs),
                        replays: replays.clone(),
                    },
                ));
            }
        }
        let store = open_store(&config).await?;
        let mut hub_config = config.hub.clone();
        hub_config
            .embed_origins
            .extend(hub::origins::own(addr, &config.serve.public_origins));
        let secret = match &config.hub.identity_secret_file {
            Some(path) => Some(hub::identity::secret_from_file(path)?),
            None => None,
        };
        let cluster = match &config.hub.redis {
            Some(url) => Some(Arc::new(
                hub::cluster::Cluster::connect(url, secret.is_none()).await?,
            )),
            None => None,
        };
        let hub = hub::Hub::clustered(hub_config, store, cluster, secret, origin.clone());
        for channel in origin.channels() {
            sources.push(tokio::spawn(tell_chat(channel, hub.clone())));
        }
        if let Some(edge) = &edge {
            sources.push(tokio::spawn(tell_chat_mirrors(
                edge.mirrors(),
                hub.clone(),
                origin.clone(),
            )));
        }
        let mut rtmp_addr = None;
        if !keys.fixed().is_empty() {
            let addr = config.ingest.rtmp_listen;
            let rtmp = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::RtmpBind { addr, source })?;
            rtmp_addr = rtmp.local_addr().ok();
            sources.push(tokio::spawn(ingest::serve(
                rtmp,
                keys.clone(),
                origin.clone(),
                ladder.clone(),
            )));
        }
        let serve_config = config.serve.clone();
        let drain = Arc::new(http::ops::Drain::default());
        let metrics = Arc::new(metrics::Metrics::new(
            hub.clone(),
            origin.clone(),
            drain.clone(),
            edge.clone(),
        ));
        let studio = Arc::new(studio::Studio::new(
            keys.clone(),
            rtmp_addr,
            studio::encoder::find_ffmpeg(config.ingest.ffmpeg.as_deref()),
        ));
        let app = http::router(AppState {
            config: Arc::new(config),
            origin: origin.clone(),
            hub: hub.clone(),
            drain: drain.clone(),
            metrics,
            access,
            studio,
            edge,
        });
        let drain_delay = std::time::Duration::from_secs(serve_config.drain_delay_secs);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task =
            tokio::spawn(async move { serve::serve(listener, app, &serve_config, rx).await });
        Ok(Server {
            addr,
            rtmp_addr,
            shutdown: Some(tx),
            task: Some(task),
            sources,
            hub,
            origin,
            drain,
            drain_delay,
        })
    }

    /// The chat hub (e.g. to tell rooms about stream state).
    pub fn hub(&self) -> &Arc<hub::Hub> {
        &self.hub
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The RTMP ingest address, when ingest runs (a stream key is configured).
    pub fn rtmp_addr(&self) -> Option<SocketAddr> {
        self.rtmp_addr
    }

    /// Serves until the listener fails.
    pub async fn wait(mut self) -> std::io::Result<()> {
        match self.task.take() {
            Some(task) => task.await.unwrap_or_else(|e| Err(std::io::Error::other(e))),
            None => Ok(()),
        }
    }

    /// Serves until the listener fails or `stop` resolves, then shuts down gracefully
    /// (see [`Server::shutdown`]).
    pub async fn run_until(
        mut self,
        stop: impl std::future::Future<Output = ()>,
    ) -> std::io::Result<()> {
        let Some(mut task) = self.task.take() else {
            return Ok(());
        };
        tokio::select! {
            r = &mut task => r.unwrap_or_else(|e| Err(std::io::Error::other(e))),
            () = stop => {
                self.task = Some(task);
                self.shutdown().await;
                Ok(())
            }
        }
    }

    /// Leaves the load balancer's rotation (`/readyz` answers 503, everything else is
    /// served as before) for the drain delay; then stops accepting, ends live broadcasts
    /// (their replays written), closes chat connections (1001) and flushes the chat
    /// store, closes push sockets (1001), lets open requests finish, stops the sources.
    /// `main.rs` calls it on SIGTERM and SIGINT. See [`http::ops`].
    pub async fn shutdown(mut self) {
        self.drain.start_draining();
        if !self.drain_delay.is_zero() {
            tracing::info!(
                "draining: /readyz answers 503 for {} s before connections close (--drain-delay-secs)",
                self.drain_delay.as_secs()
            );
            tokio::time::sleep(self.drain_delay).await;
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let recordings = std::time::Duration::from_secs(10);
        if tokio::time::timeout(recordings, self.origin.close())
            .await
            .is_err()
        {
            tracing::warn!("replays still being written at shutdown");
        }
        self.hub.shutdown(std::time::Duration::from_secs(5)).await;
        self.drain
            .close_push(std::time::Duration::from_secs(2))
            .await;
        for s in &self.sources {
            s.abort();
        }
        if let Some(mut task) = self.task.take() {
            // Open requests get a moment; long-lived sockets (the demo's low-latency
            // push never ends by itself) are cut after it.
            let drain = std::time::Duration::from_secs(5);
            if tokio::time::timeout(drain, &mut task).await.is_err() {
                tracing::info!(
                    "connections still open after {} s: closing them",
                    drain.as_secs()
                );
                task.abort();
            }
        }
    }
}

/// Tells a channel's chat room when its broadcast starts, drops and ends.
async fn tell_chat(channel: Arc<media::channel::Channel>, hub: Arc<hub::Hub>) {
    let mut rx = channel.watch();
    loop {
        let state = rx.borrow_and_update().stream_state();
        if let Err(e) = hub.set_stream_state(&channel.id, state).await {
            tracing::warn!(stream = %channel.id, "cannot tell the chat about the stream: {e}");
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// On an edge: tells each mirrored channel's chat room its state, while the mirror is
/// in the origin (see [`edge::Edge::mirrors`]).
async fn tell_chat_mirrors(
    mut mirrors: tokio::sync::broadcast::Receiver<Arc<media::channel::Channel>>,
    hub: Arc<hub::Hub>,
    origin: Arc<Origin>,
) {
    loop {
        match mirrors.recv().await {
            Ok(mirror) => {
                tokio::spawn(tell_chat_mirror(mirror, hub.clone(), origin.clone()));
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!("{n} mirrored channels not followed by the chat");
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

async fn tell_chat_mirror(
    mirror: Arc<media::channel::Channel>,
    hub: Arc<hub::Hub>,
    origin: Arc<Origin>,
) {
    let mut rx = mirror.watch();
    let mut told = None;
    loop {
        let here = origin
            .channel(&mirror.id)
            .is_some_and(|c| Arc::ptr_eq(&c, &mirror));
        if !here {
            return;
        }
        let state = rx.borrow_and_update().stream_state();
        if told != Some(state) {
            if let Err(e) = hub.set_stream_state(&mirror.id, state).await {
                tracing::warn!(stream = %mirror.id, "cannot tell the chat about the stream: {e}");
            }
            told = Some(state);
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// The chat store the configuration asks for: `--chat-db`, else `<data-dir>/chat.sqlite3`.
async fn open_store(config: &Config) -> Result<Arc<dyn hub::store::Store>, StartError> {
    let path = config
        .hub
        .chat_db
        .clone()
        .unwrap_or_else(|| config.data_dir.join("chat.sqlite3"));
    if path.as_os_str() == ":memory:" {
        return Ok(Arc::new(hub::store::memory::MemoryStore::new()));
    }
    let store = tokio::task::spawn_blocking(move || hub::store::sqlite::SqliteStore::open(&path))
        .await
        .map_err(|e| hub::store::StoreError::Corrupt(format!("opening the store: {e}")))??;
    Ok(Arc::new(store))
}

impl Drop for Server {
    fn drop(&mut self) {
        self.hub.start_closing();
        self.drain.start_closing();
        for s in &self.sources {
            s.abort();
        }
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}
