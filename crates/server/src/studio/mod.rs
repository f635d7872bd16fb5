//! The broadcaster console: `/studio/{stream}`, a page from which a broadcaster goes
//! live with the browser's camera (no app), and watches the chat, hearts and viewer
//! count while live, whether the broadcast comes from this page or from OBS.
//!
//! # Layout
//! - this module: the routes, the page (`console.html`, `console.js`, embedded), who may
//!   open a session (the secret), one live console per stream.
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
//! The page asks for the stream's key or the broadcaster token in a form; the page
//! keeps it in `sessionStorage` and sends it in the socket's first frame (never in a
//! URL, which would reach logs). It is compared in constant time. The key then appears
//! in ffmpeg's command line (the RTMP URL), visible to local users of the server's
//! machine, as it would be for a local OBS.
//!
//! Must not touch media itself: the origin sees only an RTMP publisher.

pub mod encoder;
mod session;

use crate::AppState;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

const PAGE: &str = include_str!("console.html");
const SCRIPT: &str = include_str!("console.js");

/// What the consoles share: who may publish where, and which streams have a console
/// live.
#[derive(Debug)]
pub struct Studio {
    /// Stream key → stream id (`--stream-key`): a key opens its stream's console, and
    /// is what ffmpeg publishes with.
    keys: Arc<HashMap<String, String>>,
    /// The RTMP ingest, as ffmpeg reaches it (`None` when no ingest runs).
    rtmp: Option<SocketAddr>,
    /// The ffmpeg to run (`None`: none found; a console is told so).
    ffmpeg: Option<PathBuf>,
    /// Streams with a console live: a second console is refused.
    live: Mutex<HashSet<String>>,
}

impl Studio {
    /// Consoles publishing with `keys` to the ingest at `rtmp` through `ffmpeg`.
    pub fn new(
        keys: Arc<HashMap<String, String>>,
        rtmp: Option<SocketAddr>,
        ffmpeg: Option<PathBuf>,
    ) -> Studio {
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
        for (key, id) in self.keys.iter() {
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

/// `/studio.js`, `/studio/{stream}`, `/studio/{stream}/ingest`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/studio.js", get(script))
        .route("/studio/{stream}", get(page))
        .route("/studio/{stream}/ingest", get(ingest))
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
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        SCRIPT,
    )
        .into_response()
}

async fn ingest(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    version: Version,
    ws: WebSocketUpgrade,
) -> Response {
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
        .on_upgrade(move |socket| session::run(socket, state, stream, channel))
}
