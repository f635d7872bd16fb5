//! Adaptive bitrate: how fast the network is, and which rendition to load next. Owns
//! the bandwidth estimate (throughput and time to first byte), the caps on the ladder
//! (player size, `data-max-height`, the viewer's choice) and the switching rules, with
//! the abandon rule for a download that will not arrive in time. Pure: every input is
//! plain data, clocks are passed in, the answers are an index into the rendition list
//! or an [`Abandon`]. It must not fetch, time, read the DOM nor touch MediaSource, and it
//! knows nothing of codecs: the engine passes only renditions the browser can decode,
//! and a switch's new init segment (or `changeType`) is the source's and `mse`'s job.
//!
//! # Feeding it (the engine)
//! - On a multivariant playlist: [`Abr::new`] with the decodable renditions, in the
//!   playlist's order (answers index that list), and the estimate remembered from the
//!   last visit if there is one.
//! - When the widget's box changes (mount, resize, full screen): [`Abr::set_size`] with
//!   its CSS size and `devicePixelRatio`. `data-max-height`: [`Abr::set_max_height`].
//!   The quality menu: [`Abr::set_choice`].
//! - Before each segment (or LL-HLS part) request: [`Abr::next`] with the time, the
//!   seconds buffered ahead of the playhead (`f64::INFINITY` while playback has not
//!   started: nothing drains yet) and the media seconds the request carries.
//! - About every 100 ms while a request is under way: [`Abr::progress`]; on
//!   [`Abandon`], abort the request and load the same media from `to`.
//! - When a request completes: [`Abr::loaded`] with a [`Sample`]. Not for bodies that
//!   arrive at the encoder's pace (a chunked-transfer segment still being encoded, the
//!   low-latency push): they measure the bitrate, not the link.
//!
//! # The estimate, and why it is not hls.js's
//! Each sample is a download's bits and its transfer time, *time to first byte
//! excluded*: a 60 KB live segment behind a 150 ms first byte is otherwise measured at
//! a fraction of the link. The first byte is its own estimate, and a request is
//! predicted to take `ttfb + bits / throughput`, so short segments on a far server
//! cost what they really cost. The throughput is total bits over total time within a
//! window that decays by *media* seconds, a fast one ([`FAST_HALF_LIFE_S`]) and a slow
//! one ([`SLOW_HALF_LIFE_S`]), and the estimate is the lower of the two:
//! - bits over time, not a mean of per-sample rates, weighs each sample by how long it
//!   took: one slow segment pulls the estimate down at once, and one segment however
//!   fast (a cache hit, a burst) lifts a full slow window by at most `2^(d / 9 s)`, 17 %
//!   for a 2 s segment. (hls.js gets the same by weighting rates by download time.)
//! - the windows age by media seconds, not download seconds as hls.js's do: on a fast
//!   link downloads are short and age a download-time window slowly, so the better the
//!   link, the longer a rise takes to be believed. From 1 Mbit/s, 960×540 is afforded
//!   after 15 segments when the link goes to 4 Mbit/s (37 for a download-time window
//!   with the same half-lives) and after 8 at 16 Mbit/s (16).
//! - responses smaller than [`MIN_SAMPLE_BYTES`] (an initial TCP congestion window,
//!   10 × 1460 B, RFC 6928) arrive in one round trip whatever the bandwidth: they feed
//!   the first-byte estimate only.
//! - weighing by time makes a slow spell linger: after 15 s at 0.4 Mbit/s, each of its
//!   low-rung segments took ten times as long as one on the 4 Mbit/s link that follows,
//!   and the windows would need 48 s of fast segments to afford 960×540 again. So
//!   [`RISE_SAMPLES`] (3) samples in a row, each at least [`RISE_FACTOR`] (2) times the
//!   estimate the run started from, mean the link changed: the windows then hold those
//!   samples only. One burst, or two, is not a new link; a fall needs no such rule
//!   (the fast window and the lower-wins rule take it at once).
//!
//! # Switching
//! - Start: the highest rendition whose request would take at most [`UP_FACTOR`] of its
//!   duration at the estimate (default [`DEFAULT_ESTIMATE_BPS`]).
//! - Down at the next request when the current one would take more than
//!   [`KEEP_FACTOR`] of its duration, or would not arrive [`MARGIN_S`] before the buffer
//!   runs out: to the highest rendition that passes both, else the lowest.
//! - Up one step when that step takes at most [`UP_FACTOR`] of its duration *and* the
//!   buffer holds [`UP_AHEAD`] times its download (arriving in time even at half the
//!   estimate); several steps when they take at most [`UP_FAR_FACTOR`]; never within
//!   [`UP_HOLD_MS`] of a down-switch. Staying needs less than going up (0.9 against
//!   0.8): the gap is what stops a link near a rung's bitrate from flapping.
//! - Abandon: after [`ABANDON_GRACE_S`] of transfer, when the rest of the download, at
//!   the lower of the rate seen and the estimate, would end less than [`MARGIN_S`]
//!   before the buffer does, load a lower rendition instead, if a new request for it
//!   ends sooner than the current one would. Nothing received past the expected first
//!   byte counts as a stall that is assumed to last as long again.
//!
//! Measured in the test simulator (a live stream of 2 s segments, three behind the
//! edge, the issue's 960×540 / 640×360 / 320×180 ladder): a link falling from 4 to
//! 1 Mbit/s mid-segment is answered by an abandon 1.3 s later and no stall (0.17 s
//! without the abandon rule); from 4 to 0.4 Mbit/s, no stall against 6.2 s; a 5.9 s
//! outage with 4 s buffered stalls 1.96 s, the part no rule can avoid, against 3.04 s.
//! From 320×180 at 1 Mbit/s to 4 Mbit/s: 640×360 2.5 s later, 960×540 after 7.3 s (23 s
//! before the rise rule); from 640×360 (after a fall from 4 to 1 Mbit/s), 960×540 again
//! 7.3 s after the rise (35 s before); on `bench abr`'s schedule (4, 1, 0.4, 4 Mbit/s),
//! 960×540 10.3 s after the last rise.
//!
//! # Caps
//! The player's size × `devicePixelRatio` (at most [`MAX_DPR`]: at 3× a phone's 360 px
//! would ask for 1080p, which nobody tells from 720p at arm's length) admits the
//! smallest rendition that covers it (width or height, as `object-fit: contain` shows
//! it; hls.js's `capLevelToPlayerSize`) and everything below. `data-max-height` drops
//! taller ones. A viewer's fixed height overrides the size cap (they asked) but not the
//! page's maximum, and turns switching and abandoning off.

