//! The live origin: streams, their sources and their packaging.
//!
//! - [`cmaf`] muxes samples into CMAF init segments and fragments.
//! - [`clip`] reads the committed demo clip.
//! - [`health`] measures a broadcast's frames and its viewers' latency for the console.
//! - [`demo`] loops the clip as a live source on the wall clock.
//! - [`ladder`] transcodes broadcasts into lower renditions with ffmpeg (`--ladder`).
//! - [`live`] keeps a stream's segments, LL-HLS parts and low-latency chunk feed, and
//!   holds LL-HLS blocking requests until the stream gets there.
//! - [`playlist`] renders the live playlist with LL-HLS and decides, purely, when a
//!   blocked request may be answered.
//! - [`remux`] turns a publisher's FLV tags (as RTMP delivers them) into CMAF.
//! - [`channel`] is a stream id publishers go live on (ingest), with its lifecycle.
//! - [`replay`] records broadcasts and serves them back as VOD.
//! - [`relay`] frames the push for edge nodes: each chunk with its segment and part
//!   numbers, so an edge rebuilds the same playlist.
//!
//! [`Origin`] owns the set of streams and channels, and the tasks that feed them.
//!
//! The bottom layer: imports nothing from `http`, `hub` or `ingest`. Ingest speaks RTMP
//! and hands a channel's [`Publisher`](channel::Publisher) the FLV tags; turning them
//! into CMAF chunks is packaging, so it happens here.

pub mod channel;
pub mod clip;
pub mod cmaf;
pub mod demo;
pub mod health;
pub mod ladder;
pub mod live;
pub mod playlist;
pub mod relay;
pub mod remux;
pub mod replay;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use channel::Channel;
use clip::Clip;
use demo::DemoLoop;
use live::LiveStream;

/// The set of live streams this server publishes.
#[derive(Debug, Default)]
pub struct Origin {
    streams: RwLock<HashMap<String, Arc<LiveStream>>>,
    channels: RwLock<HashMap<String, Arc<Channel>>>,
    /// On an edge: ids the upstream origin has been seen to publish (a stream's room
    /// is admitted while its copy is away; see `crate::edge`). At most
    /// [`MAX_RELAYED_IDS`].
    relayed: RwLock<std::collections::HashSet<String>>,
}

/// Upstream ids an edge remembers (see [`Origin::remember_relayed`]).
pub const MAX_RELAYED_IDS: usize = 1024;

/// Whether a stream is on air, as the chat and the API report it.
pub use lucarne_protocol::StreamState;

impl Origin {
    /// The stream called `id` if it can be played now: a built-in stream, or a
    /// channel's broadcast (also while its publisher is reconnecting).
    pub fn stream(&self, id: &str) -> Option<Arc<LiveStream>> {
        if let Some(s) = self
            .streams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
        {
            return Some(s.clone());
        }
        self.channel(id)?.stream()
    }

