//! One console's ingest socket: the `start` frame and its secret, the console slot,
//! the encoder, then chunks in and `live` / `error` out until the console ends.
//!
//! Every way out says why to the console first (an `error` frame, then a close code),
//! except the console's own close. Ending, in any way, closes ffmpeg's input: ffmpeg
//! ends its RTMP publish. After the console's "End" the broadcast ends at once and its
//! replay is offered; a console that went away (its network) gets the channel's grace
//! period, as OBS does.

use super::encoder::{self, Encoder, EncoderError};
use crate::hub::ClientKey;
use crate::media::channel::Channel;
use crate::AppState;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use lucarne_protocol::studio::{
    StudioAccepted, StudioClient, StudioError, StudioErrorCode, StudioServer, MAX_CHUNK_BYTES,
};
use lucarne_protocol::StreamState;
use std::sync::Arc;
use std::time::Duration;

/// Time from the upgrade to the `start` frame.
const START_DEADLINE: Duration = Duration::from_secs(10);

/// Close codes: the secret or the state of the stream refuses (1008), a chunk over the
/// limit (1009), the server side failed (1011).
const POLICY: u16 = 1008;
const TOO_BIG: u16 = 1009;
const SERVER_ERROR: u16 = 1011;

pub(super) async fn run(
    mut socket: WebSocket,
    state: AppState,
    client: ClientKey,
    stream: String,
    channel: Arc<Channel>,
) {
    let start = match tokio::time::timeout(START_DEADLINE, socket.recv()).await {
        Ok(Some(Ok(Message::Text(t)))) => serde_json::from_str::<StudioClient>(&t).ok(),
        // The console went away before saying anything.
        Ok(None | Some(Err(_) | Ok(Message::Close(_)))) => return,
        // Media, a ping, or nothing in time: not a start.
        Ok(Some(Ok(_))) | Err(_) => None,
    };
    let Some(StudioClient::Start(start)) = start else {
        return refuse(
            socket,
            StudioErrorCode::StartRequired,
            "the console must send `start` first".into(),
            POLICY,
        )
        .await;
    };
    let studio = state.studio.clone();
    if let Err((code, why)) = super::authorize(&state, client, &stream, &start.secret).await {
        return refuse(socket, code, why, POLICY).await;
    }
    let Some(_claim) = studio.claim(&stream) else {
        return refuse(
            socket,
            StudioErrorCode::AlreadyLive,
            "another console is live on this stream: end it first".into(),
            POLICY,
        )
        .await;
    };
    if channel.state().stream_state() == StreamState::Live {
        return refuse(
            socket,
            StudioErrorCode::PublisherLive,
            "this stream is live from another publisher (OBS or an app): end that broadcast first"
                .into(),
            POLICY,
        )
        .await;
    }
    let (Some(rtmp), Some(ffmpeg)) = (studio.rtmp, studio.ffmpeg.as_deref()) else {
        let (code, why) = if studio.rtmp.is_none() {
            (
                StudioErrorCode::NotPublishable,
                "the server runs no RTMP ingest".to_owned(),
            )
        } else {
            (
                StudioErrorCode::NoEncoder,
                EncoderError::NoFfmpeg("no `ffmpeg` on PATH".into()).to_string(),
            )
        };
        tracing::error!(%stream, "studio: cannot go live: {why}");
        return refuse(socket, code, why, SERVER_ERROR).await;
    };
    let h264 = encoder::is_h264(&start.mime_type);
    // Not the stream's key: a command line is readable by every local user.
    let pass = state.studio.keys.pass(&stream);
    let target = format!("rtmp://{rtmp}/live/{}", pass.key());
    let (encoder, mut ended) = match Encoder::start(ffmpeg, h264, &target) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(%stream, "studio: {e}");
            return refuse(
                socket,
                StudioErrorCode::NoEncoder,
                e.to_string(),
                SERVER_ERROR,
            )
            .await;
        }
    };
    tracing::info!(%stream, mime = %start.mime_type, transcoding = !h264, "studio: console going live");
    if send(
        &mut socket,
        &StudioServer::Accepted(StudioAccepted { transcoding: !h264 }),
    )
    .await
    .is_err()
    {
        return;
    }
    let outcome = relay(&mut socket, &encoder, &mut ended, &channel).await;
    // Closes ffmpeg's input: it ends the publish and exits.
    drop(encoder);
    let exited = matches!(outcome, Relay::Failed(StudioErrorCode::EncoderFailed, ..));
    let ended_by_console = matches!(outcome, Relay::Ended);
    match outcome {
        Relay::Ended => tracing::info!(%stream, "studio: console ended the broadcast"),
        Relay::Closed => tracing::info!(%stream, "studio: console gone; the grace period runs"),
        Relay::Failed(code, why, close) => {
            tracing::warn!(%stream, "studio: broadcast stopped: {why}");
            refuse(socket, code, why, close).await;
        }
    }
    // The slot is kept until ffmpeg is gone, so a console that reconnects at once does
    // not meet its own previous publish.
    if !exited {
        let _ = tokio::time::timeout(encoder::EXIT_GRACE + Duration::from_secs(1), ended).await;
    }
    // "End" is the broadcaster's word: no grace period to wait for a return, the
    // broadcast ends and its replay is offered now. A console that only lost its
    // network (closed without `end`) gets the grace period, as OBS does.
    if ended_by_console {
        channel.end_now(Duration::from_secs(3)).await;
    }
}

