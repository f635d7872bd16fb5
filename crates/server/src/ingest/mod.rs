//! RTMP ingest: OBS, phone apps and ffmpeg publish here (`rtmp://HOST:1935/live/KEY`).
//!
//! The protocol (handshake, chunk streams, AMF0 commands) is `scuffle-rtmp`'s server
//! session; this module decides who may publish and where the media goes:
//!
//! - the stream key (the RTMP stream name) maps to a stream id (`--stream-key
//!   KEY=ID`, or a one-time pass the console's ffmpeg publishes with: [`keys`]); an
//!   unknown key is refused and logged (without the key itself);
//! - the key's [`Channel`](crate::media::channel::Channel) takes the publisher
//!   (one at a time) and remuxes its FLV tags into CMAF ([`remux`]) for the live origin;
//! - limits: the session itself bounds message sizes (10 MB), chunk streams and read
//!   time (a silent peer is dropped within seconds); here, a cap on malformed tags per
//!   connection and no more than [`MAX_PUBLISHERS`] publishers at once.
//!
//! A session never takes the server down: each runs in its own task, its errors end
//! only that connection, and tags are parsed by code that returns errors, not panics.
//!
//! # Connections that have not published
//!
//! A connection earns a publishing slot only with an accepted `publish`. Before that it
//! is *pending*, and pending connections are cheap to make, so they get a budget of
//! their own ([`admission`]: [`MAX_PENDING`] in all, [`MAX_PENDING_PER_IP`] per host,
//! over budget is closed at accept), a short life ([`HANDSHAKE_DEADLINE`] to finish the
//! handshake, [`PUBLISH_DEADLINE`] to publish, both from accept and not reset by
//! traffic) and little memory ([`PRE_PUBLISH_MESSAGE_LIMIT`] of unfinished messages
//! instead of the 40 MB a session otherwise buffers). So a port scan, a slow drip or
//! a huge first message costs a pending place for seconds, never a publisher's slot.
//! A pending connection's buffers are bounded by that limit, one chunk (at most 64 KB)
//! and the handshake's few KB: some 150 KB, [`MAX_PENDING`] of them some 20 MB.
//!
//! The session is scuffle-rtmp 0.2.3 with lucarne's patches (`patches/scuffle-rtmp`,
//! listed in its PATCHES.md): end of stream during the handshake ended nothing (the
//! task spun at 100 % of a core forever, and held its slot), the handshake had only a
//! per-read timeout, the pre-publish message limit and the handler's own error (the
//! [`Refusal`] a refused publish ends with) did not exist.

mod admission;
pub mod keys;

use crate::media::channel::{self, Publisher};
use crate::media::ladder::{self, Feed, Ladder};
use crate::media::remux;
use crate::media::Origin;
use admission::{Admitted, Pending};
use keys::Keys;
use scuffle_rtmp::chunk::error::ChunkReadError;
use scuffle_rtmp::error::RtmpError;
use scuffle_rtmp::session::server::{ServerSessionError, SessionData, SessionHandler};
use scuffle_rtmp::ServerSession;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

/// Connections publishing at once; a publish past them is refused.
pub const MAX_PUBLISHERS: usize = 64;
/// Connections not yet publishing, in all; more are closed at accept.
pub const MAX_PENDING: usize = 128;
/// Time from connect to the end of the RTMP handshake.
pub const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(5);
/// Time from connect to an accepted `publish`.
pub const PUBLISH_DEADLINE: Duration = Duration::from_secs(10);
/// Connections not yet publishing, per source address (per /64 for IPv6).
pub const MAX_PENDING_PER_IP: usize = 8;
/// Bytes of unfinished messages a connection may send before it publishes: commands
/// (`connect`, `createStream`, `publish`) are a few hundred bytes.
pub const PRE_PUBLISH_MESSAGE_LIMIT: usize = 64 * 1024;
/// Malformed tags tolerated per connection before it is closed.
const MAX_MALFORMED: u32 = 50;

