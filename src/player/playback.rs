//! The playback controller: where the playhead goes and whether it moves. Starts
//! playback on the first media, applies the latency policy (rate, jump to live), trims
//! the back buffer, carries out the stall watch's verdicts and the viewer's controls
//! (play, pause, back to live, seek). Its decisions come from the pure `latency`,
//! `buffer`, `stall` and `recovery` modules; it must not touch sources or rebuild the
//! MediaSource (it asks the engine with [`Event::Hung`]).
//!
//! Every seek it makes goes through [`Playback::move_playhead`], which tells the stall
//! watch: the engine's own seeks are not playback.

use super::buffer::{self, Range};
use super::events::{Event, SourceEvent};
use super::hls::Conditions;
use super::latency::{LatencyAction, LatencyPolicy, Observation};
use super::mse::Mse;
use super::recovery::{self, SourceKind};
use super::stall::{Stall, StallWatch};
use super::video::Video;
use super::{Control, Status};
use std::cell::Cell;
use std::rc::Rc;

/// Media kept behind the playhead (seconds).
const BACK_BUFFER: f64 = 30.0;
/// How far behind live a viewer may resume after a pause (the rest is evicted).
const MAX_TIMESHIFT: f64 = 25.0;
/// Smallest playbackRate change worth making while catching up.
const RATE_STEP: f64 = 0.05;

/// What the engine knows that a tick needs.
pub(super) struct Env<'a> {
    pub(super) status: &'a Status,
    pub(super) source: Option<SourceKind>,
    /// The source is reachable.
    pub(super) source_up: bool,
    /// The source said nobody is broadcasting.
    pub(super) offline: bool,
    /// No MediaSource: the browser plays HLS itself.
    pub(super) native: bool,
}

/// The playhead's state across ticks.
pub(super) struct Playback {
    pub(super) policy: LatencyPolicy,
    /// Live edge reported by an HLS source.
    pub(super) hls_edge: Option<f64>,
    /// The first seek to the live edge has been done.
    pub(super) started: bool,
    pub(super) user_paused: bool,
    /// Playing behind live on purpose (resumed after a pause); latency control is off.
    timeshift: bool,
    /// The source is a finished recording (no live edge, no latency control).
    pub(super) vod: bool,
    pub(super) vod_complete: bool,
    pub(super) became_visible: bool,
    stall: StallWatch,
    /// Shared with a replay loader: the playhead, and where the viewer jumped to outside
    /// what is buffered (NaN: nowhere).
    pub(super) playhead: Rc<Cell<f64>>,
    pub(super) seek_to: Rc<Cell<f64>>,
    /// Shared with a live HLS loader's ABR: refreshed every tick.
    conditions: Rc<Cell<Conditions>>,
    /// Seconds behind the live edge at the last tick, while latency control ran.
    pub(super) latency: Option<f64>,
}

impl Playback {
    pub(super) fn new(policy: LatencyPolicy) -> Playback {
        Playback {
            policy,
            hls_edge: None,
            started: false,
            user_paused: false,
            timeshift: false,
            vod: false,
            vod_complete: false,
            became_visible: false,
            stall: StallWatch::default(),
            playhead: Rc::new(Cell::new(0.0)),
            seek_to: Rc::new(Cell::new(f64::NAN)),
            conditions: Rc::default(),
            latency: None,
        }
    }

    /// A new MediaSource: nothing started, nothing known about the source.
    /// Takes the source events that only tell playback about the stream (the HLS live
    /// edge and hold-back, a replay's span and end); gives the others back.
    pub(super) fn absorb(
        &mut self,
        e: SourceEvent,
        mse: Option<&Mse>,
        hls_active: bool,
    ) -> Option<SourceEvent> {
        match e {
            SourceEvent::Edge(edge) => self.hls_edge = Some(edge),
            SourceEvent::Policy(p) if hls_active => self.policy = p,
            SourceEvent::Policy(_) => {}
            SourceEvent::Vod { start, duration } => {
                self.vod = true;
                if let Some(mse) = mse {
                    mse.set_timestamp_offset(-start);
                    mse.set_duration(duration);
                }
            }
            SourceEvent::VodComplete => self.vod_complete = true,
            other => return Some(other),
        }
        None
    }

    /// Where the HLS loader reads the playhead and the seeks it is asked for.
    pub(super) fn hls_playhead(&self) -> super::hls::Playhead {
        super::hls::Playhead {
            position: self.playhead.clone(),
            seek_to: self.seek_to.clone(),
            conditions: self.conditions.clone(),
        }
    }

    /// Changes what the ABR is told.
    pub(super) fn tell(&self, f: impl FnOnce(&mut Conditions)) {
        let mut c = self.conditions.get();
        f(&mut c);
        self.conditions.set(c);
    }

    /// Tells the ABR how much is buffered ahead and how big the picture is shown
    /// (read again every tick: a resize or full screen changes the cap).
    fn share(&self, video: &Video, ahead_s: f64) {
        self.tell(|c| {
            c.ahead_s = ahead_s;
            c.updates = c.updates.wrapping_add(1);
            c.width = f64::from(video.el.client_width());
            c.height = f64::from(video.el.client_height());
            c.dpr = web_sys::window().map_or(1.0, |w| w.device_pixel_ratio());
        });
    }

