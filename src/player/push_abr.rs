//! Which rendition of lucarne's ladder the low-latency push plays. Pure: clocks and
//! measurements are passed in; the answer is an index into the ladder (as [`Abr`]'s).
//!
//! A push delivers media at the encoder's pace, so its throughput says what the
//! rendition weighs, not what the link carries; [`Abr`]'s estimate is fed only what
//! does measure the link:
//! - **Falling behind** (down, fast): lucarne stamps media with the wall clock, so a
//!   chunk's *arrival lag* (the viewer's clock at arrival minus the chunk's start) is
//!   constant while the link keeps up, whatever the two clocks' offset, and grows by
//!   the shortfall when it does not. When the lag exceeds the smallest of the last
//!   [`LAG_WINDOW_MS`] by more than [`BEHIND_S`], the push has a backlog: what arrived
//!   since the last chunk that came on time is what the link carried, and becomes a
//!   sample. The estimate drops and [`Abr::next`] steps down (to the highest rung the
//!   new estimate keeps, often several at once).
//! - **Probing** (up, careful): after [`PROBE_FIRST_MS`], and not within
//!   [`UP_HOLD_MS`](super::abr::UP_HOLD_MS) of a step down, the source downloads the
//!   newest complete segment of the rung above ([`Abr::above`]) over HTTP; that
//!   download is a sample like an HLS one, and [`Abr::next`] goes up by its usual rules
//!   (80 % of the link, the hold after a step down). The estimate believes a rise only
//!   once some nine media seconds agree (its slow window), and a probe is one second
//!   of media: a probe that finds room for the rung above is followed by the next one
//!   [`PROBE_FAST_MS`] later; one that does not doubles the wait, from
//!   [`PROBE_SLOW_MS`] up to [`PROBE_MAX_MS`]. So a link that came back is believed in
//!   about half a minute, and a link that stays poor costs a second of the higher rung
//!   every half minute at most, none at the top.
//!
//! The caps (player size × `devicePixelRatio`, `data-max-height`, the viewer's pick in
//! the quality menu) are [`Abr`]'s.

use super::abr::{Abr, Sample};
use std::collections::VecDeque;

/// How far back the smallest arrival lag is taken from, milliseconds.
pub const LAG_WINDOW_MS: f64 = 10_000.0;
/// Lag beyond the window's smallest that means the push fell behind, seconds: more
/// than a chunk or two of jitter, well within the push's 2 s jump-to-live.
pub const BEHIND_S: f64 = 0.6;
/// First probe after the push starts, milliseconds.
pub const PROBE_FIRST_MS: f64 = 3_000.0;
/// The next probe after one that found room for the rung above, milliseconds.
pub const PROBE_FAST_MS: f64 = 3_000.0;
/// The next probe after one that did not, milliseconds (doubling each time).
pub const PROBE_SLOW_MS: f64 = 8_000.0;
/// The longest wait between probes, milliseconds.
pub const PROBE_MAX_MS: f64 = 32_000.0;
/// Chunks remembered (bounds the window; 100 ms chunks for 10 s, and some).
const MAX_CHUNKS: usize = 200;
/// What each push decision is asked for: a segment's worth of media, seconds.
const DECISION_S: f64 = 2.0;

/// The push of a ladder rung, from its media playlist's URL as lucarne serves them
/// (`…/{id}/source.m3u8` → `…/{id}/ll`, `…/{id}/{h}p/index.m3u8` → `…/{id}/{h}p/ll`),
/// on the WebSocket scheme; `None` for any other URL (not a lucarne ladder).
pub fn push_url(playlist: &str) -> Option<String> {
    let (scheme, rest) = playlist.split_once("://")?;
    let scheme = match scheme {
        "https" => "wss",
        "http" => "ws",
        _ => return None,
    };
    let rest = rest.split(['?', '#']).next()?;
    let dir = rest
        .strip_suffix("/index.m3u8")
        .or_else(|| rest.strip_suffix("/source.m3u8"))?;
    Some(format!("{scheme}://{dir}/ll"))
}

