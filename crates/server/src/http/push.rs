//! `/live/{id}/ll`: the low-latency push over WebSocket. The init segment, the current
//! segment so far, then every chunk as it is cut; on a channel, also its state as a text
//! message (a [`StreamState`](lucarne_protocol::StreamState) word: `offline`, `live`,
//! `ended`, `unsupported`), the socket staying open across broadcasts.
//!
//! # What a subscriber may cost
//! - **Inbound**: a subscriber has nothing to say but its player's latency (a
//!   [`LatencyReport`] text frame every few seconds, see [`lucarne_protocol::push`]) and
//!   Close (tungstenite answers pings). A report is read only from a text frame of at
//!   most [`MAX_REPORT_BYTES`] that parses; anything else is ignored. The socket's
//!   latest report counts for its channel's viewers' latency p50 (the broadcaster
//!   console's, see [`crate::media::health`]) until the socket closes. A data message
//!   over [`MAX_CLIENT_MESSAGE`] is refused with 1009. Frames up to
//!   [`HARD_FRAME_LIMIT`] are read whole, so the close handshake completes cleanly; a
//!   longer one is refused from its header, before its payload is buffered (1009 too,
//!   best effort: the rest of the frame is never read). Under axum's defaults a client
//!   could make the server buffer 64 MiB a message: 4 connections took it from 41 MB to
//!   369 MB RSS.
//! - **Outbound**: one message at a time, each within [`PUSH_SEND_TIMEOUT`], and the
//!   kernel queues at most `NOTSENT_LOWAT` unsent bytes (see [`crate::serve`]). Live
//!   chunks arrive through a bounded broadcast channel; a subscriber that falls behind
//!   skips to the next keyframe. A subscriber that stops reading thus holds one message
//!   in memory and is dropped at the deadline; it never slows the source.
//!
//! # When the server stops
//! Once the drain reaches [`Phase::Closing`](super::ops::Phase::Closing) (after chat
//! sockets were closed, see [`super::ops`]), every push socket is closed with 1001,
//! after the state word of a broadcast the stop just ended, so players move on instead
//! of waiting on a silent socket. Open sockets are counted per stream for `/metrics`.
//!
//! # Relay subscribers
//! An edge node (see [`crate::edge`]) subscribes with `?relay=1`: its binary messages
//! are then [`relay`] frames (each chunk with its segment and part numbers), and its
//! backlog starts with the playlist window's complete segments, so the edge serves the
//! same playlist from its first request. It is counted as one push subscriber, like a
//! player.
//!
//! Must not keep per-subscriber queues: the source fans out, subscribers skip.

use super::ops::Stopping;
use crate::http::AppError;
use crate::media::channel::{Channel, ChannelState, LatencyReports};
use crate::media::live::{Chunk, LiveStream};
use crate::media::relay;
use crate::AppState;
use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, Version};
use axum::response::{IntoResponse, Response};
use lucarne_protocol::push::{LatencyReport, MAX_REPORT_BYTES};
use lucarne_protocol::StreamState;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// A slow low-latency subscriber is dropped when one message takes longer than this.
const PUSH_SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest data message a subscriber may send (it needs none).
const MAX_CLIENT_MESSAGE: usize = 1024;

/// Tungstenite's own frame and message limit (see the module doc).
const HARD_FRAME_LIMIT: usize = 64 * 1024;

/// How long a refused subscriber gets to answer our close before the socket is dropped.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// Who reads a push socket: a player (bare chunks) or an edge node (relay frames).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reader {
    Player,
    Relay,
}

impl Reader {
    fn of(query: Option<&str>) -> Reader {
        let relay = query.is_some_and(|q| q.split('&').any(|kv| kv == relay::RELAY_QUERY));
        if relay {
            Reader::Relay
        } else {
            Reader::Player
        }
    }

    fn init(self, init: bytes::Bytes) -> bytes::Bytes {
        match self {
            Reader::Player => init,
            Reader::Relay => relay::encode_init(&init),
        }
    }

    fn chunk(self, c: &Chunk) -> bytes::Bytes {
        match self {
            Reader::Player => c.bytes.clone(),
            Reader::Relay => relay::encode_chunk(c.msn, c.part, c.start, c.duration, &c.bytes),
        }
    }
}

