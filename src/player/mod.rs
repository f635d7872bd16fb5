//! The player, shaped like hls.js: controllers, one concern each, around one event loop,
//! talking through the typed events of `events`, never through each other's
//! internals (no module imports the engine back).
//!
//! Pure policies (tested natively, `cargo test -p lucarne --lib`): [`playlist`] (HLS
//! parsing and start choice), [`latency`] (target latency, catch-up rate, jump to
//! live), [`buffer`] (ranges, back-buffer trimming, holes), [`stall`] (is the playhead
//! moving: hole jumps, nudges, hung pipeline), [`recovery`] (rebuild budget, which
//! source after failures, the status while waiting, what follows an end), [`replay`]
//! (the replay loader's next step), [`mp4`] (codecs and fragment times), [`channel`]
//! (the event queue), [`abr`] (bandwidth estimate, which rendition next, abandoning a
//! download that would stall), [`push_abr`] (which ladder rendition the push plays), [`unplayable`] (why a stream cannot play, for the
//! viewer).
//!
//! Browser glue (wasm32 only): `mse` is the only module that touches MediaSource,
//! SourceBuffer or TimeRanges; `video` owns the `<video>` element's listeners, `play()`
//! and the muted state; `playback` moves the playhead (start, latency, stalls, the
//! viewer's seeks) by the pure policies; the sources `hls` (playlists and segments) and
//! `push` (the low-latency WebSocket) only report `SourceEvent`s;
//! `engine` owns all of them, dispatches events, rebuilds and connects, and is driven
//! through a [`PlayerHandle`](engine::PlayerHandle) that sends [`Control`]s and reports
//! [`Status`].
//!
//! # Adding a controller
//! - A new source (LL-HLS parts, a source carrying MPEG-TS) is a module that sends
//!   `SourceEvent`s tagged with its generation, started from `Engine::connect` and held
//!   in `Active` (its `Drop` stops it); `recovery::Recovery::source` decides when it is
//!   used. LL-HLS parts belong in `hls` + `playlist` (parsing is pure there).
//! - A transformation of media (a TS-to-fMP4 transmuxer) sits between a source and
//!   `mse`: the source hands it bytes and sends the `Init`/`Media` it returns; it is
//!   pure (bytes in, fragments out, tested natively like `mp4`) and compiled into the
//!   download only where it is used.
//! - A decision is a pure module whose state has one owner. ABR, for one: `hls` owns
//!   the [`abr::Abr`] of a multivariant stream and feeds it its own downloads; what it
//!   needs from the rest of the player (buffer ahead, the `<video>`'s size, the
//!   viewer's choice, `data-max-height`) comes through a shared cell that playback
//!   refreshes every tick (`hls::Conditions`, next to the replay's `seek_to`); the
//!   heights it offers go to the UI as a `SourceEvent`.

pub mod abr;
pub mod buffer;
pub mod channel;
pub mod latency;
pub mod mp4;
pub mod playlist;
pub mod push_abr;
pub mod recovery;
pub mod replay;
pub mod stall;
pub mod tracks;
pub mod unplayable;

#[cfg(target_arch = "wasm32")]
pub(crate) mod audio;
#[cfg(target_arch = "wasm32")]
mod decrypt;
#[cfg(target_arch = "wasm32")]
pub mod engine;
#[cfg(target_arch = "wasm32")]
pub mod events;
#[cfg(target_arch = "wasm32")]
mod fetch;
#[cfg(target_arch = "wasm32")]
mod hls;
#[cfg(target_arch = "wasm32")]
pub mod mse;
#[cfg(target_arch = "wasm32")]
mod playback;
#[cfg(target_arch = "wasm32")]
mod push;
#[cfg(target_arch = "wasm32")]
mod ts;
#[cfg(target_arch = "wasm32")]
mod video;

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
    /// Move the playhead to this media time, seconds (a replay's seek bar and keys).
    Seek(f64),
    /// The viewer's pick in the quality menu.
    Quality(abr::Choice),
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
        /// Why the stream cannot play, when the player knows: what the viewer is told.
        reason: Option<unplayable::Reason>,
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
    /// The page's `data-max-height`: no taller rendition is loaded.
    pub max_height: Option<u32>,
}
