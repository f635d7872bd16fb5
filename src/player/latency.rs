//! Live latency policy: how far behind the live edge to play, and how to get there.
//!
//! Small drifts are corrected by playing slightly faster (inaudible within the bounds,
//! browsers keep the pitch); large ones by seeking back to live, as when a hidden tab
//! becomes visible again. A catch-up starts only past `catch_up_after` and then runs
//! until the target is reached (hysteresis): every rate change costs something on some
//! engines (WebKitGTK flushes its pipeline, a visible freeze), so the rate is not
//! touched for drifts a viewer would not notice. Pure, so every branch is tested natively.

/// The policy's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyPolicy {
    /// Seconds behind the live edge to aim for.
    pub target: f64,
    /// Fastest catch-up playback rate.
    pub max_rate: f64,
    /// Behind the target by more than this many seconds: seek instead of speeding up.
    pub jump_after: f64,
    /// Behind the target by more than this many seconds at normal speed: start a
    /// catch-up (which then goes on down to the target).
    pub catch_up_after: f64,
    /// Never speed up with less than this many seconds buffered ahead.
    pub min_ahead: f64,
    /// At or ahead of the target with less than this many seconds buffered ahead, ease
    /// off to 0.97 rather than stall (0: never).
    pub ease_off_below: f64,
}

impl LatencyPolicy {
    /// The starting policy: the low-latency push's when the stream has one, else HLS's
    /// (its hold-back comes with the playlist).
    pub fn for_sources(push: bool) -> LatencyPolicy {
        if push {
            LatencyPolicy::low_latency()
        } else {
            LatencyPolicy::hls(1.0)
        }
    }

    /// For the low-latency push, where the edge is the newest chunk received.
    pub fn low_latency() -> Self {
        LatencyPolicy {
            target: 0.45,
            max_rate: 1.15,
            jump_after: 2.0,
            catch_up_after: 0.05,
            min_ahead: 0.15,
            // Chunks arrive every few hundredths of a second: a late one is absorbed.
            ease_off_below: 0.075,
        }
    }

    /// For LL-HLS parts, `hold_back` (the playlist's `PART-HOLD-BACK`) behind the
    /// newest part: like the push, but media comes a part at a time, so the catch-up
    /// waits for a part's worth of drift and never speeds up on less than a part.
    pub fn ll_hls(hold_back: f64, part_target: f64) -> Self {
        let part = if part_target.is_finite() && part_target > 0.0 {
            part_target.min(2.0)
        } else {
            0.2
        };
        let target = if hold_back.is_finite() && hold_back >= part {
            hold_back.min(6.0)
        } else {
            3.0 * part
        };
        LatencyPolicy {
            target,
            catch_up_after: part.max(0.05),
            min_ahead: part,
            ease_off_below: 0.75 * part,
            ..LatencyPolicy::low_latency()
        }
    }

    /// For HLS, following the usual three-target-durations hold back.
    pub fn hls(target_duration: f64) -> Self {
        let td = if target_duration.is_finite() && target_duration > 0.0 {
            target_duration
        } else {
            2.0
        };
        LatencyPolicy {
            target: 3.0 * td,
            max_rate: 1.1,
            jump_after: (3.0 * td).max(4.0),
            // Half the hold-back: three segments behind plays as well as four and a half
            // (hls.js does not speed up at all by default).
            catch_up_after: 1.5 * td,
            min_ahead: td.min(1.0),
            // Never: media comes a whole segment at a time, so 3 % slower for the last
            // half second buys 15 ms, and the rate change itself stalls WebKitGTK (it
            // restarts its pipeline, which then waits for more than is buffered).
            ease_off_below: 0.0,
        }
    }
}

/// What the player sees at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// `video.currentTime`.
    pub position: f64,
    /// Media time of the live edge (newest media the source knows of).
    pub edge: f64,
    /// Seconds buffered contiguously ahead of `position`.
    pub ahead: f64,
    /// Media is buffered past a hole that ends `ahead` (a missing segment): the
    /// playhead will jump it, so a thin `ahead` is not the live edge.
    pub beyond_hole: bool,
    /// The tab just came back to the foreground.
    pub became_visible: bool,
    /// `video.playbackRate`: above 1, a catch-up is under way.
    pub rate: f64,
}

/// What to do about latency.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LatencyAction {
    /// Set `playbackRate`.
    Rate(f64),
    /// Seek to this media time (back to live).
    Seek(f64),
}

impl LatencyPolicy {
    /// Latency at this observation.
    pub fn latency(&self, o: &Observation) -> f64 {
        o.edge - o.position
    }

