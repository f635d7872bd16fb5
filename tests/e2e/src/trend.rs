//! The soak's verdicts (`src/bin/soak.rs`), as pure functions of the samples it took:
//! does a resource grow without bound, does the widget's latency drift. No clocks, no
//! I/O: the soak passes time stamps in, so every rule is tested here on made-up series.
//!
//! # Grows without bound
//! A soak is too short to see "unbounded", so the rule asks the question a leak
//! answers and a plateau does not: is the resource still climbing once the server has
//! warmed up? The run is cut into thirds by time. The first third is warm-up and is
//! ignored: allocator arenas, thread pools, the chat room's resume log (ten minutes of
//! events) and the kernel's socket buffers all fill there and then stay. The **median**
//! of the middle third is compared with the median of the last third; the series grows
//! when the difference exceeds a tolerance (an absolute floor or a fraction of the
//! middle, whichever is larger).
//!
//! Why medians of thirds and not a fitted slope: samples come every few seconds from a
//! server whose load churns (viewers reconnect, hearts arrive in bursts), so single
//! samples jump by a few MB or a few fds. A least-squares slope over a short run is
//! moved by one such jump at either end; a median of a third of the run is not, and a
//! leak moves it by its whole rate times a third of the run. The Theil–Sen slope (the
//! median of pairwise slopes, also robust to jumps) over the second half is reported
//! beside it, to read, not to decide.
//!
//! What it misses: a leak smaller than the tolerance over a third of the run (with
//! [`RSS_TOLERANCE`], under about 0.8 MB/min of RSS in a 30-minute run, 8 MB/min in a
//! 3-minute one), and growth that happens only in the first third.
//!
//! # Latency drift
//! The p50 of the latency samples of the last third against the p50 of the first
//! third, minus its first [`LATENCY_SETTLE_S`] (the player catching up after its first
//! frame). Drift is the increase; a player that got closer to live does not drift.

use crate::stats::percentile;

/// Latency samples this soon after the soak started are not the baseline: the player
/// is still converging on its target.
pub const LATENCY_SETTLE_S: f64 = 20.0;

/// Server RSS (MB) may rise this much between the middle and last thirds.
pub const RSS_TOLERANCE: Tolerance = Tolerance {
    abs: 8.0,
    rel: 0.05,
};
/// Open file descriptors: churn leaves a few sockets closing at any moment.
pub const FD_TOLERANCE: Tolerance = Tolerance {
    abs: 32.0,
    rel: 0.01,
};
/// Threads: tokio's blocking pool starts and retires threads as the store is used.
pub const THREAD_TOLERANCE: Tolerance = Tolerance { abs: 4.0, rel: 0.0 };
/// The widget's latency p50 may end this much later than it started, in seconds.
pub const DRIFT_LIMIT_S: f64 = 0.5;

/// One measurement: seconds since the soak started, and the value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Seconds since the soak started.
    pub t: f64,
    /// The value (MB, count, ...).
    pub v: f64,
}

/// How much a series may rise between the middle and the last third of the run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// Absolute rise allowed, in the series' unit.
    pub abs: f64,
    /// Rise allowed as a fraction of the middle third's median.
    pub rel: f64,
}

impl Tolerance {
    /// The larger of the two allowances for a middle third at `middle`.
    pub fn allowed(&self, middle: f64) -> f64 {
        self.abs.max(self.rel * middle.abs())
    }
}

/// How a series moved after warm-up.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Growth {
    /// Median of the middle third.
    pub middle: f64,
    /// Median of the last third.
    pub last: f64,
    /// `last - middle`.
    pub rise: f64,
    /// What the tolerance allowed.
    pub allowed: f64,
    /// Theil–Sen slope over the second half, per minute (reported, not decided on).
    pub slope_per_min: f64,
}

impl Growth {
    /// The rise exceeds the tolerance.
    pub fn unbounded(&self) -> bool {
        self.rise > self.allowed
    }
}

/// Compares the middle and last thirds of `samples` taken over `duration_s`. `None`
/// when either third holds no sample (a run too short to judge).
pub fn growth(samples: &[Sample], duration_s: f64, tolerance: Tolerance) -> Option<Growth> {
    let third = duration_s / 3.0;
    let middle = percentile(&values(samples, third, 2.0 * third), 50.0)?;
    let last = percentile(&values(samples, 2.0 * third, f64::INFINITY), 50.0)?;
    let second_half: Vec<Sample> = samples
        .iter()
        .copied()
        .filter(|s| s.t >= duration_s / 2.0)
        .collect();
    Some(Growth {
        middle,
        last,
        rise: last - middle,
        allowed: tolerance.allowed(middle),
        slope_per_min: theil_sen(&second_half).unwrap_or(0.0) * 60.0,
    })
}