/// `GET /live/{id}/ll` (`?relay=1`: an edge node, see the module doc).
pub(super) async fn low_latency(
    version: Version,
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let reader = Reader::of(query.as_deref());
    let Some(ws) = push_upgrade(version, ws) else {
        return Ok(needs_http11());
    };
    super::viewed(&state, &id);
    let mut stream = None;
    if state.origin.channel(&id).is_none() {
        // On an edge this may find the origin's channel, mirrored here (offline: then
        // the socket follows the mirror's state).
        match super::stream(&state, &id).await {
            Ok(s) => stream = Some(s),
            Err(AppError::Offline(_)) => {}
            Err(e) => return Err(e),
        }
    }
    // An edge learns that the origin makes renditions (see [`relay::LADDER`]).
    let heights = &state.config.ingest.ladder;
    let hello =
        (reader == Reader::Relay && !heights.is_empty()).then(|| relay::ladder_message(heights));
    if let Some(channel) = state.origin.channel(&id) {
        let counted = state.drain.push_opened(&id);
        let stopping = state.drain.stopping();
        return Ok(ws.on_upgrade(move |socket| async move {
            push_channel(socket, channel, stopping, reader, hello).await;
            drop(counted);
        }));
    }
    let stream = stream.ok_or_else(|| AppError::NoStream(id.clone()))?;
    Ok(push_stream(ws, &state, &id, stream, reader, hello))
}

