//! The HLS source: loads a live playlist and its fMP4 segments, in order, and reports
//! the live edge. Plays any standard live HLS stream with fMP4 segments, not only ours.
//!
//! Recovery lives here: a failed playlist load is retried with backoff (reporting
//! `Down` so the viewer sees "reconnecting"); a segment answering 404 is skipped (the
//! engine jumps the hole); a segment that fails otherwise is retried, then skipped; a
//! cursor that fell out of the window or far behind the edge restarts at the live edge.
//!
//! Segments are loaded only while the browser wants media (a ManagedMediaSource's
//! `endstreaming` pauses the loader until `startstreaming`; the cursor check above
//! brings it back to live if it paused for long).
//!
//! A playlist that is already complete on first load (`EXT-X-ENDLIST`: a replay) is
//! played as VOD: from its first segment, loading at most `replay::VOD_AHEAD` seconds
//! ahead of the playhead, and moving to wherever the viewer seeks (the decisions are
//! `replay.rs`'s).
//!
//! After a live broadcast ends the loader keeps polling the playlist, with backoff,
//! and reports `NewBroadcast` once it is live again: a page left open plays the
//! stream's next broadcast without a reload.

use super::events::{Event, SourceEvent, Tx};
use super::fetch::{self, AbortSlot, FetchError};
use super::latency::LatencyPolicy;
use super::mp4::{self, InitInfo};
use super::playlist::{self, MediaPlaylist, Playlist};
use super::replay::{self, AfterInit, InitOutcome, ReplayPlan, Step};
use crate::net::backoff::Backoff;
use std::cell::Cell;
use std::rc::Rc;

const PLAYLIST_TIMEOUT_MS: u32 = 5_000;
const SEGMENT_TIMEOUT_MS: u32 = 10_000;
const SEGMENT_RETRIES: u32 = 2;

/// What a VOD loader shares with the engine: the playhead (relative to the replay's
/// start), and a position the viewer jumped to outside the buffer (NaN: none).
pub(crate) struct Playhead {
    pub(crate) position: Rc<Cell<f64>>,
    pub(crate) seek_to: Rc<Cell<f64>>,
}

/// A running HLS loader; dropping it stops the loop and aborts the request in flight.
pub(crate) struct HlsSource {
    alive: Rc<Cell<bool>>,
    slot: AbortSlot,
}

impl Drop for HlsSource {
    fn drop(&mut self) {
        self.alive.set(false);
        if let Some(c) = self.slot.borrow_mut().take() {
            c.abort();
        }
    }
}

/// Starts loading `url`; events are tagged with `generation`. `wanted` says whether the
/// browser wants media now (see `Mse::wanted`); `playhead` is shared with a replay.
pub(crate) fn start(
    url: String,
    generation: u32,
    tx: Tx,
    wanted: Rc<Cell<bool>>,
    playhead: Playhead,
) -> HlsSource {
    let alive = Rc::new(Cell::new(true));
    let slot = AbortSlot::default();
    let task = Loader {
        url,
        generation,
        tx,
        alive: alive.clone(),
        wanted,
        slot: slot.clone(),
        init_uri: None,
        init: None,
        cursor: None,
        backoff: Backoff::new(500.0, 8_000.0),
        down: false,
        ended: false,
        playhead,
    };
    wasm_bindgen_futures::spawn_local(task.run());
    HlsSource { alive, slot }
}

struct Loader {
    url: String,
    generation: u32,
    tx: Tx,
    alive: Rc<Cell<bool>>,
    /// The browser wants media (false after a ManagedMediaSource's `endstreaming`).
    wanted: Rc<Cell<bool>>,
    slot: AbortSlot,
    /// URL of the init segment last sent.
    init_uri: Option<String>,
    init: Option<InitInfo>,
    /// Next media sequence number to load.
    cursor: Option<u64>,
    backoff: Backoff,
    /// `Down` was reported and `Up` not yet.
    down: bool,
    /// The broadcast ended: the playlist is polled for the next one.
    ended: bool,
    playhead: Playhead,
}

/// A timer and the engine's channel rather than gloo's `TimeoutFuture`, which brings a
/// futures oneshot channel into the download for this alone. Dropping the future
/// clears the timer.
async fn sleep_ms(ms: f64) {
    let (tx, mut rx) = super::channel::unbounded::<()>();
    let _timer = gloo_timers::callback::Timeout::new(ms.max(0.0) as u32, move || {
        let _ = tx.unbounded_send(());
    });
    rx.next().await;
}

impl Loader {
    fn send(&self, e: SourceEvent) {
        let _ = self.tx.unbounded_send(Event::Source(self.generation, e));
    }