    /// Decides the playback rate, or a jump to live.
    pub fn decide(&self, o: &Observation) -> LatencyAction {
        let behind = self.latency(o) - self.target;
        if behind > self.jump_after || (o.became_visible && behind > 0.5) {
            return LatencyAction::Seek(o.edge - self.target);
        }
        let catching_up = o.rate > 1.0;
        let start_at = if catching_up {
            0.05
        } else {
            self.catch_up_after.max(0.05)
        };
        if behind > start_at && o.ahead > self.min_ahead {
            // Proportional catch-up: about a second of correction per second of drift
            // at the top rate, never jerky near the target.
            let rate = ((1.0 + (behind * 0.25).min(self.max_rate - 1.0)) * 100.0).round() / 100.0;
            // A catch-up under way keeps its rate until it is done: no steps down on
            // the way, each of which would be one more rate change.
            let rate = if catching_up {
                rate.max(o.rate.min(self.max_rate))
            } else {
                rate
            };
            return LatencyAction::Rate(rate);
        }
        if o.ahead < self.ease_off_below && behind < 0.0 && !o.beyond_hole {
            // Too close to the edge to absorb jitter: ease off slightly rather than stall.
            // (Not at a hole: it is jumped, and a rate change there is one more pipeline
            // restart on WebKitGTK.)
            return LatencyAction::Rate(0.97);
        }
        LatencyAction::Rate(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ll_hls_follows_the_part_hold_back_a_part_at_a_time() {
        let p = LatencyPolicy::ll_hls(0.5, 0.1);
        assert_eq!(p.target, 0.5);
        assert_eq!(p.catch_up_after, 0.1);
        assert_eq!(p.min_ahead, 0.1);
        assert!((p.ease_off_below - 0.075).abs() < 1e-9);
        assert_eq!(p.jump_after, LatencyPolicy::low_latency().jump_after);
        // Nonsense from a playlist falls back to three parts, or to sane bounds.
        assert!((LatencyPolicy::ll_hls(0.0, 0.2).target - 0.6).abs() < 1e-9);
        assert!((LatencyPolicy::ll_hls(f64::NAN, f64::NAN).target - 0.6).abs() < 1e-9);
        assert_eq!(LatencyPolicy::ll_hls(60.0, 1.0).target, 6.0);
    }

    fn obs(position: f64, edge: f64, ahead: f64) -> Observation {
        Observation {
            position,
            edge,
            ahead,
            beyond_hole: false,
            became_visible: false,
            rate: 1.0,
        }
    }

    #[test]
    fn on_target_plays_at_normal_speed() {
        let p = LatencyPolicy::low_latency();
        assert_eq!(
            p.decide(&obs(100.0, 100.45, 0.45)),
            LatencyAction::Rate(1.0)
        );
    }

    #[test]
    fn slightly_behind_speeds_up_within_bounds() {
        let p = LatencyPolicy::low_latency();
        let LatencyAction::Rate(r) = p.decide(&obs(100.0, 100.85, 0.85)) else {
            panic!("seek")
        };
        assert!(r > 1.0 && r <= p.max_rate, "rate {r}");
        let LatencyAction::Rate(r) = p.decide(&obs(100.0, 102.2, 2.2)) else {
            panic!("seek")
        };
        assert!(r <= p.max_rate, "rate {r} capped");
    }

    #[test]
    fn no_catch_up_without_buffer_ahead() {
        let p = LatencyPolicy::low_latency();
        assert_eq!(p.decide(&obs(100.0, 101.0, 0.05)), LatencyAction::Rate(1.0));
    }

    #[test]
    fn far_behind_jumps_to_live() {
        let p = LatencyPolicy::low_latency();
        assert_eq!(
            p.decide(&obs(100.0, 110.0, 0.1)),
            LatencyAction::Seek(110.0 - p.target)
        );
    }

    #[test]
    fn returning_tab_jumps_even_when_modestly_behind() {
        let p = LatencyPolicy::low_latency();
        let mut o = obs(100.0, 101.5, 1.5);
        assert!(matches!(p.decide(&o), LatencyAction::Rate(_)));
        o.became_visible = true;
        assert_eq!(p.decide(&o), LatencyAction::Seek(101.5 - p.target));
    }

    #[test]
    fn starving_near_the_edge_slows_down() {
        let p = LatencyPolicy::low_latency();
        assert_eq!(
            p.decide(&obs(100.0, 100.05, 0.05)),
            LatencyAction::Rate(0.97)
        );
    }

    #[test]
    fn hls_never_eases_off() {
        let p = LatencyPolicy::hls(1.0);
        assert_eq!(p.decide(&obs(100.0, 102.5, 0.05)), LatencyAction::Rate(1.0));
    }

    #[test]
    fn a_hole_ahead_is_not_starvation() {
        let p = LatencyPolicy::low_latency();
        let at_hole = Observation {
            beyond_hole: true,
            ..obs(100.0, 100.05, 0.05)
        };
        assert_eq!(p.decide(&at_hole), LatencyAction::Rate(1.0));
        assert_eq!(
            p.decide(&obs(100.0, 100.05, 0.05)),
            LatencyAction::Rate(0.97),
            "the same thin buffer at the edge eases off"
        );
    }

    #[test]
    fn hls_tolerates_a_small_drift_then_catches_up_to_the_target() {
        let p = LatencyPolicy::hls(1.0);
        // 1 s behind the 3 s target at normal speed: left alone.
        assert_eq!(p.decide(&obs(100.0, 104.0, 4.0)), LatencyAction::Rate(1.0));
        // 2 s behind: a catch-up starts...
        let LatencyAction::Rate(r) = p.decide(&obs(100.0, 105.0, 5.0)) else {
            panic!("seek")
        };
        assert!(r > 1.0, "rate {r}");
        // ...and, once under way, goes on below the drift that starts one.
        let mut o = obs(100.0, 103.5, 3.5);
        o.rate = r;
        let LatencyAction::Rate(r2) = p.decide(&o) else {
            panic!("seek")
        };
        assert!(r2 > 1.0, "still catching up at 0.5 s behind: {r2}");
        // On target: normal speed.
        o.edge = 103.0;
        assert_eq!(p.decide(&o), LatencyAction::Rate(1.0));
    }

    #[test]
    fn hls_policy_follows_target_duration() {
        let p = LatencyPolicy::hls(2.0);
        assert_eq!(p.target, 6.0);
        assert_eq!(LatencyPolicy::hls(f64::NAN).target, 6.0);
    }
}
