//! A broadcast's health as the origin sees it, for the broadcaster console: the video
//! frames received on ingest ([`FrameTally`]: frame rate, dropped frames) and the
//! latencies viewers' players report ([`ViewerLatencies`]). Bitrate and keyframe
//! interval come from the playlist window, as `/metrics` reads them
//! ([`crate::metrics`], its `Measured`).
//!
//! # What the figures mean
//! - **Frame rate**: of the video frames received from the publisher in the last
//!   [`FPS_WINDOW`] of wall-clock time, how many there are per second of their own
//!   timestamps (`(n - 1)` over the span from the first to the last). So a burst (an
//!   encoder flushing what it buffered at the start) does not read as 40 fps, frames
//!   missing from the timeline lower it, and a publisher that stops sending reads 0
//!   once its last frames are older than the window. Frames of an earlier publisher
//!   connection (before a reconnection) are not mixed in.
//! - **Dropped frames**: frames missing from the publisher's video timeline, counted
//!   since the broadcast started. The nominal frame duration is the median of the last
//!   [`DURATION_SAMPLES`] gaps between consecutive video timestamps (FLV decode times,
//!   ms); a gap over 1.5 of it counts `round(gap / duration) - 1` frames. Gaps are
//!   judged within one publisher connection (a reconnection within the grace period is
//!   not a drop) and only once [`MIN_SAMPLES`] gaps are known. Frames the encoder
//!   dropped before timestamping them (a camera that delivers fewer frames) are not
//!   seen: they leave no gap. For a broadcast from the console the timestamps are the
//!   browser recorder's, which the server's ffmpeg copies or, re-encoding, keeps (FLV
//!   takes a variable frame rate), so a camera frame the recorder skipped is a gap;
//!   ffmpeg's own count of dropped frames is not read.
//! - **Viewers' latency p50**: of the players watching over the low-latency push that
//!   reported in the last [`REPORT_FRESH`], the median (lower middle) of each one's
//!   latest report: seconds between the newest media its buffer holds and its
//!   playhead, as its latency policy measures it (not the time since capture: the
//!   publisher's and the server's delays come before it). Players on HLS send none.
//!   Reports are untrusted: clamped to [`MAX_LATENCY_MS`], one kept per socket.
//!
//! Pure (the clock is passed in), so every rule is tested natively.

use std::collections::{HashMap, VecDeque};

/// How much wall-clock time the frame rate is measured over.
pub const FPS_WINDOW: f64 = 5.0;
/// Gaps between video timestamps the nominal frame duration is the median of.
pub const DURATION_SAMPLES: usize = 31;
/// Gaps known before any is judged a drop.
pub const MIN_SAMPLES: usize = 5;
/// A viewer's report counts this long (seconds) after it came.
pub const REPORT_FRESH: f64 = 15.0;
/// The largest latency a report may claim (60 s); more is taken as 60 s.
pub const MAX_LATENCY_MS: u32 = 60_000;
/// Arrival times kept for the frame rate at most (5 s of 120 fps).
const MAX_ARRIVALS: usize = 600;

/// The video frames a broadcast received: frame rate and dropped frames.
#[derive(Debug, Clone, Default)]
pub struct FrameTally {
    /// Wall-clock arrival (s), connection and timestamp (ms) of the frames of the last
    /// [`FPS_WINDOW`].
    arrivals: VecDeque<(f64, u64, u32)>,
    /// Wall-clock arrival of the broadcast's first frame.
    first: Option<f64>,
    /// The publisher connection the gaps below belong to.
    session: u64,
    /// Video timestamp (ms) of that connection's last frame.
    last_ts: Option<u32>,
    /// The last gaps between its video timestamps (ms), oldest first.
    gaps: VecDeque<u32>,
    received: u64,
    dropped: u64,
}

impl FrameTally {
    /// A video frame with FLV timestamp `ts_ms` from publisher connection `session`
    /// arrived at `now` (seconds).
    pub fn frame(&mut self, now: f64, session: u64, ts_ms: u32) {
        self.received += 1;
        self.first.get_or_insert(now);
        self.arrivals.push_back((now, session, ts_ms));
        self.prune(now);
        if self.session != session {
            self.session = session;
            self.last_ts = None;
            self.gaps.clear();
        }
        let last = self.last_ts.replace(ts_ms);
        // A timestamp that goes back (an encoder restarted on the connection) starts over.
        let Some(gap) = last.and_then(|l| ts_ms.checked_sub(l)).filter(|g| *g > 0) else {
            if last.is_some_and(|l| ts_ms < l) {
                self.gaps.clear();
            }
            return;
        };
        if self.gaps.len() >= MIN_SAMPLES {
            let mut sorted: Vec<u32> = self.gaps.iter().copied().collect();
            sorted.sort_unstable();
            let nominal = f64::from(sorted[sorted.len() / 2]);
            let gap = f64::from(gap);
            if gap > 1.5 * nominal {
                self.dropped += (gap / nominal).round() as u64 - 1;
            }
        }
        if self.gaps.len() == DURATION_SAMPLES {
            self.gaps.pop_front();
        }
        self.gaps.push_back(gap);
    }