    /// The ingest channel called `id`, if one is configured.
    pub fn channel(&self, id: &str) -> Option<Arc<Channel>> {
        self.channels
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// All ingest channels.
    pub fn channels(&self) -> Vec<Arc<Channel>> {
        self.channels
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Withdraws `channel` (an edge's mirror, see `crate::edge`), if it is still the
    /// one under its id.
    pub fn remove_channel(&self, channel: &Arc<Channel>) {
        let mut channels = self.channels.write().unwrap_or_else(|e| e.into_inner());
        if channels
            .get(&channel.id)
            .is_some_and(|c| Arc::ptr_eq(c, channel))
        {
            channels.remove(&channel.id);
        }
    }

    /// Adds an ingest channel.
    pub fn add_channel(&self, channel: Arc<Channel>) {
        self.channels
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(channel.id.clone(), channel);
    }

    /// The server is stopping: ends every channel's broadcast and finishes its
    /// recording (see [`Channel::close`]).
    pub async fn close(&self) {
        let closing = self
            .channels()
            .into_iter()
            .map(|c| async move { c.close().await });
        futures_util::future::join_all(closing).await;
    }

    /// Whether `id` is on air; `None` if no such stream or channel exists (here, or on
    /// an edge's upstream as far as it has seen).
    pub fn stream_state(&self, id: &str) -> Option<StreamState> {
        if let Some(c) = self.channel(id) {
            return Some(c.state().stream_state());
        }
        if self.stream(id).is_some() {
            return Some(StreamState::Live);
        }
        let relayed = self.relayed.read().unwrap_or_else(|e| e.into_inner());
        relayed.contains(id).then_some(StreamState::Offline)
    }

    /// An edge saw its upstream publish `id` (kept, up to [`MAX_RELAYED_IDS`]).
    pub fn remember_relayed(&self, id: &str) {
        let mut relayed = self.relayed.write().unwrap_or_else(|e| e.into_inner());
        if relayed.len() < MAX_RELAYED_IDS && !relayed.contains(id) {
            relayed.insert(id.to_owned());
        }
    }

    /// Ids of all streams and channels.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .streams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        ids.extend(self.channels().iter().map(|c| c.id.clone()));
        ids
    }

    /// Publishes `stream` under its id, replacing any stream of that id (an edge's
    /// relayed streams come and go; see `crate::edge`).
    pub fn add_stream(&self, stream: Arc<LiveStream>) {
        self.insert(stream);
    }

    /// Withdraws `stream`, if it is still the one published under its id.
    pub fn remove_stream(&self, stream: &Arc<LiveStream>) {
        let mut streams = self.streams.write().unwrap_or_else(|e| e.into_inner());
        if streams
            .get(&stream.id)
            .is_some_and(|s| Arc::ptr_eq(s, stream))
        {
            streams.remove(&stream.id);
        }
    }

    fn insert(&self, stream: Arc<LiveStream>) {
        self.streams
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(stream.id.clone(), stream);
    }

    /// Publishes `clip` as the live stream `id` and feeds it from a background task.
    ///
    /// The playlist window is filled at once from the clock (the loop is synthetic, so
    /// the past is known), which lets a restarted origin serve a full playlist at once.
    pub fn start_demo(
        &self,
        id: &str,
        clip: Arc<Clip>,
        window: usize,
        chunk_ms: u32,
    ) -> Result<tokio::task::JoinHandle<()>, cmaf::MuxError> {
        let tracks: Vec<_> = clip.tracks.iter().map(|t| t.track.clone()).collect();
        let init = cmaf::init_segment(&tracks)?;
        let stream = Arc::new(LiveStream::new(id, init, window));
        self.insert(stream.clone());
        Ok(loop_clip(clip, stream, window, chunk_ms))
    }
}

/// Feeds `stream` with `clip` looped on the wall clock, from a background task: the
/// playlist window is filled at once (the loop is synthetic, so the past is known).
/// The demo stream and its ladder renditions run on this one clock, so their
/// segments share numbers and times.
pub(crate) fn loop_clip(
    clip: Arc<Clip>,
    stream: Arc<LiveStream>,
    window: usize,
    chunk_ms: u32,
) -> tokio::task::JoinHandle<()> {
    let now_secs = (now_ns() / 1_000_000_000) as u64;
    let mut demo =
        DemoLoop::starting_at(clip, now_secs.saturating_sub(window as u64 + 1), chunk_ms);
    tokio::spawn(async move {
        loop {
            loop {
                match demo.next_chunk(now_ns()) {
                    Ok(Some(chunk)) => stream.push_chunk(chunk),
                    Ok(None) => break,
                    Err(e) => {
                        tracing::error!(stream = %stream.id, "demo packaging failed: {e}");
                        return;
                    }
                }
            }
            let wait = demo.next_ready_ns().saturating_sub(now_ns());
            tokio::time::sleep(Duration::from_nanos(wait.min(1_000_000_000) as u64)).await;
        }
    })
}

/// Whether `id` may name a stream, and so its chat room: 1 to 64 of a-z, 0-9, `-`, `_`.
///
/// Ingest (`--stream-key KEY=ID`) and the hub (room names from URLs) both ask this, so
/// every stream can have its room and no room name is one a stream could never have.
/// Stream ids become URL segments, directory names (replays) and database keys: no
/// dots (no `..`), no capitals (no `Demo` beside `demo`).
pub fn valid_stream_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Unix time in nanoseconds.
pub fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

#[cfg(test)]
mod tests {
    use super::valid_stream_id;

    #[test]
    fn stream_ids_are_short_lowercase_words() {
        for ok in ["demo", "stream_2-main", "0", &"x".repeat(64)] {
            assert!(valid_stream_id(ok), "{ok:?}");
        }
        for bad in ["", "a/b", "a b", "é", &"x".repeat(65)] {
            assert!(!valid_stream_id(bad), "{bad:?}");
        }
    }
}
