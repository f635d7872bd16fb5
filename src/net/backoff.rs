//! Exponential backoff with full jitter, for every reconnect and retry.
//!
//! Jitter spreads the reconnects of thousands of viewers after an origin restart; the
//! random source is an argument so the schedule is tested deterministically.

/// Retry schedule.
#[derive(Debug, Clone)]
pub struct Backoff {
    /// First delay ceiling, milliseconds.
    pub base_ms: f64,
    /// Largest delay ceiling, milliseconds.
    pub max_ms: f64,
    attempt: u32,
}

impl Backoff {
    /// A schedule from `base_ms` doubling up to `max_ms`.
    pub fn new(base_ms: f64, max_ms: f64) -> Self {
        Backoff {
            base_ms,
            max_ms,
            attempt: 0,
        }
    }

    /// Failures since the last success.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// The next delay; `unit` is a uniform random number in `[0, 1)`. The delay lies in
    /// `[ceiling/2, ceiling)`, so retries never bunch at zero.
    pub fn next_delay(&mut self, unit: f64) -> f64 {
        let ceiling = (self.base_ms * 2f64.powi(self.attempt.min(30) as i32)).min(self.max_ms);
        self.attempt = self.attempt.saturating_add(1);
        ceiling * (0.5 + 0.5 * unit.clamp(0.0, 1.0))
    }

    /// Call on success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_jitter_bounds() {
        let mut b = Backoff::new(250.0, 8000.0);
        let lows: Vec<f64> = (0..8).map(|_| b.next_delay(0.0)).collect();
        assert_eq!(
            lows,
            [125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 4000.0, 4000.0]
        );
        b.reset();
        assert_eq!(b.attempts(), 0);
        assert_eq!(b.next_delay(0.999_999_9).round(), 250.0);
    }

    #[test]
    fn never_overflows() {
        let mut b = Backoff::new(100.0, 30_000.0);
        for _ in 0..10_000 {
            assert!(b.next_delay(0.5) <= 30_000.0);
        }
    }
}
