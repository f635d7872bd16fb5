//! One relay's task: the upstream socket, its reconnections, and the local copy it
//! feeds (see the parent module for the policy).

use super::continuity::{Continuity, Verdict};
use super::{Edge, Relay, Relayed, HOLD, MAX_MESSAGE, RETRY_MAX, RETRY_MIN};
use crate::media::channel::Channel;
use crate::media::live::{LiveStream, PackagedChunk};
use crate::media::relay::{self, Frame};
use crate::media::Origin;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use lucarne_protocol::StreamState;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};

/// A connection attempt that takes longer fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A ping is sent after this long without a message…
const PING_AFTER: Duration = Duration::from_secs(5);
/// …and the upstream is given up after this long without one (a silent host).
const SILENT_FOR: Duration = Duration::from_secs(15);
/// A private stream's relay token is valid this long (checked at the handshake only).
const TOKEN_TTL: Duration = Duration::from_secs(3600);
/// How often an idle or lost relay looks at its clock.
const TICK: Duration = Duration::from_secs(1);

/// Where a relay pulls from and publishes to.
pub(super) struct Upstream {
    /// To forget the relay when it ends.
    pub(super) edge: Weak<Edge>,
    /// `ws://origin/live/{id}/ll?relay=1`.
    pub(super) url: String,
    /// Signs the relay's playback token when the stream is private.
    pub(super) access: Arc<crate::access::Access>,
    /// The local streams.
    pub(super) origin: Arc<Origin>,
    /// Stream id.
    pub(super) id: String,
    /// The relay's key among the edge's relays: the stream id, or `{id}/{height}p`.
    pub(super) key: String,
    /// A ladder rendition: its copy is served through the edge's lookups only (the
    /// rendition routes), never published under the stream's id.
    pub(super) rendition: bool,
    /// Segments per playlist (`--hls-window`).
    pub(super) window: usize,
    /// Unwanted this long, the relay closes.
    pub(super) idle_after: Duration,
    /// When the origin's stream is a channel: its mirror here, through which copies
    /// are published (and state words said to push viewers).
    pub(super) mirror: OnceLock<Arc<Channel>>,
}

/// The local copy: the stream being fed, and what it has.
struct Copy {
    stream: Arc<LiveStream>,
    continuity: Continuity,
    /// Bumped when the init segment changes, to version its URI as the origin does.
    generation: u32,
    /// Published in the local origin (and to lookups): once the relay backlog is in,
    /// so the first playlist served lists the whole window.
    published: bool,
}

/// Why an upstream session ended.
enum SessionEnd {
    /// The origin says there is no such stream: nothing to retry.
    Missing,
    /// Nobody wants the stream any more.
    Idle,
    /// The connection failed or closed: retry. True when media came through it.
    Lost { fed: bool },
}

/// Runs the relay until nobody wants the stream, or the origin does not have it.
pub(super) async fn run(up: Upstream, relay: Arc<Relay>) {
    let mut copy: Option<Copy> = None;
    let mut delay = RETRY_MIN;
    let mut lost_at: Option<Instant> = None;
    loop {
        match session(&up, &relay, &mut copy).await {
            SessionEnd::Missing => {
                withdraw(&up, &relay, &mut copy);
                relay.state.send_replace(Relayed::Missing);
                break;
            }
            SessionEnd::Idle => break,
            SessionEnd::Lost { fed } => {
                if fed {
                    delay = RETRY_MIN;
                    lost_at = Some(Instant::now());
                }
                let since = *lost_at.get_or_insert_with(Instant::now);
                tracing::debug!(stream = %up.id, "upstream lost; retrying in {delay:?}");
                // Wait out the delay, withdrawing the copy once it is too old.
                let retry_at = Instant::now() + delay;
                while Instant::now() < retry_at {
                    if since.elapsed() >= HOLD && copy.is_some() {
                        tracing::info!(stream = %up.id, "origin gone for {} s: withdrawing the stream", HOLD.as_secs());
                        withdraw(&up, &relay, &mut copy);
                        relay
                            .state
                            .send_replace(Relayed::Unreachable("origin unreachable".into()));
                    }
                    tokio::time::sleep(
                        TICK.min(retry_at.saturating_duration_since(Instant::now())),
                    )
                    .await;
                }
                if !wanted(&up, &relay, copy.as_ref()) {
                    break;
                }
                delay = (delay * 2).min(RETRY_MAX);
            }
        }
    }
    withdraw(&up, &relay, &mut copy);
    if let Some(mirror) = up.mirror.get() {
        up.origin.remove_channel(mirror);
        mirror.retire_mirror();
    }
    if let Some(edge) = up.edge.upgrade() {
        edge.forget(&up.key, &relay);
    }
    // Lookups still waiting hear why; later ones start a new relay.
    relay.state.send_if_modified(|s| {
        let waiting = matches!(s, Relayed::Connecting | Relayed::Live(_));
        if waiting {
            *s = Relayed::Unreachable("relay stopped".into());
        }
        waiting
    });
    relay.connected.send_replace(false);
}

