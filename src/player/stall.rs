//! The stall watch: is the playhead moving, and if not, what gets it going again. Pure:
//! the engine passes the playhead and the buffered ranges each tick, tells the watch
//! about every seek it makes itself, and carries out the [`Stall`] it gets back. It
//! must not read the browser nor decide the status text (that is the recovery policy's).
//!
//! Why each rule exists (all seen on WebKitGTK under load):
//! - A playhead stopped within [`buffer::STUCK_AT_END`] of its range's end jumps the
//!   hole after it: WebKitGTK stopped 0.105 s short of a missing segment after a rate
//!   change and froze for 4 s (2 of 14 e2e runs before, 0 of 14 after).
//! - Stuck with media ahead, the playhead is nudged forward, as players do after a
//!   decoder hiccup; [`MAX_NUDGES`] nudges that do not get it moving mean the pipeline
//!   hangs, and the engine rebuilds the MediaSource (WebKitGTK hung in its first seek,
//!   `seeking` true and readyState 1, no frame for 20 s, in 3 of 6 runs).
//! - A seek the engine made itself is not playback: progress is measured from where the
//!   engine put the playhead ([`StallWatch::moved_to`]), else every nudge would look like
//!   the playhead moving and a hung pipeline would be nudged forever.

use super::buffer::{self, Range};

/// Ticks stalled with media ahead before a nudge, and between nudges.
pub const NUDGE_AFTER_TICKS: u32 = 4;
/// Nudges that did not get playback going before the MediaSource is rebuilt.
pub const MAX_NUDGES: u32 = 3;
/// Largest hole jumped without asking anyone (a missing segment).
pub const MAX_GAP_JUMP: f64 = 6.0;
/// How far a nudge moves the playhead, seconds.
pub const NUDGE: f64 = 0.1;
/// Movement under this is no movement (currentTime jitters by microseconds).
const MOVED: f64 = 0.01;

/// What the engine should do after a tick.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stall {
    /// The playhead moved by itself: playing.
    Advancing,
    /// Not moving for one tick: too early to say.
    Unsure,
    /// Stalled; nothing to do but wait for media.
    Waiting,
    /// Stalled at the end of a range: seek to this position past the hole.
    JumpHole(f64),
    /// Stalled with media ahead: seek to this position, a little forward.
    Nudge(f64),
    /// Nudges did not help: the pipeline hangs, rebuild it.
    Hung,
}

impl Stall {
    /// The playhead is not moving (a waiting status is due).
    pub fn stalled(self) -> bool {
        !matches!(self, Stall::Advancing | Stall::Unsure)
    }
}

/// Progress of the playhead between ticks.
#[derive(Debug, Default, Clone)]
pub struct StallWatch {
    /// Where the playhead was last seen (or put by the engine).
    last_position: f64,
    /// Consecutive ticks without movement.
    stalled_ticks: u32,
    /// Nudges since the playhead last moved by itself.
    nudges: u32,
}

impl StallWatch {
    /// Forgets the counters (a new MediaSource); the position is kept.
    pub fn reset(&mut self) {
        self.stalled_ticks = 0;
        self.nudges = 0;
    }

    /// The engine put the playhead at `pos` (a seek, a jump, a nudge, the start): not
    /// playback progress.
    pub fn moved_to(&mut self, pos: f64) {
        self.last_position = pos;
    }

    /// Records `pos` and says whether it moved since the last look.
    pub fn advanced(&mut self, pos: f64) -> bool {
        let moved = (pos - self.last_position).abs() > MOVED;
        self.last_position = pos;
        moved
    }

