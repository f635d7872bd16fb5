//! HTTP surface: routes, headers and errors.
//!
//! - `/live/{id}/index.m3u8`, `/live/{id}/init.mp4`, `/live/{id}/{msn}.m4s`,
//!   `/live/{id}/{msn}.{part}.m4s`: HLS with CMAF segments and LL-HLS parts, blocking
//!   playlist reload, cache headers a CDN can honour (see [`hls`]).
//! - with `--ladder`, `/live/{id}/index.m3u8` is a multivariant playlist: the source at
//!   `/live/{id}/source.m3u8`, each rendition at `/live/{id}/{height}p/index.m3u8`
//!   (its `init.mp4`, segments, parts and `ll` push beside it; see
//!   [`crate::media::ladder`]).
//! - `/live/{id}/ll`: WebSocket low-latency push (init segment, then chunks; see
//!   [`push`]); `?relay=1` for an edge node.
//! - on an edge (`--origin`), a stream this node does not publish is looked up on the
//!   origin and relayed (see [`crate::edge`]); an origin out of reach is a 502.
//! - `/api/streams/{id}`: what a widget needs to play a stream.
//! - `/replays/{stream}/{broadcast}/...`: recorded broadcasts (VOD HLS). Once a channel's
//!   broadcast ended, its `index.m3u8` is the newest replay's playlist.
//! - `/chat/{room}` and `/api/rooms/...`: the chat hub (see [`crate::hub`]).
//! - `/studio/{stream}`, `/studio/{stream}/unlock`, `/studio/{stream}/ingest`,
//!   `/studio.js`: the broadcaster console (see [`crate::studio`]).
//! - `/overlay/{id}`: the broadcast's chat and hearts on a transparent page, for OBS
//!   (see [`overlay`]).
//! - `/healthz`, `/readyz`, `/metrics`: operations (see [`ops`]).
//! - everything else: the built widget (`--dist`, precompressed when `.br`/`.gz`
//!   siblings exist) then the pages (`--pages`).
//!
//! Every response carries `Access-Control-Allow-Origin: *`: the widget and its media are
//! meant to be loaded by pages on other origins.
//!
//! A file path the file system refuses (a name over 255 bytes, a file used as a
//! directory) is a 404 like a missing file: tower-http answers such errors 500 and logs
//! an ERROR, so any client could fill the log. Connections (timeouts, cap) are
//! [`crate::serve`]'s.

mod access;
mod hls;
pub mod ops;
mod overlay;
mod push;

use crate::media::live::LiveStream;
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use lucarne_protocol::StreamState;
use std::convert::Infallible;
use std::sync::Arc;
use tower::Service;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::compression::{CompressionLayer, DefaultPredicate};
use tower_http::cors::{Any, CorsLayer};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

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
    /// A malformed request, or an LL-HLS one too far ahead of the live edge.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A blocked LL-HLS request the stream did not reach in time.
    #[error("not available in time: {0}")]
    NotYet(String),
    /// An edge cannot reach its origin (see [`crate::edge`]).
    #[error("{0}")]
    Upstream(String),
}

impl From<crate::edge::EdgeError> for AppError {
    fn from(e: crate::edge::EdgeError) -> AppError {
        use crate::edge::EdgeError;
        match e {
            EdgeError::NotFound(id) => AppError::NoStream(id),
            EdgeError::Offline(id) => AppError::Offline(id),
            e @ EdgeError::Unavailable(..) => AppError::Upstream(e.to_string()),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = match self {
            AppError::NoStream(_) | AppError::NoSegment(_) | AppError::Offline(_) => {
                StatusCode::NOT_FOUND
            }
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::NotYet(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Upstream(_) => StatusCode::BAD_GATEWAY,
        };
        tracing::debug!("{status}: {self}");
        // A 404 for a segment that will exist in a moment must not be cached, nor a 503
        // for a part that was late.
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
    let widget = files(vec![
        ServeDir::new(&state.config.dist)
            .precompressed_br()
            .precompressed_gzip(),
        ServeDir::new(&state.config.pages),
    ]);
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
            .service(files(vec![ServeDir::new(
                state.config.data_dir.join("replays"),
            )]))
    });
    let router = match replays {
        Some(r) => Router::new().nest_service("/replays", r),
        None => Router::new(),
    };
    router
        .route("/live/{id}/index.m3u8", get(hls::playlist))
        .route("/live/{id}/init.mp4", get(hls::init_segment))
        .route("/live/{id}/ll", get(push::low_latency))
        .route("/live/{id}/{segment}", get(hls::media))
        .route(
            "/live/{id}/{rendition}/index.m3u8",
            get(hls::rendition_playlist),
        )
        .route(
            "/live/{id}/{rendition}/ll",
            get(push::rendition_low_latency),
        )
        .route(
            "/live/{id}/{rendition}/{segment}",
            get(hls::rendition_media),
        )
        .route("/api/streams/{id}", get(stream_info))
        .route("/chat/{room}", get(crate::hub::chat_socket))
        .merge(crate::hub::routes())
        .merge(crate::studio::routes())
        .merge(ops::routes())
        // The loader's `data-src` short form.
        .route("/s/{id}", get(stream_info))
        .route("/overlay/{id}", get(overlay::page))
        .fallback_service(static_files)
        // Inside compression, so playlists are signed before they are compressed.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::guard,
        ))
        .layer(compress)
        .layer(cors)
        .with_state(state)
}

