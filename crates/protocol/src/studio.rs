//! The broadcaster console's ingest socket (`GET /studio/{stream}/ingest`): the console
//! sends one `start` text frame, then its recorder's chunks as binary frames, then
//! `end` (or just closes); the server answers `accepted`, `live`, or an `error` that
//! ends the session.
//!
//! The secret travels in the first frame, never in the URL (URLs end up in logs).
//! `POST /studio/{stream}/unlock` checks it first (and gives a private stream's console
//! the playback token its chat needs).

use serde::{Deserialize, Serialize};

/// Largest binary frame (one recorder chunk) the server takes; a larger one ends the
/// session with [`StudioErrorCode::FrameTooLarge`] and close code 1009. A 250 ms chunk
/// of a 8 Mbit/s recording is 250 KB.
pub const MAX_CHUNK_BYTES: usize = 1 << 20;

/// Console → server text frames.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum StudioClient {
    /// First frame: who is going live, and what the chunks will be.
    Start(StudioStart),
    /// The broadcaster pressed "End": the last chunk has been sent.
    End,
    /// A type this version does not know.
    #[serde(other)]
    Unknown,
}

/// `{"type":"start","secret":"...","mimeType":"video/webm;codecs=h264,opus"}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StudioStart {
    /// The stream's key or the broadcaster token.
    pub secret: String,
    /// The recorder's `mimeType` (container and codecs of the chunks).
    pub mime_type: String,
}

/// The body of `POST /studio/{stream}/unlock`: `{"secret":"..."}`. Answered 200 with
/// [`StudioUnlocked`], or 403/429 with a [`StudioError`]. `POST /studio/{stream}/health`
/// takes the same body and answers [`StudioHealth`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StudioUnlock {
    /// The stream's key or the broadcaster token.
    pub secret: String,
}

/// `{"broadcaster":true,"chatToken":"..."}`: the secret is good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StudioUnlocked {
    /// The secret is the broadcaster token, which the console then sends as its chat
    /// `hello.authToken` (a stream key is not a chat token: sent there, it would count
    /// as a wrong guess).
    #[serde(default)]
    pub broadcaster: bool,
    /// For a private stream, a playback token the console's chat socket needs
    /// (`?token=`); absent for a public stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_token: Option<String>,
}

/// The answer to `POST /studio/{stream}/health`: the broadcast's health as the server
/// sees it. Figures it cannot tell yet are absent (`null` is never sent).
///
/// `{"live":true,"bitrate":2480000.0,"frameRate":30.0,"keyframeInterval":1.0,
/// "droppedFrames":0,"framesReceived":912,"viewerLatency":0.61,"viewerReports":3}`
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StudioHealth {
    /// A publisher (this console's encoder, or OBS) is sending.
    pub live: bool,
    /// Bits per second of the source: the bytes of the complete segments in the
    /// playlist window over their duration (what `/metrics` reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitrate: Option<f64>,
    /// The frame rate of the video frames received in the last 5 s, from their
    /// timestamps (0 when none came).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_rate: Option<f64>,
    /// Seconds: the median segment duration in the window (a segment opens at each
    /// keyframe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyframe_interval: Option<f64>,
    /// Frames missing from the publisher's video timeline since the broadcast started
    /// (timestamp gaps over 1.5 frame durations).
    #[serde(default)]
    pub dropped_frames: u64,
    /// Video frames received since the broadcast started.
    #[serde(default)]
    pub frames_received: u64,
    /// Seconds: the median of the latencies the watching players reported in the last
    /// 15 s (each its playhead's distance to the newest media it received).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub viewer_latency: Option<f64>,
    /// How many players `viewer_latency` is of.
    #[serde(default)]
    pub viewer_reports: u32,
}

/// Server → console text frames.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum StudioServer {
    /// The secret is good and the encoder runs: start sending chunks.
    Accepted(StudioAccepted),
    /// Viewers can watch: the origin took the broadcast.
    Live,
    /// The session is over, and why (the socket closes after it).
    Error(StudioError),
    /// A type this version does not know.
    #[serde(other)]
    Unknown,
}

/// `{"type":"accepted","transcoding":false}`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StudioAccepted {
    /// True when the server re-encodes the video (the recorder does not make H.264).
    pub transcoding: bool,
}

/// `{"type":"error","code":"bad_secret","message":"..."}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StudioError {
    /// What went wrong.
    pub code: StudioErrorCode,
    /// Human-readable, English.
    pub message: String,
}

/// Why a console session was refused or ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StudioErrorCode {
    /// The first frame was not a `start`.
    StartRequired,
    /// Neither the stream's key nor the broadcaster token.
    BadSecret,
    /// Too many wrong secrets from this address lately: retry in a minute.
    TooManyAttempts,
    /// Another console is live on this stream.
    AlreadyLive,
    /// Another publisher (OBS, an app) is live on this stream.
    PublisherLive,
    /// The stream cannot take a broadcast (no key maps to it, no RTMP ingest).
    NotPublishable,
    /// The server has no usable ffmpeg.
    NoEncoder,
    /// The encoder stopped (its last words are in the message).
    EncoderFailed,
    /// The encoder fell too far behind the recorder.
    TooSlow,
    /// A chunk was over [`MAX_CHUNK_BYTES`].
    FrameTooLarge,
    /// The server is stopping.
    ShuttingDown,
    /// A code this version does not know.
    #[serde(other)]
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_reads_from_json() {
        let m: StudioClient = serde_json::from_str(
            r#"{"type":"start","secret":"k","mimeType":"video/webm;codecs=h264,opus","x":1}"#,
        )
        .unwrap();
        assert_eq!(
            m,
            StudioClient::Start(StudioStart {
                secret: "k".into(),
                mime_type: "video/webm;codecs=h264,opus".into()
            })
        );
        let end: StudioClient = serde_json::from_str(r#"{"type":"end"}"#).unwrap();
        assert_eq!(end, StudioClient::End);
        let other: StudioClient = serde_json::from_str(r#"{"type":"later"}"#).unwrap();
        assert_eq!(other, StudioClient::Unknown);
    }

    #[test]
    fn health_leaves_out_what_is_not_known() {
        let h = StudioHealth {
            live: true,
            frame_rate: Some(30.0),
            ..StudioHealth::default()
        };
        assert_eq!(
            serde_json::to_string(&h).unwrap(),
            r#"{"live":true,"frameRate":30.0,"droppedFrames":0,"framesReceived":0,"viewerReports":0}"#
        );
    }

    #[test]
    fn answers_as_json() {
        let a = StudioServer::Accepted(StudioAccepted { transcoding: true });
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"type":"accepted","transcoding":true}"#
        );
        assert_eq!(
            serde_json::to_string(&StudioServer::Live).unwrap(),
            r#"{"type":"live"}"#
        );
        let e = StudioServer::Error(StudioError {
            code: StudioErrorCode::AlreadyLive,
            message: "m".into(),
        });
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"type":"error","code":"already_live","message":"m"}"#
        );
    }
}
