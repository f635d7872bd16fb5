//! The broadcaster console: `/studio/{stream}`, a page from which a broadcaster goes
//! live with the browser's camera (no app), and watches the chat, hearts and viewer
//! count while live, whether the broadcast comes from this page or from OBS.
//!
//! # Layout
//! - this module: the routes, the page (`console.html`, `console.js`, `health.js`,
//!   embedded), who may open a session (the secret), one live console per stream, the
//!   broadcast's health.
//! - `session`: one console's ingest socket, from `start` to the end of the broadcast.
//! - [`encoder`]: the ffmpeg child publishing the console's media to our RTMP ingest.
//!
//! # Transport: MediaRecorder chunks over a WebSocket, re-published over RTMP
//! The console records the camera with `MediaRecorder` (H.264 where the browser can,
//! else VP8/VP9), sends a chunk every 200 ms as a binary WebSocket frame, and the
//! server pipes the chunks into ffmpeg, which publishes FLV to the server's own RTMP
//! ingest under the stream's key. So a console broadcast is, to the origin, exactly an
//! OBS broadcast: same remuxer, HLS, LL-HLS parts, low-latency push, replay, ladder,
//! grace period and end.
//!
//! Why not WHIP (WebRTC ingest): it would need a WebRTC stack (ICE, DTLS, SRTP, jitter
//! buffer, depacketizer) on the server and an RTP → CMAF path beside the FLV one, for a
//! latency gain the HLS/push side cannot show (viewers are a segment part behind
//! anyway). WHIP's win is OBS 30+ interoperability; OBS already speaks RTMP here. Why
//! not WebCodecs: it would hand us raw encoded frames and leave the muxing to us, and
//! Safari's MediaRecorder already gives H.264 in MP4. The cost of this choice: one
//! ffmpeg per live console (a copy, or a libx264 encode when the browser only makes
//! VP8/VP9), and some 200 ms of chunking.
//!
//! # Secrets
//! The page asks for the stream's key or the broadcaster token in a form, checks it with
//! `POST /studio/{stream}/unlock`, keeps it in `sessionStorage` and sends it in the
//! ingest socket's first frame and the chat's `hello` (never in a URL, which would
//! reach logs). It is compared in constant time, and wrong ones are budgeted per client
//! address like wrong staff tokens. A private stream's console gets a playback token
//! for its chat from `unlock` (the chat of a private stream needs one, as a viewer's).
//! The broadcaster token makes the console's chat the broadcaster's (moderation); the
//! stream key alone opens a read-only chat. The key then appears
//! in ffmpeg's command line (the RTMP URL), visible to local users of the server's
//! machine, as it would be for a local OBS.
//!
//! # Health
//! While the stream is live the console polls `POST /studio/{stream}/health` every 2 s
//! (`health.js`) with the secret in the JSON body, checked as `unlock` checks it (a
//! wrong one spends the address's guess budget), and shows the answer
//! ([`StudioHealth`]): what the origin receives, so the same for a broadcast from this
//! page (through ffmpeg) and from OBS:
//! - bitrate and keyframe interval, from the playlist window as `/metrics` reads them
//!   ([`crate::metrics`]): the window's bytes over its duration, the median segment
//!   duration (a segment opens at each keyframe);
//! - frame rate and dropped frames, from the video frames the ingest received
//!   ([`crate::media::health`]: the frame rate, from their timestamps, of the frames
//!   received in the last 5 s; frames missing from the video timestamps, gaps over 1.5
//!   frame durations, since the broadcast started);
//! - the viewers' latency p50, from the reports players send on their push sockets.
//!
//! Why a poll and not frames on a socket: the ingest socket exists only for a
//! broadcast from this page (an OBS broadcast has none), and the chat socket is the
//! chat's, shared with viewers and with a protocol of its own; a poll needs no new
//! socket state on the server, works the same for both kinds of broadcast, and costs
//! one small request every 2 s per live console.
//!
//! Must not touch media itself: the origin sees only an RTMP publisher.

pub mod encoder;
mod session;

