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
//! `replay.rs`'s). Its demuxed audio, if any, is loaded beside each video segment: the
//! audio segments covering the same seconds, both playlists starting together.
//!
//! After a live broadcast ends the loader keeps polling the playlist, with backoff,
//! and reports `NewBroadcast` once it is live again: a page left open plays the
//! stream's next broadcast without a reload.
//!
//! # Adaptive bitrate
//! A multivariant playlist's variants the browser can decode become the ladder of an
//! [`Abr`] the loader owns (the decisions are `abr.rs`'s): it picks the first variant,
//! is asked before each segment which one to load it from, is given each segment's
//! download (time to the response's headers apart from the whole) and watches each
//! download as it comes (every [`PROGRESS_MS`] or chunk), abandoning it for the same
//! segment from a lower variant when it would arrive too late. What it needs from the
//! rest of the player comes through [`Conditions`], which playback refreshes every
//! tick: the seconds buffered ahead, the `<video>`'s size and `devicePixelRatio`, the
//! viewer's choice. A switch happens at a segment boundary: the new variant's media
//! playlist is loaded and the loader goes on at the same media sequence number (ffmpeg's
//! `-var_stream_map` and CMAF ladders number segments alike), or at the live start when
//! that number is not in it; its init segment follows (`mse` changes the SourceBuffer's
//! type when the codecs differ).
//!
//! # LL-HLS parts
//! A live media playlist that lists parts (`EXT-X-PART-INF`, `EXT-X-PART`) of fMP4
//! segments and whose server blocks reloads (`CAN-BLOCK-RELOAD=YES`) is followed part
//! by part, `PART-HOLD-BACK` behind the newest (`LatencyPolicy::ll_hls`): the loader
//! starts on the newest independent part that leaves that much (`part_start`), loads
//! each listed part, and asks for the next one with a blocking reload
//! (`?_HLS_msn=M&_HLS_part=P`, RFC 8216bis 6.2.5.2), which the server answers the moment
//! that part exists; behind a CDN, every viewer's request for the same next part is
//! the same URL, answered once. That is two requests a part (about ten a second with
//! 100 ms parts), each answered as soon as the part is cut. Complete segments the
//! cursor has none of are loaded whole (after a pause, or at the start when too few
//! parts are listed). This is the path whenever the widget has no push: a stream from
//! another LL-HLS server, or lucarne's own through a CDN that does not carry
//! WebSockets. A ladder is loaded by whole segments: a part is a tenth of a segment,
//! mostly smaller than a TCP window (a 180p part is 2.5 KB), so its download measures
//! the round trip, not the link, and the ABR would never see room to go up (seen: a
//! ladder on parts stayed at 180p on an 8 Mbit/s link). Behind a CDN, a ladder plays
//! three segments from live; with the push, its rungs switch at push latency.
//!
//! # Demuxed audio
//! A variant naming an `AUDIO` group whose chosen rendition has its own playlist plays
//! it through a second SourceBuffer, followed by `audio` (see there); this loader
//! loads its init segment with the video's and sends the video as track 0.
//!
//! # MPEG-TS
//! A segment without `EXT-X-MAP` whose URI ends in `.ts` or whose bytes start like
//! MPEG-TS (`tracks::ts_uri`, `tracks::ts_bytes`) goes through the TS module (`ts`),
//! imported at the first such segment only. Its video and audio come out as two fMP4
//! tracks, sent as `Tracks` (once, before any media) and `Track` events: `mse` gives
//! each its SourceBuffer. The first segment and each one after `EXT-X-DISCONTINUITY`
//! start a new timeline where the last segment ended. ID3 tags go out as `Metadata`.
//! A module that cannot be loaded, or a stream none of whose first segments it can
//! read, is fatal with a sentence saying so; later unreadable segments are skipped.

use super::abr::{Abandon, Abr, Choice, Progress, Rendition, Sample};
use super::events::{Event, SourceEvent, Tx};
use super::fetch::{self, sleep_ms, AbortSlot, Download, FetchError};
use super::latency::LatencyPolicy;
use super::mp4::{self, InitInfo};
use super::playlist::{self, Key, MediaPlaylist, Part, PartStep, Playlist, PlaylistError, Segment};
use super::replay::{self, AfterInit, AudioPlan, InitOutcome, ReplayPlan, Step};
use super::tracks;
use super::ts::Transmuxer;
use super::unplayable::{self, Failure, Reason};
use super::{audio, decrypt, mse};
use crate::net::backoff::Backoff;
use js_sys::Uint8Array;
use std::cell::Cell;
use std::rc::Rc;

