//! HTTP surface: routes, headers and errors.
//!
//! - `/live/{id}/index.m3u8`, `/live/{id}/init.mp4`, `/live/{id}/{msn}.m4s`: HLS with
//!   CMAF segments, cache headers a CDN can honour.
//! - `/live/{id}/ll`: WebSocket low-latency push (init segment, then chunks).
//! - `/api/streams/{id}`: what a widget needs to play a stream.
//! - `/chat/{room}` and `/api/rooms/...`: the chat hub (see [`crate::hub`]).
//! - everything else: the built widget (`--dist`, precompressed when `.br`/`.gz`
//!   siblings exist) then the pages (`--pages`).
//!
//! Every response carries `Access-Control-Allow-Origin: *`: the widget and its media are
//! meant to be loaded by pages on other origins.

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
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = match self {
            AppError::NoStream(_) | AppError::NoSegment(_) => StatusCode::NOT_FOUND,
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

    Router::new()
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
    let body = stream(&state, &id)?.playlist();
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
}

async fn stream_info(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let s = stream(&state, &id)?;
    Ok((
        [(header::CACHE_CONTROL, "no-cache")],
        Json(StreamInfo {
            hls: format!("/live/{}/index.m3u8", s.id),
            ll: format!("/live/{}/ll", s.id),
            chat: format!("/chat/{}", s.id),
            id: s.id.clone(),
            live: true,
        }),
    )
        .into_response())
}

async fn low_latency(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let stream = stream(&state, &id)?;
    Ok(ws.on_upgrade(move |socket| push(socket, stream)))
}

/// Sends the init segment, the current segment so far, then every new chunk.
/// A subscriber that falls behind skips to the next keyframe instead of slowing the
/// source or growing a queue.
async fn push(mut socket: WebSocket, stream: Arc<LiveStream>) {
    let sub = stream.subscribe();
    let mut live = sub.live;
    let mut last_seq = None;
    if send(&mut socket, sub.init).await.is_err() {
        return;
    }
    for chunk in sub.backlog {
        last_seq = Some(chunk.seq);
        if send(&mut socket, chunk.bytes.clone()).await.is_err() {
            return;
        }
    }
    let mut resync = false;
    loop {
        tokio::select! {
            next = live.recv() => match next {
                Ok(chunk) => {
                    if last_seq.is_some_and(|s| chunk.seq <= s) || (resync && !chunk.independent) {
                        continue;
                    }
                    resync = false;
                    last_seq = Some(chunk.seq);
                    if send(&mut socket, chunk.bytes.clone()).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::debug!(stream = %stream.id, "push subscriber lagged by {n} chunks; resyncing at next keyframe");
                    resync = true;
                }
                Err(RecvError::Closed) => return,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

async fn send(socket: &mut WebSocket, bytes: bytes::Bytes) -> Result<(), ()> {
    match tokio::time::timeout(PUSH_SEND_TIMEOUT, socket.send(Message::Binary(bytes))).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}
