//! HLS and LL-HLS over HTTP: `/live/{id}/index.m3u8`, `init.mp4`, `{msn}.m4s` and
//! `{msn}.{part}.m4s`, with the cache headers a CDN acts on. What the playlist says and
//! when a blocked request is answered are [`crate::media::playlist`]'s and
//! [`LiveStream`]'s; this module maps outcomes to statuses and headers.
//!
//! # Blocking
//! - `index.m3u8?_HLS_msn=M[&_HLS_part=P]` is held until the playlist has segment `M`
//!   (or part `P` of it), at most three target durations (3 s with 1 s segments), then
//!   503; too far ahead is 400 at once; `_HLS_part` alone, or a value that is not a
//!   number, 400. A channel that is not on air ignores the directives (its replay is a
//!   finished playlist).
//! - A part that does not exist yet but is the next one (the one `EXT-X-PRELOAD-HINT`
//!   names, or the first of the next segment) is held until it exists, within the same
//!   limit, then 503; its bytes are sent whole, as soon as the chunk is cut. Any other
//!   missing part is 404 at once, as is a hinted part the stream did not produce (the
//!   segment ended first).
//!
//! Why block instead of answering "not yet": a player learns of a part the moment it
//! exists with one request in flight, instead of polling ten times a second, and a CDN
//! in front collapses the identical held requests of all its viewers into one to the
//! origin.
//!
//! # Ladder
//! With `--ladder`, a live stream's `index.m3u8` is always a multivariant playlist
//! (never a media playlist that turns into one under a player already following it):
//! the source at `source.m3u8`, then each rendition that has a complete segment at
//! `{height}p/index.m3u8`, whose init segment, segments and parts sit beside it and
//! block like the source's. It is rendered by [`crate::media::ladder`].
//!
//! # Cache policy
//! - Plain playlist: `public, max-age=0, s-maxage=1`: a CDN (nginx honours `s-maxage`)
//!   serves it for at most one second; a browser always asks again, so the widget's
//!   plain-HLS polling never reads a stale copy from its own cache.
//! - Playlist answering `_HLS_msn`/`_HLS_part`: `public, max-age=3` (3 target
//!   durations): that URL's answer stays right (a later playlist would also contain the
//!   part), so every viewer behind one CDN edge asking for the next part shares one
//!   response. Within 3 s every segment it lists is still held (twice the window).
//! - Segments and parts: `public, max-age=86400, immutable`: a URL's bytes never change.
//! - Init segment: `public, max-age=60` (a channel's codec change versions its URI).
//! - Errors (400, 404, 503): `no-cache` (see [`AppError`]): a part missing now exists
//!   in a moment.

use super::AppError;
use crate::media::channel::{Channel, ChannelState};
use crate::media::ladder;
use crate::media::live::{Blocked, LiveStream};
use crate::media::playlist::{parse_media_name, Directives, MediaName};
use crate::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use std::sync::Arc;

const PLAYLIST: &str = "application/vnd.apple.mpegurl";
const PLAIN_PLAYLIST_CACHE: &str = "public, max-age=0, s-maxage=1";
const MEDIA_CACHE: &str = "public, max-age=86400, immutable";

/// `GET /live/{id}/index.m3u8`, with or without LL-HLS delivery directives.
pub(super) async fn playlist(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    super::viewed(&state, &id);
    let stream = match (state.origin.stream(&id), state.origin.channel(&id)) {
        (Some(s), _) => s,
        (None, Some(channel)) => return replay_playlist(&channel).await,
        (None, None) => super::stream(&state, &id).await?,
    };
    if !state.config.ingest.ladder.is_empty() {
        let body = Bytes::from(ladder::source_multivariant(&stream));
        return Ok(playlist_response(body, PLAIN_PLAYLIST_CACHE));
    }
    // An edge of an origin with a ladder: the same multivariant playlist, of the
    // renditions relayed here.
    if let Some(renditions) = state.edge.as_ref().and_then(|e| e.ladder(&id)) {
        let body = Bytes::from(ladder::multivariant_of(&stream, &renditions));
        return Ok(playlist_response(body, PLAIN_PLAYLIST_CACHE));
    }
    media_playlist(&stream, query.as_deref()).await
}

/// A live stream's media playlist, answering LL-HLS delivery directives.
async fn media_playlist(stream: &LiveStream, query: Option<&str>) -> Result<Response, AppError> {
    let directives =
        Directives::from_query(query).map_err(|e| AppError::BadRequest(e.to_string()))?;
    let Some(want) = directives else {
        return Ok(playlist_response(stream.playlist(), PLAIN_PLAYLIST_CACHE));
    };
    let limit = stream.block_limit();
    let body = stream
        .blocking_playlist(want, limit)
        .await
        .map_err(|e| blocked(stream, e, format!("playlist {want:?}")))?;
    let cache = format!("public, max-age={}", limit.as_secs());
    Ok(playlist_response(body, &cache))
}