/// Throughput assumed before any sample (bits/s): what a poor mobile link carries, so
/// the first segment is a low rung and playback starts quickly; the first real sample
/// replaces it entirely (hls.js: 500 kbit/s, which starts the issue's ladder on the
/// same rung).
pub const DEFAULT_ESTIMATE_BPS: f64 = 1_000_000.0;
/// First byte assumed before any sample, milliseconds (a CDN's round trip and a
/// little).
pub const DEFAULT_TTFB_MS: f64 = 100.0;
/// Half-life of the fast throughput window, media seconds: a drop shows within one
/// segment.
pub const FAST_HALF_LIFE_S: f64 = 3.0;
/// Half-life of the slow window (and of the first-byte estimate), media seconds: a
/// rise counts only once several segments agree.
pub const SLOW_HALF_LIFE_S: f64 = 9.0;
/// Responses smaller than this say nothing about throughput (see the module doc).
pub const MIN_SAMPLE_BYTES: u64 = 16_000;
/// This many samples in a row, each at least [`RISE_FACTOR`] times the estimate the run
/// started from, mean the link itself changed (a phone off a crowded cell onto Wi-Fi):
/// the windows then keep only those samples (see the module doc).
pub const RISE_SAMPLES: usize = 3;
/// See [`RISE_SAMPLES`].
pub const RISE_FACTOR: f64 = 2.0;
/// Keep a rendition while its request takes at most this share of its duration: the
/// buffer still grows, and `BANDWIDTH` is a peak, so most segments are smaller.
pub const KEEP_FACTOR: f64 = 0.9;
/// Go up one step when it takes at most this share. hls.js uses 0.7 of the estimate,
/// which also has to absorb the first byte; here that is counted apart, and the
/// abandon rule catches an estimate that was too kind. At 0.7 the issue's 960×540 would
/// need 3.6 Mbit/s of a 4 Mbit/s link.
pub const UP_FACTOR: f64 = 0.8;
/// Go up more than one step only when it takes at most this share (twice the need).
pub const UP_FAR_FACTOR: f64 = 0.5;
/// Go up only with this many times the new rendition's download buffered ahead: it
/// still arrives in time if the link gives half the estimate.
pub const UP_AHEAD: f64 = 2.0;
/// No up-switch for this long after a down-switch, milliseconds: what caused it (a
/// congested cell, a shared uplink) often comes back, and the lower rendition's quick
/// downloads would otherwise undo the decision before the slow window (9 s of media:
/// four 2 s segments half take a change in) has seen whether it lasts.
pub const UP_HOLD_MS: f64 = 8_000.0;
/// A download must end this many seconds before the buffer does: appending and
/// decoding take about 0.1 s, the rest covers the rate's error over the download. Half
/// the request's media when that is less (an LL-HLS part of 0.33 s with a second
/// buffered would otherwise never be affordable).
pub const MARGIN_S: f64 = 0.75;
/// Seconds of transfer before a download's rate is judged: shorter, it is TCP slow
/// start and timer coarsening (browsers round `performance.now()` to 0.1–1 ms, more
/// with fingerprinting protection).
pub const ABANDON_GRACE_S: f64 = 0.3;
/// Highest `devicePixelRatio` the size cap honours.
pub const MAX_DPR: f64 = 2.0;

/// One rendition of the ladder (an `EXT-X-STREAM-INF`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rendition {
    /// Peak bits per second (`BANDWIDTH`): the size a segment is expected to have.
    pub bandwidth: u64,
    /// Pixels (`RESOLUTION`); 0 when not given (never capped by size).
    pub width: u32,
    /// Pixels; 0 when not given.
    pub height: u32,
}

/// One completed request (a segment or a part).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Body bytes received.
    pub bytes: u64,
    /// Request sent to first byte of the body, milliseconds.
    pub ttfb_ms: f64,
    /// Request sent to last byte, milliseconds.
    pub total_ms: f64,
    /// Media seconds in the body (what ages the estimate).
    pub media_s: f64,
    /// The server held the request until the media existed (an LL-HLS preload hint or
    /// blocking request): its first byte waited for the encoder, not the network.
    pub held: bool,
}

/// A window of bits and seconds that decays by media seconds.
#[derive(Debug, Clone, Copy)]
struct Window {
    half_life: f64,
    num: f64,
    den: f64,
}

impl Window {
    fn new(half_life: f64) -> Self {
        Window {
            half_life,
            num: 0.0,
            den: 0.0,
        }
    }

    fn add(&mut self, num: f64, den: f64, media_s: f64) {
        let keep = half_power(media_s / self.half_life);
        self.num = self.num * keep + num;
        self.den = self.den * keep + den;
    }

    fn ratio(&self) -> Option<f64> {
        (self.den > 0.0).then(|| self.num / self.den)
    }
}

/// `0.5^x` for `x ≥ 0`, without libm's `pow` (kilobytes of wasm): halvings, then a
/// Taylor series of `e^(-x ln 2)` on the fraction (error under 2e-4).
fn half_power(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return 1.0;
    }
    if x > 64.0 {
        return 0.0;
    }
    let mut r = 1.0;
    let mut x = x;
    while x >= 1.0 {
        r *= 0.5;
        x -= 1.0;
    }
    let y = x * core::f64::consts::LN_2;
    r * (1.0 - y * (1.0 - y / 2.0 * (1.0 - y / 3.0 * (1.0 - y / 4.0 * (1.0 - y / 5.0)))))
}

/// The bandwidth and first-byte estimate (see the module doc).
#[derive(Debug, Clone)]
pub struct Estimator {
    /// Reacts within a segment; only ever lowers the estimate (the lower one wins).
    fast: Window,
    /// Reacts over several segments: what an up-switch waits for.
    slow: Window,
    /// Milliseconds to first byte per request.
    ttfb: Window,
    /// The answer until the first sample.
    default_bps: f64,
    /// The samples (bits, transfer seconds, media seconds) of the current run of
    /// samples at [`RISE_FACTOR`] times `rise_from` or more; the first `rising` count.
    rise: [(f64, f64, f64); RISE_SAMPLES],
    rising: usize,
    /// The estimate before the run's first sample.
    rise_from: f64,
}

impl Estimator {
    /// An estimator that answers `default_bps` until it has a sample.
    pub fn new(default_bps: f64) -> Self {
        Estimator {
            fast: Window::new(FAST_HALF_LIFE_S),
            slow: Window::new(SLOW_HALF_LIFE_S),
            ttfb: Window::new(SLOW_HALF_LIFE_S),
            default_bps: if default_bps > 0.0 {
                default_bps
            } else {
                DEFAULT_ESTIMATE_BPS
            },
            rise: [(0.0, 0.0, 0.0); RISE_SAMPLES],
            rising: 0,
            rise_from: 0.0,
        }
    }

    /// Takes a completed request into account.
    pub fn sample(&mut self, s: &Sample) {
        if !(s.ttfb_ms >= 0.0 && s.total_ms >= s.ttfb_ms && s.total_ms.is_finite()) {
            return;
        }
        let media = if s.media_s > 0.0 { s.media_s } else { 0.0 };
        if !s.held {
            self.ttfb.add(s.ttfb_ms, 1.0, media);
        }
        if s.bytes >= MIN_SAMPLE_BYTES {
            // A millisecond at least: a body read from memory is not infinitely fast.
            let secs = ((s.total_ms - s.ttfb_ms) / 1000.0).max(0.001);
            self.add(s.bytes, secs, media);
        }
    }

    /// Bits over transfer seconds, aging the windows by `media_s`; after
    /// [`RISE_SAMPLES`] in a row well above the estimate, only those.
    fn add(&mut self, bytes: u64, secs: f64, media_s: f64) {
        let bits = bytes as f64 * 8.0;
        if self.slow.ratio().is_some() {
            if self.rising == 0 {
                self.rise_from = self.bps();
            }
            if bits / secs >= RISE_FACTOR * self.rise_from {
                self.rise[self.rising] = (bits, secs, media_s);
                self.rising += 1;
            } else {
                self.rising = 0;
            }
        }
        self.fast.add(bits, secs, media_s);
        self.slow.add(bits, secs, media_s);
        if self.rising == RISE_SAMPLES {
            self.rising = 0;
            self.fast = Window::new(FAST_HALF_LIFE_S);
            self.slow = Window::new(SLOW_HALF_LIFE_S);
            for (bits, secs, media_s) in self.rise {
                self.fast.add(bits, secs, media_s);
                self.slow.add(bits, secs, media_s);
            }
        }
    }

    /// Throughput, bits per second.
    pub fn bps(&self) -> f64 {
        match (self.fast.ratio(), self.slow.ratio()) {
            (Some(f), Some(s)) => f.min(s),
            _ => self.default_bps,
        }
    }

    /// Time to first byte, seconds.
    pub fn ttfb_s(&self) -> f64 {
        self.ttfb.ratio().unwrap_or(DEFAULT_TTFB_MS) / 1000.0
    }
}

/// The viewer's pick in the quality menu.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Choice {
    /// Adaptive.
    #[default]
    Auto,
    /// This height (or the tallest below it), whatever the network.
    Height(u32),
}