/// `GET /live/{id}/{height}p/ll`: the push of a ladder rendition (see
/// [`crate::media::ladder`]), as a built-in stream's: it ends when the rendition does.
pub(super) async fn rendition_low_latency(
    version: Version,
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    Path((id, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let reader = Reader::of(query.as_deref());
    let Some(ws) = push_upgrade(version, ws) else {
        return Ok(needs_http11());
    };
    let stream = super::hls::rendition(&state, &id, &name).await?;
    Ok(push_stream(ws, &state, &id, stream, reader, None))
}

/// The upgrade of a push socket, with its frame limits; `None` for an HTTP/1.0
/// request, whose connection ends with its response (a 101 would be a dropped socket).
fn push_upgrade(version: Version, ws: WebSocketUpgrade) -> Option<WebSocketUpgrade> {
    (version == Version::HTTP_11).then(|| {
        ws.max_message_size(HARD_FRAME_LIMIT)
            .max_frame_size(HARD_FRAME_LIMIT)
    })
}

/// The answer to a push request [`push_upgrade`] refused.
fn needs_http11() -> Response {
    (StatusCode::BAD_REQUEST, "WebSocket needs HTTP/1.1").into_response()
}

/// Pushes a built-in stream (the demo, a ladder rendition) on `ws`, counted as one of
/// `id`'s push subscribers; a stopping server says goodbye.
fn push_stream(
    ws: WebSocketUpgrade,
    state: &AppState,
    id: &str,
    stream: Arc<LiveStream>,
    reader: Reader,
    hello: Option<String>,
) -> Response {
    let counted = state.drain.push_opened(id);
    let mut stopping = state.drain.stopping();
    // A rendition of a broadcast: its viewers' latency counts for the broadcast.
    let reports = state.origin.channel(id).map(|c| c.latency_reports());
    ws.on_upgrade(move |mut socket| async move {
        let mut inbound = Inbound {
            reports: reports.as_ref(),
        };
        if let Some(hello) = hello {
            if send_text(&mut socket, hello).await.is_err() {
                return;
            }
        }
        match push(
            &mut socket,
            stream,
            None,
            &mut stopping,
            &mut inbound,
            reader,
        )
        .await
        {
            PushEnd::Stopping => goodbye(&mut socket).await,
            // The stream finished (a rendition the ladder restarts, an edge's copy
            // withdrawn or restarted): players come back for the next one.
            PushEnd::Moved => close_with(&mut socket, away("stream ended")).await,
            PushEnd::Closed => {}
        }
        drop(counted);
    })
}

/// Why a push of one stream stopped.
enum PushEnd {
    /// The subscriber is gone.
    Closed,
    /// The channel moved on (new stream, or the broadcast ended).
    Moved,
    /// The server is stopping: the socket is to be closed.
    Stopping,
}

/// Follows a channel: its state as a text message (its
/// [`StreamState`](lucarne_protocol::StreamState) word) when it changes, and while a broadcast is on, its media as [`push`] sends it. The socket
/// stays open across broadcasts, so a waiting viewer starts playing by itself.
async fn push_channel(
    mut socket: WebSocket,
    channel: Arc<Channel>,
    mut stopping: Stopping,
    reader: Reader,
    hello: Option<String>,
) {
    let mut rx = channel.watch();
    if reader == Reader::Relay && send_text(&mut socket, relay::CHANNEL).await.is_err() {
        return;
    }
    if let Some(hello) = hello {
        if send_text(&mut socket, hello).await.is_err() {
            return;
        }
    }
    let reports = channel.latency_reports();
    let mut inbound = Inbound {
        reports: Some(&reports),
    };
    loop {
        let state = rx.borrow_and_update().clone();
        if let ChannelState::Live(stream) = state {
            match push(
                &mut socket,
                stream,
                Some(&mut rx),
                &mut stopping,
                &mut inbound,
                reader,
            )
            .await
            {
                PushEnd::Closed => return,
                PushEnd::Moved => continue,
                PushEnd::Stopping => break,
            }
        }
        if send_text(&mut socket, state.stream_state().as_str())
            .await
            .is_err()
        {
            return;
        }
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { return },
            incoming = socket.recv() => if !heard(&mut socket, incoming, &mut inbound).await { return },
            () = stopping.closing() => break,
        }
    }
    // The stop ended the broadcast before it closed sockets: say so first.
    if rx.has_changed().unwrap_or(false) {
        let state = rx.borrow_and_update().stream_state();
        if state != StreamState::Live && send_text(&mut socket, state.as_str()).await.is_err() {
            return;
        }
    }
    goodbye(&mut socket).await;
}

/// Sends the init segment, the current segment so far, then every new chunk.
/// A subscriber that falls behind skips to the next keyframe instead of slowing the
/// source or growing a queue. With a channel, also says when the publisher drops and
/// returns (`offline` or `unsupported` / `live`), and returns when the channel moves to another stream.
async fn push(
    socket: &mut WebSocket,
    stream: Arc<LiveStream>,
    mut channel: Option<&mut tokio::sync::watch::Receiver<ChannelState>>,
    stopping: &mut Stopping,
    inbound: &mut Inbound<'_>,
    reader: Reader,
) -> PushEnd {
    let sub = match reader {
        Reader::Player => stream.subscribe(),
        Reader::Relay => stream.subscribe_with_window(),
    };
    let mut live = sub.live;
    let mut last_seq = None;
    if send(socket, reader.init(sub.init)).await.is_err() {
        return PushEnd::Closed;
    }
    for chunk in sub.backlog {
        last_seq = Some(chunk.seq);
        if send(socket, reader.chunk(&chunk)).await.is_err() {
            return PushEnd::Closed;
        }
    }
    if reader == Reader::Relay && send_text(socket, relay::BACKLOG_END).await.is_err() {
        return PushEnd::Closed;
    }
    let mut resync = false;
    loop {
        let changed = async {
            match channel.as_deref_mut() {
                Some(rx) => rx.changed().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ok = changed => {
                let Some(rx) = channel.as_deref_mut() else { continue };
                if !ok {
                    return PushEnd::Closed;
                }
                let state = rx.borrow_and_update().clone();
                match &state {
                    ChannelState::Live(s) if !Arc::ptr_eq(s, &stream) => return PushEnd::Moved,
                    // The publisher dropped (or was refused): the stream may resume
                    // within the grace period.
                    ChannelState::Live(_) | ChannelState::Offline | ChannelState::Unsupported => {
                        if send_text(socket, state.stream_state().as_str()).await.is_err() {
                            return PushEnd::Closed;
                        }
                    }
                    ChannelState::Ended => return PushEnd::Moved,
                }
            }
            _ = stream.finished() => return PushEnd::Moved,
            () = stopping.closing() => return PushEnd::Stopping,
            next = live.recv() => match next {
                Ok(chunk) => {
                    if last_seq.is_some_and(|s| chunk.seq <= s) || (resync && !chunk.independent) {
                        continue;
                    }
                    resync = false;
                    last_seq = Some(chunk.seq);
                    if send(socket, reader.chunk(&chunk)).await.is_err() {
                        return PushEnd::Closed;
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::debug!(stream = %stream.id, "push subscriber lagged by {n} chunks; resyncing at next keyframe");
                    resync = true;
                }
                Err(RecvError::Closed) => return PushEnd::Moved,
            },
            incoming = socket.recv() => if !heard(socket, incoming, inbound).await {
                return PushEnd::Closed;
            },
        }
    }
}

/// Where a subscriber's latency reports go (`None`: a stream with no console, the demo).
struct Inbound<'a> {
    reports: Option<&'a LatencyReports>,
}

impl Inbound<'_> {
    /// Takes `text` as a latency report if it is one; ignores it otherwise.
    fn text(&mut self, text: &str) {
        let Some(reports) = self.reports else { return };
        if text.len() > MAX_REPORT_BYTES {
            return;
        }
        if let Ok(r) = serde_json::from_str::<LatencyReport>(text) {
            reports.report(r.latency_ms);
        }
    }
}

/// Handles what a subscriber sent; false when the socket is done with.
async fn heard(
    socket: &mut WebSocket,
    incoming: Option<Result<Message, axum::Error>>,
    inbound: &mut Inbound<'_>,
) -> bool {
    let too_large = match incoming {
        Some(Ok(Message::Text(t))) => {
            inbound.text(&t);
            t.len() > MAX_CLIENT_MESSAGE
        }
        Some(Ok(Message::Binary(b))) => b.len() > MAX_CLIENT_MESSAGE,
        Some(Ok(Message::Ping(_) | Message::Pong(_))) => false,
        Some(Ok(Message::Close(_))) | None => return false,
        Some(Err(e)) => {
            // Past the hard limit: the frame is unread, so the close is best effort.
            if over_hard_limit(e) {
                let _ =
                    tokio::time::timeout(PUSH_SEND_TIMEOUT, socket.send(too_large_close())).await;
            }
            return false;
        }
    };
    if !too_large {
        return true;
    }
    tracing::debug!("push subscriber sent a message over {MAX_CLIENT_MESSAGE} bytes: closing");
    close_with(socket, too_large_close()).await;
    false
}

/// Sends `close`, then reads on until the subscriber's close, so ours is not lost in a
/// reset.
async fn close_with(socket: &mut WebSocket, close: Message) {
    if tokio::time::timeout(PUSH_SEND_TIMEOUT, socket.send(close))
        .await
        .is_ok_and(|sent| sent.is_ok())
    {
        let linger = tokio::time::Instant::now() + CLOSE_LINGER;
        while let Ok(Some(Ok(m))) = tokio::time::timeout_at(linger, socket.recv()).await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    }
}

/// The server is stopping: 1001, so players reconnect (through the load balancer,
/// to another node).
async fn goodbye(socket: &mut WebSocket) {
    close_with(socket, away("server stopping")).await;
}

/// 1001 with `reason`.
fn away(reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code: close_code::AWAY,
        reason: reason.into(),
    }))
}

fn too_large_close() -> Message {
    Message::Close(Some(CloseFrame {
        code: close_code::SIZE,
        reason: "message too large".into(),
    }))
}

/// True when tungstenite refused a frame or message over [`HARD_FRAME_LIMIT`].
fn over_hard_limit(e: axum::Error) -> bool {
    matches!(
        e.into_inner()
            .downcast_ref::<tokio_tungstenite::tungstenite::Error>(),
        Some(tokio_tungstenite::tungstenite::Error::Capacity(_))
    )
}

async fn send_text(socket: &mut WebSocket, text: impl Into<String>) -> Result<(), ()> {
    let text: String = text.into();
    match tokio::time::timeout(PUSH_SEND_TIMEOUT, socket.send(Message::Text(text.into()))).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

async fn send(socket: &mut WebSocket, bytes: bytes::Bytes) -> Result<(), ()> {
    match tokio::time::timeout(PUSH_SEND_TIMEOUT, socket.send(Message::Binary(bytes))).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}
