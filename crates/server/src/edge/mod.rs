//! Edge nodes: `lucarne-server --origin http://ORIGIN` serves streams ingested on
//! another node, so the low-latency push and HLS fan out from many nodes.
//!
//! # How a stream gets here
//! The first request on this node for a stream it does not publish itself (its
//! playlist, push socket, init segment…) starts a *relay*: one WebSocket to the
//! origin's push, `ws://ORIGIN/live/{id}/ll?relay=1`, whatever the number of local
//! viewers. Its binary messages are [`relay`](crate::media::relay) frames: the init
//! segment, then every chunk with the origin's segment and part numbers, starting with
//! the origin's playlist window. Each chunk goes into a local [`LiveStream`] published
//! in the local [`Origin`], exactly as the demo loop or RTMP ingest feed one
//! on the origin. So the edge's playlist, segments, LL-HLS parts (blocking reload
//! included) and push are the origin's code serving the origin's numbers and bytes:
//! a player moving between nodes (a load balancer, a CDN failing over) finds the same
//! `EXT-X-MEDIA-SEQUENCE`, the same part names and the same media.
//!
//! Why the push rather than polling playlists: the push delivers each chunk as it is
//! cut, with one socket and no request per part; polling would add a playlist reload
//! and a part request per chunk, and a blocking-reload round trip of latency. The push
//! lacked only each chunk's place in the playlist, which `?relay=1` adds.
//!
//! # While nobody watches
//! A relay lives while the stream is wanted: a request for it on this node in the last
//! [`IDLE_AFTER`] (`--edge-idle-secs`), or a push socket open on it (HLS players reload
//! the playlist every segment, so they keep it wanted). Then the relay closes and the
//! local copy goes.
//!
//! # When the origin goes away
//! The local copy keeps being served (segments, parts; the playlist stops growing)
//! while the relay reconnects with backoff ([`RETRY_MIN`] doubling to [`RETRY_MAX`]).
//! A reconnection's backlog overlaps what the copy has; [`continuity`] skips the
//! overlap and appends what is new, so a short cut (an origin restarted within its
//! playlist window: the demo is made alike on the wall clock) is a pause for players.
//! If chunks were lost (a cut longer than the window, a relay that fell behind), the
//! copy restarts at the next keyframe as a new local stream: its push subscribers are
//! closed with 1001 and reconnect, its playlist continues with the origin's numbers. If
//! the origin is not back within [`HOLD`], the copy is withdrawn: push sockets are
//! closed (1001, as an origin that stops does), playlists answer 502 until it is back.
//!
//! The origin counts each relay as one push subscriber (`lucarne_push_subscribers`);
//! the edge reports `lucarne_edge_upstream_connected` per relay and
//! `lucarne_edge_relays_started_total` (see [`crate::metrics`]).
//!
//! # Channels
//! When the origin's stream is a channel (RTMP ingest, the browser console), its relay
//! says so first, and the edge mirrors it as a local
//! [`Channel`](crate::media::channel::Channel) with no publisher: push viewers here
//! follow its state words (`offline`, `live`, `ended`) on a socket that stays open
//! across broadcasts, and `/api/streams/{id}` reports its state, as on the origin. A
//! broadcast ending there ends here at once; the origin going away past [`HOLD`] reads
//! `offline` here, and the next broadcast plays on the same sockets. The edge's chat
//! room of the stream is told the mirror's state, as a node tells its own channels'.
//!
//! An unknown stream on the origin is a 404 here; an origin that cannot be reached is a
//! 502. A lookup waits at most [`FIRST_MEDIA`] for the relay's first media.
//!
//! # Bounds
//! Relay messages over [`MAX_MESSAGE`] end the connection (tungstenite refuses them
//! before buffering); a malformed one too (it is logged, the relay reconnects). At most
//! [`MAX_RELAYS`] streams are relayed at once; ids are checked with
//! [`valid_stream_id`](crate::media::valid_stream_id) before anything is dialled.
//!
//! # Chat and the rest
//! An edge runs the chat hub like any node: run every node with the same `--redis` so
//! a room is one room across nodes (see `crate::hub::cluster`); without it an edge's
//! chat is its own. Private streams (`--private`) play through an edge given the
//! origin's `--private` and `--playback-secret`: it checks its viewers' tokens as the
//! origin does, and its relay signs its own. Replays stay on the origin (a load
//! balancer that retries 404s on the next node, as `deploy/nginx.conf` does, finds
//! them there). An edge's own stop does not end a mirrored broadcast: its push viewers
//! get 1001 and come back through another node. The upstream must be `http://` (the
//! relay is plain WebSocket; put TLS at the load balancer, or keep origin and edges on
//! a private network).
//!
//! # Renditions
//! With `--ladder` on the origin, its relay says which heights it makes (a
//! [`LADDER`](crate::media::relay::LADDER) message). The edge's `index.m3u8` is then the
//! same multivariant playlist (source at `source.m3u8`, each rendition with media at
//! `{height}p/index.m3u8`), and each rendition is relayed on its own from the origin's
//! `/live/{id}/{height}p/ll?relay=1`, started by the multivariant playlist's request
//! and kept by its viewers like any relay: one upstream subscription per rendition.
//! The edge refuses `--ladder` itself (it transcodes nothing).
//!
//! Layer: beside `ingest`, a source for [`crate::media`]; imports nothing from `http`
//! or `hub`.