/// Files from the first of `dirs` that has the path (as `ServeDir::fallback` would),
/// with the file system's refusals of a request path answered 404 (see the module doc).
fn files(
    dirs: Vec<ServeDir>,
) -> impl Service<Request, Response = Response, Error = Infallible, Future: Send> + Clone {
    let dirs = Arc::new(dirs);
    tower::service_fn(move |req: Request| {
        let dirs = dirs.clone();
        async move { Ok(serve_file(&dirs, req).await) }
    })
}

async fn serve_file(dirs: &[ServeDir], req: Request) -> Response {
    let (parts, _) = req.into_parts();
    for (i, dir) in dirs.iter().enumerate() {
        let last = i + 1 == dirs.len();
        let req = Request::from_parts(parts.clone(), Body::empty());
        match dir.clone().try_call(req).await {
            Ok(r) if r.status() == StatusCode::NOT_FOUND && !last => {}
            Ok(r) => return r.map(Body::new),
            Err(e) if path_refused(&e) => {
                if last {
                    tracing::debug!(path = %parts.uri.path(), "not served: {e}");
                    return (StatusCode::NOT_FOUND, [(header::CACHE_CONTROL, "no-cache")])
                        .into_response();
                }
            }
            Err(e) => {
                tracing::error!(path = %parts.uri.path(), "cannot serve the file: {e}");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        }
    }
    StatusCode::NOT_FOUND.into_response()
}

/// File system errors that say the request's path names no file we have.
fn path_refused(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    // ENAMETOOLONG is `InvalidFilename`, ENOTDIR `NotADirectory`.
    matches!(
        e.kind(),
        NotFound | PermissionDenied | NotADirectory | InvalidFilename
    )
}

/// The live stream `id`: this node's, else on an edge the origin's (relayed, see
/// [`crate::edge`]).
async fn stream(state: &AppState, id: &str) -> Result<Arc<LiveStream>, AppError> {
    viewed(state, id);
    if let Some(s) = state.origin.stream(id) {
        return Ok(s);
    }
    match &state.edge {
        Some(edge) if state.origin.channel(id).is_none() => Ok(edge.stream(id).await?),
        _ => Err(AppError::NoStream(id.to_owned())),
    }
}

/// A request for stream `id`: on an edge, its relay stays wanted.
fn viewed(state: &AppState, id: &str) {
    if let Some(edge) = &state.edge {
        edge.touch(id);
    }
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
    /// `live`, `offline`, `ended` or `unsupported`.
    state: StreamState,
    /// The newest replay's playlist, once a broadcast ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    replay: Option<String>,
}

async fn stream_info(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    if state.origin.channel(&id).is_none() {
        // On an edge, the origin's stream or channel (then mirrored here).
        match stream(&state, &id).await {
            Ok(_) | Err(AppError::Offline(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let (live_state, replay) = match state.origin.channel(&id) {
        Some(c) => (c.state().stream_state(), c.replay().map(|(url, _)| url)),
        None => (StreamState::Live, None),
    };
    Ok((
        [(header::CACHE_CONTROL, "no-cache")],
        Json(StreamInfo {
            hls: format!("/live/{id}/index.m3u8"),
            ll: format!("/live/{id}/ll"),
            chat: format!("/chat/{id}"),
            live: live_state == StreamState::Live,
            state: live_state,
            replay,
            id,
        }),
    )
        .into_response())
}
