//! Floating hearts: a small particle simulation in plain Rust, like yew's boids
//! example. The view only draws [`Heart`]s and calls [`Sky::step`] on each animation
//! frame. Pure, so it is tested without a browser.
//!
//! Hearts rise from the bottom right, sway, shrink and fade. The sky holds at most
//! [`Sky::cap`] hearts: a storm of taps shows a full sky, never a frozen page. With
//! `prefers-reduced-motion`, hearts do not sway and fade quickly in place.

/// One heart on screen, in a unit square: `x` 0 (left) to 1, `y` 0 (bottom) to 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Heart {
    /// Horizontal position.
    pub x: f64,
    /// Height.
    pub y: f64,
    /// Opacity, 0 to 1.
    pub opacity: f64,
    /// Size factor.
    pub scale: f64,
    /// CSS colour.
    pub colour: String,
    /// Seconds since it appeared.
    age: f64,
    /// Seconds it lives.
    life: f64,
    /// Sway phase and amplitude.
    phase: f64,
    sway: f64,
    /// Horizontal start.
    x0: f64,
}

/// All the hearts on screen.
#[derive(Debug, Clone, PartialEq)]
pub struct Sky {
    hearts: Vec<Heart>,
    /// Most hearts shown at once.
    pub cap: usize,
    /// Calm mode for `prefers-reduced-motion`.
    pub reduced_motion: bool,
    /// xorshift state: deterministic in tests, seeded from the clock in the browser.
    seed: u64,
}

impl Sky {
    /// An empty sky.
    pub fn new(seed: u64, reduced_motion: bool) -> Sky {
        Sky {
            hearts: Vec::new(),
            cap: if reduced_motion { 12 } else { 40 },
            reduced_motion,
            seed: seed | 1,
        }
    }

    fn random(&mut self) -> f64 {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        (self.seed >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Adds up to `count` hearts of `colour`; beyond the cap they are dropped.
    pub fn spawn(&mut self, colour: &str, count: u32) {
        for _ in 0..count {
            if self.hearts.len() >= self.cap {
                return;
            }
            let x0 = 0.78 + self.random() * 0.14;
            let heart = Heart {
                x: x0,
                y: 0.0,
                opacity: 1.0,
                scale: 0.8 + self.random() * 0.5,
                colour: colour.to_owned(),
                age: 0.0,
                life: if self.reduced_motion {
                    1.2
                } else {
                    2.6 + self.random() * 1.2
                },
                phase: self.random() * std::f64::consts::TAU,
                sway: if self.reduced_motion {
                    0.0
                } else {
                    0.03 + self.random() * 0.04
                },
                x0,
            };
            self.hearts.push(heart);
        }
    }

    /// Advances the simulation by `dt` seconds (clamped: a background tab coming back
    /// does not fast-forward a storm).
    pub fn step(&mut self, dt: f64) {
        let dt = dt.clamp(0.0, 0.1);
        for h in &mut self.hearts {
            h.age += dt;
            let t = (h.age / h.life).min(1.0);
            if !self.reduced_motion {
                h.y = t * 0.85;
                h.x = h.x0 + h.sway * sin(h.phase + h.age * 3.0);
            }
            h.opacity = if t < 0.7 { 1.0 } else { (1.0 - t) / 0.3 };
        }
        self.hearts.retain(|h| h.age < h.life);
    }

    /// The hearts to draw.
    pub fn hearts(&self) -> &[Heart] {
        &self.hearts
    }

    /// Nothing to animate.
    pub fn is_empty(&self) -> bool {
        self.hearts.is_empty()
    }
}

/// The browser's `Math.sin` in the widget: Rust's own `sin` brings about 7 KB of
/// argument-reduction code (libm) into the download for this one sway.
#[cfg(target_arch = "wasm32")]
fn sin(x: f64) -> f64 {
    js_sys::Math::sin(x)
}

#[cfg(not(target_arch = "wasm32"))]
fn sin(x: f64) -> f64 {
    x.sin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hearts_rise_fade_and_go() {
        let mut sky = Sky::new(7, false);
        sky.spawn("#f00", 3);
        assert_eq!(sky.hearts().len(), 3);
        for _ in 0..10 {
            sky.step(1.0 / 30.0);
        }
        assert!(sky.hearts().iter().all(|h| h.y > 0.0 && h.y < 1.0));
        for _ in 0..200 {
            sky.step(1.0 / 30.0);
        }
        assert!(sky.is_empty(), "every heart ends");
    }

    #[test]
    fn a_storm_is_capped() {
        let mut sky = Sky::new(1, false);
        sky.spawn("#f00", 10_000);
        assert_eq!(sky.hearts().len(), sky.cap);
    }

    #[test]
    fn reduced_motion_stays_in_place_and_is_brief() {
        let mut sky = Sky::new(3, true);
        sky.spawn("#0f0", 5);
        let x: Vec<f64> = sky.hearts().iter().map(|h| h.x).collect();
        for _ in 0..20 {
            sky.step(0.05);
        }
        assert!(sky
            .hearts()
            .iter()
            .zip(&x)
            .all(|(h, x0)| h.x == *x0 && h.y == 0.0));
        for _ in 0..10 {
            sky.step(0.05);
        }
        assert!(sky.is_empty());
    }

    #[test]
    fn a_long_pause_does_not_fast_forward() {
        let mut sky = Sky::new(5, false);
        sky.spawn("#00f", 1);
        sky.step(60.0);
        assert_eq!(sky.hearts().len(), 1, "one clamped step, not a minute");
    }
}