/// A download under way, as [`Abr::progress`] sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Index of the rendition being loaded.
    pub rendition: usize,
    /// Body bytes received so far.
    pub loaded: u64,
    /// Body size when known (`Content-Length`); else bandwidth × duration.
    pub expected: Option<u64>,
    /// Since the request was sent, milliseconds.
    pub elapsed_ms: f64,
    /// Request to first byte, milliseconds; `None` while nothing has arrived.
    pub ttfb_ms: Option<f64>,
    /// Media seconds the request carries.
    pub duration_s: f64,
    /// Seconds buffered ahead of the playhead (`f64::INFINITY` before playback starts).
    pub ahead_s: f64,
}

/// Stop the download under way and load the same media from rendition `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abandon {
    /// Index of the rendition to load instead.
    pub to: usize,
}

/// The ABR decision for one stream.
#[derive(Debug, Clone)]
pub struct Abr {
    /// In the playlist's order: every answer indexes this.
    renditions: Vec<Rendition>,
    estimator: Estimator,
    choice: Choice,
    /// `data-max-height`; 0 for none.
    max_height: u32,
    /// The player in device pixels; 0 while unknown (no size cap).
    display: (f64, f64),
    /// The last answer: what the next decision moves from.
    current: Option<usize>,
    /// When the last down-switch was decided (the up hold counts from it).
    down_at_ms: f64,
}

impl Abr {
    /// ABR over `renditions` (at least one), starting from `start_bps` (the estimate
    /// remembered from the last visit; 0 for [`DEFAULT_ESTIMATE_BPS`]).
    pub fn new(renditions: Vec<Rendition>, start_bps: f64) -> Self {
        Abr {
            renditions,
            estimator: Estimator::new(start_bps),
            choice: Choice::Auto,
            max_height: 0,
            display: (0.0, 0.0),
            current: None,
            down_at_ms: f64::NEG_INFINITY,
        }
    }

    /// The player's box in CSS pixels and `devicePixelRatio` (0 × 0: unknown, no cap).
    /// Takes effect at the next [`Abr::next`]: down at once, up by the usual rules.
    pub fn set_size(&mut self, css_width: f64, css_height: f64, dpr: f64) {
        let dpr = if dpr > 0.0 { dpr.min(MAX_DPR) } else { 1.0 };
        let px = |v: f64| if v > 0.0 { v * dpr } else { 0.0 };
        self.display = (px(css_width), px(css_height));
    }

    /// The page's `data-max-height` (`None`: no maximum).
    pub fn set_max_height(&mut self, max: Option<u32>) {
        self.max_height = max.unwrap_or(0);
    }

    /// The viewer's choice in the quality menu.
    pub fn set_choice(&mut self, choice: Choice) {
        self.choice = choice;
    }

    /// The current throughput estimate, bits per second (to remember for next time).
    pub fn estimate_bps(&self) -> f64 {
        self.estimator.bps()
    }

    /// The rendition last decided (`None` before the first request).
    pub fn current(&self) -> Option<usize> {
        self.current
    }

    /// The rendition one step above the current one that the caps allow (`None` at
    /// the top, before any decision, or with the viewer's fixed height): what a probe
    /// of the link would try next.
    pub fn above(&self) -> Option<usize> {
        if self.choice != Choice::Auto {
            return None;
        }
        let ladder = self.ladder();
        let pos = self.position(&ladder, self.current?);
        ladder.get(pos + 1).copied()
    }

    /// Rendition `i` is playing already (a push that starts on the source): the next
    /// decision moves from it.
    pub fn set_current(&mut self, i: usize) {
        self.current = Some(i);
    }

    /// Rendition `i` as given.
    pub fn rendition(&self, i: usize) -> Option<Rendition> {
        self.renditions.get(i).copied()
    }

    /// A request completed.
    pub fn loaded(&mut self, sample: &Sample) {
        self.estimator.sample(sample);
    }

    /// The rendition to load the next `duration_s` seconds of media from, with
    /// `ahead_s` seconds buffered ahead of the playhead, at `now_ms`.
    pub fn next(&mut self, now_ms: f64, ahead_s: f64, duration_s: f64) -> usize {
        if let Choice::Height(h) = self.choice {
            let i = self.by_height(h);
            self.current = Some(i);
            return i;
        }
        let ladder = self.ladder();
        if ladder.is_empty() {
            return 0;
        }
        let dur = seconds_or(duration_s, 2.0);
        let ahead = if ahead_s >= 0.0 { ahead_s } else { 0.0 };
        let fetch = |k: usize| self.fetch_s(ladder[k], dur);
        let sustained = |k: usize| fetch(k) <= dur * KEEP_FACTOR && fetch(k) + margin(dur) <= ahead;
        let mut pos = match self.current {
            None => (0..ladder.len())
                .rev()
                .find(|&k| fetch(k) <= dur * UP_FACTOR)
                .unwrap_or(0),
            Some(cur) => self.position(&ladder, cur),
        };
        if self.current.is_some() && !sustained(pos) {
            let to = (0..pos).rev().find(|&k| sustained(k)).unwrap_or(0);
            if to < pos {
                pos = to;
                self.down_at_ms = now_ms;
            }
        } else if self.current.is_some() && now_ms - self.down_at_ms >= UP_HOLD_MS {
            let from = pos;
            for k in from + 1..ladder.len() {
                let factor = if k == from + 1 {
                    UP_FACTOR
                } else {
                    UP_FAR_FACTOR
                };
                if fetch(k) <= dur * factor && UP_AHEAD * fetch(k) <= ahead {
                    pos = k;
                }
            }
        }
        self.current = Some(ladder[pos]);
        ladder[pos]
    }

    /// A download under way at `now_ms`: go on, or abandon it for a lower rendition.
    pub fn progress(&mut self, now_ms: f64, p: &Progress) -> Option<Abandon> {
        if self.choice != Choice::Auto {
            return None;
        }
        let r = *self.renditions.get(p.rendition)?;
        // The allowed renditions below the one loading, lowest first.
        let lower: Vec<usize> = self
            .ladder()
            .into_iter()
            .filter(|&k| self.renditions[k].bandwidth < r.bandwidth)
            .collect();
        let lowest = *lower.first()?;
        let dur = seconds_or(p.duration_s, 2.0);
        let ahead = if p.ahead_s >= 0.0 { p.ahead_s } else { 0.0 };
        let elapsed = if p.elapsed_ms > 0.0 {
            p.elapsed_ms / 1000.0
        } else {
            0.0
        };
        let ttfb = self.estimator.ttfb_s();
        let first = p
            .ttfb_ms
            .map_or(elapsed.min(ttfb), |t| (t / 1000.0).min(elapsed));
        let transfer = elapsed - first;
        if transfer < ABANDON_GRACE_S {
            return None;
        }
        let expected = p
            .expected
            .unwrap_or((r.bandwidth as f64 * dur / 8.0) as u64)
            .max(p.loaded);
        let est = self.estimator.bps().max(1.0);
        // Nothing yet: a stall assumed to last as long again, then the estimate.
        let (stall, rate) = if p.loaded == 0 {
            (transfer, est)
        } else {
            (0.0, (p.loaded as f64 * 8.0 / transfer).min(est))
        };
        let remaining = stall + (expected - p.loaded) as f64 * 8.0 / rate;
        if remaining + margin(dur) <= ahead {
            return None;
        }
        let anew = |k: usize| stall + ttfb + self.renditions[k].bandwidth as f64 * dur / rate;
        let to = lower
            .iter()
            .rev()
            .copied()
            .find(|&k| anew(k) + margin(dur) <= ahead)
            .unwrap_or(lowest);
        if anew(to) >= remaining {
            return None;
        }
        // What was seen is a sample too: a slow link's partial download lowers the
        // estimate now, not after the lower rendition arrives.
        let media = dur * p.loaded as f64 / expected.max(1) as f64;
        self.estimator.add(p.loaded, transfer, media);
        self.current = Some(to);
        self.down_at_ms = now_ms;
        Some(Abandon { to })
    }

    /// Seconds a request for `dur` seconds of rendition `i` would take.
    fn fetch_s(&self, i: usize, dur: f64) -> f64 {
        self.estimator.ttfb_s()
            + self.renditions[i].bandwidth as f64 * dur / self.estimator.bps().max(1.0)
    }

