//! RTMP ingest: OBS, phone apps and ffmpeg publish here (`rtmp://HOST:1935/live/KEY`).
//!
//! The protocol (handshake, chunk streams, AMF0 commands) is `scuffle-rtmp`'s server
//! session; this module decides who may publish and where the media goes:
//!
//! - the stream key (the RTMP stream name) maps to a stream id (`--stream-key
//!   KEY=ID`); an unknown key is refused and logged (without the key itself);
//! - the key's [`Channel`](crate::media::channel::Channel) takes the publisher
//!   (one at a time) and [`remux`] turns its FLV tags into CMAF for the live origin;
//! - limits: the session itself bounds message sizes (10 MB), chunk streams and read
//!   time (a silent peer is dropped within seconds); here, a cap on malformed tags per
//!   connection and no more than [`MAX_SESSIONS`] connections at once.
//!
//! A session never takes the server down: each runs in its own task, its errors end
//! only that connection, and tags are parsed by code that returns errors, not panics.

pub mod remux;

use crate::media::channel::Publisher;
use crate::media::Origin;
use scuffle_rtmp::session::server::{ServerSessionError, SessionData, SessionHandler};
use scuffle_rtmp::ServerSession;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Connections served at once; more wait in the kernel's backlog.
pub const MAX_SESSIONS: usize = 64;
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
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            rtmp_listen: ([127, 0, 0, 1], 1935).into(),
            stream_keys: Vec::new(),
            ingest_grace_secs: 15,
            replay_retention_hours: 168,
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
            let id_ok = !id.is_empty()
                && id.len() <= 64
                && id.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                });
            if key.is_empty() || !id_ok {
                return Err(KeyError(p.clone()));
            }
            Ok((key.to_owned(), id.to_owned()))
        })
        .collect()
}

/// Accepts publishers until the listener fails.
pub async fn serve(listener: TcpListener, keys: Arc<HashMap<String, String>>, origin: Arc<Origin>) {
    let slots = Arc::new(Semaphore::new(MAX_SESSIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("rtmp accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let handler = Handler {
            peer,
            keys: keys.clone(),
            origin: origin.clone(),
            publisher: None,
            malformed: 0,
        };
        tokio::spawn(async move {
            let _permit = permit;
            tracing::debug!(%peer, "rtmp connection");
            match ServerSession::new(tcp, handler).run().await {
                Ok(_) => tracing::debug!(%peer, "rtmp connection closed"),
                Err(e) => tracing::info!(%peer, "rtmp connection ended: {e}"),
            }
        });
    }
}

struct Handler {
    peer: SocketAddr,
    keys: Arc<HashMap<String, String>>,
    origin: Arc<Origin>,
    publisher: Option<Publisher>,
    malformed: u32,
}

/// Ends a session. The library's error type has no variant for a refusal; the reason
/// was logged by the handler, and the session ends either way.
fn refuse() -> Result<(), ServerSessionError> {
    Err(ServerSessionError::PublishBeforeConnect)
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
        let Some(id) = self.keys.get(key) else {
            tracing::warn!(peer = %self.peer, app = app_name, "rtmp publish refused: unknown stream key");
            return refuse();
        };
        if self.publisher.is_some() {
            tracing::warn!(peer = %self.peer, "rtmp publish refused: one stream per connection");
            return refuse();
        }
        let Some(channel) = self.origin.channel(id) else {
            tracing::error!(stream = %id, "stream key maps to a stream that does not exist");
            return refuse();
        };
        match channel.publish() {
            Ok(p) => {
                tracing::info!(peer = %self.peer, stream = %id, "publisher connected");
                self.publisher = Some(p);
                Ok(())
            }
            Err(e) => {
                tracing::warn!(peer = %self.peer, "rtmp publish refused: {e}");
                refuse()
            }
        }
    }

    async fn on_unpublish(&mut self, _stream_id: u32) -> Result<(), ServerSessionError> {
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
            SessionData::Video { timestamp, data } => publisher.video(timestamp, data),
            SessionData::Audio { timestamp, data } => publisher.audio(timestamp, data),
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
                self.publisher = None;
                refuse()
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