/// One chunk as it arrived.
#[derive(Debug, Clone, Copy)]
struct Arrival {
    at_ms: f64,
    bytes: u64,
    lag_s: f64,
}

/// The push's rendition policy.
#[derive(Debug, Clone)]
pub struct PushAbr {
    abr: Abr,
    current: usize,
    chunks: VecDeque<Arrival>,
    next_probe_ms: f64,
    /// The wait after a probe that finds no room.
    probe_wait_ms: f64,
    /// The rung a probe is under way for.
    probing: Option<usize>,
}

impl PushAbr {
    /// Starts with `abr` (its renditions, caps and estimate set) on rendition `start`,
    /// the one the push already plays, at `now_ms`. Call [`PushAbr::decide`] next: the
    /// caps may rule `start` out.
    pub fn new(mut abr: Abr, start: usize, now_ms: f64) -> Self {
        abr.set_current(start);
        PushAbr {
            abr,
            current: start,
            chunks: VecDeque::new(),
            next_probe_ms: now_ms + PROBE_FIRST_MS,
            probe_wait_ms: PROBE_SLOW_MS,
            probing: None,
        }
    }

    /// The rendition playing (or being switched to).
    pub fn current(&self) -> usize {
        self.current
    }

    /// The [`Abr`], to set its caps before a decision.
    pub fn abr(&mut self) -> &mut Abr {
        &mut self.abr
    }

    /// A chunk of `bytes` starting at media time `start_s` arrived at `now_ms`. Some
    /// rendition to switch to when the push fell behind.
    pub fn chunk(&mut self, now_ms: f64, bytes: u64, start_s: f64) -> Option<usize> {
        let lag_s = now_ms / 1000.0 - start_s;
        if !lag_s.is_finite() {
            return None;
        }
        while self
            .chunks
            .front()
            .is_some_and(|c| c.at_ms < now_ms - LAG_WINDOW_MS)
            || self.chunks.len() >= MAX_CHUNKS
        {
            self.chunks.pop_front();
        }
        self.chunks.push_back(Arrival {
            at_ms: now_ms,
            bytes,
            lag_s,
        });
        // The last chunk that arrived on time (at the smallest lag, within a chunk's
        // jitter): the backlog began after it.
        let least = self
            .chunks
            .iter()
            .map(|c| c.lag_s)
            .fold(f64::INFINITY, f64::min);
        if lag_s - least <= BEHIND_S {
            return None;
        }
        let on_time = self
            .chunks
            .iter()
            .rposition(|c| c.lag_s <= least + 0.1)
            .unwrap_or(0);
        let first = self.chunks[on_time].at_ms;
        // Half a second at least, so the sample is a rate, not one chunk's arrival.
        if now_ms - first < 500.0 {
            return None;
        }
        // What the link carried since: the bytes that came after it.
        let secs = (now_ms - first) / 1000.0;
        let bytes: u64 = self.chunks.iter().skip(on_time + 1).map(|c| c.bytes).sum();
        self.abr.loaded(&Sample {
            bytes,
            ttfb_ms: 0.0,
            total_ms: secs * 1000.0,
            media_s: secs,
            held: false,
        });
        self.decide(now_ms)
    }

    /// The rendition to probe now, if a probe is due at `now_ms`.
    pub fn probe_due(&mut self, now_ms: f64) -> Option<usize> {
        if now_ms < self.next_probe_ms {
            return None;
        }
        // Until the probe answers (or for the longest wait, if it never does).
        self.next_probe_ms = now_ms + PROBE_MAX_MS;
        self.probing = self.abr.above();
        self.probing
    }

