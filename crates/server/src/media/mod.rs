//! The live origin: streams, their sources and their packaging.
//!
//! - [`cmaf`] muxes samples into CMAF init segments and fragments.
//! - [`clip`] reads the committed demo clip.
//! - [`demo`] loops the clip as a live source on the wall clock.
//! - [`live`] holds a stream's segments and low-latency chunk feed.
//!
//! [`Origin`] owns the set of streams and the tasks that feed them.

pub mod clip;
pub mod cmaf;
pub mod demo;
pub mod live;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clip::Clip;
use demo::DemoLoop;
use live::LiveStream;

/// The set of live streams this server publishes.
#[derive(Debug, Default)]
pub struct Origin {
    streams: RwLock<HashMap<String, Arc<LiveStream>>>,
}

impl Origin {
    /// The stream called `id`, if it exists.
    pub fn stream(&self, id: &str) -> Option<Arc<LiveStream>> {
        self.streams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// Ids of all streams.
    pub fn ids(&self) -> Vec<String> {
        self.streams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
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
        let now_secs = (now_ns() / 1_000_000_000) as u64;
        let mut demo =
            DemoLoop::starting_at(clip, now_secs.saturating_sub(window as u64 + 1), chunk_ms);
        Ok(tokio::spawn(async move {
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
        }))
    }
}

/// Unix time in nanoseconds.
pub fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}