    fn prune(&mut self, now: f64) {
        while self
            .arrivals
            .front()
            .is_some_and(|(t, ..)| *t <= now - FPS_WINDOW)
            || self.arrivals.len() > MAX_ARRIVALS
        {
            self.arrivals.pop_front();
        }
    }

    /// The frame rate of what arrived in the last [`FPS_WINDOW`] at `now` (see the
    /// module doc); `None` in the first second of a broadcast.
    pub fn frame_rate(&mut self, now: f64) -> Option<f64> {
        if now - self.first? < 1.0 {
            return None;
        }
        self.prune(now);
        let Some(&(_, session, last)) = self.arrivals.back() else {
            return Some(0.0);
        };
        // The current connection's frames, in timestamp order as they came.
        let mut frames = self
            .arrivals
            .iter()
            .filter(|(_, s, _)| *s == session)
            .map(|(_, _, ts)| *ts);
        let first = frames.next().unwrap_or(last);
        let n = 1 + frames.count();
        let span = last.wrapping_sub(first);
        if n < 2 || span == 0 || span > 1 << 31 {
            return Some(0.0);
        }
        Some((n - 1) as f64 * 1000.0 / f64::from(span))
    }

    /// Frames missing from the timeline since the broadcast started (see the module doc).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Video frames received since the broadcast started.
    pub fn received(&self) -> u64 {
        self.received
    }
}

/// The latest latency each push socket of a stream reported.
#[derive(Debug, Clone, Default)]
pub struct ViewerLatencies {
    /// Socket → (latency ms, when reported in seconds).
    latest: HashMap<u64, (u32, f64)>,
}

impl ViewerLatencies {
    /// Socket `socket` says its player is `ms` behind, at `now` (seconds); the value is
    /// clamped to [`MAX_LATENCY_MS`] and replaces its previous one.
    pub fn report(&mut self, socket: u64, ms: u32, now: f64) {
        self.latest.insert(socket, (ms.min(MAX_LATENCY_MS), now));
    }

    /// Socket `socket` closed: its report no longer counts.
    pub fn forget(&mut self, socket: u64) {
        self.latest.remove(&socket);
    }

