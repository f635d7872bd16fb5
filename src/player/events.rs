//! The typed events every part of the player sends to the engine's one loop: the
//! frontend's controls, timers, the video element, the MediaSource and the sources.
//! This module depends on no controller, so none of them imports the engine.

use super::channel;
use super::latency::LatencyPolicy;
use super::unplayable::Reason;
use super::Control;
use js_sys::Uint8Array;

/// Sender side of the engine's event queue.
pub type Tx = channel::Sender<Event>;

/// Everything the engine reacts to.
pub enum Event {
    /// From the frontend handle.
    Control(Control),
    /// Periodic evaluation.
    Tick,
    /// The page became visible again.
    Visible,
    /// From the source of the given generation.
    Source(u32, SourceEvent),
    /// An MSE operation failed.
    MseFailed(String),
    /// Playback does not move with media buffered ahead, nudges or not.
    Hung,
    /// The `<video>` element reported an error.
    MediaError,
    /// The append queue drained: new media is buffered.
    Buffered,
    /// `play()` was refused (autoplay policy).
    PlayRefused,
    /// The reconnect timer fired.
    Reconnect,
    /// The `<video>`'s muted state or volume changed.
    VolumeChanged,
    /// The page is being frozen (back/forward cache) or unloaded: let go of the network.
    PageHide,
    /// The page came back from the back/forward cache.
    PageShow,
    /// The handle was dropped.
    Close,
}

/// What a source reports.
pub enum SourceEvent {
    /// An init segment.
    Init(Uint8Array),
    /// A media fragment or segment.
    Media(Uint8Array),
    /// The stream's tracks, one SourceBuffer each (their types, video first), before
    /// any [`SourceEvent::Track`]; again when a type changes. For tracks that come
    /// apart: MPEG-TS transmuxed by the TS module, demuxed audio.
    Tracks(Vec<String>),
    /// An init segment or media for track `n` of the last `Tracks`.
    Track(usize, Uint8Array),
    /// ID3 timed metadata found in the stream: media time (seconds) and the tag's bytes.
    Metadata(f64, Uint8Array),
    /// Media time of the live edge (HLS; the push source's edge is its newest chunk).
    Edge(f64),
    /// Latency policy suited to the source (HLS target duration).
    Policy(LatencyPolicy),
    /// Connected / reachable again.
    Up,
    /// Unreachable.
    Down,
    /// The broadcast ended.
    Ended,
    /// After `Ended`, a new broadcast began on the same stream (HLS: the playlist is
    /// live again): the engine starts over on it, no reload needed.
    NewBroadcast,
    /// Nobody is broadcasting; media follows when someone does (push source).
    Offline,
    /// The playlist is a finished recording: media time `start` (applied as a
    /// timestamp offset, so the replay runs from 0) and total `duration`, seconds.
    Vod {
        /// Decode time of the first segment.
        start: f64,
        /// Sum of the segments' durations.
        duration: f64,
    },
    /// A VOD source has loaded its last segment.
    VodComplete,
    /// The heights of a multivariant stream's renditions, in its order (0: not given):
    /// what the quality menu offers; and the viewer's pick in force (0: auto).
    Heights(Vec<u32>, u32),
    /// Something was skipped or retried; playback goes on.
    Warning(String),
    /// The source cannot go on.
    Fatal(String),
    /// The stream cannot play here, for a reason the viewer is told.
    Unplayable(Reason),
}