/// Median of the slopes between every pair of samples (per second); `None` with fewer
/// than two distinct times.
pub fn theil_sen(samples: &[Sample]) -> Option<f64> {
    let mut slopes = Vec::new();
    for (i, a) in samples.iter().enumerate() {
        for b in &samples[i + 1..] {
            if (b.t - a.t).abs() > f64::EPSILON {
                slopes.push((b.v - a.v) / (b.t - a.t));
            }
        }
    }
    percentile(&slopes, 50.0)
}

/// How the widget's latency moved between the start and the end of the run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Drift {
    /// p50 of the first third (after [`LATENCY_SETTLE_S`]), seconds.
    pub first_p50: f64,
    /// p50 of the last third, seconds.
    pub last_p50: f64,
}

impl Drift {
    /// How much later the end is than the start (negative: closer to live).
    pub fn increase(&self) -> f64 {
        self.last_p50 - self.first_p50
    }
}

/// Latency p50 of the first and last thirds of `samples` over `duration_s`; `None` when
/// either has no sample (the widget showed no readable frame there).
pub fn drift(samples: &[Sample], duration_s: f64) -> Option<Drift> {
    let third = duration_s / 3.0;
    let settle = LATENCY_SETTLE_S.min(third / 2.0);
    Some(Drift {
        first_p50: percentile(&values(samples, settle, third), 50.0)?,
        last_p50: percentile(&values(samples, 2.0 * third, f64::INFINITY), 50.0)?,
    })
}

/// The values of the samples taken in `[from, to)`.
fn values(samples: &[Sample], from: f64, to: f64) -> Vec<f64> {
    samples
        .iter()
        .filter(|s| s.t >= from && s.t < to)
        .map(|s| s.v)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One sample every 10 s for `minutes`, value `f(t)`.
    fn series(minutes: f64, f: impl Fn(f64) -> f64) -> Vec<Sample> {
        (0..=(minutes * 6.0) as usize)
            .map(|i| {
                let t = i as f64 * 10.0;
                Sample { t, v: f(t) }
            })
            .collect()
    }

    const RSS: Tolerance = RSS_TOLERANCE;

    #[test]
    fn a_warm_up_that_plateaus_is_bounded() {
        // Climbs 60 MB in the first five minutes, then stays, with ±3 MB noise.
        let s = series(30.0, |t| {
            let base = 100.0 + 60.0 * (t / 300.0).min(1.0);
            base + if (t as u64 / 10).is_multiple_of(2) {
                3.0
            } else {
                -3.0
            }
        });
        let g = growth(&s, 1800.0, RSS).unwrap();
        assert!(!g.unbounded(), "{g:?}");
        // Within the noise.
        assert!(g.rise.abs() <= 3.0, "{g:?}");
    }

    #[test]
    fn a_steady_leak_grows_without_bound() {
        // 1 MB per minute from the start: 10 MB between the thirds' medians.
        let s = series(30.0, |t| 150.0 + t / 60.0);
        let g = growth(&s, 1800.0, RSS).unwrap();
        assert!(g.unbounded(), "{g:?}");
        assert!((g.slope_per_min - 1.0).abs() < 1e-9, "{g:?}");
    }

    #[test]
    fn one_spike_at_the_end_is_not_a_leak() {
        let mut s = series(30.0, |_| 200.0);
        let n = s.len();
        s[n - 1].v = 400.0;
        s[n - 2].v = 380.0;
        assert!(!growth(&s, 1800.0, RSS).unwrap().unbounded());
    }

    #[test]
    fn fds_leaking_one_per_churned_viewer_are_caught() {
        // 100 reconnects a minute, one socket kept open by each.
        let fds = FD_TOLERANCE;
        let s = series(3.0, |t| 2_300.0 + 100.0 * t / 60.0);
        assert!(growth(&s, 180.0, fds).unwrap().unbounded());
        let flat = series(3.0, |t| 2_300.0 + if t < 60.0 { -50.0 } else { 5.0 });
        assert!(!growth(&flat, 180.0, fds).unwrap().unbounded());
    }

    #[test]
    fn too_short_a_run_is_not_judged() {
        assert_eq!(growth(&[Sample { t: 1.0, v: 1.0 }], 180.0, RSS), None);
    }

    #[test]
    fn latency_that_creeps_up_drifts_and_catching_up_does_not() {
        // 1.2 s at first, 0.1 s more every minute.
        let creeping = series(30.0, |t| 1.2 + 0.1 * t / 60.0);
        let d = drift(&creeping, 1800.0).unwrap();
        assert!(d.increase() > DRIFT_LIMIT_S, "{d:?}");
        // A slow start (3 s in the first 20 s) that settles at 1.1 s: no drift.
        let settling = series(30.0, |t| if t < 20.0 { 3.0 } else { 1.1 });
        let d = drift(&settling, 1800.0).unwrap();
        assert!(d.increase().abs() < 1e-9, "{d:?}");
    }

    #[test]
    fn theil_sen_ignores_an_outlier() {
        let mut s = series(5.0, |t| 2.0 * t);
        s[3].v = 10_000.0;
        assert!((theil_sen(&s).unwrap() - 2.0).abs() < 1e-9);
    }
}