const PLAYLIST_TIMEOUT_MS: u32 = 5_000;
const SEGMENT_TIMEOUT_MS: u32 = 10_000;
const SEGMENT_RETRIES: u32 = 2;
/// How often a segment download is looked at for the abandon rule, at most
/// (milliseconds; also after every chunk).
const PROGRESS_MS: f64 = 100.0;

/// What a VOD loader shares with the engine: the playhead (relative to the replay's
/// start), and a position the viewer jumped to outside the buffer (NaN: none); and
/// what the ABR needs to know, for a live one.
pub(crate) struct Playhead {
    pub(crate) position: Rc<Cell<f64>>,
    pub(crate) seek_to: Rc<Cell<f64>>,
    pub(crate) conditions: Rc<Cell<Conditions>>,
}

/// What the ABR needs from the rest of the player, refreshed by playback every tick
/// (the choice when the viewer makes it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Conditions {
    /// Seconds buffered ahead of the playhead; infinite before playback starts
    /// (nothing drains yet).
    pub(crate) ahead_s: f64,
    /// The `<video>`'s box, CSS pixels, and `devicePixelRatio`.
    pub(crate) width: f64,
    pub(crate) height: f64,
    pub(crate) dpr: f64,
    /// The viewer's pick in the quality menu.
    pub(crate) choice: Choice,
    /// The page's `data-max-height`.
    pub(crate) max_height: Option<u32>,
    /// The last loader's throughput estimate, bits/s (0: none), so a rebuilt player
    /// starts from what the link was seen to carry.
    pub(crate) estimate_bps: f64,
    /// Counts playback's updates of `ahead_s`: media sent since the last one is not in
    /// it yet (see [`Loader::ahead`]).
    pub(crate) updates: u32,
}

impl Conditions {
    /// What the quality menu offers of rungs of `heights`: those not above the page's
    /// maximum, and the viewer's pick (0: Auto).
    pub(crate) fn quality_menu(&self, heights: impl Iterator<Item = u32>) -> SourceEvent {
        let max = self.max_height.unwrap_or(u32::MAX);
        let chosen = match self.choice {
            Choice::Auto => 0,
            Choice::Height(h) => h,
        };
        SourceEvent::Heights(heights.filter(|&h| h <= max).collect(), chosen)
    }
}

impl Default for Conditions {
    fn default() -> Self {
        Conditions {
            ahead_s: f64::INFINITY,
            width: 0.0,
            height: 0.0,
            dpr: 1.0,
            choice: Choice::Auto,
            max_height: None,
            estimate_bps: 0.0,
            updates: 0,
        }
    }
}

/// A running HLS loader; dropping it stops the loop and aborts the request in flight.
pub(crate) struct HlsSource {
    alive: Rc<Cell<bool>>,
    slot: AbortSlot,
    audio_slot: AbortSlot,
}