/// Someone asked for the stream lately, or a push socket is open on the copy (or
/// follows the mirrored channel).
fn wanted(up: &Upstream, relay: &Relay, copy: Option<&Copy>) -> bool {
    relay.last_wanted().elapsed() < up.idle_after
        || copy.is_some_and(|c| c.stream.push_subscribers() > 0)
        || up.mirror.get().is_some_and(|c| c.push_sockets() > 0)
}

/// Ends the local copy: its push subscribers and blocked requests are let go, and
/// lookups wait for the next copy (the caller says otherwise when there is none to
/// come).
fn withdraw(up: &Upstream, relay: &Relay, copy: &mut Option<Copy>) {
    if let Some(c) = copy.take() {
        match up.mirror.get() {
            Some(mirror) => mirror.mirror_withdraw(&c.stream),
            None if up.rendition => c.stream.finish(),
            None => {
                // Only removed if still the one published under its id.
                up.origin.remove_stream(&c.stream);
                c.stream.finish();
            }
        }
        relay.state.send_replace(Relayed::Connecting);
    }
}

/// One upstream connection, from connecting to its end.
async fn session(up: &Upstream, relay: &Relay, copy: &mut Option<Copy>) -> SessionEnd {
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let now = (crate::media::now_ns() / 1_000_000_000) as u64;
    let url = match up.access.mint_for(&up.id, now, TOKEN_TTL.as_secs()) {
        Some(token) => format!("{}&token={token}", up.url),
        None => up.url.clone(),
    };
    let connecting = tokio_tungstenite::connect_async_with_config(&url, Some(config), true);
    let mut ws = match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok((ws, _))) => ws,
        Ok(Err(tungstenite::Error::Http(r))) if r.status() == 404 => return SessionEnd::Missing,
        Ok(Err(e)) => return lost(relay, copy, false, e.to_string()),
        Err(_) => return lost(relay, copy, false, "connection timed out".into()),
    };
    tracing::info!(stream = %up.id, "relaying from the origin");
    relay.connected.send_replace(true);
    let mut fed = false;
    // Between an init and the end of the backlog that follows it.
    let mut in_backlog = true;
    let mut heard = Instant::now();
    let mut pinged = false;
    let mut tick = tokio::time::interval(TICK);
    let end = loop {
        let message = tokio::select! {
            m = ws.next() => m,
            _ = tick.tick() => {
                if !wanted(up, relay, copy.as_ref()) {
                    let _ = ws.close(None).await;
                    break SessionEnd::Idle;
                }
                if heard.elapsed() >= SILENT_FOR {
                    tracing::warn!(stream = %up.id, "the origin is silent: reconnecting");
                    break lost(relay, copy, fed, "the origin is silent".into());
                }
                if heard.elapsed() >= PING_AFTER && !pinged {
                    pinged = true;
                    if ws.send(Message::Ping(Bytes::new())).await.is_err() {
                        break SessionEnd::Lost { fed };
                    }
                }
                continue;
            }
        };
        heard = Instant::now();
        pinged = false;
        match message {
            Some(Ok(Message::Binary(b))) => match relay::decode(&b) {
                Ok(frame) => {
                    fed = true;
                    if matches!(frame, Frame::Init(_)) {
                        in_backlog = true;
                    }
                    feed(up, relay, copy, frame, in_backlog);
                }
                Err(e) => {
                    tracing::warn!(stream = %up.id, "malformed relay message: {e}; reconnecting");
                    break lost(relay, copy, fed, format!("malformed relay message: {e}"));
                }
            },
            Some(Ok(Message::Text(t))) => {
                if t.as_str() == relay::BACKLOG_END {
                    in_backlog = false;
                }
                on_state(up, relay, copy, t.as_str());
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
            Some(Ok(Message::Close(_))) | None => {
                break lost(relay, copy, fed, "the origin closed the relay".into())
            }
            Some(Err(e)) => {
                tracing::warn!(stream = %up.id, "upstream: {e}; reconnecting");
                break lost(relay, copy, fed, e.to_string());
            }
        }
    };
    relay.connected.send_replace(false);
    end
}

/// The upstream is lost (or was never reached): with no copy to serve, lookups are
/// told why at once instead of waiting for media that is not coming.
fn lost(relay: &Relay, copy: &Option<Copy>, fed: bool, why: String) -> SessionEnd {
    if copy.is_none() {
        relay.state.send_if_modified(|s| {
            let waiting = matches!(s, Relayed::Connecting | Relayed::Unreachable(_));
            if waiting {
                *s = Relayed::Unreachable(why.clone());
            }
            waiting
        });
    }
    SessionEnd::Lost { fed }
}