pub mod continuity;
mod relay;

use crate::access::Access;
use crate::media::live::LiveStream;
use crate::media::Origin;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// A relay with no request for this long and no push socket closes (the default of
/// `--edge-idle-secs`).
pub const IDLE_AFTER: Duration = Duration::from_secs(30);
/// How long a local copy is served after its upstream went away.
pub const HOLD: Duration = Duration::from_secs(10);
/// First reconnection delay.
pub const RETRY_MIN: Duration = Duration::from_millis(250);
/// Longest reconnection delay.
pub const RETRY_MAX: Duration = Duration::from_secs(5);
/// How long a lookup waits for a new relay's first media.
pub const FIRST_MEDIA: Duration = Duration::from_secs(5);
/// Largest relay message taken (an init segment, or one chunk with its header).
pub const MAX_MESSAGE: usize = 16 << 20;
/// Streams relayed at once.
pub const MAX_RELAYS: usize = 256;

/// Edge options.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EdgeConfig {
    /// Serve streams ingested on this origin (`http://HOST:PORT`): this node becomes an
    /// edge. Its own demo stream is then off.
    #[arg(long = "origin", env = "LUCARNE_ORIGIN")]
    pub origin: Option<String>,
    /// On an edge, seconds after its last request (and last push socket) that a
    /// stream's relay from the origin closes. 0 means the default, 30.
    #[arg(long, default_value_t = 0, hide = true)]
    pub edge_idle_secs: u64,
}

/// Why `--origin` is not usable.
#[derive(Debug, thiserror::Error)]
pub enum EdgeConfigError {
    /// Not an `http://host[:port]` URL.
    #[error("--origin {0:?}: expected http://HOST[:PORT] (TLS belongs to the load balancer)")]
    Url(String),
    /// `--ladder` on an edge: the origin's renditions are relayed, none is made here.
    #[error("--ladder cannot be used with --origin: an edge relays the origin's renditions")]
    Ladder,
}

/// Why an edge cannot serve a stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EdgeError {
    /// The origin has no such stream.
    #[error("the origin has no stream {0:?}")]
    NotFound(String),
    /// The origin has the channel, and nobody is broadcasting on it.
    #[error("stream {0:?} is offline on the origin")]
    Offline(String),
    /// The origin cannot be reached, or sent nothing in time.
    #[error("the origin is unavailable for {0:?}: {1}")]
    Unavailable(String, String),
}

/// What a relay has for lookups.
#[derive(Debug, Clone)]
enum Relayed {
    /// Connecting; nothing yet.
    Connecting,
    /// Serving this local copy.
    Live(Arc<LiveStream>),
    /// The origin says: no such stream.
    Missing,
    /// The origin says: a channel nobody broadcasts on (or its broadcast ended).
    Offline,
    /// No copy, and the origin cannot be reached.
    Unreachable(String),
}

/// One stream being relayed.
#[derive(Debug)]
struct Relay {
    state: watch::Sender<Relayed>,
    /// The last lookup (any request for the stream on this node).
    wanted: Mutex<tokio::time::Instant>,
    /// Whether the upstream socket is open now (`/metrics`).
    connected: watch::Sender<bool>,
    /// The heights of the renditions the origin makes of the stream (its
    /// [`LADDER`](crate::media::relay::LADDER) message); empty without a ladder.
    ladder: Mutex<Vec<u32>>,
}

impl Relay {
    fn touch(&self) {
        *self.wanted.lock().unwrap_or_else(|e| e.into_inner()) = tokio::time::Instant::now();
    }