    /// The median (lower middle) in seconds of the reports of the last
    /// [`REPORT_FRESH`] at `now`, and how many there are; `None` when there is none.
    pub fn p50(&self, now: f64) -> Option<(f64, usize)> {
        let mut fresh: Vec<u32> = self
            .latest
            .values()
            .filter(|(_, at)| now - at <= REPORT_FRESH)
            .map(|(ms, _)| *ms)
            .collect();
        if fresh.is_empty() {
            return None;
        }
        fresh.sort_unstable();
        let median = fresh[(fresh.len() - 1) / 2];
        Some((f64::from(median) / 1000.0, fresh.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` frames `step_ms` apart from `ts`, arriving on a matching wall clock.
    fn run(t: &mut FrameTally, session: u64, from_ts: u32, n: u32, step_ms: u32) -> u32 {
        for i in 0..n {
            let ts = from_ts + i * step_ms;
            t.frame(f64::from(ts) / 1000.0, session, ts);
        }
        from_ts + n * step_ms
    }

    #[test]
    fn a_steady_30_fps_drops_nothing_and_counts_30_frames_a_second() {
        let mut t = FrameTally::default();
        // 33/34 ms alternate, as a 30 fps encoder's millisecond timestamps do.
        let mut ts = 0;
        for i in 0..300 {
            t.frame(f64::from(ts) / 1000.0, 1, ts);
            ts += if i % 3 == 2 { 34 } else { 33 };
        }
        assert_eq!(t.dropped(), 0);
        assert_eq!(t.received(), 300);
        let fps = t.frame_rate(f64::from(ts) / 1000.0).unwrap();
        assert!((fps - 30.0).abs() < 0.5, "{fps}");
    }

    #[test]
    fn a_gap_counts_the_frames_missing_from_it() {
        let mut t = FrameTally::default();
        let ts = run(&mut t, 1, 0, 20, 40);
        // Three frames missing: the next one comes 4 durations later.
        let ts = run(&mut t, 1, ts + 3 * 40, 20, 40);
        assert_eq!(t.dropped(), 3);
        // A gap of 1.4 durations is jitter, not a drop.
        run(&mut t, 1, ts + 16, 10, 40);
        assert_eq!(t.dropped(), 3);
    }

    #[test]
    fn gaps_are_not_judged_before_the_frame_duration_is_known() {
        let mut t = FrameTally::default();
        t.frame(0.0, 1, 0);
        t.frame(0.5, 1, 500);
        t.frame(0.54, 1, 540);
        assert_eq!(t.dropped(), 0);
    }

    #[test]
    fn a_reconnection_or_a_clock_going_back_is_not_a_drop() {
        let mut t = FrameTally::default();
        run(&mut t, 1, 0, 20, 40);
        // The publisher comes back 5 s later, its timestamps from zero again.
        run(&mut t, 2, 0, 20, 40);
        assert_eq!(t.dropped(), 0);
        // Same connection, the clock steps back then goes on.
        run(&mut t, 2, 100, 20, 40);
        assert_eq!(t.dropped(), 0);
        assert_eq!(t.received(), 60);
    }

    #[test]
    fn the_frame_rate_is_the_received_frames_own_and_falls_to_zero_when_they_stop() {
        let mut t = FrameTally::default();
        assert_eq!(t.frame_rate(10.0), None);
        for i in 0..26 {
            t.frame(100.0 + f64::from(i) * 0.04, 1, i * 40);
        }
        assert_eq!(t.frame_rate(100.5), None, "under a second of broadcast");
        // 26 frames 40 ms apart: 25 fps.
        assert_eq!(t.frame_rate(101.0), Some(25.0));
        // Nothing more for 10 s: nothing received in the window.
        assert_eq!(t.frame_rate(111.0), Some(0.0));
    }

    #[test]
    fn a_burst_reads_as_the_encoders_frame_rate_and_gaps_lower_it() {
        let mut t = FrameTally::default();
        // 2 s of 30 fps flushed in 0.2 s, then real time.
        for i in 0..60u32 {
            t.frame(100.0 + f64::from(i) * 0.2 / 60.0, 1, i * 100 / 3);
        }
        for i in 60..150u32 {
            t.frame(100.2 + f64::from(i - 60) / 30.0, 1, i * 100 / 3);
        }
        // Counted by arrival, 91 frames in 1.2 s would be 75 fps.
        let fps = t.frame_rate(101.2).unwrap();
        assert!((fps - 30.0).abs() < 0.1, "{fps}");
        // Every other frame missing: 15 fps.
        let mut u = FrameTally::default();
        for i in 0..60u32 {
            u.frame(f64::from(i) / 15.0, 1, i * 200 / 3);
        }
        let fps = u.frame_rate(4.0).unwrap();
        assert!((fps - 15.0).abs() < 0.1, "{fps}");
    }

    #[test]
    fn a_reconnection_does_not_mix_two_timelines_in_the_frame_rate() {
        let mut t = FrameTally::default();
        run(&mut t, 1, 50_000, 50, 40);
        // Back at once, timestamps from zero.
        for i in 0..20u32 {
            t.frame(52.0 + f64::from(i) * 0.04, 2, i * 40);
        }
        assert_eq!(t.frame_rate(52.8), Some(25.0));
    }

    #[test]
    fn latency_p50_is_the_middle_of_the_fresh_latest_reports() {
        let mut l = ViewerLatencies::default();
        assert_eq!(l.p50(0.0), None);
        l.report(1, 400, 0.0);
        l.report(2, 900, 0.0);
        l.report(3, 2_000, 0.0);
        assert_eq!(l.p50(1.0), Some((0.9, 3)));
        // A socket's new report replaces its old one.
        l.report(2, 300, 5.0);
        assert_eq!(l.p50(6.0), Some((0.4, 3)));
        // Lower middle of an even count.
        l.report(4, 5_000, 6.0);
        assert_eq!(l.p50(7.0), Some((0.4, 4)));
        // Stale reports (over 15 s old) and closed sockets no longer count.
        assert_eq!(l.p50(16.0), Some((0.3, 2)));
        l.forget(2);
        assert_eq!(l.p50(16.0), Some((5.0, 1)));
        assert_eq!(l.p50(30.0), None);
    }

    #[test]
    fn a_report_is_clamped_to_a_minute() {
        let mut l = ViewerLatencies::default();
        l.report(1, u32::MAX, 0.0);
        assert_eq!(l.p50(0.0), Some((60.0, 1)));
    }
}
