//! Moderation over HTTP, for tools and scripts. Every route but the room summary needs
//! `Authorization: Bearer <token>` with the broadcaster token or a moderator token.
//!
//! | route | body | effect |
//! | --- | --- | --- |
//! | `GET /api/rooms/{room}` | | `{epoch, seq, viewerCount, heartsTotal, slowModeSecs, streamState}` |
//! | `POST /api/rooms/{room}/messages/{id}/delete` | | removes the message for everyone |
//! | `POST /api/rooms/{room}/bans` | `{"viewerId":"v..","durationSecs":600,"reason":".."}` | bans, closes its sockets |
//! | `DELETE /api/rooms/{room}/bans/{viewerId}` | | lifts the ban |
//! | `POST`/`PUT /api/rooms/{room}/slow-mode` | `{"seconds":10}` | slow mode (0 = off) |
//! | `GET`/`PUT`/`POST /api/rooms/{room}/blocked-words` | `{"words":["spam"]}` | reads / replaces the list |
//!
//! Success is `204 No Content` (or JSON for reads). Errors are JSON
//! `{"code":"<ErrorCode>","message":".."}` with 400, 401, 404, 429 or 503. A client
//! address that sent too many wrong tokens gets 429 with `Retry-After`, and its tokens
//! are not even compared until then. Only streams' rooms exist unless `--free-rooms`.

use super::moderation::{self, Action};
use super::room::{Room, RoomInfo};
use super::rules::{self, Refusal};
use super::{Client, ClientKey, HubError};
use crate::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use lucarne_protocol::{BanViewer, BlockedWords, ErrorCode, SlowMode};
use std::sync::Arc;

/// An HTTP API failure: status plus the protocol's error code.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    message: String,
    retry_after: Option<std::time::Duration>,
}

#[derive(serde::Serialize)]
struct ErrorBody<'a> {
    code: ErrorCode,
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        tracing::debug!(status = %self.status, "moderation API: {}", self.message);
        let mut response = (
            self.status,
            [(header::CACHE_CONTROL, "no-store")],
            Json(ErrorBody {
                code: self.code,
                message: &self.message,
            }),
        )
            .into_response();
        if let Some(wait) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, (wait.as_secs() + 1).into());
        }
        response
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        let status = match r.code {
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError {
            status,
            code: r.code,
            message: r.message,
            retry_after: None,
        }
    }
}

impl From<HubError> for ApiError {
    fn from(e: HubError) -> Self {
        let (status, code, retry_after) = match e {
            HubError::NoSuchRoom => (StatusCode::NOT_FOUND, ErrorCode::NotFound, None),
            HubError::ClientLimit(wait) => (
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                Some(wait),
            ),
            _ => (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Unavailable,
                None,
            ),
        };
        ApiError {
            status,
            code,
            message: e.to_string(),
            retry_after,
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: ErrorCode::BadJson,
            message: e.body_text(),
            retry_after: None,
        }
    }
}

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/rooms/{room}", get(info))
        .route(
            "/api/rooms/{room}/messages/{id}/delete",
            post(delete_message),
        )
        .route("/api/rooms/{room}/bans", post(ban))
        .route("/api/rooms/{room}/bans/{viewer}", delete(unban))
        .route(
            "/api/rooms/{room}/slow-mode",
            post(slow_mode).put(slow_mode),
        )
        .route(
            "/api/rooms/{room}/blocked-words",
            get(get_blocked_words)
                .put(blocked_words)
                .post(blocked_words),
        )
}

async fn room(state: &AppState, id: &str, client: ClientKey) -> Result<Arc<Room>, ApiError> {
    if !rules::valid_room_id(id) {
        return Err(ApiError {
            status: StatusCode::NOT_FOUND,
            code: ErrorCode::NotFound,
            message: "No such room.".into(),
            retry_after: None,
        });
    }
    Ok(state.hub.room_for(id, client).await?)
}

/// The room, for a request carrying a staff bearer token.
async fn staff_room(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    client: ClientKey,
) -> Result<Arc<Room>, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let role = match token {
        Some(t) => state
            .hub
            .staff_role(t, client)
            .await
            .map_err(|wait| ApiError {
                status: StatusCode::TOO_MANY_REQUESTS,
                code: ErrorCode::RateLimited,
                message: "Too many wrong tokens from this address.".into(),
                retry_after: Some(wait),
            })?,
        None => None,
    };
    if role.is_none() {
        return Err(ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: ErrorCode::BadToken,
            message: "A moderator or broadcaster bearer token is required.".into(),
            retry_after: None,
        });
    }
    room(state, id, client).await
}

async fn done(room: &Room, action: Action) -> Result<StatusCode, ApiError> {
    moderation::apply(room, action).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn info(
    State(state): State<AppState>,
    Client(client): Client,
    Path(id): Path<String>,
) -> Result<Json<RoomInfo>, ApiError> {
    Ok(Json(room(&state, &id, client).await?.info()))
}

async fn delete_message(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    Path((id, msg)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let room = staff_room(&state, &headers, &id, client).await?;
    done(&room, Action::Delete { id: msg }).await
}

async fn ban(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<BanViewer>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let room = staff_room(&state, &headers, &id, client).await?;
    done(&room, Action::Ban(body?.0)).await
}

async fn unban(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    Path((id, viewer)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let room = staff_room(&state, &headers, &id, client).await?;
    done(&room, Action::Unban { viewer_id: viewer }).await
}

async fn slow_mode(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<SlowMode>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let room = staff_room(&state, &headers, &id, client).await?;
    done(&room, Action::SlowMode(body?.0.seconds)).await
}

async fn get_blocked_words(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<BlockedWords>, ApiError> {
    let room = staff_room(&state, &headers, &id, client).await?;
    Ok(Json(BlockedWords {
        words: room.blocked_words(),
    }))
}

async fn blocked_words(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<BlockedWords>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let room = staff_room(&state, &headers, &id, client).await?;
    done(&room, Action::BlockedWords(body?.0.words)).await
}