impl Drop for HlsSource {
    fn drop(&mut self) {
        self.alive.set(false);
        for slot in [&self.slot, &self.audio_slot] {
            if let Some(c) = slot.borrow_mut().take() {
                c.abort();
            }
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
    let audio_slot = AbortSlot::default();
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
        part: 0,
        backoff: Backoff::new(500.0, 8_000.0),
        down: false,
        ended: false,
        playhead,
        variants: Vec::new(),
        abr: None,
        current: 0,
        switched: false,
        anchor: 0.0,
        unseen_s: 0.0,
        unseen_at: 0,
        keys: decrypt::Keys::default(),
        ts: TsState::default(),
        audio_url: None,
        audio_mime: None,
        audio_slot: audio_slot.clone(),
        replay: false,
        vod_audio: None,
    };
    wasm_bindgen_futures::spawn_local(task.run());
    HlsSource {
        alive,
        slot,
        audio_slot,
    }
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
    /// Following LL-HLS parts: the next part of segment `cursor` to load (0: none of
    /// it is loaded yet).
    part: u32,
    backoff: Backoff,
    /// `Down` was reported and `Up` not yet.
    down: bool,
    /// The broadcast ended: the playlist is polled for the next one.
    ended: bool,
    playhead: Playhead,
    /// The media playlist URLs of a multivariant playlist's decodable variants, in its
    /// order (the ABR's answers index them); empty for a media playlist given directly.
    variants: Vec<String>,
    /// Chooses among `variants` (`None` with fewer than two).
    abr: Option<Abr>,
    /// Index in `variants` of the one loading (`url` is its media playlist).
    current: usize,
    /// `url` changed to another variant: load its playlist now, not after the wait.
    switched: bool,
    /// `Date.now()` when the last regular playlist load began (not a switch's): what
    /// the next reload is timed from.
    anchor: f64,
    /// Media seconds sent since playback's update number `unseen_at` (all of them
    /// before playback starts): buffered, or about to be, but not in `ahead_s` yet.
    unseen_s: f64,
    unseen_at: u32,
    /// AES-128 keys already fetched.
    keys: decrypt::Keys,
    /// The MPEG-TS path, for a stream whose segments are TS.
    ts: TsState,
    /// The demuxed audio rendition's media playlist, when the variants name one.
    audio_url: Option<String>,
    /// Its type, once its init segment went out with the video's: the audio follower
    /// runs and the video is sent as track 0.
    audio_mime: Option<String>,
    /// The audio follower's requests.
    audio_slot: AbortSlot,
    /// Playing a replay (`run_vod`): demuxed audio goes by [`VodAudio`], not the live
    /// follower.
    replay: bool,
    /// A replay's demuxed audio, loaded beside each video segment (no follower runs).
    vod_audio: Option<VodAudio>,
}

/// A replay's demuxed audio rendition.
struct VodAudio {
    plan: AudioPlan,
    /// Each segment's URL; `None` for a gap.
    urls: Vec<Option<String>>,
}

/// How many unreadable TS segments, none read before them, make the stream fatal.
const TS_UNREADABLE: u32 = 3;

/// What the loader keeps for an MPEG-TS stream.
#[derive(Default)]
struct TsState {
    /// The module, once imported.
    transmuxer: Option<Transmuxer>,
    /// The tracks declared to `mse`, in order: `false` video, `true` audio.
    kinds: Vec<bool>,
    /// Their types as last declared.
    mimes: Vec<String>,
    /// End of the media transmuxed last (where a discontinuity's timeline starts).
    end: f64,
    /// Some segment was read.
    read_any: bool,
    /// Unreadable segments in a row.
    unreadable: u32,
}

/// What came of a segment download.
enum Got {
    Data(Uint8Array),
    /// The ABR gave up on it: load the same segment from this variant.
    Abandoned(usize),
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
            if !self.switched {
                self.anchor = js_sys::Date::now();
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
                    if let FetchError::Network(_) = e {
                        let reachable = fetch::reachable(&self.url).await;
                        self.cannot(Failure::Network { reachable });
                    }
                    if let FetchError::Status(403) = e {
                        self.cannot(Failure::Forbidden);
                    }
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
                    if !variants.is_empty() && !variants.iter().any(decodable) {
                        let list = variants[0].codecs.as_deref().unwrap_or_default();
                        let r = unplayable::codecs(list.split(','), mse::type_supported);
                        return self.send(SourceEvent::Unplayable(r));
                    }
                    self.audio_url =
                        variants
                            .iter()
                            .find_map(|v| v.audio.as_deref())
                            .and_then(|group| {
                                let renditions = playlist::audio_renditions(&text);
                                let langs = audio::viewer_languages();
                                let r = playlist::choose_audio(&renditions, group, &langs)?;
                                fetch::resolve(r.uri.as_deref()?, &self.url)
                            });
                    if !self.ladder(variants) {
                        self.send(SourceEvent::Fatal(
                            "no playable variant in the playlist".into(),
                        ));
                        return;
                    }
                    continue;
                }
                Err(e) => {
                    if e == PlaylistError::NotM3u8 {
                        self.cannot(Failure::NotM3u8);
                    }
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
            // One rendition only: see the module doc.
            let parts = media.low_latency() && self.audio_url.is_none() && self.abr.is_none();
            let policy = if parts {
                LatencyPolicy::ll_hls(media.part_hold_back(), media.part_target)
            } else {
                self.part = 0;
                LatencyPolicy::hls(media.target_duration)
            };
            self.send(SourceEvent::Policy(policy));
            if parts {
                self.place_for_parts(&media, &policy);
            }
            let loaded_any = if self.part == 0 {
                self.load_segments(&media, &policy).await
            } else {
                // Inside a segment: its remaining parts come next.
                self.switched = false;
                false
            };
            if !self.alive.get() {
                return;
            }
            if parts && !self.switched && self.follow_parts(&media).await {
                continue;
            }
            if media.ended && self.cursor.is_some_and(|c| c >= media.end_msn()) {
                self.send(SourceEvent::Ended);
                self.ended = true;
                self.backoff.reset();
            }
            if self.switched {
                continue;
            }
            // Reload once per target duration, sooner when nothing new came, counted from
            // when the last regular load began (RFC 8216 6.3.4). Counted from the end of the
            // segments' downloads, the reloads fell behind the stream by a download each
            // time; moved by a switch's extra load, they would see each new segment later
            // for the rest of the session, with that much less buffered at each decision.
            let wait = if loaded_any { 1.0 } else { 0.5 } * media.target_duration * 1000.0;
            let wait = wait - (js_sys::Date::now() - self.anchor);
            sleep_ms(wait.clamp(100.0, 10_000.0)).await;
        }
    }