fn playlist_response(body: Bytes, cache: &str) -> Response {
    let cache = HeaderValue::from_str(cache).unwrap_or(HeaderValue::from_static("no-cache"));
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(PLAYLIST)),
            (header::CACHE_CONTROL, cache),
        ],
        body,
    )
        .into_response()
}

fn blocked(stream: &LiveStream, e: Blocked, what: String) -> AppError {
    match e {
        Blocked::TooFar => AppError::BadRequest(format!("{what}: {e}")),
        Blocked::TimedOut => AppError::NotYet(format!("{} {what}: {e}", stream.id)),
        Blocked::NotFound => AppError::NoSegment(what),
    }
}

/// The playlist of a channel that is not on air: its newest replay (VOD), else 404.
async fn replay_playlist(channel: &Channel) -> Result<Response, AppError> {
    let offline = || AppError::Offline(channel.id.clone());
    // A refused publisher after a broadcast ended leaves that broadcast's replay
    // playable; within a grace period the recording is not finished.
    let finished = match channel.state() {
        ChannelState::Ended => true,
        ChannelState::Unsupported => channel.stream().is_none(),
        ChannelState::Offline | ChannelState::Live(_) => false,
    };
    if !finished {
        return Err(offline());
    }
    let (_, path) = channel.replay().ok_or_else(offline)?;
    let body = tokio::fs::read_to_string(path)
        .await
        .map_err(|_| offline())?;
    Ok((
        [
            (header::CONTENT_TYPE, PLAYLIST),
            // The next broadcast replaces it.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response())
}

/// `GET /live/{id}/init.mp4`.
pub(super) async fn init_segment(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    Ok(init_response(super::stream(&state, &id).await?.init()))
}

fn init_response(init: Bytes) -> Response {
    (
        [
            (header::CONTENT_TYPE, "video/mp4"),
            (header::CACHE_CONTROL, "public, max-age=60"),
        ],
        init,
    )
        .into_response()
}

/// `GET /live/{id}/{msn}.m4s` (a segment) and `/live/{id}/{msn}.{part}.m4s` (a part);
/// with a ladder, `/live/{id}/source.m3u8` (the source's media playlist).
pub(super) async fn media(
    State(state): State<AppState>,
    Path((id, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let stream = super::stream(&state, &id).await?;
    if name == "source.m3u8" {
        return media_playlist(&stream, query.as_deref()).await;
    }
    media_file(stream, name).await
}

/// The rendition `name` (`360p`) of live stream `id`.
pub(super) async fn rendition(
    state: &AppState,
    id: &str,
    name: &str,
) -> Result<Arc<LiveStream>, AppError> {
    let source = super::stream(state, id).await?;
    let height = ladder::parse_rendition_name(name);
    if let Some(s) = height.and_then(|h| source.rendition(h)) {
        return Ok(s);
    }
    match (&state.edge, height) {
        (Some(edge), Some(h)) => Ok(edge.rendition(id, h).await?),
        _ => Err(AppError::NoStream(format!("{id}/{name}"))),
    }
}

/// `GET /live/{id}/{height}p/index.m3u8`: a rendition's media playlist.
pub(super) async fn rendition_playlist(
    State(state): State<AppState>,
    Path((id, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let stream = rendition(&state, &id, &name).await?;
    media_playlist(&stream, query.as_deref()).await
}

/// `GET /live/{id}/{height}p/init.mp4`, `…/{msn}.m4s`, `…/{msn}.{part}.m4s`.
pub(super) async fn rendition_media(
    State(state): State<AppState>,
    Path((id, name, file)): Path<(String, String, String)>,
) -> Result<Response, AppError> {
    let stream = rendition(&state, &id, &name).await?;
    if file == "init.mp4" {
        return Ok(init_response(stream.init()));
    }
    media_file(stream, file).await
}

/// A segment or part of `stream`.
async fn media_file(stream: Arc<LiveStream>, name: String) -> Result<Response, AppError> {
    let bytes = match parse_media_name(&name) {
        Some(MediaName::Segment(msn)) => stream.segment(msn),
        Some(MediaName::Part { msn, part }) => {
            let limit = stream.block_limit();
            Some(
                stream
                    .next_part(msn, part, limit)
                    .await
                    .map_err(|e| blocked(&stream, e, name.clone()))?,
            )
        }
        None => None,
    }
    .ok_or(AppError::NoSegment(name))?;
    Ok((
        [
            (header::CONTENT_TYPE, "video/iso.segment"),
            // A published segment or part never changes.
            (header::CACHE_CONTROL, MEDIA_CACHE),
        ],
        bytes,
    )
        .into_response())
}