    /// A probe's download completed at `now_ms`; some rendition to switch to.
    pub fn probed(&mut self, now_ms: f64, sample: &Sample) -> Option<usize> {
        self.abr.loaded(sample);
        let need = self
            .probing
            .take()
            .and_then(|j| self.abr.rendition(j))
            .map_or(f64::INFINITY, |r| {
                r.bandwidth as f64 / super::abr::UP_FACTOR
            });
        let secs = (sample.total_ms - sample.ttfb_ms) / 1000.0;
        let rate = sample.bytes as f64 * 8.0 / secs.max(0.001);
        if rate >= need {
            self.probe_wait_ms = PROBE_SLOW_MS;
            self.next_probe_ms = now_ms + PROBE_FAST_MS;
        } else {
            self.next_probe_ms = now_ms + self.probe_wait_ms;
            self.probe_wait_ms = (self.probe_wait_ms * 2.0).min(PROBE_MAX_MS);
        }
        self.decide(now_ms)
    }

    /// The probe under way failed at `now_ms` (no playlist, no segment): the next one
    /// waits as after one that found no room.
    pub fn probe_failed(&mut self, now_ms: f64) {
        self.probing = None;
        self.next_probe_ms = now_ms + self.probe_wait_ms;
        self.probe_wait_ms = (self.probe_wait_ms * 2.0).min(PROBE_MAX_MS);
    }