    /// One tick of a playing (not paused) video at `pos` with `ranges` buffered.
    pub fn tick(&mut self, pos: f64, ranges: &[Range]) -> Stall {
        if self.advanced(pos) {
            self.reset();
            return Stall::Advancing;
        }
        self.stalled_ticks += 1;
        if self.stalled_ticks < 2 {
            return Stall::Unsure;
        }
        if let Some(t) = buffer::gap_jump(ranges, pos, MAX_GAP_JUMP) {
            return Stall::JumpHole(t);
        }
        if buffer::ahead(ranges, pos) < buffer::STUCK_AT_END
            || self.stalled_ticks < NUDGE_AFTER_TICKS
        {
            return Stall::Waiting;
        }
        self.stalled_ticks = 0;
        if self.nudges < MAX_NUDGES {
            self.nudges += 1;
            Stall::Nudge(pos + NUDGE)
        } else {
            self.nudges = 0;
            Stall::Hung
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: f64, end: f64) -> Range {
        Range { start, end }
    }

    /// Ticks a watch whose playhead stays at `pos`, carrying out its seeks as a video
    /// that does not play would (the playhead lands where it is put, then stays).
    fn stuck(watch: &mut StallWatch, mut pos: f64, ranges: &[Range], ticks: usize) -> Vec<Stall> {
        let mut out = Vec::new();
        for _ in 0..ticks {
            let s = watch.tick(pos, ranges);
            if let Stall::JumpHole(t) | Stall::Nudge(t) = s {
                pos = t;
                watch.moved_to(t);
            }
            out.push(s);
        }
        out
    }

    #[test]
    fn a_moving_playhead_is_playing() {
        let mut w = StallWatch::default();
        w.moved_to(1.0);
        let ranges = [r(0.0, 10.0)];
        for i in 1..20 {
            assert_eq!(w.tick(1.0 + f64::from(i) * 0.2, &ranges), Stall::Advancing);
        }
    }

    #[test]
    fn one_still_tick_is_not_a_stall() {
        let mut w = StallWatch::default();
        w.moved_to(2.0);
        assert_eq!(w.tick(2.0, &[r(0.0, 10.0)]), Stall::Unsure);
        assert!(!Stall::Unsure.stalled());
    }

    #[test]
    fn stuck_a_frame_short_of_a_hole_jumps_it() {
        // WebKitGTK after a rate change: buffer [0-5] [6.04-12], playhead at 4.895.
        let ranges = [r(0.0, 5.0), r(6.04, 12.0)];
        let mut w = StallWatch::default();
        w.moved_to(4.895);
        let seen = stuck(&mut w, 4.895, &ranges, 2);
        assert_eq!(seen, vec![Stall::Unsure, Stall::JumpHole(6.05)]);
    }

    #[test]
    fn out_of_media_waits_without_seeking() {
        let mut w = StallWatch::default();
        w.moved_to(9.98);
        let seen = stuck(&mut w, 9.98, &[r(0.0, 10.0)], 12);
        assert!(seen[1..].iter().all(|s| *s == Stall::Waiting), "{seen:?}");
    }

    #[test]
    fn a_hiccup_with_media_ahead_is_nudged_after_four_ticks() {
        let mut w = StallWatch::default();
        w.moved_to(3.0);
        let seen = stuck(&mut w, 3.0, &[r(0.0, 10.0)], 4);
        assert_eq!(
            seen,
            vec![
                Stall::Unsure,
                Stall::Waiting,
                Stall::Waiting,
                Stall::Nudge(3.1)
            ]
        );
        // Playback resumes after the nudge: the count starts over.
        assert_eq!(w.tick(3.3, &[r(0.0, 10.0)]), Stall::Advancing);
        assert_eq!(w.nudges, 0);
    }

    #[test]
    fn a_pipeline_hung_in_its_first_seek_is_rebuilt_after_three_nudges() {
        // WebKitGTK: seeking to the start position, readyState 1, seconds buffered ahead,
        // and no frame ever. Three nudges move the playhead (the engine's own seeks), the
        // fourth verdict is a rebuild.
        let mut w = StallWatch::default();
        w.moved_to(20.0);
        let seen = stuck(&mut w, 20.0, &[r(18.0, 26.0)], 16);
        let nudges: Vec<_> = seen
            .iter()
            .filter(|s| matches!(s, Stall::Nudge(_)))
            .collect();
        assert_eq!(nudges.len(), 3, "{seen:?}");
        assert_eq!(seen.last(), Some(&Stall::Hung), "{seen:?}");
        assert!(seen.iter().all(|s| *s != Stall::Advancing));
    }

    #[test]
    fn a_seek_the_engine_made_is_not_playback_progress() {
        let ranges = [r(0.0, 30.0)];
        let mut w = StallWatch::default();
        w.moved_to(5.0);
        // Stalled, then the engine seeks (latency, go-live, a viewer's seek)...
        assert_eq!(w.tick(5.0, &ranges), Stall::Unsure);
        w.moved_to(12.0);
        // ...and the playhead sits where it was put: still a stall, not progress.
        let after = w.tick(12.0, &ranges);
        assert!(after.stalled(), "{after:?}");
        // Whereas a playhead found elsewhere than it was put did move by itself.
        w.moved_to(12.0);
        assert_eq!(w.tick(12.2, &ranges), Stall::Advancing);
    }

    #[test]
    fn a_hole_too_wide_is_not_jumped() {
        let mut w = StallWatch::default();
        w.moved_to(4.9);
        let seen = stuck(&mut w, 4.9, &[r(0.0, 5.0), r(20.0, 30.0)], 6);
        assert!(seen.iter().all(|s| !matches!(s, Stall::JumpHole(_))));
    }
}