/// A text message from the origin: the relay's markers, or a channel state word.
fn on_state(up: &Upstream, relay: &Relay, copy: &mut Option<Copy>, word: &str) {
    if word == relay::CHANNEL {
        up.origin.remember_relayed(&up.id);
        up.mirror.get_or_init(|| {
            let mirror = Channel::mirror(&up.id, up.window);
            up.origin.add_channel(mirror.clone());
            if let Some(edge) = up.edge.upgrade() {
                // No receiver (no chat to tell) is fine.
                let _ = edge.mirrors.send(mirror.clone());
            }
            mirror
        });
        return;
    }
    if word == relay::BACKLOG_END {
        if let Some(c) = copy.as_mut() {
            publish(up, relay, c);
        }
        return;
    }
    if let Some(heights) = relay::parse_ladder(word) {
        *relay.ladder.lock().unwrap_or_else(|e| e.into_inner()) = heights;
        return;
    }
    let Some(state) = [
        StreamState::Offline,
        StreamState::Unsupported,
        StreamState::Ended,
    ]
    .into_iter()
    .find(|s| s.as_str() == word) else {
        return;
    };
    if state == StreamState::Ended {
        tracing::info!(stream = %up.id, "the broadcast ended on the origin");
        withdraw(up, relay, copy);
    }
    // `offline` during a broadcast: the origin keeps the stream through its grace
    // period, and so does the copy.
    if let Some(mirror) = up.mirror.get() {
        mirror.mirror_state(state);
    }
    if copy.is_none() {
        relay.state.send_replace(Relayed::Offline);
    }
}

/// Puts one relay message into the local copy. A copy restarted after a hole is
/// published at once, unless a backlog is still coming (its end publishes it).
fn feed(up: &Upstream, relay: &Relay, copy: &mut Option<Copy>, frame: Frame, in_backlog: bool) {
    match frame {
        Frame::Init(init) => {
            if let Some(c) = copy.as_mut().filter(|c| c.stream.init() == init) {
                // A reconnection: the same stream goes on, from what it had.
                c.continuity.reconnected();
                return;
            }
            let generation = copy.as_ref().map_or(0, |c| c.generation + 1);
            withdraw(up, relay, copy);
            start_copy(up, copy, init, generation);
        }
        Frame::Chunk(c) => {
            let Some(current) = copy.as_mut() else { return };
            match current.continuity.check(c.msn, c.part) {
                Verdict::Skip => return,
                Verdict::Append => {}
                Verdict::Restart => {
                    tracing::info!(stream = %up.id, "chunks lost upstream: the copy restarts at segment {}", c.msn);
                    let init = current.stream.init();
                    let generation = current.generation;
                    withdraw(up, relay, copy);
                    start_copy(up, copy, init, generation);
                    let Some(fresh) = copy.as_mut() else { return };
                    fresh.continuity.check(c.msn, c.part);
                    if !in_backlog {
                        publish(up, relay, fresh);
                    }
                }
            }
            if let Some(current) = copy.as_ref() {
                current.stream.push_chunk(PackagedChunk {
                    bytes: c.bytes,
                    starts_segment: c.part == 0,
                    segment_msn: c.msn,
                    start: c.start,
                    duration: c.duration,
                });
            }
        }
    }
}

/// A new local copy, published at the end of the backlog that follows (the origin
/// sends one after every init).
fn start_copy(up: &Upstream, copy: &mut Option<Copy>, init: Bytes, generation: u32) {
    let uri = match generation {
        0 => "init.mp4".to_owned(),
        g => format!("init.mp4?v={g}"),
    };
    // The origin's window is not told; the default playlist length is the same on
    // every node (`--hls-window`), and the relay backlog fills it.
    let stream = Arc::new(LiveStream::with_init_uri(
        up.id.clone(),
        init,
        up.window,
        &uri,
    ));
    *copy = Some(Copy {
        stream,
        continuity: Continuity::default(),
        generation,
        published: false,
    });
}

/// Makes the copy the stream lookups and requests get.
fn publish(up: &Upstream, relay: &Relay, copy: &mut Copy) {
    if copy.published {
        return;
    }
    copy.published = true;
    if !up.rendition {
        up.origin.remember_relayed(&up.id);
    }
    match up.mirror.get() {
        Some(mirror) => mirror.mirror_live(copy.stream.clone()),
        None if up.rendition => {}
        None => up.origin.add_stream(copy.stream.clone()),
    }
    relay.state.send_replace(Relayed::Live(copy.stream.clone()));
}