    /// Decides again now (the caps or the viewer's pick changed): a new rendition, if
    /// it differs.
    pub fn decide(&mut self, now_ms: f64) -> Option<usize> {
        let i = self.abr.next(now_ms, f64::INFINITY, DECISION_S);
        if i == self.current {
            return None;
        }
        let bandwidth = |k: usize| self.abr.rendition(k).map_or(0, |r| r.bandwidth);
        if bandwidth(i) < bandwidth(self.current) {
            // Down: no probe until the hold has passed.
            self.next_probe_ms = now_ms + super::abr::UP_HOLD_MS;
        }
        self.current = i;
        // The lags seen were the other rendition's.
        self.chunks.clear();
        Some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::player::abr::Rendition;

    /// The ladder test's: source 640×360 at 1.6 Mbit/s, 320×180 at 400 kbit/s (the
    /// playlist's order: source first).
    fn ladder() -> Abr {
        Abr::new(
            vec![
                Rendition {
                    bandwidth: 1_600_000,
                    width: 640,
                    height: 360,
                },
                Rendition {
                    bandwidth: 400_000,
                    width: 320,
                    height: 180,
                },
            ],
            4_000_000.0,
        )
    }

    /// `seconds` of 100 ms chunks of `kbps` media over a link of `link_kbps`, from
    /// `t0_ms` (media time = wall time + `offset_s`, the clocks' difference).
    fn feed(
        p: &mut PushAbr,
        t0_ms: f64,
        seconds: f64,
        kbps: f64,
        link_kbps: f64,
        offset_s: f64,
    ) -> (f64, Option<usize>) {
        let bytes = (kbps * 100.0 / 8.0) as u64;
        let mut arrive = t0_ms;
        let mut out = None;
        for k in 0..(seconds * 10.0) as usize {
            let made = t0_ms + k as f64 * 100.0;
            // Sent when made, on a link that carries `link_kbps`.
            arrive = arrive.max(made) + bytes as f64 * 8.0 / link_kbps;
            let start = made / 1000.0 - 0.1 + offset_s;
            if let Some(i) = p.chunk(arrive, bytes, start) {
                out = Some(i);
                break;
            }
        }
        (arrive, out)
    }

    #[test]
    fn lucarnes_playlists_map_to_their_pushes() {
        assert_eq!(
            push_url("https://h/live/demo/source.m3u8").as_deref(),
            Some("wss://h/live/demo/ll")
        );
        assert_eq!(
            push_url("http://h:8080/live/a/360p/index.m3u8?x=1").as_deref(),
            Some("ws://h:8080/live/a/360p/ll")
        );
        assert_eq!(push_url("https://cdn/x/stream_1.m3u8"), None);
        assert_eq!(push_url("file:///live/index.m3u8"), None);
    }

    #[test]
    fn the_caps_can_rule_out_the_rung_the_push_started_on() {
        let mut abr = ladder();
        abr.set_size(200.0, 112.0, 1.0);
        let mut p = PushAbr::new(abr, 0, 0.0);
        assert_eq!(p.decide(0.0), Some(1));
        let mut p = PushAbr::new(ladder(), 0, 0.0);
        assert_eq!(p.decide(0.0), None);
    }

    #[test]
    fn a_link_that_keeps_up_never_switches_whatever_the_clocks() {
        for offset in [0.0, -3.7, 12.0] {
            let mut p = PushAbr::new(ladder(), 0, 0.0);
            assert_eq!(p.current(), 0);
            let (_, out) = feed(&mut p, 0.0, 30.0, 1_600.0, 4_000.0, offset);
            assert_eq!(out, None, "offset {offset}");
        }
    }

    #[test]
    fn a_link_below_the_bitrate_steps_down_within_seconds() {
        let mut p = PushAbr::new(ladder(), 0, 0.0);
        let (t, _) = feed(&mut p, 0.0, 5.0, 1_600.0, 4_000.0, 0.0);
        let (at, out) = feed(&mut p, t, 20.0, 1_600.0, 1_000.0, 0.0);
        assert_eq!(out, Some(1));
        // 0.6 s of backlog at a 0.6 Mbit/s shortfall of 1.6: about 1.6 s.
        assert!(at - t < 3_000.0, "stepped down after {} ms", at - t);
        // No probe within the hold.
        assert_eq!(p.probe_due(at + 1_000.0), None);
    }

    #[test]
    fn a_probe_that_finds_room_goes_up_and_one_that_does_not_stays() {
        let mut p = PushAbr::new(ladder(), 0, 0.0);
        let (t, _) = feed(&mut p, 0.0, 2.0, 1_600.0, 4_000.0, 0.0);
        feed(&mut p, t, 20.0, 1_600.0, 1_000.0, 0.0);
        assert_eq!(p.current(), 1);
        let later = 60_000.0;
        assert_eq!(p.probe_due(later), Some(0));
        assert_eq!(p.probe_due(later + 1.0), None, "one probe at a time");
        // A second of the source (200 KB) in 1.5 s: 1.07 Mbit/s, too slow.
        let slow = Sample {
            bytes: 200_000,
            ttfb_ms: 50.0,
            total_ms: 1_550.0,
            media_s: 1.0,
            held: false,
        };
        assert_eq!(p.probed(later, &slow), None);
        // The link is back at 8 Mbit/s: after a few probes the estimate affords it.
        let fast = Sample {
            total_ms: 250.0,
            ..slow
        };
        let mut up = None;
        let mut probes = 0;
        for k in 1..200 {
            let now = later + k as f64 * 500.0;
            if up.is_none() && p.probe_due(now).is_some() {
                probes += 1;
                up = p.probed(now, &fast).map(|i| (i, now - later));
            }
        }
        let (to, after) = up.expect("went up");
        assert_eq!(to, 0);
        // The slow probe's wait (8 s), then a probe every 3 s.
        assert!(after < 40_000.0, "up after {after} ms, {probes} probes");
        assert_eq!(
            p.probe_due(later + 200_000.0),
            None,
            "nothing above the top"
        );
    }

    #[test]
    fn nonsense_times_are_ignored() {
        let mut p = PushAbr::new(ladder(), 0, 0.0);
        assert_eq!(p.chunk(1_000.0, 100, f64::NAN), None);
        assert_eq!(p.chunk(f64::INFINITY, 100, 1.0), None);
        for k in 0..10_000 {
            p.chunk(k as f64, 10, k as f64 / 1000.0);
        }
        assert!(p.chunks.len() <= MAX_CHUNKS);
    }
}