    /// The renditions the caps allow, by bandwidth, lowest first (never empty when
    /// there are renditions: the lowest stays when the caps exclude all).
    fn ladder(&self) -> Vec<usize> {
        let (pw, ph) = self.display;
        // The smallest rendition that covers the player: what it shows at full detail.
        let limit = self
            .renditions
            .iter()
            .filter(|r| r.height > 0 && (r.width as f64 >= pw || r.height as f64 >= ph))
            .map(|r| (r.height, r.width))
            .min()
            .filter(|_| pw > 0.0 && ph > 0.0);
        let mut ladder: Vec<usize> = (0..self.renditions.len())
            .filter(|&i| {
                let r = self.renditions[i];
                let shown = match limit {
                    Some((h, w)) => r.height == 0 || (r.height <= h && r.width <= w),
                    None => true,
                };
                shown && self.under_max(r)
            })
            .collect();
        if ladder.is_empty() {
            ladder.extend(self.lowest());
        }
        // By hand (an insertion sort, stable like `sort_by_key`): std's stable sort is
        // about 0.5 KB of WebAssembly for lists of three or four.
        for i in 1..ladder.len() {
            let mut j = i;
            while j > 0 && self.bw(ladder[j - 1]) > self.bw(ladder[j]) {
                ladder.swap(j - 1, j);
                j -= 1;
            }
        }
        ladder
    }

    fn bw(&self, i: usize) -> u64 {
        self.renditions[i].bandwidth
    }

    fn under_max(&self, r: Rendition) -> bool {
        self.max_height == 0 || r.height <= self.max_height
    }

    fn lowest(&self) -> Option<usize> {
        (0..self.renditions.len()).min_by_key(|&i| self.renditions[i].bandwidth)
    }

    /// Where rendition `i` stands in `ladder`: itself, or the highest below its
    /// bandwidth (it was capped away), or the bottom.
    fn position(&self, ladder: &[usize], i: usize) -> usize {
        let bw = self.renditions.get(i).map_or(0, |r| r.bandwidth);
        ladder.iter().position(|&k| k == i).unwrap_or_else(|| {
            ladder
                .iter()
                .rposition(|&k| self.renditions[k].bandwidth <= bw)
                .unwrap_or(0)
        })
    }

    /// The viewer's fixed height: that height (its highest bandwidth), else the tallest
    /// below, else the lowest rendition; never above the page's maximum.
    fn by_height(&self, h: u32) -> usize {
        let h = if self.max_height > 0 {
            h.min(self.max_height)
        } else {
            h
        };
        (0..self.renditions.len())
            .filter(|&i| self.renditions[i].height <= h)
            .max_by_key(|&i| (self.renditions[i].height, self.renditions[i].bandwidth))
            .or_else(|| self.lowest())
            .unwrap_or(0)
    }
}

/// How long before the buffer runs out a request for `dur` seconds must end.
fn margin(dur: f64) -> f64 {
    MARGIN_S.min(dur * 0.5)
}

