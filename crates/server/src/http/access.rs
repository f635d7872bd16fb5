//! The door of private broadcasts (see [`crate::access`]): one layer in front of every
//! route that serves a stream's media or chat — `/live/{id}/…` (playlists, init
//! segments, segments, parts, the low-latency push), `/replays/{id}/…` and
//! `/chat/{id}` — so no handler can forget it.
//!
//! For a private stream it answers 403 with `{"refused":"private","reason":…}` unless
//! the request carries a valid `token` and comes from an allowed page (an `Origin`, when
//! the browser sends one, must be the server's own or an `--embed-origin`), and it adds
//! the token to every URI of the playlists it lets through. Public streams pass
//! untouched, at the cost of one set lookup.

use crate::access::{sign_playlist, token_in, Denied};
use crate::hub::origins;
use crate::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::{SystemTime, UNIX_EPOCH};

/// Largest playlist the layer rewrites; a live playlist is a few KB.
const MAX_PLAYLIST_BYTES: usize = 1 << 20;

/// The stream a request path belongs to, for the routes this layer guards.
fn stream_of(path: &str) -> Option<&str> {
    let mut parts = path.strip_prefix('/')?.splitn(3, '/');
    match (parts.next()?, parts.next()) {
        ("live" | "replays" | "chat", Some(id)) if !id.is_empty() => Some(id),
        _ => None,
    }
}

fn refuse(why: Denied) -> Response {
    let body = serde_json::json!({ "refused": "private", "reason": why.to_string() });
    (
        StatusCode::FORBIDDEN,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(body),
    )
        .into_response()
}

/// The layer: see the module doc.
pub(crate) async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(stream) = stream_of(req.uri().path()) else {
        return next.run(req).await;
    };
    if !state.access.is_private(stream) {
        return next.run(req).await;
    }
    if !origins::allowed(req.headers(), &state.hub.config().embed_origins) {
        return refuse(Denied::Origin);
    }
    let token = token_in(req.uri().query()).map(str::to_owned);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if let Err(why) = state.access.check(stream, token.as_deref(), now) {
        return refuse(why);
    }
    let response = next.run(req).await;
    let is_playlist = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.contains("mpegurl"));
    match (is_playlist, token) {
        (true, Some(token)) => sign(response, &token).await,
        _ => response,
    }
}

/// `response` (a playlist) with the token added to its URIs.
async fn sign(response: Response, token: &str) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_PLAYLIST_BYTES).await else {
        return (StatusCode::BAD_GATEWAY, "playlist too large to sign").into_response();
    };
    let signed = sign_playlist(&String::from_utf8_lossy(&bytes), token);
    parts.headers.remove(header::CONTENT_LENGTH);
    if let Ok(len) = HeaderValue::from_str(&signed.len().to_string()) {
        parts.headers.insert(header::CONTENT_LENGTH, len);
    }
    Response::from_parts(parts, Body::from(signed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guarded_routes_name_their_stream() {
        assert_eq!(stream_of("/live/board/index.m3u8"), Some("board"));
        assert_eq!(stream_of("/live/board/ll"), Some("board"));
        assert_eq!(stream_of("/replays/board/17/index.m3u8"), Some("board"));
        assert_eq!(stream_of("/chat/board"), Some("board"));
        for other in [
            "/",
            "/lucarne.js",
            "/s/board",
            "/live/",
            "/chat/",
            "/api/streams/board",
        ] {
            assert_eq!(stream_of(other), None, "{other}");
        }
    }
}