    pub(super) fn reset(&mut self) {
        self.started = false;
        self.stall.reset();
        self.hls_edge = None;
        self.vod = false;
        self.vod_complete = false;
        // Nothing buffered drains until the new MediaSource plays.
        self.tell(|c| c.ahead_s = f64::INFINITY);
    }

    /// The live edge given ranges already read (TimeRanges are read once per tick).
    fn edge_in(&self, ranges: &[Range], source: Option<SourceKind>) -> Option<f64> {
        match source {
            Some(SourceKind::Hls) => self.hls_edge.or_else(|| buffer::newest(ranges)),
            _ => buffer::newest(ranges),
        }
    }

    /// Moves the playhead to `t`: an engine's decision, not playback.
    fn move_playhead(&mut self, video: &Video, t: f64) {
        video.el.set_current_time(t);
        self.stall.moved_to(video.el.current_time());
    }

    /// Seeks to `t`, clamped into buffered media.
    fn seek(&mut self, video: &Video, ranges: &[Range], t: f64) {
        let target = ranges
            .iter()
            .find(|r| r.end > t)
            .map(|r| t.max(r.start).min(r.end - 0.05))
            .or_else(|| ranges.last().map(|r| (r.end - 0.05).max(r.start)));
        // A seek where the playhead already is still flushes WebKitGTK's pipeline, and
        // one while it starts up has been seen to hang the page: skip it.
        if let Some(t) = target.filter(|t| (t - video.el.current_time()).abs() > 0.01) {
            self.move_playhead(video, t);
        }
    }

    fn go_live_if_behind(&mut self, video: &Video, ranges: &[Range], source: Option<SourceKind>) {
        if let Some(edge) = self.edge_in(ranges, source) {
            if edge - video.el.current_time() > self.policy.target + 1.0 {
                self.seek(video, ranges, edge - self.policy.target);
            }
        }
    }

    /// The viewer's controls that move or hold the playhead; returns a status to show.
    pub(super) fn control(
        &mut self,
        c: Control,
        video: &Video,
        ranges: &[Range],
        source: Option<SourceKind>,
        native: bool,
    ) -> Option<Status> {
        match c {
            Control::Play => {
                self.user_paused = false;
                if self.started {
                    let pos = video.el.current_time();
                    let behind = self.edge_in(ranges, source).map_or(0.0, |e| e - pos);
                    let buffered = buffer::ahead(ranges, pos) > 0.0;
                    // Resume where the viewer paused if that media is still here.
                    self.timeshift = !native
                        && buffered
                        && behind > self.policy.target + 1.0
                        && behind < MAX_TIMESHIFT;
                    if !self.timeshift {
                        self.go_live_if_behind(video, ranges, source);
                    }
                    video.play();
                }
            }
            Control::Pause => {
                self.user_paused = true;
                video.el.pause().ok();
                return Some(Status::Paused);
            }
            Control::GoLive => {
                self.timeshift = false;
                if self.user_paused {
                    self.user_paused = false;
                    video.play();
                }
                if let Some(edge) = self.edge_in(ranges, source) {
                    self.seek(video, ranges, edge - self.policy.target);
                }
            }
            Control::Seek(t) => {
                let t = t.max(0.0);
                if self.vod {
                    // Outside what is buffered, the replay loader moves there.
                    if !ranges
                        .iter()
                        .any(|r| r.start <= t + 0.1 && t <= r.end + 0.1)
                    {
                        self.seek_to.set(t);
                        self.vod_complete = false;
                    }
                    self.move_playhead(video, t);
                } else {
                    self.seek(video, ranges, t);
                }
            }
            Control::Quality(choice) => self.tell(|c| c.choice = choice),
            Control::Mute(_) | Control::Volume(_) | Control::Replay => {}
        }
        None
    }

    /// First frame: position the playhead and play.
    pub(super) fn try_start(
        &mut self,
        video: &Video,
        ranges: &[Range],
        source: Option<SourceKind>,
    ) {
        if self.vod {
            // A replay starts at its beginning, with no seek when its media is there.
            if ranges.is_empty() {
                return;
            }
            self.started = true;
            if let Some(t) = buffer::replay_start(ranges, video.el.current_time()) {
                self.move_playhead(video, t);
            }
        } else {
            let (Some(last), Some(edge)) = (ranges.last(), self.edge_in(ranges, source)) else {
                return;
            };
            self.started = true;
            if source == Some(SourceKind::Push) {
                // The push starts on a keyframe less than a segment behind live: show it
                // at once (no decoding up to a seek point) and let the catch-up rate
                // close the remaining fraction of a second.
                if (last.start - video.el.current_time()).abs() > 0.01 {
                    self.move_playhead(video, last.start);
                }
            } else {
                self.seek(video, ranges, edge - self.policy.target);
            }
        }
        self.stall.moved_to(video.el.current_time());
        if !self.user_paused {
            video.play();
        }
    }