    /// Takes a multivariant playlist's `variants`: those the browser can decode (all of
    /// them if it can decode none: the error will say why) become the ladder, and
    /// `url` the first one to load. False if none is usable.
    fn ladder(&mut self, variants: Vec<playlist::Variant>) -> bool {
        let pick: Vec<_> = if variants.iter().any(decodable) {
            variants.iter().filter(|v| decodable(v)).collect()
        } else {
            variants.iter().collect()
        };
        let mut ladder = Vec::new();
        self.variants.clear();
        for v in pick {
            if let Some(u) = fetch::resolve(&v.uri, &self.url) {
                self.variants.push(u);
                ladder.push(Rendition {
                    bandwidth: v.bandwidth,
                    width: v.width,
                    height: v.height,
                });
            }
        }
        let c = self.playhead.conditions.get();
        self.send(c.quality_menu(ladder.iter().map(|r| r.height)));
        let mut abr = Abr::new(ladder, c.estimate_bps);
        self.current = self.decide(&mut abr, 0.0);
        self.abr = (self.variants.len() > 1).then_some(abr);
        match self.variants.get(self.current) {
            Some(u) => {
                self.url = u.clone();
                true
            }
            None => false,
        }
    }

    /// The ABR's answer for the next `duration_s` of media, under the conditions now.
    fn decide(&self, abr: &mut Abr, duration_s: f64) -> usize {
        let c = self.playhead.conditions.get();
        abr.set_size(c.width, c.height, c.dpr);
        abr.set_max_height(c.max_height);
        abr.set_choice(c.choice);
        abr.next(js_sys::Date::now(), self.ahead(), duration_s)
    }

    /// Seconds buffered ahead of the playhead, counting the media sent since playback
    /// last said. Playback says every tick, and a decision follows the segment before
    /// it at once: without this, the second segment of a start was decided on an
    /// infinite buffer (playback had not started when last asked), went to the top
    /// rendition with two seconds buffered, and the next decision fell back to the
    /// bottom and held there (measured: 180, 540, then 180 for 8 s on a 4 Mbit/s link).
    fn ahead(&self) -> f64 {
        let c = self.playhead.conditions.get();
        if c.ahead_s.is_infinite() {
            // Before playback: nothing drains, and what was sent is what is buffered.
            if self.unseen_s > 0.0 {
                self.unseen_s
            } else {
                c.ahead_s
            }
        } else if c.updates == self.unseen_at {
            c.ahead_s + self.unseen_s
        } else {
            c.ahead_s
        }
    }

    /// `duration_s` of media was just sent.
    fn sent(&mut self, duration_s: f64) {
        let c = self.playhead.conditions.get();
        if c.ahead_s.is_finite() && c.updates != self.unseen_at {
            self.unseen_at = c.updates;
            self.unseen_s = 0.0;
        }
        self.unseen_s += duration_s;
    }

    /// Goes on from segment `msn` of variant `i`: its media playlist is loaded next.
    fn switch(&mut self, i: usize, msn: u64) {
        if let Some(u) = self.variants.get(i) {
            self.url = u.clone();
            self.current = i;
            self.cursor = Some(msn);
            self.part = 0;
            self.switched = true;
        }
    }