enum Relay {
    /// The console pressed "End".
    Ended,
    /// The console went away (its network, a closed tab).
    Closed,
    /// The session failed: tell the console.
    Failed(StudioErrorCode, String, u16),
}

async fn relay(
    socket: &mut WebSocket,
    encoder: &Encoder,
    ended: &mut tokio::sync::oneshot::Receiver<encoder::Ended>,
    channel: &Channel,
) -> Relay {
    let mut states = channel.watch();
    let mut told_live = false;
    loop {
        if !told_live && states.borrow_and_update().stream_state() == StreamState::Live {
            told_live = true;
            if send(socket, &StudioServer::Live).await.is_err() {
                return Relay::Closed;
            }
        }
        tokio::select! {
            msg = socket.recv() => match msg {
                Some(Ok(Message::Binary(chunk))) => {
                    if chunk.len() > MAX_CHUNK_BYTES {
                        return Relay::Failed(
                            StudioErrorCode::FrameTooLarge,
                            format!("a chunk of {} bytes is over the limit of {MAX_CHUNK_BYTES}: record with a shorter timeslice or a lower bitrate", chunk.len()),
                            TOO_BIG,
                        );
                    }
                    match encoder.push(chunk) {
                        Ok(()) => {}
                        Err(e @ EncoderError::TooSlow) => {
                            return Relay::Failed(StudioErrorCode::TooSlow, e.to_string(), SERVER_ERROR)
                        }
                        // Its exit is reported by `ended` below, with its words.
                        Err(_) => {}
                    }
                }
                Some(Ok(Message::Text(t))) => {
                    if let Ok(StudioClient::End) = serde_json::from_str(&t) {
                        return Relay::Ended;
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_)) | Err(_)) | None => return Relay::Closed,
            },
            end = &mut *ended => {
                let why = match end {
                    Ok(end) if end.tail.is_empty() => "the server's encoder stopped".to_owned(),
                    Ok(end) => format!("the server's encoder stopped: {}", end.tail),
                    Err(_) => "the server's encoder was lost".to_owned(),
                };
                return Relay::Failed(StudioErrorCode::EncoderFailed, why, SERVER_ERROR);
            }
            changed = states.changed() => {
                if changed.is_err() {
                    return Relay::Failed(StudioErrorCode::ShuttingDown, "the server is stopping".into(), 1001);
                }
            }
        }
    }
}

async fn send(socket: &mut WebSocket, msg: &StudioServer) -> Result<(), axum::Error> {
    let text = serde_json::to_string(msg).expect("studio messages serialise");
    socket.send(Message::Text(text.into())).await
}

/// Tells the console why, then closes with `close`.
async fn refuse(mut socket: WebSocket, code: StudioErrorCode, message: String, close: u16) {
    let _ = send(
        &mut socket,
        &StudioServer::Error(StudioError {
            code,
            message: message.clone(),
        }),
    )
    .await;
    // A close reason holds 123 bytes at most.
    let mut reason = String::new();
    for c in message.chars() {
        if reason.len() + c.len_utf8() > 120 {
            break;
        }
        reason.push(c);
    }
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: close,
            reason: reason.into(),
        })))
        .await;
}
