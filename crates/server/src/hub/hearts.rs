//! When a room writes its hearts total to the store: at most once per [`SAVE_EVERY`]
//! while hearts flow, and as soon as they stop. Pure, with the time passed in.
//!
//! Before, the total was written only on a tick without hearts, so a crash while hearts
//! flowed lost everything since the last lull; now it loses at most [`SAVE_EVERY`] of
//! them, for at most one store write per second per room.

use std::time::{Duration, Instant};

/// The longest a changed total waits to be written while hearts keep coming.
pub(crate) const SAVE_EVERY: Duration = Duration::from_secs(1);

/// Whether to write `total` now; `saved` is what the store has, `saved_at` when it was
/// written (`None`: never by this process), `flowing` whether hearts came this tick.
pub(crate) fn save_due(
    total: u64,
    saved: u64,
    saved_at: Option<Instant>,
    flowing: bool,
    now: Instant,
) -> bool {
    total != saved && (!flowing || saved_at.is_none_or(|at| now >= at + SAVE_EVERY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_total_is_saved_once_a_second_while_hearts_flow_and_when_they_stop() {
        let t0 = Instant::now();
        assert!(!save_due(5, 5, None, true, t0), "nothing new");
        assert!(save_due(6, 5, None, true, t0), "first change");
        let ms = |n| t0 + Duration::from_millis(n);
        assert!(!save_due(9, 6, Some(t0), true, ms(200)));
        assert!(!save_due(9, 6, Some(t0), true, ms(999)));
        assert!(save_due(9, 6, Some(t0), true, ms(1000)));
        // Hearts stopped: at once.
        assert!(save_due(9, 6, Some(t0), false, ms(200)));
    }
}