/// Ingest options.
#[derive(Debug, Clone, clap::Args)]
pub struct IngestConfig {
    /// Address for RTMP publishers (ingest runs only when a stream key is configured).
    #[arg(long, default_value = "127.0.0.1:1935", env = "LUCARNE_RTMP_LISTEN")]
    pub rtmp_listen: SocketAddr,
    /// A publisher key and the stream it goes live on, as KEY=STREAM (repeatable, or
    /// comma-separated in the environment).
    #[arg(
        long = "stream-key",
        env = "LUCARNE_STREAM_KEYS",
        value_delimiter = ','
    )]
    pub stream_keys: Vec<String>,
    /// Seconds a dropped publisher has to reconnect and continue the same broadcast
    /// before it is marked ended.
    #[arg(long, default_value_t = 15)]
    pub ingest_grace_secs: u64,
    /// Hours a broadcast's replay is kept (0: broadcasts are not recorded).
    #[arg(long, default_value_t = 168)]
    pub replay_retention_hours: u64,
    /// Heights to transcode each broadcast into with ffmpeg, e.g. 1080,720,480,240 (only
    /// those below the source's height are made; the source stays the top rendition).
    /// The stream's index.m3u8 is then a multivariant playlist. Default: no ladder.
    #[arg(long, env = "LUCARNE_LADDER", value_delimiter = ',', value_parser = ladder::parse_height)]
    pub ladder: Vec<u32>,
    /// The ffmpeg the ladder runs (default: `ffmpeg` on PATH).
    #[arg(long, env = "LUCARNE_FFMPEG")]
    pub ffmpeg: Option<std::path::PathBuf>,
    /// x264 preset of the ladder's encodes (faster presets cost less CPU and look worse).
    #[arg(long, default_value = "veryfast", env = "LUCARNE_LADDER_PRESET",
          value_parser = clap::builder::PossibleValuesParser::new(ladder::PRESETS))]
    pub ladder_preset: String,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            rtmp_listen: ([127, 0, 0, 1], 1935).into(),
            stream_keys: Vec::new(),
            ingest_grace_secs: 15,
            replay_retention_hours: 168,
            ladder: Vec::new(),
            ffmpeg: None,
            ladder_preset: "veryfast".to_owned(),
        }
    }
}

/// A `--stream-key` value that is not `KEY=STREAM` with a usable stream id.
#[derive(Debug, thiserror::Error)]
#[error(
    "--stream-key {0:?}: expected KEY=STREAM, STREAM made of a-z, 0-9, '-' or '_' (at most 64)"
)]
pub struct KeyError(String);

/// Parses `KEY=STREAM` pairs into key → stream id.
pub fn parse_keys(pairs: &[String]) -> Result<HashMap<String, String>, KeyError> {
    pairs
        .iter()
        .map(|p| {
            let (key, id) = p.split_once('=').ok_or_else(|| KeyError(p.clone()))?;
            if key.is_empty() || !crate::media::valid_stream_id(id) {
                return Err(KeyError(p.clone()));
            }
            Ok((key.to_owned(), id.to_owned()))
        })
        .collect()
}