use crate::hub::ClientKey;
use crate::ingest::keys::Keys;
use crate::AppState;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, State};
use axum::http::{header, Extensions, HeaderMap, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use lucarne_protocol::studio::{
    StudioError, StudioErrorCode, StudioHealth, StudioUnlock, StudioUnlocked,
};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

const PAGE: &str = include_str!("console.html");
const SCRIPT: &str = include_str!("console.js");
const HEALTH_SCRIPT: &str = include_str!("health.js");

/// What the consoles share: who may publish where, and which streams have a console
/// live.
#[derive(Debug)]
pub struct Studio {
    /// Stream key → stream id (`--stream-key`): a key opens its stream's console; the
    /// console's ffmpeg publishes with a one-time pass from here, never with the key
    /// (see `ingest::keys`).
    keys: Arc<Keys>,
    /// The RTMP ingest, as ffmpeg reaches it (`None` when no ingest runs).
    rtmp: Option<SocketAddr>,
    /// The ffmpeg to run (`None`: none found; a console is told so).
    ffmpeg: Option<PathBuf>,
    /// Streams with a console live: a second console is refused.
    live: Mutex<HashSet<String>>,
}

impl Studio {
    /// Consoles publishing with `keys` to the ingest at `rtmp` through `ffmpeg`.
    pub fn new(keys: Arc<Keys>, rtmp: Option<SocketAddr>, ffmpeg: Option<PathBuf>) -> Studio {
        // A wildcard listen address is not one to connect to.
        let rtmp = rtmp.map(|mut a| {
            if a.ip().is_unspecified() {
                a.set_ip(if a.is_ipv4() {
                    std::net::Ipv4Addr::LOCALHOST.into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                });
            }
            a
        });
        Studio {
            keys,
            rtmp,
            ffmpeg,
            live: Mutex::new(HashSet::new()),
        }
    }

    /// The RTMP key to publish `stream` with, when `secret` is that stream's key or
    /// (`broadcaster`) the broadcaster token. Every key is compared, in constant time.
    fn key_for(&self, stream: &str, secret: &str, broadcaster: bool) -> Option<String> {
        let mut found = None;
        let mut any = None;
        for (key, id) in self.keys.fixed() {
            if id != stream {
                continue;
            }
            if crate::hub::identity::secrets_equal(key, secret) {
                found = Some(key.clone());
            }
            any.get_or_insert_with(|| key.clone());
        }
        found.or(if broadcaster { any } else { None })
    }

    /// Marks `stream` as having a live console; `None` if it has one already.
    fn claim(self: &Arc<Self>, stream: &str) -> Option<Claim> {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.insert(stream.to_owned()).then(|| Claim {
            studio: self.clone(),
            stream: stream.to_owned(),
        })
    }
}

/// Why a secret does not open a stream's console.
type Refused = (StudioErrorCode, String);

/// The RTMP key to publish `stream` with, when `secret` is its key or the broadcaster
/// token; wrong secrets are budgeted per client like wrong staff tokens.
async fn authorize(
    state: &AppState,
    client: ClientKey,
    stream: &str,
    secret: &str,
) -> Result<String, Refused> {
    let mut key = None;
    let mut broadcaster = false;
    let right = state
        .hub
        .secret_attempt(client, || {
            broadcaster =
                state.hub.role_for_token(secret) == Some(lucarne_protocol::Role::Broadcaster);
            key = state.studio.key_for(stream, secret, broadcaster);
            broadcaster || key.is_some()
        })
        .await;
    match (right, key) {
        (Err(retry), _) => Err((
            StudioErrorCode::TooManyAttempts,
            format!(
                "too many wrong keys from this address: retry in {} s",
                retry.as_secs() + 1
            ),
        )),
        (Ok(false), _) => {
            tracing::warn!(%stream, "studio: refused: wrong stream key or token");
            Err((
                StudioErrorCode::BadSecret,
                "this is neither the stream's key nor the broadcaster token".into(),
            ))
        }
        (Ok(true), Some(key)) => Ok(key),
        (Ok(true), None) => Err((
            StudioErrorCode::NotPublishable,
            format!("stream {stream} has no stream key (--stream-key KEY={stream}), so it cannot take a broadcast"),
        )),
    }
}

/// A stream's console slot, given back when dropped.
struct Claim {
    studio: Arc<Studio>,
    stream: String,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.studio
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.stream);
    }
}

/// `/studio.js`, `/studio-health.js`, `/studio/{stream}`, `/studio/{stream}/ingest`,
/// `/studio/{stream}/unlock`, `/studio/{stream}/health`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/studio.js", get(script))
        .route("/studio-health.js", get(health_script))
        .route("/studio/{stream}/health", post(health))
        .route("/studio/{stream}", get(page))
        .route("/studio/{stream}/ingest", get(ingest))
        .route("/studio/{stream}/unlock", post(unlock))
}

