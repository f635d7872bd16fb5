//! HTTP surface: routes, headers and errors.
//!
//! - `/live/{id}/index.m3u8`, `/live/{id}/init.mp4`, `/live/{id}/{msn}.m4s`: HLS with
//!   CMAF segments, cache headers a CDN can honour.
//! - `/live/{id}/ll`: WebSocket low-latency push (init segment, then chunks).
//! - `/api/streams/{id}`: what a widget needs to play a stream.
//! - `/replays/{stream}/{broadcast}/...`: recorded broadcasts (VOD HLS). Once a channel's
//!   broadcast ended, its `index.m3u8` is the newest replay's playlist.
//! - `/chat/{room}` and `/api/rooms/...`: the chat hub (see [`crate::hub`]).
//! - everything else: the built widget (`--dist`, precompressed when `.br`/`.gz`
//!   siblings exist) then the pages (`--pages`).
//!
//! Every response carries `Access-Control-Allow-Origin: *`: the widget and its media are
//! meant to be loaded by pages on other origins.

use crate::media::channel::{Channel, ChannelState};
use crate::media::live::LiveStream;
use crate::AppState;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::compression::{CompressionLayer, DefaultPredicate};
use tower_http::cors::{Any, CorsLayer};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

/// A slow low-latency subscriber is dropped when one message takes longer than this.
const PUSH_SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Errors a request can end in; decides status, body and logging in one place.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No stream with that id.
    #[error("no stream named {0:?}")]
    NoStream(String),
    /// The segment is not (or no longer, or not yet) available.
    #[error("segment {0} is not available")]
    NoSegment(String),
    /// The stream exists but nobody is broadcasting on it.
    #[error("stream {0:?} is offline")]
    Offline(String),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = match self {
            AppError::NoStream(_) | AppError::NoSegment(_) | AppError::Offline(_) => {
                StatusCode::NOT_FOUND
            }
        };
        tracing::debug!("{status}: {self}");
        // A 404 for a segment that will exist in a moment must not be cached.
        (
            status,
            [(header::CACHE_CONTROL, "no-cache")],
            self.to_string(),
        )
            .into_response()
    }
}

/// Builds the application router.
pub fn router(state: AppState) -> Router {
    let widget = ServeDir::new(&state.config.dist)
        .precompressed_br()
        .precompressed_gzip()
        .fallback(ServeDir::new(&state.config.pages));
    let static_files = tower::ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            // Unhashed names: short freshness, then revalidation (Last-Modified).
            HeaderValue::from_static("public, max-age=60, stale-while-revalidate=600"),
        ))
        .service(widget);

    let compress = CompressionLayer::new().compress_when(
        DefaultPredicate::new()
            .and(NotForContentType::const_new("video/"))
            .and(SizeAbove::new(256)),
    );
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods(Any)
        .allow_headers(Any);

    let replays = (!state.origin.channels().is_empty()).then(|| {
        tower::ServiceBuilder::new()
            .layer(SetResponseHeaderLayer::if_not_present(
                header::CACHE_CONTROL,
                // A finished recording never changes.
                HeaderValue::from_static("public, max-age=3600"),
            ))
            .service(ServeDir::new(state.config.data_dir.join("replays")))
    });
    let router = match replays {
        Some(r) => Router::new().nest_service("/replays", r),
        None => Router::new(),
    };
    router
        .route("/live/{id}/index.m3u8", get(playlist))
        .route("/live/{id}/init.mp4", get(init_segment))
        .route("/live/{id}/ll", get(low_latency))
        .route("/live/{id}/{segment}", get(segment))
        .route("/api/streams/{id}", get(stream_info))
        .route("/chat/{room}", get(crate::hub::chat_socket))
        .merge(crate::hub::routes())
        // The loader's `data-src` short form.
        .route("/s/{id}", get(stream_info))
        .fallback_service(static_files)
        .layer(compress)
        .layer(cors)
        .with_state(state)
}

fn stream(state: &AppState, id: &str) -> Result<Arc<LiveStream>, AppError> {
    state
        .origin
        .stream(id)
        .ok_or_else(|| AppError::NoStream(id.to_owned()))
}

async fn playlist(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let body = match (state.origin.stream(&id), state.origin.channel(&id)) {
        (Some(s), _) => s.playlist(),
        (None, Some(channel)) => return replay_playlist(&channel).await,
        (None, None) => return Err(AppError::NoStream(id)),
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/vnd.apple.mpegurl"),
            // Browsers always revalidate; a CDN may serve it for one second (half the
            // target duration would be the usual rule; segments last one second).
            (header::CACHE_CONTROL, "public, max-age=0, s-maxage=1"),
        ],
        body,
    )
        .into_response())
}

/// The playlist of a channel that is not on air: its newest replay (VOD), else 404.
async fn replay_playlist(channel: &Channel) -> Result<Response, AppError> {
    let offline = || AppError::Offline(channel.id.clone());
    if !matches!(channel.state(), ChannelState::Ended) {
        return Err(offline());
    }
    let (_, path) = channel.replay().ok_or_else(offline)?;
    let body = tokio::fs::read_to_string(path)
        .await
        .map_err(|_| offline())?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/vnd.apple.mpegurl"),
            // The next broadcast replaces it.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response())
}