/// `v` when it is a positive number of seconds, else `default`.
fn seconds_or(v: f64, default: f64) -> f64 {
    if v > 0.0 && v.is_finite() {
        v
    } else {
        default
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MBPS: f64 = 1_000_000.0;

    /// The issue's ladder, in ffmpeg's `-var_stream_map` order (highest first).
    fn three() -> Vec<Rendition> {
        vec![
            Rendition {
                bandwidth: 2_500_000,
                width: 960,
                height: 540,
            },
            Rendition {
                bandwidth: 800_000,
                width: 640,
                height: 360,
            },
            Rendition {
                bandwidth: 250_000,
                width: 320,
                height: 180,
            },
        ]
    }

    /// `lucarne-server --ladder 1080,720,480,240`, lowest first this time.
    fn four() -> Vec<Rendition> {
        vec![
            Rendition {
                bandwidth: 400_000,
                width: 426,
                height: 240,
            },
            Rendition {
                bandwidth: 1_400_000,
                width: 854,
                height: 480,
            },
            Rendition {
                bandwidth: 2_800_000,
                width: 1280,
                height: 720,
            },
            Rendition {
                bandwidth: 5_000_000,
                width: 1920,
                height: 1080,
            },
        ]
    }

    /// A link: bits per second from each time on (seconds), and its first-byte delay.
    struct Link {
        schedule: Vec<(f64, f64)>,
        ttfb_s: f64,
    }

    impl Link {
        fn steady(bps: f64) -> Self {
            Link {
                schedule: vec![(0.0, bps)],
                ttfb_s: 0.05,
            }
        }

        fn then(mut self, at: f64, bps: f64) -> Self {
            self.schedule.push((at, bps));
            self
        }

        fn bps(&self, t: f64) -> f64 {
            self.schedule
                .iter()
                .rev()
                .find(|&&(from, _)| t >= from)
                .map_or(0.0, |&(_, b)| b)
        }
    }

    /// A request in flight in the simulator.
    struct Download {
        segment: u64,
        rendition: usize,
        started: f64,
        size: f64,
        loaded: f64,
        first_byte: Option<f64>,
    }

    /// A live stream played through `link`: segments of `dur` seconds appear at the edge
    /// one per `dur` (three are there at the start: the usual hold-back), the player
    /// requests each as soon as it exists, playback starts with the first segment and
    /// drains the buffer in real time, stalling when it is empty.
    struct Sim {
        abr: Abr,
        link: Link,
        dur: f64,
        t: f64,
        /// Next segment to request.
        segment: u64,
        download: Option<Download>,
        /// Media seconds buffered (contiguous from 0) and the playhead.
        buffered: f64,
        position: f64,
        playing: bool,
        stall_s: f64,
        /// Ask [`Abr::progress`] during downloads (off: the same ABR without abandons).
        abandoning: bool,
        /// (time, segment, rendition) of each segment appended.
        appended: Vec<(f64, u64, usize)>,
        /// (time, from, to) of each abandon.
        abandons: Vec<(f64, usize, usize)>,
        /// Each completed request as a trace entry: (time, bytes, ttfb ms, total ms).
        trace: Vec<(f64, u64, f64, f64)>,
    }

    const DT: f64 = 0.01;

    impl Sim {
        fn new(renditions: Vec<Rendition>, link: Link, dur: f64) -> Self {
            Sim {
                abr: Abr::new(renditions, 0.0),
                link,
                dur,
                t: 0.0,
                segment: 0,
                download: None,
                buffered: 0.0,
                position: 0.0,
                playing: false,
                stall_s: 0.0,
                abandoning: true,
                appended: Vec::new(),
                abandons: Vec::new(),
                trace: Vec::new(),
            }
        }

        fn ahead(&self) -> f64 {
            if self.playing {
                self.buffered - self.position
            } else {
                f64::INFINITY
            }
        }

        fn request(&mut self, rendition: usize) {
            let bw = self.abr.renditions[rendition].bandwidth as f64;
            self.download = Some(Download {
                segment: self.segment,
                rendition,
                started: self.t,
                size: bw * self.dur / 8.0,
                loaded: 0.0,
                first_byte: None,
            });
        }

        fn run_until(&mut self, end: f64) {
            // Ticks until the next progress report (every 100 ms, as the engine would).
            let mut tick = 0u32;
            while self.t < end {
                // The segment exists once the encoder has finished it.
                let available = (self.segment as f64 - 2.0) * self.dur <= self.t;
                if self.download.is_none() && available {
                    let i = self.abr.next(self.t * 1000.0, self.ahead(), self.dur);
                    self.request(i);
                }
                let bps = self.link.bps(self.t);
                let ahead = self.ahead();
                let mut done = None;
                let mut abandon = None;
                if let Some(d) = &mut self.download {
                    if self.t - d.started >= self.link.ttfb_s && bps > 0.0 {
                        d.first_byte.get_or_insert(self.t);
                        d.loaded = (d.loaded + bps * DT / 8.0).min(d.size);
                    }
                    if d.loaded >= d.size {
                        done = Some((d.segment, d.rendition, d.size, d.started, d.first_byte));
                    } else if tick == 0 && self.abandoning {
                        let p = Progress {
                            rendition: d.rendition,
                            loaded: d.loaded as u64,
                            expected: None,
                            elapsed_ms: (self.t - d.started) * 1000.0,
                            ttfb_ms: d.first_byte.map(|f| (f - d.started) * 1000.0),
                            duration_s: self.dur,
                            ahead_s: ahead,
                        };
                        abandon = self
                            .abr
                            .progress(self.t * 1000.0, &p)
                            .map(|a| (d.rendition, a.to));
                    }
                }
                if let Some((from, to)) = abandon {
                    self.abandons.push((self.t, from, to));
                    self.request(to);
                }
                if let Some((segment, rendition, size, started, first)) = done {
                    let total_ms = (self.t + DT - started) * 1000.0;
                    let ttfb_ms = (first.unwrap_or(started) - started) * 1000.0;
                    self.abr.loaded(&Sample {
                        bytes: size as u64,
                        ttfb_ms,
                        total_ms,
                        media_s: self.dur,
                        held: false,
                    });
                    self.trace.push((self.t, size as u64, ttfb_ms, total_ms));
                    self.appended.push((self.t, segment, rendition));
                    self.buffered += self.dur;
                    self.segment += 1;
                    self.download = None;
                    self.playing = true;
                }
                if self.playing {
                    if self.buffered - self.position >= DT {
                        self.position += DT;
                    } else {
                        self.stall_s += DT;
                    }
                }
                self.t += DT;
                tick = if tick == 9 { 0 } else { tick + 1 };
            }
        }

        /// Renditions of the segments appended between two times.
        fn played(&self, from: f64, to: f64) -> Vec<usize> {
            self.appended
                .iter()
                .filter(|&&(t, _, _)| t >= from && t < to)
                .map(|&(_, _, r)| r)
                .collect()
        }

        fn switches(&self) -> usize {
            self.appended
                .windows(2)
                .filter(|w| w[0].2 != w[1].2)
                .count()
        }

        /// When the first segment of rendition `r` was appended after `from`.
        fn first_of(&self, r: usize, from: f64) -> Option<f64> {
            self.appended
                .iter()
                .find(|&&(t, _, i)| t >= from && i == r)
                .map(|&(t, _, _)| t)
        }
    }

    #[test]
    fn half_power_matches_powf() {
        for i in 0..400 {
            let x = i as f64 * 0.05;
            assert!((half_power(x) - 0.5f64.powf(x)).abs() < 2e-4, "x {x}");
        }
        assert_eq!(half_power(0.0), 1.0);
        assert_eq!(half_power(f64::NAN), 1.0);
        assert_eq!(half_power(1e9), 0.0);
    }

    #[test]
    fn the_default_estimate_answers_until_a_sample_arrives() {
        let e = Estimator::new(0.0);
        assert_eq!(e.bps(), DEFAULT_ESTIMATE_BPS);
        assert_eq!(e.ttfb_s(), DEFAULT_TTFB_MS / 1000.0);
        assert_eq!(Estimator::new(3.0 * MBPS).bps(), 3.0 * MBPS);
    }

    #[test]
    fn throughput_leaves_out_the_time_to_first_byte() {
        let mut e = Estimator::new(0.0);
        // 100 KB of a 1 s live segment: 150 ms to the first byte, 200 ms of transfer.
        e.sample(&Sample {
            bytes: 100_000,
            ttfb_ms: 150.0,
            total_ms: 350.0,
            media_s: 1.0,
            held: false,
        });
        assert!((e.bps() - 4.0 * MBPS).abs() < 1.0, "{}", e.bps());
        assert!((e.ttfb_s() - 0.15).abs() < 1e-9);
    }

    #[test]
    fn responses_within_one_congestion_window_feed_only_the_first_byte_estimate() {
        let mut e = Estimator::new(0.0);
        e.sample(&Sample {
            bytes: 12_000,
            ttfb_ms: 80.0,
            total_ms: 81.0,
            media_s: 0.33,
            held: false,
        });
        assert_eq!(
            e.bps(),
            DEFAULT_ESTIMATE_BPS,
            "an init segment or a tiny part"
        );
        assert!((e.ttfb_s() - 0.08).abs() < 1e-9);
    }

    #[test]
    fn a_first_byte_held_for_the_encoder_is_not_network_latency() {
        let mut e = Estimator::new(0.0);
        e.sample(&Sample {
            bytes: 40_000,
            ttfb_ms: 310.0,
            total_ms: 390.0,
            media_s: 0.33,
            held: true,
        });
        assert_eq!(e.ttfb_s(), DEFAULT_TTFB_MS / 1000.0);
        assert!(
            (e.bps() - 4.0 * MBPS).abs() < 1.0,
            "throughput still counts"
        );
    }

    #[test]
    fn broken_timings_are_ignored_not_trusted() {
        let mut e = Estimator::new(0.0);
        for (ttfb_ms, total_ms) in [(500.0, 100.0), (f64::NAN, 100.0), (0.0, f64::INFINITY)] {
            e.sample(&Sample {
                bytes: 1_000_000,
                ttfb_ms,
                total_ms,
                media_s: 2.0,
                held: false,
            });
        }
        assert_eq!(e.bps(), DEFAULT_ESTIMATE_BPS);
    }

    /// Replays a trace of (bytes, ttfb ms, total ms, media s) samples.
    fn replay(e: &mut Estimator, trace: &[(u64, f64, f64, f64)]) {
        for &(bytes, ttfb_ms, total_ms, media_s) in trace {
            e.sample(&Sample {
                bytes,
                ttfb_ms,
                total_ms,
                media_s,
                held: false,
            });
        }
    }

    #[test]
    fn one_slow_segment_lowers_the_estimate_at_once_but_one_fast_one_barely_lifts_it() {
        // 2 s segments of 800 kbit/s over a 4 Mbit/s link: 200 KB in 400 ms.
        let steady = [(200_000, 50.0, 450.0, 2.0); 10];
        let mut e = Estimator::new(0.0);
        replay(&mut e, &steady);
        assert!((e.bps() - 4.0 * MBPS).abs() < 0.01 * MBPS);
        // The same segment at 1 Mbit/s: 1.6 s.
        replay(&mut e, &[(200_000, 50.0, 1650.0, 2.0)]);
        assert!(e.bps() < 2.2 * MBPS, "down at once: {}", e.bps());

        let mut e = Estimator::new(0.0);
        replay(&mut e, &[(200_000, 50.0, 450.0, 2.0); 40]);
        // A cache hit: 200 KB in 10 ms (160 Mbit/s).
        replay(&mut e, &[(200_000, 50.0, 60.0, 2.0)]);
        let lift = e.bps() / (4.0 * MBPS);
        let bound = 2f64.powf(2.0 / SLOW_HALF_LIFE_S);
        assert!(lift <= bound, "lifted by {lift}, at most {bound}");
    }

    /// The textbook alternative, for comparison: a mean of per-sample rates, each
    /// weighted and aged by its download time, fast 3 s and slow 9 s, the lower wins.
    #[derive(Default)]
    struct AgedByDownloadTime {
        fast: f64,
        slow: f64,
        weight: f64,
    }

    impl AgedByDownloadTime {
        fn sample(&mut self, bps: f64, secs: f64) {
            let (af, as_) = (0.5f64.powf(secs / 3.0), 0.5f64.powf(secs / 9.0));
            self.fast = af * self.fast + (1.0 - af) * bps;
            self.slow = as_ * self.slow + (1.0 - as_) * bps;
            self.weight += secs;
        }

        fn bps(&self) -> f64 {
            let fast = self.fast / (1.0 - 0.5f64.powf(self.weight / 3.0));
            let slow = self.slow / (1.0 - 0.5f64.powf(self.weight / 9.0));
            fast.min(slow)
        }
    }

    #[test]
    fn going_up_takes_half_the_segments_of_a_window_aged_by_download_time() {
        // 640×360 in 2 s segments (200 KB) at 1 Mbit/s, then the link goes to 4 or 16
        // Mbit/s: segments until the estimate affords 960×540 (2.5 Mbit/s in 80 % of
        // 2 s after a 50 ms first byte: 3.23 Mbit/s).
        let need = 2.5 * 2.0 / (2.0 * UP_FACTOR - 0.05) * MBPS;
        for (mbps, transfer_ms) in [(4.0, 400.0), (16.0, 100.0)] {
            let mut ours = Estimator::new(0.0);
            let mut theirs = AgedByDownloadTime::default();
            for _ in 0..10 {
                replay(&mut ours, &[(200_000, 50.0, 1650.0, 2.0)]);
                theirs.sample(1.0 * MBPS, 1.6);
            }
            let n_ours = (1..200).find(|_| {
                replay(&mut ours, &[(200_000, 50.0, 50.0 + transfer_ms, 2.0)]);
                ours.bps() >= need
            });
            let n_theirs = (1..200).find(|_| {
                theirs.sample(mbps * MBPS, transfer_ms / 1000.0);
                theirs.bps() >= need
            });
            let (n_ours, n_theirs) = (n_ours.unwrap(), n_theirs.unwrap());
            assert!(n_ours <= 15, "{mbps} Mbit/s: {n_ours} segments");
            assert!(
                n_ours * 2 <= n_theirs,
                "{mbps} Mbit/s: {n_ours} against {n_theirs}"
            );
        }
    }

    #[test]
    fn the_start_rendition_follows_the_estimate() {
        let mut abr = Abr::new(three(), 0.0);
        assert_eq!(abr.next(0.0, f64::INFINITY, 2.0), 2, "1 Mbit/s: 320×180");
        let mut abr = Abr::new(three(), 1.5 * MBPS);
        assert_eq!(abr.next(0.0, f64::INFINITY, 2.0), 1, "1.5 Mbit/s: 640×360");
        let mut abr = Abr::new(three(), 8.0 * MBPS);
        assert_eq!(abr.next(0.0, f64::INFINITY, 2.0), 0, "8 Mbit/s: 960×540");
        assert_eq!(abr.current(), Some(0));
    }

    #[test]
    fn a_slow_first_byte_makes_short_segments_cost_more() {
        // 1.2 Mbit/s measured; 640×360 costs 1.33 s per 2 s segment with a 50 ms first
        // byte, but 0.67 + 0.4 s per 1 s segment from a server 400 ms away.
        let at = |ttfb_ms: f64, dur: f64| {
            let mut abr = Abr::new(three(), 0.0);
            abr.loaded(&Sample {
                bytes: 150_000,
                ttfb_ms,
                total_ms: ttfb_ms + 1000.0,
                media_s: dur,
                held: false,
            });
            abr.next(0.0, f64::INFINITY, dur)
        };
        assert_eq!(at(50.0, 2.0), 1);
        assert_eq!(at(400.0, 1.0), 2);
    }

    #[test]
    fn a_steady_link_settles_on_the_highest_affordable_rendition_and_stays() {
        for (bps, settle) in [(4.0 * MBPS, 0), (1.5 * MBPS, 1), (0.5 * MBPS, 2)] {
            let mut sim = Sim::new(three(), Link::steady(bps), 2.0);
            sim.run_until(120.0);
            let late = sim.played(30.0, 120.0);
            assert!(late.iter().all(|&r| r == settle), "{bps}: {late:?}");
            assert!(sim.switches() <= 2, "{bps}: {} switches", sim.switches());
            assert!(sim.stall_s < 0.05, "{bps}: stalled {} s", sim.stall_s);
            assert!(sim.abandons.is_empty());
        }
    }

    #[test]
    fn a_steady_link_on_four_rungs_does_not_oscillate() {
        for bps in [1.0, 2.5, 4.5, 8.0] {
            let mut sim = Sim::new(four(), Link::steady(bps * MBPS), 2.0);
            sim.run_until(180.0);
            let late = sim.played(40.0, 180.0);
            assert!(late.windows(2).all(|w| w[0] == w[1]), "{bps}: {late:?}");
            assert!(sim.stall_s < 0.05, "{bps}: stalled {} s", sim.stall_s);
        }
    }

    #[test]
    fn a_step_down_from_4_to_1_mbits_goes_down_within_two_segments_without_a_long_stall() {
        let link = Link::steady(4.0 * MBPS).then(60.3, 1.0 * MBPS);
        let mut sim = Sim::new(three(), link, 2.0);
        sim.run_until(150.0);
        assert_eq!(sim.played(40.0, 60.0), vec![0; 10], "on 960×540 before");
        let after = sim.played(60.3, 150.0);
        assert!(after[..2].iter().any(|&r| r != 0), "{after:?}");
        assert!(after[2..].iter().all(|&r| r != 0), "{after:?}");
        assert!(sim.stall_s <= 1.0, "stalled {} s", sim.stall_s);
        assert!(
            sim.played(100.0, 150.0).iter().all(|&r| r == 1),
            "settles on 640×360"
        );
    }

    #[test]
    fn a_segment_that_would_stall_is_abandoned_for_a_lower_rendition() {
        // Mid-segment the link falls to a tenth: 960×540's 625 KB cannot arrive in time.
        let link = Link::steady(4.0 * MBPS).then(60.3, 0.4 * MBPS);
        let mut sim = Sim::new(three(), link, 2.0);
        sim.run_until(120.0);
        assert_eq!(sim.abandons[0].1, 0, "{:?}", sim.abandons);
        // One abandon may not be enough: the rate seen includes the download's fast start.
        for &(at, from, to) in &sim.abandons {
            assert!((60.3..62.5).contains(&at), "abandoned at {at}");
            assert!(three()[to].bandwidth < three()[from].bandwidth);
        }
        assert_eq!(
            sim.played(60.3, 120.0)[0],
            2,
            "the segment came from 320×180"
        );
        assert!(sim.stall_s <= 1.0, "stalled {} s", sim.stall_s);
        // Without the abandon rule, the same trace stalls for seconds.
        let link = Link::steady(4.0 * MBPS).then(60.3, 0.4 * MBPS);
        let mut waiting = Sim::new(three(), link, 2.0);
        waiting.abandoning = false;
        waiting.run_until(120.0);
        assert!(waiting.stall_s > 3.0, "{}", waiting.stall_s);
    }

    #[test]
    fn three_segments_in_a_row_at_twice_the_estimate_replace_the_old_link() {
        // 320×180 (62 KB) over 0.4 Mbit/s, then the link carries 4 Mbit/s.
        let mut e = Estimator::new(0.0);
        replay(&mut e, &[(62_000, 50.0, 1290.0, 2.0); 10]);
        assert!((e.bps() - 0.4 * MBPS).abs() < 0.01 * MBPS);
        let fast = (62_000, 50.0, 174.0, 2.0);
        replay(&mut e, &[fast, fast]);
        assert!(e.bps() < MBPS, "two agree, not yet: {}", e.bps());
        replay(&mut e, &[fast]);
        assert!((e.bps() - 4.0 * MBPS).abs() < 0.01 * MBPS, "{}", e.bps());

        // Two fast ones and an ordinary one: a burst, the old link stays.
        let mut e = Estimator::new(0.0);
        replay(&mut e, &[(62_000, 50.0, 1290.0, 2.0); 10]);
        replay(
            &mut e,
            &[fast, fast, (62_000, 50.0, 1290.0, 2.0), fast, fast],
        );
        assert!(e.bps() < MBPS, "{}", e.bps());
    }

    #[test]
    fn the_benchs_schedule_is_back_on_960x540_within_12_seconds_of_the_rise() {
        // cargo xtask bench abr's default: 4, 1, 0.4, then 4 Mbit/s again.
        let link = Link::steady(4.0 * MBPS)
            .then(20.0, 1.0 * MBPS)
            .then(40.0, 0.4 * MBPS)
            .then(55.0, 4.0 * MBPS);
        let mut sim = Sim::new(three(), link, 2.0);
        sim.run_until(120.0);
        assert!(sim.stall_s < 0.05, "stalled {} s", sim.stall_s);
        assert!(sim.played(46.0, 55.0).iter().all(|&r| r == 2));
        let top = sim.first_of(0, 55.0).expect("back to 960×540");
        assert!(top < 67.0, "960×540 at {top}");
        assert!(sim.played(top, 120.0).iter().all(|&r| r == 0), "and stays");
    }

    #[test]
    fn a_step_up_from_1_to_4_mbits_climbs_a_rung_at_a_time_within_10_seconds() {
        let link = Link::steady(1.0 * MBPS).then(60.0, 4.0 * MBPS);
        let mut sim = Sim::new(three(), link, 2.0);
        sim.run_until(150.0);
        assert!(
            sim.played(30.0, 60.0).iter().all(|&r| r == 2),
            "{:?}",
            sim.played(30.0, 60.0)
        );
        let up = sim.first_of(1, 60.0).expect("up to 640×360");
        let top = sim.first_of(0, 60.0).expect("up to 960×540");
        assert!(up < 65.0, "640×360 at {up}");
        assert!(up < top && top < 70.0, "960×540 at {top}");
        assert!(sim.stall_s < 0.05, "stalled {} s", sim.stall_s);
        assert!(sim.abandons.is_empty());
        assert!(sim.played(100.0, 150.0).iter().all(|&r| r == 0));
    }

    #[test]
    fn the_issues_4_1_4_mbits_schedule_steps_down_without_a_stall_and_back_up() {
        let link = Link::steady(4.0 * MBPS)
            .then(60.3, 1.0 * MBPS)
            .then(120.0, 4.0 * MBPS);
        let mut sim = Sim::new(three(), link, 2.0);
        sim.run_until(200.0);
        assert!(sim.stall_s <= 1.0, "stalled {} s", sim.stall_s);
        assert!(sim.played(64.0, 120.0).iter().all(|&r| r == 1));
        let back = sim.first_of(0, 120.0).expect("back to 960×540");
        assert!(back < 130.0, "960×540 again at {back}");
        assert!(sim.played(back, 200.0).iter().all(|&r| r == 0), "and stays");
    }

    #[test]
    fn no_up_switch_without_the_buffer_to_absorb_a_wrong_guess() {
        let mut abr = Abr::new(three(), 0.0);
        abr.loaded(&Sample {
            bytes: 200_000,
            ttfb_ms: 50.0,
            total_ms: 1650.0,
            media_s: 2.0,
            held: false,
        });
        assert_eq!(abr.next(0.0, 5.0, 2.0), 2);
        for _ in 0..20 {
            abr.loaded(&Sample {
                bytes: 62_500,
                ttfb_ms: 50.0,
                total_ms: 50.0 + 125.0 * 0.5,
                media_s: 2.0,
                held: false,
            });
        }
        assert_eq!(abr.next(60_000.0, 0.5, 2.0), 2, "half a second buffered");
        assert_eq!(
            abr.next(60_000.0, 5.0, 2.0),
            0,
            "five seconds, far above: two steps"
        );
    }

    #[test]
    fn a_second_step_up_at_once_needs_the_far_headroom() {
        // From 320×180, a link at ~3.85 Mbit/s: 640×360 is well within reach, 960×540
        // within UP_FACTOR of its duration but not within UP_FAR_FACTOR: one step only.
        let mut abr = Abr::new(three(), 0.0);
        abr.loaded(&Sample {
            bytes: 200_000,
            ttfb_ms: 50.0,
            total_ms: 1650.0,
            media_s: 2.0,
            held: false,
        });
        assert_eq!(abr.next(0.0, 5.0, 2.0), 2);
        for _ in 0..30 {
            abr.loaded(&Sample {
                bytes: 481_250,
                ttfb_ms: 50.0,
                total_ms: 1050.0,
                media_s: 2.0,
                held: false,
            });
        }
        let top = abr.fetch_s(0, 2.0);
        assert!(
            top > 2.0 * UP_FAR_FACTOR && top <= 2.0 * UP_FACTOR,
            "960×540 would take {top:.2} s"
        );
        assert_eq!(abr.next(60_000.0, 6.0, 2.0), 1, "one step, not two");
    }

    #[test]
    fn no_up_switch_within_seconds_of_a_down_switch() {
        let mut abr = Abr::new(three(), 8.0 * MBPS);
        assert_eq!(abr.next(0.0, f64::INFINITY, 2.0), 0);
        abr.loaded(&Sample {
            bytes: 625_000,
            ttfb_ms: 50.0,
            total_ms: 5050.0,
            media_s: 2.0,
            held: false,
        });
        assert_eq!(abr.next(10_000.0, 4.0, 2.0), 1, "down");
        for _ in 0..10 {
            abr.loaded(&Sample {
                bytes: 200_000,
                ttfb_ms: 50.0,
                total_ms: 250.0,
                media_s: 2.0,
                held: false,
            });
        }
        assert_eq!(abr.next(10_000.0 + UP_HOLD_MS - 1.0, 6.0, 2.0), 1);
        assert_eq!(abr.next(10_000.0 + UP_HOLD_MS, 6.0, 2.0), 0);
    }

    #[test]
    fn one_fast_segment_does_not_switch_up() {
        // 1.5 Mbit/s: 640×360. One segment arrives at 30 Mbit/s (a cache, a burst).
        let link = Link::steady(1.5 * MBPS)
            .then(60.0, 30.0 * MBPS)
            .then(60.2, 1.5 * MBPS);
        let mut sim = Sim::new(three(), link, 2.0);
        sim.run_until(100.0);
        assert_eq!(
            sim.trace
                .iter()
                .filter(|e| e.0 >= 60.0 && e.0 < 60.2)
                .count(),
            1
        );
        assert!(
            sim.played(30.0, 100.0).iter().all(|&r| r == 1),
            "{:?}",
            sim.played(30.0, 100.0)
        );
    }

    #[test]
    fn a_download_that_delivers_nothing_for_seconds_is_abandoned_and_playback_goes_down() {
        let link = Link::steady(4.0 * MBPS)
            .then(60.1, 0.0)
            .then(66.0, 4.0 * MBPS);
        let mut sim = Sim::new(three(), link, 2.0);
        sim.run_until(90.0);
        let &(at, from, to) = sim.abandons.first().expect("abandoned");
        assert!(at < 62.0, "abandoned at {at}");
        assert_eq!((from, to), (0, 2), "nearly nothing arrives: the lowest");
        let after = sim.played(66.0, 72.0);
        assert!(
            after.iter().all(|&r| r != 0),
            "not straight back up: {after:?}"
        );
        // 5.9 s without a byte against 4 s buffered: about 1.9 s of stall cannot be
        // avoided; waiting for the top rendition's segment adds its whole download.
        assert!(sim.stall_s < 2.2, "stalled {} s", sim.stall_s);
        let link = Link::steady(4.0 * MBPS)
            .then(60.1, 0.0)
            .then(66.0, 4.0 * MBPS);
        let mut waiting = Sim::new(three(), link, 2.0);
        waiting.abandoning = false;
        waiting.run_until(90.0);
        assert!(
            waiting.stall_s > sim.stall_s + 1.0,
            "{} against {}",
            waiting.stall_s,
            sim.stall_s
        );
    }

    #[test]
    fn a_stall_before_the_first_byte_counts_as_time_against_the_download() {
        let mut abr = Abr::new(three(), 4.0 * MBPS);
        assert_eq!(abr.next(0.0, f64::INFINITY, 2.0), 0);
        let p = |elapsed_ms: f64| Progress {
            rendition: 0,
            loaded: 0,
            expected: None,
            elapsed_ms,
            ttfb_ms: None,
            duration_s: 2.0,
            ahead_s: 4.0,
        };
        assert_eq!(
            abr.progress(0.0, &p(300.0)),
            None,
            "a slow server, not yet a stall"
        );
        assert_eq!(abr.progress(0.0, &p(1_000.0)), None);
        assert_eq!(abr.progress(0.0, &p(2_500.0)), Some(Abandon { to: 1 }));
        assert!(
            abr.estimate_bps() < 4.0 * MBPS,
            "the silence lowered the estimate"
        );
        assert_eq!(abr.current(), Some(1));
    }

    #[test]
    fn a_nearly_finished_download_is_not_abandoned() {
        let mut abr = Abr::new(three(), 4.0 * MBPS);
        abr.next(0.0, f64::INFINITY, 2.0);
        // 95 % of 625 KB in 4 s: the rest comes in 0.2 s, sooner than any new request.
        let p = Progress {
            rendition: 0,
            loaded: 593_750,
            expected: None,
            elapsed_ms: 4_000.0,
            ttfb_ms: Some(50.0),
            duration_s: 2.0,
            ahead_s: 0.5,
        };
        assert_eq!(abr.progress(4_000.0, &p), None);
    }

    #[test]
    fn a_link_that_wobbles_around_its_mean_does_not_make_the_picture_flap() {
        // 4 Mbit/s ± 35 %, a new rate every 300 ms (a deterministic pseudo-random walk).
        let mut link = Link::steady(4.0 * MBPS);
        let mut x: u32 = 12345;
        for i in 1..600 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let wobble = ((x >> 16) % 71) as f64 / 100.0 - 0.35;
            link = link.then(i as f64 * 0.3, 4.0 * MBPS * (1.0 + wobble));
        }
        let mut sim = Sim::new(three(), link, 2.0);
        sim.run_until(180.0);
        let late = sim.played(20.0, 180.0);
        assert!(late.iter().all(|&r| r == 0), "{late:?}");
        assert!(sim.stall_s < 0.05, "stalled {} s", sim.stall_s);
    }

    #[test]
    fn short_parts_with_a_thin_live_buffer_keep_what_the_link_carries() {
        // LL-HLS: 0.33 s parts of 960×540 (103 KB) in 250 ms behind a 50 ms first byte.
        let mut abr = Abr::new(three(), 8.0 * MBPS);
        assert_eq!(abr.next(0.0, f64::INFINITY, 0.33), 0);
        for i in 0..30 {
            abr.loaded(&Sample {
                bytes: 103_125,
                ttfb_ms: 50.0,
                total_ms: 250.0,
                media_s: 0.33,
                held: false,
            });
            assert_eq!(
                abr.next(i as f64 * 330.0, 1.0, 0.33),
                0,
                "a second buffered"
            );
        }
    }

    #[test]
    fn a_320_px_player_never_picks_1080p_and_full_screen_allows_it() {
        let mut sim = Sim::new(four(), Link::steady(20.0 * MBPS), 2.0);
        sim.abr.set_size(320.0, 180.0, 2.0);
        sim.run_until(60.0);
        assert!(
            sim.played(0.0, 60.0).iter().all(|&r| r <= 1),
            "{:?}",
            sim.played(0.0, 60.0)
        );
        assert_eq!(
            sim.played(30.0, 60.0),
            vec![1; 15],
            "480p covers 640 device pixels"
        );
        sim.abr.set_size(1920.0, 1080.0, 1.0);
        sim.run_until(90.0);
        let top = sim.first_of(3, 60.0).expect("1080p in full screen");
        assert!(top < 66.0, "1080p at {top}");
        sim.abr.set_size(320.0, 180.0, 1.0);
        sim.run_until(120.0);
        let back = sim.played(92.0, 120.0);
        assert!(
            back.iter().all(|&r| r == 0),
            "out of full screen: 240p at once, {back:?}"
        );
    }

    #[test]
    fn the_size_cap_is_the_smallest_rendition_that_covers_the_player() {
        let cap = |w: f64, h: f64, dpr: f64| {
            let mut abr = Abr::new(four(), 100.0 * MBPS);
            abr.set_size(w, h, dpr);
            abr.next(0.0, f64::INFINITY, 2.0)
        };
        assert_eq!(cap(320.0, 180.0, 1.0), 0);
        assert_eq!(cap(400.0, 225.0, 1.0), 0, "426×240 covers 400×225");
        assert_eq!(
            cap(427.0, 240.0, 1.0),
            0,
            "a pixel wider: 240 is still as tall"
        );
        assert_eq!(
            cap(640.0, 640.0, 1.0),
            1,
            "a square box shows 640×360 letterboxed"
        );
        assert_eq!(cap(360.0, 203.0, 2.0), 1, "720×406: 854×480 covers it");
        assert_eq!(
            cap(360.0, 203.0, 3.0),
            1,
            "a phone at dpr 3 counts as 2, not 720p"
        );
        assert_eq!(cap(640.0, 360.0, 1.5), 2, "960×540: 720p");
        assert_eq!(cap(3840.0, 2160.0, 1.0), 3, "nothing covers: the top");
        assert_eq!(cap(0.0, 0.0, 1.0), 3, "not laid out yet: no cap");
        let mut abr = Abr::new(three(), 100.0 * MBPS);
        abr.set_size(320.0, 180.0, 1.0);
        assert_eq!(
            abr.next(0.0, f64::INFINITY, 2.0),
            2,
            "the issue's ladder: 320×180"
        );
    }

    #[test]
    fn max_height_drops_taller_renditions_whatever_the_network() {
        let mut sim = Sim::new(four(), Link::steady(20.0 * MBPS), 2.0);
        sim.abr.set_max_height(Some(720));
        sim.run_until(60.0);
        assert!(sim.played(0.0, 60.0).iter().all(|&r| r <= 2));
        assert_eq!(sim.played(30.0, 60.0), vec![2; 15]);
        let mut abr = Abr::new(four(), 0.0);
        abr.set_max_height(Some(100));
        assert_eq!(
            abr.next(0.0, f64::INFINITY, 2.0),
            0,
            "below every rung: the lowest"
        );
    }

    #[test]
    fn a_fixed_height_is_played_whatever_the_network_and_auto_resumes_adapting() {
        let link = Link::steady(4.0 * MBPS)
            .then(30.0, 0.4 * MBPS)
            .then(60.0, 4.0 * MBPS);
        let mut sim = Sim::new(three(), link, 2.0);
        sim.abr.set_choice(Choice::Height(360));
        sim.run_until(40.0);
        assert!(sim.played(0.0, 40.0).iter().all(|&r| r == 1));
        assert!(
            sim.abandons.is_empty(),
            "the viewer's choice is not abandoned"
        );
        sim.abr.set_choice(Choice::Auto);
        sim.run_until(60.0);
        assert!(
            sim.played(44.0, 60.0).iter().all(|&r| r == 2),
            "{:?}",
            sim.played(44.0, 60.0)
        );

        let mut abr = Abr::new(four(), 0.0);
        abr.set_size(100.0, 56.0, 1.0);
        abr.set_choice(Choice::Height(1080));
        assert_eq!(abr.next(0.0, 0.0, 2.0), 3, "over the size cap: they asked");
        abr.set_choice(Choice::Height(600));
        assert_eq!(abr.next(0.0, 0.0, 2.0), 1, "no 600p: the tallest below");
        abr.set_max_height(Some(720));
        abr.set_choice(Choice::Height(1080));
        assert_eq!(
            abr.next(0.0, 0.0, 2.0),
            2,
            "but not over the page's maximum"
        );
    }

    #[test]
    fn an_empty_or_odd_input_answers_without_panicking() {
        let mut abr = Abr::new(Vec::new(), f64::NAN);
        assert_eq!(abr.next(0.0, f64::NAN, f64::NAN), 0);
        assert_eq!(abr.estimate_bps(), DEFAULT_ESTIMATE_BPS);
        let p = Progress {
            rendition: 7,
            loaded: 10,
            expected: Some(1),
            elapsed_ms: f64::NAN,
            ttfb_ms: None,
            duration_s: -1.0,
            ahead_s: f64::NAN,
        };
        assert_eq!(abr.progress(0.0, &p), None);
        let mut abr = Abr::new(three(), 0.0);
        assert_eq!(abr.next(0.0, f64::NAN, 0.0), 2);
        assert_eq!(abr.progress(0.0, &Progress { rendition: 2, ..p }), None);
    }
}