/// How long the playback token a private stream's console gets for its chat lasts (the
/// console asks for a fresh one at each reconnection).
const CHAT_TOKEN_SECS: u64 = 12 * 3600;

/// Checks the secret the console was opened with (so a typo is told at once), and
/// gives a private stream's console the token its chat socket needs.
async fn unlock(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    headers: HeaderMap,
    extensions: Extensions,
    Json(body): Json<StudioUnlock>,
) -> Response {
    if state.origin.channel(&stream).is_none() {
        return (StatusCode::NOT_FOUND, "no such stream").into_response();
    }
    let client = state.hub.client_key(&headers, &extensions);
    match authorize(&state, client, &stream, &body.secret).await {
        // A broadcaster token opens the console (chat, moderation) even where it
        // cannot publish; going live then says why.
        Ok(_) | Err((StudioErrorCode::NotPublishable, _)) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let chat_token = state.access.mint_for(&stream, now, CHAT_TOKEN_SECS);
            let broadcaster =
                state.hub.role_for_token(&body.secret) == Some(lucarne_protocol::Role::Broadcaster);
            (
                [(header::CACHE_CONTROL, "no-store")],
                Json(StudioUnlocked {
                    broadcaster,
                    chat_token,
                }),
            )
                .into_response()
        }
        Err(refused) => refusal(refused),
    }
}

/// A refused secret's answer: 429 past the guess budget, else 403.
fn refusal((code, message): Refused) -> Response {
    let status = match code {
        StudioErrorCode::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::FORBIDDEN,
    };
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Json(StudioError { code, message }),
    )
        .into_response()
}

/// The broadcast's health (see the module doc), for whoever may open the console.
async fn health(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    headers: HeaderMap,
    extensions: Extensions,
    Json(body): Json<StudioUnlock>,
) -> Response {
    let Some(channel) = state.origin.channel(&stream) else {
        return (StatusCode::NOT_FOUND, "no such stream").into_response();
    };
    let client = state.hub.client_key(&headers, &extensions);
    match authorize(&state, client, &stream, &body.secret).await {
        Ok(_) | Err((StudioErrorCode::NotPublishable, _)) => {}
        Err(refused) => return refusal(refused),
    }
    let now = crate::media::now_ns() as f64 / 1e9;
    let measured = channel
        .stream()
        .and_then(|s| crate::metrics::Measured::of(&s.production(), now));
    let ingest = channel.ingest_health();
    let answer = StudioHealth {
        live: matches!(
            channel.state(),
            crate::media::channel::ChannelState::Live(_)
        ),
        bitrate: measured.map(|m| m.bitrate),
        frame_rate: ingest.frame_rate,
        keyframe_interval: measured.map(|m| m.keyframe_interval),
        dropped_frames: ingest.dropped_frames,
        frames_received: ingest.frames_received,
        viewer_latency: ingest.viewer_latency.map(|(p50, _)| p50),
        viewer_reports: ingest
            .viewer_latency
            .map_or(0, |(_, n)| u32::try_from(n).unwrap_or(u32::MAX)),
    };
    ([(header::CACHE_CONTROL, "no-store")], Json(answer)).into_response()
}

/// The console page of a stream that can be broadcast to (a `--stream-key` stream).
async fn page(State(state): State<AppState>, Path(stream): Path<String>) -> Response {
    if state.origin.channel(&stream).is_none() {
        return (StatusCode::NOT_FOUND, "no such stream").into_response();
    }
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            // The page holds a secret: no other site may frame it.
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        PAGE,
    )
        .into_response()
}

async fn script() -> Response {
    javascript(SCRIPT)
}

async fn health_script() -> Response {
    javascript(HEALTH_SCRIPT)
}

fn javascript(text: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        text,
    )
        .into_response()
}

async fn ingest(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    version: Version,
    headers: HeaderMap,
    extensions: Extensions,
    ws: WebSocketUpgrade,
) -> Response {
    let client = state.hub.client_key(&headers, &extensions);
    if version != Version::HTTP_11 {
        return (StatusCode::BAD_REQUEST, "WebSocket needs HTTP/1.1").into_response();
    }
    let Some(channel) = state.origin.channel(&stream) else {
        return (StatusCode::NOT_FOUND, "no such stream").into_response();
    };
    // Twice the chunk limit, so an oversized chunk is read and answered with a reason
    // rather than cut off by the socket layer.
    let limit = lucarne_protocol::studio::MAX_CHUNK_BYTES * 2;
    ws.max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| session::run(socket, state, client, stream, channel))
}
