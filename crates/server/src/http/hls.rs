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
use crate::media::live::{Blocked, LiveStream};
use crate::media::playlist::{parse_media_name, Directives, MediaName};
use crate::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

const PLAYLIST: &str = "application/vnd.apple.mpegurl";
const PLAIN_PLAYLIST_CACHE: &str = "public, max-age=0, s-maxage=1";
const MEDIA_CACHE: &str = "public, max-age=86400, immutable";

/// `GET /live/{id}/index.m3u8`, with or without LL-HLS delivery directives.
pub(super) async fn playlist(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let stream = match (state.origin.stream(&id), state.origin.channel(&id)) {
        (Some(s), _) => s,
        (None, Some(channel)) => return replay_playlist(&channel).await,
        (None, None) => return Err(AppError::NoStream(id)),
    };
    let directives = Directives::from_query(query.as_deref())
        .map_err(|e| AppError::BadRequest(e.to_string()))?;
    let Some(want) = directives else {
        return Ok(playlist_response(stream.playlist(), PLAIN_PLAYLIST_CACHE));
    };
    let limit = stream.block_limit();
    let body = stream
        .blocking_playlist(want, limit)
        .await
        .map_err(|e| blocked(&stream, e, format!("playlist {want:?}")))?;
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
    let init = super::stream(&state, &id)?.init();
    Ok((
        [
            (header::CONTENT_TYPE, "video/mp4"),
            (header::CACHE_CONTROL, "public, max-age=60"),
        ],
        init,
    )
        .into_response())
}

/// `GET /live/{id}/{msn}.m4s` (a segment) and `/live/{id}/{msn}.{part}.m4s` (a part).
pub(super) async fn media(
    State(state): State<AppState>,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let stream = super::stream(&state, &id)?;
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