/// Accepts publishers until the listener fails; with a `ladder`, each broadcast is also
/// transcoded into its renditions.
pub async fn serve(
    listener: TcpListener,
    keys: Arc<Keys>,
    origin: Arc<Origin>,
    ladder: Option<Arc<Ladder>>,
) {
    let slots = Arc::new(Semaphore::new(MAX_PUBLISHERS));
    let pending = Pending::new(MAX_PENDING, MAX_PENDING_PER_IP);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("rtmp accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let admitted = match pending.admit(peer.ip()) {
            Ok(admitted) => admitted,
            Err(full) => {
                tracing::debug!(%peer, "rtmp connection closed at accept: {full}");
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (published, on_publish) = oneshot::channel();
        let handler = Handler {
            peer,
            keys: keys.clone(),
            origin: origin.clone(),
            ladder: ladder.clone(),
            feed: None,
            publisher: None,
            malformed: 0,
            pending: Some(admitted),
            published: Some(published),
            slots: slots.clone(),
            slot: None,
        };
        tokio::spawn(run_session(tcp, peer, handler, on_publish));
    }
}

/// Runs one connection to its end, or to [`PUBLISH_DEADLINE`] if it has not published
/// by then.
async fn run_session(
    tcp: TcpStream,
    peer: SocketAddr,
    handler: Handler,
    on_publish: oneshot::Receiver<()>,
) {
    tracing::debug!(%peer, "rtmp connection");
    let session = ServerSession::new(tcp, handler)
        .with_handshake_timeout(HANDSHAKE_DEADLINE)
        .with_pre_publish_message_limit(PRE_PUBLISH_MESSAGE_LIMIT);
    let publish_deadline = async {
        if tokio::time::timeout(PUBLISH_DEADLINE, on_publish)
            .await
            .is_ok()
        {
            // Published (or the session ended first, and the select ends with it).
            std::future::pending::<()>().await;
        }
    };
    let ended = tokio::select! {
        ended = session.run() => ended,
        () = publish_deadline => {
            tracing::info!(%peer, "rtmp connection dropped: no publish within {PUBLISH_DEADLINE:?}");
            return;
        }
    };
    match ended {
        Ok(_) => tracing::debug!(%peer, "rtmp connection closed"),
        Err(e) if e.is_client_closed() => {
            tracing::debug!(%peer, "rtmp connection closed or silent: {e}")
        }
        Err(RtmpError::Session(ServerSessionError::HandshakeTimeout(_))) => {
            tracing::debug!(%peer, "rtmp connection dropped: no handshake within {HANDSHAKE_DEADLINE:?}")
        }
        // The handler logged why, with the stream.
        Err(RtmpError::Session(ServerSessionError::Handler(e))) => {
            tracing::debug!(%peer, "rtmp connection ended: {e}")
        }
        Err(e @ RtmpError::ChunkRead(ChunkReadError::PartialChunkTooLarge(_))) => {
            tracing::info!(%peer, "rtmp connection dropped: message over the limit ({PRE_PUBLISH_MESSAGE_LIMIT} bytes before publish): {e}")
        }
        Err(e) => tracing::info!(%peer, "rtmp connection ended: {e}"),
    }
}

struct Handler {
    peer: SocketAddr,
    keys: Arc<Keys>,
    origin: Arc<Origin>,
    /// The rendition ladder, when configured.
    ladder: Option<Arc<Ladder>>,
    /// This publisher's ladder (the ffmpeg child); dropped with the publisher.
    feed: Option<Feed>,
    publisher: Option<Publisher>,
    malformed: u32,
    /// The connection's place among the pending ones, given back once it publishes.
    pending: Option<Admitted>,
    /// Told when a publish is accepted: it lifts the publish deadline.
    published: Option<oneshot::Sender<()>>,
    /// The publishing slots, shared by all connections.
    slots: Arc<Semaphore>,
    /// This connection's publishing slot, from its first accepted publish to its end.
    slot: Option<OwnedSemaphorePermit>,
}

/// Why the handler ends a session; the crate passes it through to the session's end.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The stream name is no configured stream key.
    #[error("publish refused: unknown stream key")]
    UnknownKey,
    /// A second `publish` on a connection that publishes already.
    #[error("publish refused: one stream per connection")]
    SecondStream,
    /// The key maps to a stream the origin does not have.
    #[error("publish refused: stream {0} does not exist")]
    NoStream(String),
    /// [`MAX_PUBLISHERS`] connections publish already.
    #[error("publish refused: all {MAX_PUBLISHERS} publishing slots are taken")]
    NoSlot,
    /// The stream's channel does not take a publisher.
    #[error("publish refused: {0}")]
    Channel(#[from] channel::Refused),
    /// The publisher's media cannot be remuxed.
    #[error("publish stopped: {0}")]
    Media(#[from] remux::RemuxError),
}

/// Ends a session with `why`.
fn refuse(why: impl Into<Refusal>) -> Result<(), ServerSessionError> {
    Err(ServerSessionError::Handler(Box::new(why.into())))
}

impl SessionHandler for Handler {
    async fn on_publish(
        &mut self,
        _stream_id: u32,
        app_name: &str,
        stream_name: &str,
    ) -> Result<(), ServerSessionError> {
        // Some apps append a query (`key?param=...`) to the stream name.
        let key = stream_name.split('?').next().unwrap_or_default();
        let Some(id) = self.keys.stream_for(key) else {
            tracing::warn!(peer = %self.peer, app = app_name, "rtmp publish refused: unknown stream key");
            return refuse(Refusal::UnknownKey);
        };
        if self.publisher.is_some() {
            tracing::warn!(peer = %self.peer, "rtmp publish refused: one stream per connection");
            return refuse(Refusal::SecondStream);
        }
        let id = &id;
        let Some(channel) = self.origin.channel(id) else {
            tracing::error!(stream = %id, "stream key maps to a stream that does not exist");
            return refuse(Refusal::NoStream(id.clone()));
        };
        let slot = match self.slot.take() {
            Some(slot) => slot,
            None => match self.slots.clone().try_acquire_owned() {
                Ok(slot) => slot,
                Err(_) => {
                    tracing::warn!(peer = %self.peer, stream = %id, "rtmp publish refused: all {MAX_PUBLISHERS} publishing slots are taken");
                    return refuse(Refusal::NoSlot);
                }
            },
        };
        match channel.publish() {
            Ok(p) => {
                tracing::info!(peer = %self.peer, stream = %id, "publisher connected");
                self.publisher = Some(p);
                self.feed = self
                    .ladder
                    .clone()
                    .map(|l| Feed::new(l, self.origin.clone(), id));
                self.slot = Some(slot);
                self.pending = None;
                if let Some(published) = self.published.take() {
                    let _ = published.send(());
                }
                Ok(())
            }
            Err(e) => {
                tracing::warn!(peer = %self.peer, "rtmp publish refused: {e}");
                refuse(e)
            }
        }
    }

    async fn on_unpublish(&mut self, _stream_id: u32) -> Result<(), ServerSessionError> {
        self.feed = None;
        if let Some(p) = self.publisher.take() {
            tracing::info!(peer = %self.peer, stream = %p.stream_id(), "publisher stopped");
        }
        Ok(())
    }

    async fn on_data(
        &mut self,
        _stream_id: u32,
        data: SessionData,
    ) -> Result<(), ServerSessionError> {
        let Some(publisher) = self.publisher.as_mut() else {
            // Media before `publish` (or after a refusal) has nowhere to go.
            return Ok(());
        };
        let result = match data {
            SessionData::Video { timestamp, data } => {
                let tag = self.feed.as_ref().map(|_| data.clone());
                let result = publisher.video(timestamp, data);
                if let (Some(feed), Some(tag), Ok(())) = (self.feed.as_mut(), tag, &result) {
                    feed.video(timestamp, &tag, publisher.position(timestamp));
                }
                result
            }
            SessionData::Audio { timestamp, data } => {
                if let Some(feed) = self.feed.as_mut() {
                    feed.audio(timestamp, &data);
                }
                publisher.audio(timestamp, data)
            }
            // onMetaData and friends: the codec configuration comes in-band.
            SessionData::Amf0 { .. } => Ok(()),
        };
        match result {
            Ok(()) => Ok(()),
            Err(e @ remux::RemuxError::Malformed { .. }) if self.malformed < MAX_MALFORMED => {
                self.malformed += 1;
                tracing::debug!(peer = %self.peer, "tag dropped: {e}");
                Ok(())
            }
            Err(e) => {
                tracing::error!(peer = %self.peer, stream = %publisher.stream_id(), "publish stopped: {e}");
                self.feed = None;
                self.publisher = None;
                refuse(e)
            }
        }
    }
}

impl Drop for Handler {
    fn drop(&mut self) {
        if let Some(p) = self.publisher.take() {
            tracing::info!(peer = %self.peer, stream = %p.stream_id(), "publisher disconnected");
        }
    }
}