    fn last_wanted(&self) -> tokio::time::Instant {
        *self.wanted.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The upstream of this node, and the streams relayed from it.
#[derive(Debug)]
pub struct Edge {
    /// `ws://host:port` of the origin.
    upstream: String,
    /// Where the local copies are published.
    origin: Arc<Origin>,
    /// Segments per playlist (`--hls-window`, the same on every node).
    window: usize,
    /// See [`IDLE_AFTER`].
    idle_after: Duration,
    /// Private streams (`--private`, `--playback-secret`, the same as the origin's):
    /// the relay signs its own playback token.
    access: Arc<Access>,
    relays: Mutex<HashMap<String, Arc<Relay>>>,
    /// Relays started since the node started (`/metrics`: churn shows as a rate).
    started: std::sync::atomic::AtomicU64,
    /// Each channel mirrored here as it appears, for the chat hub to follow its state
    /// (see [`Edge::mirrors`]).
    mirrors: tokio::sync::broadcast::Sender<Arc<crate::media::channel::Channel>>,
    /// Aborted on drop: relays are the server's tasks.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// A relay's upstream state, for `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamState {
    /// Stream id.
    pub stream: String,
    /// The upstream socket is open.
    pub connected: bool,
}

impl Edge {
    /// An edge of `origin_url` (`--origin`), publishing copies in `origin`.
    pub fn new(
        config: &EdgeConfig,
        origin: Arc<Origin>,
        window: usize,
        access: Arc<Access>,
    ) -> Result<Option<Arc<Edge>>, EdgeConfigError> {
        let Some(origin_url) = config.origin.as_deref() else {
            return Ok(None);
        };
        let bad = || EdgeConfigError::Url(origin_url.to_owned());
        let rest = origin_url.strip_prefix("http://").ok_or_else(bad)?;
        let host = rest.trim_end_matches('/');
        if host.is_empty() || host.contains(['/', '?', '#', '@', ' ']) {
            return Err(bad());
        }
        let idle_after = match config.edge_idle_secs {
            0 => IDLE_AFTER,
            s => Duration::from_secs(s),
        };
        Ok(Some(Arc::new(Edge {
            upstream: format!("ws://{host}"),
            origin,
            window,
            idle_after,
            access,
            relays: Mutex::new(HashMap::new()),
            started: std::sync::atomic::AtomicU64::new(0),
            mirrors: tokio::sync::broadcast::channel(64).0,
            tasks: Mutex::new(Vec::new()),
        })))
    }

    /// A request for `id` reached this node: its relay, if one runs, stays wanted
    /// (requests served from the local copy do not go through [`Edge::stream`]).
    pub fn touch(&self, id: &str) {
        let relays = self.relays.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = relays.get(id) {
            r.touch();
        }
    }

    /// The local copy of `id`, starting a relay if none runs, waiting at most
    /// [`FIRST_MEDIA`] for a new relay's first media.
    pub async fn stream(self: &Arc<Self>, id: &str) -> Result<Arc<LiveStream>, EdgeError> {
        if !crate::media::valid_stream_id(id) {
            return Err(EdgeError::NotFound(id.to_owned()));
        }
        let relay = self.relay(id, id, None)?;
        settled(id, &relay).await
    }

    /// The rendition of `height` of `id` (the origin's `{height}p`), relayed on its own
    /// once the source's relay learnt that the origin makes it.
    pub async fn rendition(
        self: &Arc<Self>,
        id: &str,
        height: u32,
    ) -> Result<Arc<LiveStream>, EdgeError> {
        let key = format!("{id}/{}", crate::media::ladder::rendition_name(height));
        if !self.ladder_of(id).contains(&height) {
            return Err(EdgeError::NotFound(key));
        }
        let relay = self.relay(&key, id, Some(height))?;
        settled(&key, &relay).await
    }

    /// With a ladder on the origin, the renditions to list in `id`'s multivariant
    /// playlist (those relayed here with media; the others' relays are started, for
    /// the next request); `None` without one.
    pub fn ladder(self: &Arc<Self>, id: &str) -> Option<Vec<(u32, Arc<LiveStream>)>> {
        let heights = self.ladder_of(id);
        if heights.is_empty() {
            return None;
        }
        let mut out = Vec::new();
        for h in heights {
            let key = format!("{id}/{}", crate::media::ladder::rendition_name(h));
            let Ok(relay) = self.relay(&key, id, Some(h)) else {
                continue;
            };
            relay.touch();
            let state = relay.state.borrow().clone();
            if let Relayed::Live(s) = state {
                out.push((h, s));
            }
        }
        Some(out)
    }

    fn ladder_of(&self, id: &str) -> Vec<u32> {
        let relays = self.relays.lock().unwrap_or_else(|e| e.into_inner());
        relays.get(id).map_or_else(Vec::new, |r| {
            r.ladder.lock().unwrap_or_else(|e| e.into_inner()).clone()
        })
    }

    /// The running relay under `key`, or a new one of stream `id` (of its rendition of
    /// `height`, if given).
    fn relay(
        self: &Arc<Self>,
        key: &str,
        id: &str,
        height: Option<u32>,
    ) -> Result<Arc<Relay>, EdgeError> {
        let mut relays = self.relays.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = relays.get(key) {
            r.touch();
            return Ok(r.clone());
        }
        if relays.len() >= MAX_RELAYS {
            return Err(EdgeError::Unavailable(
                key.to_owned(),
                format!("this edge relays {MAX_RELAYS} streams already"),
            ));
        }
        let relay = Arc::new(Relay {
            state: watch::channel(Relayed::Connecting).0,
            wanted: Mutex::new(tokio::time::Instant::now()),
            connected: watch::channel(false).0,
            ladder: Mutex::new(Vec::new()),
        });
        relays.insert(key.to_owned(), relay.clone());
        drop(relays);
        self.started
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let task = tokio::spawn(relay::run(
            relay::Upstream {
                edge: Arc::downgrade(self),
                url: format!(
                    "{}/live/{key}/ll?{}",
                    self.upstream,
                    crate::media::relay::RELAY_QUERY
                ),
                access: self.access.clone(),
                origin: self.origin.clone(),
                id: id.to_owned(),
                key: key.to_owned(),
                rendition: height.is_some(),
                window: self.window,
                idle_after: self.idle_after,
                mirror: std::sync::OnceLock::new(),
            },
            relay.clone(),
        ));
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
        Ok(relay)
    }

    /// Forgets `relay` (its task ended).
    fn forget(&self, id: &str, relay: &Arc<Relay>) {
        let mut relays = self.relays.lock().unwrap_or_else(|e| e.into_inner());
        if relays.get(id).is_some_and(|r| Arc::ptr_eq(r, relay)) {
            relays.remove(id);
        }
    }

    /// The channels mirrored here from now on, as they appear: the server tells each
    /// one's chat room its state, as it does for its own channels. A mirror that leaves
    /// the origin (its relay ended) wakes its followers without a state change.
    pub fn mirrors(&self) -> tokio::sync::broadcast::Receiver<Arc<crate::media::channel::Channel>> {
        self.mirrors.subscribe()
    }

    /// Relays started so far.
    pub fn relays_started(&self) -> u64 {
        self.started.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Each relay's upstream state, by stream id.
    pub fn upstreams(&self) -> Vec<UpstreamState> {
        let relays = self.relays.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<UpstreamState> = relays
            .iter()
            .map(|(id, r)| UpstreamState {
                stream: id.clone(),
                connected: *r.connected.borrow(),
            })
            .collect();
        out.sort_by(|a, b| a.stream.cmp(&b.stream));
        out
    }
}

/// What `relay` has for a lookup of `key`, once it has something, within
/// [`FIRST_MEDIA`].
async fn settled(key: &str, relay: &Relay) -> Result<Arc<LiveStream>, EdgeError> {
    let mut rx = relay.state.subscribe();
    let settled = tokio::time::timeout(
        FIRST_MEDIA,
        rx.wait_for(|s| !matches!(s, Relayed::Connecting)),
    )
    .await;
    let state = match settled {
        Ok(Ok(s)) => s.clone(),
        Ok(Err(_)) => Relayed::Unreachable("relay stopped".into()),
        Err(_) => Relayed::Unreachable("no media in time".into()),
    };
    match state {
        Relayed::Live(s) => Ok(s),
        Relayed::Missing => Err(EdgeError::NotFound(key.to_owned())),
        Relayed::Offline => Err(EdgeError::Offline(key.to_owned())),
        Relayed::Unreachable(why) => Err(EdgeError::Unavailable(key.to_owned(), why)),
        Relayed::Connecting => Err(EdgeError::Unavailable(key.to_owned(), "connecting".into())),
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        for t in self
            .tasks
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_origin_is_an_http_host() {
        let origin = Arc::new(Origin::default());
        let access = Arc::new(Access::new(&Default::default()).unwrap());
        let config = |url: &str| EdgeConfig {
            origin: Some(url.to_owned()),
            edge_idle_secs: 0,
        };
        let e = Edge::new(
            &config("http://10.0.0.5:8080/"),
            origin.clone(),
            6,
            access.clone(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(e.upstream, "ws://10.0.0.5:8080");
        assert_eq!(e.idle_after, IDLE_AFTER);
        for bad in ["https://a", "a:80", "http://", "http://a/b", "http://u@a"] {
            assert!(
                Edge::new(&config(bad), origin.clone(), 6, access.clone()).is_err(),
                "{bad}"
            );
        }
        assert!(Edge::new(&EdgeConfig::default(), origin, 6, access)
            .unwrap()
            .is_none());
    }
}