    /// Loads a segment or part, feeding the ABR its progress (when it may be
    /// abandoned) and its timing.
    async fn download(
        &mut self,
        url: &str,
        duration_s: f64,
        abandonable: bool,
    ) -> Result<Got, FetchError> {
        let mut d = Download::start(url, SEGMENT_TIMEOUT_MS, &self.slot)?;
        loop {
            if let Some(data) = d.step(PROGRESS_MS).await? {
                if let Some(abr) = &mut self.abr {
                    abr.loaded(&Sample {
                        bytes: d.loaded,
                        ttfb_ms: d.ttfb_ms.unwrap_or(0.0),
                        total_ms: d.elapsed_ms(),
                        media_s: duration_s,
                        held: false,
                    });
                    let mut c = self.playhead.conditions.get();
                    c.estimate_bps = abr.estimate_bps();
                    self.playhead.conditions.set(c);
                }
                return Ok(Got::Data(data));
            }
            let ahead_s = self.ahead();
            let Some(abr) = self.abr.as_mut().filter(|_| abandonable) else {
                continue;
            };
            let p = Progress {
                rendition: self.current,
                loaded: d.loaded,
                expected: d.expected,
                elapsed_ms: d.elapsed_ms(),
                ttfb_ms: d.ttfb_ms,
                duration_s,
                ahead_s,
            };
            if let Some(Abandon { to }) = abr.progress(js_sys::Date::now(), &p) {
                // Dropping `d` aborts the request.
                return Ok(Got::Abandoned(to));
            }
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
                    // Just switched to a variant numbered otherwise.
                    || (self.switched && c > media.end_msn() + 1)
            }
        };
        self.switched = false;
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
            if let Some(mut abr) = self.abr.take() {
                let i = self.decide(&mut abr, seg.duration);
                self.abr = Some(abr);
                if i != self.current {
                    self.switch(i, msn);
                    return loaded;
                }
            }
            self.cursor = Some(msn + 1);
            if seg.gap {
                continue;
            }
            if let Some(r) = cannot_decrypt(&seg) {
                self.send(SourceEvent::Unplayable(r));
                return loaded;
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
                let got = match self.download(&url, seg.duration, true).await {
                    Ok(Got::Data(d)) => self.decrypt(&seg, d).await.map(Got::Data),
                    other => other,
                };
                match got {
                    Ok(Got::Data(d)) => break Some(d),
                    Ok(Got::Abandoned(to)) => {
                        self.switch(to, msn);
                        return loaded;
                    }
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
            if seg.map.is_none()
                && (tracks::ts_uri(&seg.uri)
                    || tracks::ts_bytes(&data.subarray(0, 189.min(data.length())).to_vec()))
            {
                match self.transmux(&data, &seg, media).await {
                    Some(true) => {
                        self.sent(seg.duration);
                        loaded = true;
                    }
                    Some(false) => {}
                    None => return loaded,
                }
                continue;
            }
            self.deliver(data, seg.duration, media.duration_from(msn));
            loaded = true;
        }
        loaded
    }

    /// Where to follow parts from: the cursor while it is in the playlist and within
    /// the policy's reach of the edge, else the newest independent part that leaves
    /// the hold back (or, when none does, whatever `load_segments` picks).
    fn place_for_parts(&mut self, media: &MediaPlaylist, policy: &LatencyPolicy) {
        let within = self.cursor.is_some_and(|c| {
            media.part_step(c, self.part) != PartStep::Lost
                && media.duration_from(c) <= policy.target + policy.jump_after
        });
        if !within {
            self.part = 0;
            self.cursor = None;
            if let Some((msn, index)) = media.part_start(policy.target) {
                self.cursor = Some(msn);
                self.part = index;
            }
        }
    }

    /// Follows the live edge part by part from the cursor (see the module doc). True
    /// if any part loaded. Stops when a whole segment is the better way on, the cursor
    /// left the playlist, the browser wants no more media, or a request fails (the
    /// regular reload that follows reports it).
    async fn follow_parts(&mut self, first: &MediaPlaylist) -> bool {
        let mut latest: Option<MediaPlaylist> = None;
        let mut loaded = false;
        // Blocking reloads answered without the part asked for.
        let mut unheld = 0;
        while self.alive.get() && self.wanted.get() {
            let media = latest.as_ref().unwrap_or(first);
            let Some(msn) = self.cursor else { break };
            let part = match media.part_step(msn, self.part) {
                PartStep::Part(p) => p.clone(),
                PartStep::Next => {
                    self.cursor = Some(msn + 1);
                    self.part = 0;
                    continue;
                }
                PartStep::Segment | PartStep::Lost => break,
                PartStep::Wait => {
                    let wait_ms = (3000.0 * media.target_duration).clamp(0.0, 30_000.0) as u32;
                    let url = blocking_url(&self.url, msn, self.part);
                    let fresh =
                        match fetch::text(&url, PLAYLIST_TIMEOUT_MS + wait_ms, &self.slot).await {
                            Ok(text) => playlist::parse(&text),
                            Err(_) => break,
                        };
                    match fresh {
                        // Still without the part: the server (or a cache in front)
                        // did not hold the request. Twice is not chance: the regular
                        // reloads take over rather than ask again at once.
                        Ok(Playlist::Media(m)) if m.part_step(msn, self.part) == PartStep::Wait => {
                            unheld += 1;
                            if unheld >= 2 {
                                break;
                            }
                            latest = Some(m);
                        }
                        Ok(Playlist::Media(m)) if m.low_latency() => latest = Some(m),
                        // Ended, or no longer LL-HLS: the regular reload takes it.
                        _ => break,
                    }
                    continue;
                }
            };
            let map = media.segments.last().and_then(|s| s.map.clone());
            match self.load_part(media, &part, map).await {
                Some(got) => {
                    self.part += 1;
                    loaded |= got;
                }
                None => break,
            }
        }
        loaded
    }