    async fn fail(&mut self, why: String) {
        if !self.down {
            self.down = true;
            self.send(SourceEvent::Warning(why));
            self.send(SourceEvent::Down);
        }
        sleep_ms(self.backoff.next_delay(js_sys::Math::random())).await;
    }

    async fn run(mut self) {
        while self.alive.get() {
            if !self.wanted.get() && !self.ended {
                // Enough media buffered: neither playlist nor segments until asked again.
                sleep_ms(250.0).await;
                continue;
            }
            let text = match fetch::text(&self.url, PLAYLIST_TIMEOUT_MS, &self.slot).await {
                Ok(t) => t,
                Err(FetchError::Aborted) => return,
                // No playlist (yet): a stream that has not started, or is between
                // broadcasts. Keep asking; the viewer sees "offline", not an error.
                Err(FetchError::Status(404)) => {
                    if !self.down && !self.ended {
                        self.down = true;
                        self.send(SourceEvent::Offline);
                    }
                    sleep_ms(self.backoff.next_delay(js_sys::Math::random())).await;
                    continue;
                }
                Err(e) => {
                    self.fail(format!("playlist {}: {e}", self.url)).await;
                    continue;
                }
            };
            if !self.alive.get() {
                return;
            }
            let media = match playlist::parse(&text) {
                Ok(Playlist::Media(m)) => m,
                Ok(Playlist::Multivariant(variants)) => {
                    let chosen = variants
                        .iter()
                        .filter(|v| v.codecs.as_deref().is_none_or(codecs_supported))
                        .min_by_key(|v| v.bandwidth)
                        .or(variants.first());
                    match chosen.and_then(|v| fetch::resolve(&v.uri, &self.url)) {
                        Some(u) => self.url = u,
                        None => {
                            self.send(SourceEvent::Fatal(
                                "no playable variant in the playlist".into(),
                            ));
                            return;
                        }
                    }
                    continue;
                }
                Err(e) => {
                    self.fail(format!("playlist {}: {e}", self.url)).await;
                    continue;
                }
            };
            if self.ended {
                if media.ended {
                    // Still over: ask again later.
                    sleep_ms(self.backoff.next_delay(js_sys::Math::random())).await;
                    continue;
                }
                self.send(SourceEvent::NewBroadcast);
                return;
            }
            self.backoff.reset();
            if self.down {
                self.down = false;
                self.send(SourceEvent::Up);
            }
            if media.ended && self.cursor.is_none() {
                return self.run_vod(media).await;
            }
            let policy = LatencyPolicy::hls(media.target_duration);
            self.send(SourceEvent::Policy(policy));

            let loaded_any = self.load_segments(&media, &policy).await;
            if !self.alive.get() {
                return;
            }
            if media.ended && self.cursor.is_some_and(|c| c >= media.end_msn()) {
                self.send(SourceEvent::Ended);
                self.ended = true;
                self.backoff.reset();
            }
            // Reload once per target duration, sooner when nothing new came (RFC 8216 6.3.4).
            let wait = if loaded_any { 1.0 } else { 0.5 } * media.target_duration * 1000.0;
            sleep_ms(wait.clamp(100.0, 10_000.0)).await;
        }
    }

    /// Loads every segment from the cursor to the end of `media`. True if any loaded.
    async fn load_segments(&mut self, media: &MediaPlaylist, policy: &LatencyPolicy) -> bool {
        let live_start = media.live_start(policy.target);
        let restart = match self.cursor {
            None => true,
            Some(c) => {
                c < media.media_sequence
                    || media.duration_from(c) > policy.target + policy.jump_after
            }
        };
        if restart {
            self.cursor = live_start;
        }
        let mut loaded = false;
        while let Some(msn) = self.cursor {
            let Some(seg) = media.get(msn) else { break };
            if !self.alive.get() || !self.wanted.get() {
                return loaded;
            }
            let seg = seg.clone();
            self.cursor = Some(msn + 1);
            if seg.gap {
                continue;
            }
            if let Some(map) = &seg.map {
                match replay::after_init(self.load_init(map).await) {
                    AfterInit::Proceed => {}
                    AfterInit::Skip => continue,
                    AfterInit::Retry | AfterInit::Stop => return loaded,
                }
            }
            let Some(url) = fetch::resolve(&seg.uri, &self.url) else {
                continue;
            };
            let mut attempt = 0;
            let data = loop {
                match fetch::bytes(&url, SEGMENT_TIMEOUT_MS, &self.slot).await {
                    Ok(d) => break Some(d),
                    Err(FetchError::Aborted) => return loaded,
                    Err(FetchError::Status(404 | 410)) => {
                        self.send(SourceEvent::Warning(format!(
                            "segment {msn} is missing (404); skipped"
                        )));
                        break None;
                    }
                    Err(e) if attempt < SEGMENT_RETRIES => {
                        attempt += 1;
                        self.send(SourceEvent::Warning(format!(
                            "segment {msn}: {e}; retrying"
                        )));
                        sleep_ms(300.0 * f64::from(attempt)).await;
                    }
                    Err(e) => {
                        self.send(SourceEvent::Warning(format!("segment {msn}: {e}; skipped")));
                        break None;
                    }
                }
            };
            let Some(data) = data else { continue };
            if !self.alive.get() {
                return loaded;
            }
            let head_len = data.length().min(64 * 1024);
            let start = self
                .init
                .as_ref()
                .and_then(|i| mp4::fragment_start(&data.subarray(0, head_len).to_vec(), i));
            self.send(SourceEvent::Media(data));
            if let Some(start) = start {
                // Media time of the end of the playlist, anchored on this segment.
                self.send(SourceEvent::Edge(start + media.duration_from(msn)));
            }
            loaded = true;
        }
        loaded
    }

