//! The player engine, shaped like hls.js: one module per concern, talking through typed
//! events, never through each other's internals.
//!
//! Pure (tested natively): [`playlist`] (HLS parsing and start choice), [`latency`]
//! (target latency, catch-up rate, jump to live), [`buffer`] (ranges, back-buffer
//! trimming, hole jumping), [`mp4`] (codecs and fragment times), [`channel`] (the
//! engine's event queue).
//!
//! Browser glue (wasm32 only): `mse` is the only module that touches MediaSource,
//! SourceBuffer or TimeRanges; `hls` loads playlists and segments; `push` receives the
//! low-latency WebSocket feed; `engine` owns all of them in one event loop and is driven
//! through a [`PlayerHandle`](engine::PlayerHandle) that sends [`Control`]s and reports
//! [`Status`].

pub mod buffer;
pub mod channel;
pub mod latency;
pub mod mp4;
pub mod playlist;

#[cfg(target_arch = "wasm32")]
pub mod engine;
#[cfg(target_arch = "wasm32")]
mod fetch;
#[cfg(target_arch = "wasm32")]
mod hls;
#[cfg(target_arch = "wasm32")]
pub mod mse;
#[cfg(target_arch = "wasm32")]
mod push;

/// What the frontend asks of the player.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// Start or resume playback.
    Play,
    /// Pause.
    Pause,
    /// Mute or unmute.
    Mute(bool),
    /// Volume in `[0, 1]`.
    Volume(f64),
    /// Seek back to the live edge.
    GoLive,
    /// Play the replay of a broadcast that ended (from its start, seekable).
    Replay,
}

/// What the player reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// Loading, no frame shown yet.
    Connecting,
    /// Frames are advancing at the live edge.
    Playing,
    /// Frames are advancing, behind live by the viewer's choice (resumed after a pause).
    BehindLive,
    /// Paused by the viewer (or autoplay was refused).
    Paused,
    /// Waiting for data while the source is reachable.
    Buffering,
    /// The source went away; retrying with backoff.
    Reconnecting,
    /// The stream is not live.
    Offline,
    /// The broadcast is over.
    Ended,
    /// Playing a recorded broadcast (VOD): seekable, no live edge.
    Replay,
    /// Something failed; `fatal` means the player gave up.
    Error {
        /// For the viewer and the console.
        message: String,
        /// No automatic recovery will follow.
        fatal: bool,
    },
}

impl Status {
    /// Short name, used for `data-status` and CSS.
    pub fn name(&self) -> &'static str {
        match self {
            Status::Connecting => "connecting",
            Status::Playing => "playing",
            Status::BehindLive => "behind",
            Status::Paused => "paused",
            Status::Buffering => "buffering",
            Status::Reconnecting => "reconnecting",
            Status::Offline => "offline",
            Status::Ended => "ended",
            Status::Replay => "replay",
            Status::Error { .. } => "error",
        }
    }
}

/// Where the media comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Sources {
    /// HLS playlist URL (absolute).
    pub hls: Option<String>,
    /// Low-latency WebSocket URL (absolute, `ws:` or `wss:`).
    pub low_latency: Option<String>,
}