    /// Loads part `p` of `media` (after init segment `map` when that is not the one
    /// sent) and sends it with the live edge it shows. `Some(false)`: missing, skipped;
    /// `None`: following parts should stop (the part is tried again later).
    async fn load_part(
        &mut self,
        media: &MediaPlaylist,
        p: &Part,
        map: Option<String>,
    ) -> Option<bool> {
        if let Some(map) = map {
            if replay::after_init(self.load_init(&map).await) != AfterInit::Proceed {
                return None;
            }
        }
        let url = fetch::resolve(&p.uri, &self.url)?;
        let data = match self.download(&url, p.duration, false).await {
            Ok(Got::Data(d)) => d,
            Err(FetchError::Status(404 | 410)) => {
                self.send(SourceEvent::Warning(format!(
                    "part {}.{} is missing (404); skipped",
                    p.msn, p.index
                )));
                return Some(false);
            }
            Ok(Got::Abandoned(_)) | Err(_) => return None,
        };
        if !self.alive.get() {
            return None;
        }
        let to_edge = p.duration + media.duration_after_part(p.msn, p.index);
        self.deliver(data, p.duration, to_edge);
        Some(true)
    }

    /// Sends fMP4 media of `duration_s` (a segment or a part) and the live edge: the
    /// end of the playlist, `to_edge_s` after the media's start (read from its `tfdt`).
    fn deliver(&mut self, data: Uint8Array, duration_s: f64, to_edge_s: f64) {
        let head_len = data.length().min(64 * 1024);
        let start = self
            .init
            .as_ref()
            .and_then(|i| mp4::fragment_start(&data.subarray(0, head_len).to_vec(), i));
        self.media(data);
        self.sent(duration_s);
        if let Some(start) = start {
            self.send(SourceEvent::Edge(start + to_edge_s));
        }
    }

    /// Sends media for the video (the only track, or track 0 beside demuxed audio).
    fn media(&self, data: Uint8Array) {
        if self.audio_mime.is_some() {
            self.send(SourceEvent::Track(0, data));
        } else {
            self.send(SourceEvent::Media(data));
        }
    }

    /// Sends video init segment `data` (of type `video`) beside the demuxed audio: the
    /// first time, the audio's init segment is loaded, both tracks are declared and the
    /// audio follower starts; after a variant switch, only the video track changes. A
    /// rendition that cannot be loaded or played leaves the video alone, with a warning.
    async fn demuxed(&mut self, video: String, data: Uint8Array) {
        if self.audio_mime.is_none() {
            match self.audio_init().await {
                Ok((mime, init, vod)) => {
                    self.send(SourceEvent::Tracks(vec![video, mime.clone()]));
                    self.send(SourceEvent::Track(0, data));
                    self.send(SourceEvent::Track(1, init));
                    self.audio_mime = Some(mime);
                    if vod.is_some() {
                        self.vod_audio = vod;
                    } else if let Some(url) = self.audio_url.clone() {
                        audio::follow(
                            url,
                            self.generation,
                            self.tx.clone(),
                            self.alive.clone(),
                            self.wanted.clone(),
                            self.audio_slot.clone(),
                        );
                    }
                }
                Err(why) => {
                    self.send(SourceEvent::Warning(format!(
                        "demuxed audio: {why}; playing the video without it"
                    )));
                    self.audio_url = None;
                    self.send(SourceEvent::Init(data));
                }
            }
            return;
        }
        let audio = self.audio_mime.clone().unwrap_or_default();
        self.send(SourceEvent::Tracks(vec![video, audio]));
        self.send(SourceEvent::Track(0, data));
    }