    /// One periodic evaluation; returns a status to show.
    pub(super) fn tick(
        &mut self,
        video: &Video,
        mse: Option<&Mse>,
        env: Env<'_>,
    ) -> Option<Status> {
        if env.native {
            return self.tick_native(video);
        }
        self.latency = None;
        let mse = mse?;
        let ranges = mse.buffered();
        let v = &video.el;
        let pos = v.current_time();
        if !self.started {
            self.share(video, f64::INFINITY);
            self.try_start(video, &ranges, env.source);
            return None;
        }
        self.share(video, buffer::ahead(&ranges, pos));
        if self.vod {
            self.playhead.set(pos);
            // The viewer jumped outside what is buffered: the loader moves there.
            // (Only on a seek: re-appending what plays makes some browsers stall.)
            let buffered = ranges
                .iter()
                .any(|r| r.start <= pos + 0.1 && pos <= r.end + 0.1);
            if v.seeking() && !buffered {
                self.seek_to.set(pos);
                self.vod_complete = false;
            }
            // Once everything is appended: ends cleanly at the last frame.
            if self.vod_complete && mse.pending() == 0 {
                mse.end_of_stream();
                self.vod_complete = false;
            }
        }
        // While paused the playhead stays put but live media keeps coming: keep only
        // what a resume could still use. A replay keeps what lies behind the playhead.
        let newest = buffer::newest(&ranges).unwrap_or(pos);
        let anchor = if self.vod {
            pos
        } else {
            pos.max(newest - MAX_TIMESHIFT)
        };
        if let Some(cut) = buffer::back_buffer_eviction(&ranges, anchor, BACK_BUFFER) {
            mse.remove(cut.start, cut.end);
        }
        if self.user_paused
            || matches!(
                env.status,
                Status::Ended | Status::Error { fatal: true, .. }
            )
        {
            return None;
        }
        if self.vod && v.ended() {
            return Some(Status::Ended);
        }
        let edge = self.edge_in(&ranges, env.source);
        // Back within reach of live (or never really behind: WebKitGTK can report a stale
        // currentTime while paused): live again, with latency control.
        if self.timeshift && edge.is_some_and(|e| e - pos <= self.policy.target + 1.0) {
            self.timeshift = false;
        }
        let ahead = buffer::ahead(&ranges, pos);
        if let Some(edge) = edge.filter(|_| !self.timeshift && !self.vod) {
            let obs = Observation {
                position: pos,
                edge,
                ahead,
                beyond_hole: buffer::newest(&ranges)
                    .is_some_and(|n| n > pos + ahead + buffer::MAX_HOLE),
                became_visible: std::mem::take(&mut self.became_visible),
                rate: v.playback_rate(),
            };
            self.latency = Some(self.policy.latency(&obs));
            match self.policy.decide(&obs) {
                LatencyAction::Rate(r) => {
                    // Rate changes in steps, not by the hundredth every tick: on some
                    // engines (WebKitGTK) each change flushes the pipeline and costs
                    // more playback time than the catch-up gains.
                    let step = (obs.rate - r).abs();
                    if step >= RATE_STEP || (r <= 1.0 && step > 0.001) {
                        v.set_playback_rate(r);
                    }
                }
                LatencyAction::Seek(t) => {
                    v.set_playback_rate(1.0);
                    // Progress is measured from the new position, next tick.
                    self.seek(video, &ranges, t);
                    return None;
                }
            }
        }
        if v.paused() {
            // Paused by the browser, not the viewer (an autoplay policy, an interrupted
            // pipeline): play again; a refusal shows the play button.
            if !matches!(env.status, Status::Paused) {
                video.play();
            }
            return None;
        }
        let verdict = self.stall.tick(pos, &ranges);
        match verdict {
            Stall::Advancing => {
                return (env.source_up || env.source == Some(SourceKind::Hls))
                    .then(|| recovery::playing_status(self.vod, self.timeshift));
            }
            Stall::Unsure | Stall::Waiting => {}
            Stall::JumpHole(t) => {
                super::video::log("jumping a hole in the buffer");
                self.move_playhead(video, t);
            }
            // Stuck with media ahead (a decoder hiccup): nudge, as players do.
            Stall::Nudge(t) => self.move_playhead(video, t),
            // Nudges did not help, nor did the seeks they made: the pipeline hangs.
            Stall::Hung => video.send(Event::Hung),
        }
        if !verdict.stalled() {
            return None;
        }
        recovery::waiting_status(env.status, env.offline, env.source_up)
    }

    /// Without MediaSource the browser plays HLS itself: only keep it playing and say
    /// whether it moves.
    fn tick_native(&mut self, video: &Video) -> Option<Status> {
        if self.user_paused {
            return None;
        }
        if video.el.paused() {
            video.play();
            return None;
        }
        Some(if self.stall.advanced(video.el.current_time()) {
            Status::Playing
        } else {
            Status::Buffering
        })
    }
}