    /// Plays a complete playlist as a replay.
    async fn run_vod(mut self, media: MediaPlaylist) {
        let segments: Vec<_> = media.segments.iter().filter(|s| !s.gap).cloned().collect();
        let mut plan = ReplayPlan::new(segments.iter().map(|s| s.duration));
        let mut announced = false;
        while self.alive.get() {
            let jump = self.playhead.seek_to.replace(f64::NAN);
            if !jump.is_nan() {
                plan.seek(jump);
            }
            let i = match plan.step(announced, self.playhead.position.get(), self.wanted.get()) {
                Step::Load(i) => i,
                Step::Complete if !announced => {
                    self.send(SourceEvent::Fatal(
                        "the replay has no playable segment".into(),
                    ));
                    return;
                }
                Step::Complete => {
                    self.send(SourceEvent::VodComplete);
                    continue;
                }
                Step::Wait => {
                    sleep_ms(250.0).await;
                    continue;
                }
            };
            let seg = &segments[i];
            if let Some(map) = &seg.map {
                match replay::after_init(self.load_init(map).await) {
                    AfterInit::Proceed => {}
                    AfterInit::Skip => {
                        plan.advance();
                        continue;
                    }
                    AfterInit::Retry => continue,
                    AfterInit::Stop => return,
                }
            }
            let Some(url) = fetch::resolve(&seg.uri, &self.url) else {
                plan.advance();
                continue;
            };
            let data = match fetch::bytes(&url, SEGMENT_TIMEOUT_MS, &self.slot).await {
                Ok(d) => d,
                Err(FetchError::Aborted) => return,
                Err(FetchError::Status(404 | 410)) => {
                    self.send(SourceEvent::Warning(format!("{url} is missing; skipped")));
                    plan.advance();
                    continue;
                }
                Err(e) => {
                    self.fail(format!("{url}: {e}")).await;
                    continue;
                }
            };
            if self.down {
                self.down = false;
                self.send(SourceEvent::Up);
            }
            if !announced {
                let head = data.subarray(0, data.length().min(64 * 1024)).to_vec();
                let Some(start) = self
                    .init
                    .as_ref()
                    .and_then(|i| mp4::fragment_start(&head, i))
                else {
                    self.send(SourceEvent::Fatal(
                        "the replay's first segment is unreadable".into(),
                    ));
                    return;
                };
                announced = true;
                self.send(SourceEvent::Vod {
                    start,
                    duration: plan.total(),
                });
            }
            self.send(SourceEvent::Media(data));
            plan.advance();
        }
    }

    /// Loads the init segment at `uri` if it is not the one already sent.
    async fn load_init(&mut self, uri: &str) -> InitOutcome {
        let Some(url) = fetch::resolve(uri, &self.url) else {
            self.send(SourceEvent::Warning(format!(
                "init segment URI {uri} is invalid"
            )));
            return InitOutcome::Unresolvable;
        };
        if self.init_uri.as_deref() == Some(url.as_str()) {
            return InitOutcome::Ready;
        }
        match fetch::bytes(&url, SEGMENT_TIMEOUT_MS, &self.slot).await {
            Ok(data) => {
                self.init = mp4::parse_init(&data.to_vec());
                self.init_uri = Some(url);
                self.send(SourceEvent::Init(data));
                InitOutcome::Ready
            }
            Err(FetchError::Aborted) => InitOutcome::Aborted,
            Err(e) => {
                self.fail(format!("init segment {url}: {e}")).await;
                InitOutcome::Failed
            }
        }
    }
}

fn codecs_supported(codecs: &str) -> bool {
    super::mse::type_supported(&format!("video/mp4; codecs=\"{codecs}\""))
}