async fn init_segment(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let init = stream(&state, &id)?.init();
    Ok((
        [
            (header::CONTENT_TYPE, "video/mp4"),
            (header::CACHE_CONTROL, "public, max-age=60"),
        ],
        init,
    )
        .into_response())
}

async fn segment(
    State(state): State<AppState>,
    Path((id, segment)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let stream = stream(&state, &id)?;
    let bytes = segment
        .strip_suffix(".m4s")
        .and_then(|n| n.parse::<u64>().ok())
        .and_then(|msn| stream.segment(msn))
        .ok_or(AppError::NoSegment(segment))?;
    Ok((
        [
            (header::CONTENT_TYPE, "video/iso.segment"),
            // A published segment never changes.
            (header::CACHE_CONTROL, "public, max-age=86400, immutable"),
        ],
        bytes,
    )
        .into_response())
}

/// What a widget needs to play a stream (the `data-src` short form).
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct StreamInfo {
    id: String,
    hls: String,
    ll: String,
    /// The chat WebSocket of the stream's room.
    chat: String,
    live: bool,
    /// `live`, `offline` or `ended`.
    state: &'static str,
    /// The newest replay's playlist, once a broadcast ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    replay: Option<String>,
}

async fn stream_info(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let (live_state, replay) = match state.origin.channel(&id) {
        Some(c) => (c.state().name(), c.replay().map(|(url, _)| url)),
        None => {
            stream(&state, &id)?;
            ("live", None)
        }
    };
    Ok((
        [(header::CACHE_CONTROL, "no-cache")],
        Json(StreamInfo {
            hls: format!("/live/{id}/index.m3u8"),
            ll: format!("/live/{id}/ll"),
            chat: format!("/chat/{id}"),
            live: live_state == "live",
            state: live_state,
            replay,
            id,
        }),
    )
        .into_response())
}

async fn low_latency(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    if let Some(channel) = state.origin.channel(&id) {
        return Ok(ws.on_upgrade(move |socket| push_channel(socket, channel)));
    }
    let stream = stream(&state, &id)?;
    Ok(ws.on_upgrade(move |mut socket| async move {
        let _ = push(&mut socket, stream, None).await;
    }))
}

/// Why a push of one stream stopped.
enum PushEnd {
    /// The subscriber is gone.
    Closed,
    /// The channel moved on (new stream, or the broadcast ended).
    Moved,
}

/// Follows a channel: its state as a text message (`offline`, `live`, `ended`) when it
/// changes, and while a broadcast is on, its media as [`push`] sends it. The socket
/// stays open across broadcasts, so a waiting viewer starts playing by itself.
async fn push_channel(mut socket: WebSocket, channel: Arc<Channel>) {
    let mut rx = channel.watch();
    loop {
        let state = rx.borrow_and_update().clone();
        if let ChannelState::Live(stream) = state {
            match push(&mut socket, stream, Some(&mut rx)).await {
                PushEnd::Closed => return,
                PushEnd::Moved => continue,
            }
        }
        if send_text(&mut socket, state.name()).await.is_err() {
            return;
        }
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { return },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// Sends the init segment, the current segment so far, then every new chunk.
/// A subscriber that falls behind skips to the next keyframe instead of slowing the
/// source or growing a queue. With a channel, also says when the publisher drops and
/// returns (`offline` / `live`), and returns when the channel moves to another stream.
async fn push(
    socket: &mut WebSocket,
    stream: Arc<LiveStream>,
    mut channel: Option<&mut tokio::sync::watch::Receiver<ChannelState>>,
) -> PushEnd {
    let sub = stream.subscribe();
    let mut live = sub.live;
    let mut last_seq = None;
    if send(socket, sub.init).await.is_err() {
        return PushEnd::Closed;
    }
    for chunk in sub.backlog {
        last_seq = Some(chunk.seq);
        if send(socket, chunk.bytes.clone()).await.is_err() {
            return PushEnd::Closed;
        }
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
                match state {
                    ChannelState::Live(s) if Arc::ptr_eq(&s, &stream) => {
                        if send_text(socket, "live").await.is_err() {
                            return PushEnd::Closed;
                        }
                    }
                    // The publisher dropped: the stream may resume within the grace period.
                    ChannelState::Offline => {
                        if send_text(socket, "offline").await.is_err() {
                            return PushEnd::Closed;
                        }
                    }
                    _ => return PushEnd::Moved,
                }
            }
            _ = stream.finished() => return PushEnd::Moved,
            next = live.recv() => match next {
                Ok(chunk) => {
                    if last_seq.is_some_and(|s| chunk.seq <= s) || (resync && !chunk.independent) {
                        continue;
                    }
                    resync = false;
                    last_seq = Some(chunk.seq);
                    if send(socket, chunk.bytes.clone()).await.is_err() {
                        return PushEnd::Closed;
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::debug!(stream = %stream.id, "push subscriber lagged by {n} chunks; resyncing at next keyframe");
                    resync = true;
                }
                Err(RecvError::Closed) => return PushEnd::Moved,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return PushEnd::Closed,
                Some(Ok(_)) => {}
            },
        }
    }
}

async fn send_text(socket: &mut WebSocket, text: &'static str) -> Result<(), ()> {
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
