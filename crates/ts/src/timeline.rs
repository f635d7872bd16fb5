//! One continuous timeline out of 33-bit MPEG-TS timestamps.
//!
//! Owns the unwrapping of the 90 kHz clock (it wraps every 2^33 ticks, about 26.5 h)
//! and the offset that places a stream's timestamps on the playlist's timeline. Audio
//! and video share the one offset, which is what keeps them in sync. Pure arithmetic.

/// The PTS/DTS clock wraps at 2^33 ticks.
pub(crate) const WRAP: u64 = 1 << 33;
/// Ticks per second of PTS and DTS.
pub(crate) const CLOCK: u64 = 90_000;

/// Where the next segment's timestamps should go, given by the caller with a
/// discontinuity (or the first segment): the segment's start on the playlist timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct StartTime(u64);

impl StartTime {
    /// From seconds (e.g. the sum of the playlist's `EXTINF` before the segment).
    /// Negative or NaN values count as 0, values past [`StartTime::MAX`] as that.
    pub fn from_seconds(seconds: f64) -> Self {
        // `as` saturates: NaN and negatives become 0, huge values u64::MAX.
        Self::from_ticks((seconds * CLOCK as f64).round() as u64)
    }

    /// From 90 kHz ticks, at most [`StartTime::MAX`].
    pub fn from_ticks(ticks_90k: u64) -> Self {
        Self(ticks_90k.min(Self::MAX.0))
    }

    /// The latest start accepted: 2^52 ticks, over 1500 years. The bound keeps every
    /// timestamp computation far from overflowing.
    pub const MAX: StartTime = StartTime(1 << 52);

    /// In 90 kHz ticks.
    pub fn ticks(self) -> u64 {
        self.0
    }

    /// In seconds.
    pub fn seconds(self) -> f64 {
        self.0 as f64 / CLOCK as f64
    }
}

/// Unwraps 33-bit timestamps into a 64-bit count, each relative to the previous one.
#[derive(Debug, Clone, Default)]
pub(crate) struct Unwrapper {
    /// The last unwrapped timestamp, `None` until the first (and after a discontinuity).
    last: Option<u64>,
}

impl Unwrapper {
    /// Forgets the reference: the next timestamp starts a new count (a discontinuity,
    /// where the stream's clock restarts unrelated to the old one).
    pub(crate) fn reset(&mut self) {
        self.last = None;
    }

    /// The unwrapped value of `ts` (taken modulo 2^33): of the values congruent to it,
    /// the nearest to the previous timestamp. Audio and video interleave with offsets of
    /// a second at most, far from the 13 h that would make this ambiguous.
    pub(crate) fn unwrap(&mut self, ts: u64) -> u64 {
        let ts = ts & (WRAP - 1);
        let value = match self.last {
            None => ts,
            Some(last) => {
                let base = (last & !(WRAP - 1)) | ts;
                [base.checked_sub(WRAP), Some(base), base.checked_add(WRAP)]
                    .into_iter()
                    .flatten()
                    .min_by_key(|v| v.abs_diff(last))
                    .unwrap_or(base)
            }
        };
        self.last = Some(value);
        value
    }
}

/// Converts `ticks` of one timescale to another, rounding to nearest.
pub(crate) fn rescale(ticks: u64, from: u32, to: u32) -> u64 {
    if from == to || from == 0 {
        return ticks;
    }
    let v = (u128::from(ticks) * u128::from(to) + u128::from(from / 2)) / u128::from(from);
    u64::try_from(v).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_keep_counting_across_the_33_bit_wrap() {
        let mut u = Unwrapper::default();
        assert_eq!(u.unwrap(WRAP - 3000), WRAP - 3000);
        assert_eq!(u.unwrap(WRAP - 6000), WRAP - 6000, "a B-frame before");
        assert_eq!(u.unwrap(0), WRAP);
        assert_eq!(
            u.unwrap(WRAP - 1500),
            WRAP - 1500,
            "late audio, before the wrap"
        );
        assert_eq!(u.unwrap(3000), WRAP + 3000);
        // A second wrap.
        let mut last = 0;
        for i in 0..40u64 {
            last = u.unwrap((WRAP + 3000 + i * (WRAP / 16)) % WRAP);
        }
        assert_eq!(last, WRAP + 3000 + 39 * (WRAP / 16));
    }

    #[test]
    fn after_a_reset_the_count_starts_from_the_stream() {
        let mut u = Unwrapper::default();
        u.unwrap(WRAP - 10);
        u.reset();
        assert_eq!(u.unwrap(5), 5);
    }

    #[test]
    fn start_times_and_rescaling_round_to_nearest() {
        assert_eq!(StartTime::from_seconds(1.5).ticks(), 135_000);
        assert_eq!(StartTime::from_seconds(-2.0).ticks(), 0);
        assert_eq!(StartTime::from_seconds(f64::NAN).ticks(), 0);
        assert_eq!(StartTime::from_seconds(1e300), StartTime::MAX);
        assert_eq!(rescale(90_000, 90_000, 48_000), 48_000);
        assert_eq!(rescale(1, 90_000, 48_000), 1);
        assert_eq!(rescale(u64::MAX, 1, 2), u64::MAX);
    }
}
