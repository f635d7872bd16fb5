//! Whether a relayed chunk continues the edge's copy of a stream, is one it has already
//! (a reconnection's backlog overlaps what came before), or follows a hole.
//!
//! The edge's playlist must list the origin's segments with the origin's numbers and
//! bytes: a segment missing a part would be served under the origin's name with other
//! bytes, and a segment number skipped would shift every later one for a player that
//! counts from `EXT-X-MEDIA-SEQUENCE`. So a hole is never papered over: the copy is
//! restarted at the next keyframe (a new local stream, see `super`), and what lies
//! between is dropped.
//!
//! After a reconnection, the copy's last segment may have lost its tail while the edge
//! was away: the next segment's keyframe continues the copy only once the new
//! subscription's backlog showed that segment (then its missing parts come with it).
//! A backlog that starts later (the origin was away longer than its window) restarts
//! the copy.
//!
//! Pure: the caller feeds `(msn, part)` pairs.

/// What to do with a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It follows what the copy has: push it.
    Append,
    /// Already had, or undecodable after a hole: drop it.
    Skip,
    /// A keyframe after a hole: start a new copy with it.
    Restart,
}

/// The last chunk appended, and whether a hole was seen since.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Continuity {
    last: Option<(u64, u32)>,
    broken: bool,
    /// Reconnected, and the new backlog has not shown the last segment yet.
    unverified: bool,
}

impl Continuity {
    /// A new subscription starts: see the module doc.
    pub fn reconnected(&mut self) {
        self.unverified = self.last.is_some();
    }

    /// Decides for the chunk `part` of segment `msn`, and remembers it when it is taken.
    pub fn check(&mut self, msn: u64, part: u32) -> Verdict {
        let keyframe = part == 0;
        if self.last.is_some_and(|(m, _)| m == msn) {
            self.unverified = false;
        }
        let verdict = match self.last {
            None if keyframe => Verdict::Append,
            None => Verdict::Skip,
            Some(last) if (msn, part) <= last => Verdict::Skip,
            Some((m, p)) if !self.broken && msn == m && Some(part) == p.checked_add(1) => {
                Verdict::Append
            }
            Some((m, _))
                if !self.broken
                    && !self.unverified
                    && keyframe
                    && Some(msn) == m.checked_add(1) =>
            {
                Verdict::Append
            }
            Some(_) if keyframe => Verdict::Restart,
            Some(_) => {
                self.broken = true;
                Verdict::Skip
            }
        };
        if verdict != Verdict::Skip {
            self.last = Some((msn, part));
            self.broken = false;
            self.unverified = false;
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Verdict::*;

    fn run(pairs: &[(u64, u32)]) -> Vec<Verdict> {
        let mut c = Continuity::default();
        pairs.iter().map(|&(m, p)| c.check(m, p)).collect()
    }

    #[test]
    fn a_copy_starts_at_a_keyframe_and_follows_parts_and_segments() {
        assert_eq!(
            run(&[(9, 3), (10, 0), (10, 1), (10, 2), (11, 0), (11, 1)]),
            [Skip, Append, Append, Append, Append, Append]
        );
    }

    #[test]
    fn a_reconnection_backlog_that_overlaps_is_skipped_up_to_the_new_parts() {
        // Had up to 11.1; the new subscription sends the window again.
        assert_eq!(
            run(&[
                (10, 0),
                (10, 1),
                (11, 0),
                (11, 1),
                (10, 0),
                (10, 1),
                (11, 0),
                (11, 1),
                (11, 2)
            ]),
            [Append, Append, Append, Append, Skip, Skip, Skip, Skip, Append]
        );
    }

    #[test]
    fn after_a_reconnection_the_next_segment_follows_only_a_segment_the_backlog_showed() {
        let mut c = Continuity::default();
        for p in 0..4 {
            c.check(10, p);
        }
        // Back while segment 10 is still in the window: its tail comes, then 11.
        c.reconnected();
        let seen: Vec<Verdict> = [(9, 0), (10, 0), (10, 3), (10, 4), (11, 0)]
            .iter()
            .map(|&(m, p)| c.check(m, p))
            .collect();
        assert_eq!(seen, [Skip, Skip, Skip, Append, Append]);
        // Back after segment 11 left the window: its tail is lost, the copy restarts.
        c.reconnected();
        assert_eq!(c.check(12, 0), Restart);
        assert_eq!(c.check(12, 1), Append);
    }

    #[test]
    fn a_lost_part_restarts_the_copy_at_the_next_keyframe() {
        assert_eq!(
            run(&[(10, 0), (10, 1), (10, 3), (10, 4), (11, 0), (11, 1)]),
            [Append, Append, Skip, Skip, Restart, Append]
        );
    }

    #[test]
    fn a_skipped_segment_restarts_the_copy() {
        assert_eq!(
            run(&[(10, 0), (10, 1), (13, 0), (13, 1)]),
            [Append, Append, Restart, Append]
        );
    }
}