    /// The demuxed audio rendition's type and init segment, and in a replay its
    /// segments.
    async fn audio_init(&self) -> Result<(String, Uint8Array, Option<VodAudio>), String> {
        let url = self.audio_url.clone().unwrap_or_default();
        let text = fetch::text(&url, PLAYLIST_TIMEOUT_MS, &self.audio_slot)
            .await
            .map_err(|e| format!("playlist {url}: {e}"))?;
        let Ok(Playlist::Media(audio)) = playlist::parse(&text) else {
            return Err(format!("{url} is not a media playlist"));
        };
        let vod = self.replay.then(|| VodAudio {
            plan: AudioPlan::new(audio.segments.iter().map(|s| s.duration)),
            urls: (audio.segments.iter())
                .map(|s| fetch::resolve(&s.uri, &url).filter(|_| !s.gap))
                .collect(),
        });
        let map = audio
            .segments
            .into_iter()
            .find_map(|s| s.map)
            .and_then(|m| fetch::resolve(&m, &url))
            .ok_or_else(|| format!("{url} is not an fMP4 media playlist"))?;
        let init = fetch::bytes(&map, SEGMENT_TIMEOUT_MS, &self.audio_slot)
            .await
            .map_err(|e| format!("init segment {map}: {e}"))?;
        let info = mp4::parse_init(&init.to_vec())
            .filter(|i| !i.has_video)
            .ok_or_else(|| format!("{map} is not an audio init segment"))?;
        let mime = info.mime();
        if !mse::type_supported(&mime) {
            return Err(format!("this browser cannot play {mime}"));
        }
        Ok((mime, init, vod))
    }

    /// In a replay with demuxed audio, loads the audio for the replay's `from..to`
    /// seconds (the video segment just sent). An audio segment that cannot be loaded
    /// is skipped with a warning: the picture there waits for sound that never comes,
    /// and the stall recovery moves on.
    async fn vod_audio(&mut self, from: f64, to: f64) {
        let Some(audio) = &mut self.vod_audio else {
            return;
        };
        let urls: Vec<String> = (audio.plan.covering(from, to).into_iter())
            .filter_map(|k| audio.urls.get(k).cloned().flatten())
            .collect();
        for url in urls {
            match fetch::bytes(&url, SEGMENT_TIMEOUT_MS, &self.audio_slot).await {
                Ok(data) => self.send(SourceEvent::Track(1, data)),
                Err(FetchError::Aborted) => return,
                Err(e) => self.send(SourceEvent::Warning(format!("audio segment {url}: {e}"))),
            }
        }
    }

    /// Transmuxes TS segment `seg` and sends its tracks. `Some(false)`: skipped;
    /// `None`: the stream cannot go on (`Fatal` was sent) or the loader stopped.
    async fn transmux(
        &mut self,
        data: &Uint8Array,
        seg: &playlist::Segment,
        media: &MediaPlaylist,
    ) -> Option<bool> {
        if self.ts.transmuxer.is_none() {
            match Transmuxer::load().await {
                Ok(t) => self.ts.transmuxer = Some(t),
                Err(e) => {
                    self.send(SourceEvent::Fatal(format!(
                        "the MPEG-TS module could not be loaded ({e})"
                    )));
                    return None;
                }
            }
            if !self.alive.get() {
                return None;
            }
        }
        let ts = &mut self.ts;
        let start = if !ts.read_any || seg.discontinuity {
            ts.end
        } else {
            f64::NAN
        };
        let out = match ts.transmuxer.as_ref()?.push(data, start) {
            Ok(out) => out,
            Err(e) => {
                ts.unreadable += 1;
                if !ts.read_any && ts.unreadable >= TS_UNREADABLE {
                    self.send(SourceEvent::Fatal(format!(
                        "the stream's MPEG-TS segments cannot be read ({e})"
                    )));
                    return None;
                }
                let msn = seg.msn;
                self.send(SourceEvent::Warning(format!(
                    "segment {msn} cannot be read ({e}); skipped"
                )));
                return Some(false);
            }
        };
        ts.unreadable = 0;
        ts.read_any = true;
        let parts = [(false, out.video), (true, out.audio)];
        if ts.kinds.is_empty() {
            ts.kinds = parts
                .iter()
                .filter(|(_, t)| t.is_some())
                .map(|(k, _)| *k)
                .collect();
            ts.mimes = vec![String::new(); ts.kinds.len()];
        }
        let mut mimes = ts.mimes.clone();
        let mut sends = Vec::new();
        let mut first = f64::NAN;
        for (kind, t) in parts {
            let Some(t) = t else { continue };
            let Some(i) = ts.kinds.iter().position(|&k| k == kind) else {
                continue;
            };
            mimes[i] = t.mime;
            ts.end = ts.end.max(t.end);
            if first.is_nan() {
                first = t.start;
            }
            if let Some(init) = t.init {
                sends.push(SourceEvent::Track(i, init));
            }
            if t.media.length() > 0 {
                sends.push(SourceEvent::Track(i, t.media));
            }
        }
        if mimes != ts.mimes && mimes.iter().all(|m| !m.is_empty()) {
            ts.mimes = mimes.clone();
            self.send(SourceEvent::Tracks(mimes));
        }
        for (time, tag) in out.id3 {
            self.send(SourceEvent::Metadata(time, tag));
        }
        for w in out.warnings {
            self.send(SourceEvent::Warning(format!("segment {}: {w}", seg.msn)));
        }
        for e in sends {
            self.send(e);
        }
        if first.is_finite() {
            self.send(SourceEvent::Edge(first + media.duration_from(seg.msn)));
        }
        Some(true)
    }

    /// Plays a complete playlist as a replay.
    async fn run_vod(mut self, media: MediaPlaylist) {
        self.replay = true;
        let segments = &media.segments;
        let mut plan = ReplayPlan::new(segments.iter().map(|s| s.duration));
        for (i, _) in segments.iter().enumerate().filter(|(_, s)| s.gap) {
            plan.gap(i);
        }
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
                plan.begin_at(i);
                self.send(SourceEvent::Vod {
                    start,
                    duration: plan.duration(),
                });
            }
            self.media(data);
            if let Some(audio) = &mut self.vod_audio {
                audio.plan.skip_gaps(&plan);
            }
            let (from, to) = plan.span(i);
            self.vod_audio(from, to).await;
            plan.advance();
        }
    }

    /// A playlist load failed: if it means the stream cannot play here (a first
    /// load), says why; the engine then stops this loader.
    fn cannot(&self, failure: Failure) {
        if let Some(r) = unplayable::playlist_failure(failure, self.cursor.is_some()) {
            self.send(SourceEvent::Unplayable(r));
        }
    }

    /// `data` of `seg` in clear: decrypted when the playlist says it is AES-128.
    async fn decrypt(&mut self, seg: &Segment, data: Uint8Array) -> Result<Uint8Array, FetchError> {
        let Some(Key::Aes128 { uri, iv }) = &seg.key else {
            return Ok(data);
        };
        let url = fetch::resolve(uri, &self.url)
            .ok_or_else(|| FetchError::Network(format!("key URI {uri} is invalid")))?;
        let iv = Key::iv(*iv, seg.msn);
        self.keys.decrypt(&url, iv, &data, &self.slot).await
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
                if let Some(i) = self
                    .init
                    .as_ref()
                    .filter(|i| !mse::type_supported(&i.mime()))
                {
                    let list = i.codecs.iter().map(String::as_str);
                    let r = unplayable::codecs(list, mse::type_supported);
                    self.send(SourceEvent::Unplayable(r));
                    return InitOutcome::Aborted;
                }
                self.init_uri = Some(url);
                match self.init.as_ref().map(InitInfo::mime) {
                    Some(video) if self.audio_url.is_some() => self.demuxed(video, data).await,
                    _ => self.send(SourceEvent::Init(data)),
                }
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

/// `url` asking for part `part` of segment `msn`: a blocking playlist reload.
fn blocking_url(url: &str, msn: u64, part: u32) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}_HLS_msn={msn}&_HLS_part={part}")
}

fn codecs_supported(codecs: &str) -> bool {
    super::mse::type_supported(&format!("video/mp4; codecs=\"{codecs}\""))
}

/// Why `seg` cannot be decrypted here, if it cannot.
fn cannot_decrypt(seg: &Segment) -> Option<Reason> {
    match &seg.key {
        Some(Key::Unsupported(m)) => Some(Reason::Encryption(m.clone())),
        // WebCrypto exists only on https pages (and localhost).
        Some(Key::Aes128 { .. }) if !decrypt::available() => Some(Reason::Encryption(
            "AES-128 (WebCrypto needs an https page)".into(),
        )),
        _ => None,
    }
}

/// A variant whose codecs the browser can decode (or that does not say).
pub(super) fn decodable(v: &playlist::Variant) -> bool {
    v.codecs.as_deref().is_none_or(codecs_supported)
}
