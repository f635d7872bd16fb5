//! A room's ticker state: hearts aggregated per colour into one `hearts` frame per
//! [`HEARTS_TICK`], the viewer count pushed at most every [`COUNT_INTERVAL`], and when the
//! hearts total is saved (see `hearts`). Pure, with the time passed in: the room runs the
//! timer, sends the frames and records the saves.
//!
//! The timer ([`run`]) runs only while something is due, so an idle room costs no
//! wake-ups: `join`, `leave` and `add_hearts` say when to wake it.
//!
//! # Shared hearts (`--redis`)
//! A [`Ticker::shared`] ticker does not show its own viewers' taps: it hands them, once
//! per tick, as one batch to send to Redis ([`Tick::flush`]), and shows what comes back
//! from the room's hearts stream, every node's batches alike ([`Ticker::add_batch`]),
//! in the next tick's one frame. So each viewer still gets at most one `hearts` frame
//! per tick, and every node shows the total Redis counted (the highest one read, which
//! is the last batch's: the stream is in the order the total was counted).

use super::hearts;
use lucarne_protocol::{Hearts, ServerMessage, ViewerCount};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Hearts are aggregated over this tick: each viewer gets at most 5 `hearts` frames/s.
pub const HEARTS_TICK: Duration = Duration::from_millis(200);
/// The viewer count is pushed at most this often.
pub const COUNT_INTERVAL: Duration = Duration::from_secs(1);

/// What one tick produced.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Tick {
    /// To send to everyone, in order.
    pub(crate) frames: Vec<ServerMessage>,
    /// A hearts total to write to the store.
    pub(crate) save: Option<u64>,
    /// Shared: this node's taps since the last tick, to send to Redis.
    pub(crate) flush: Vec<(&'static str, u32)>,
    /// Whether another tick is needed.
    pub(crate) more: bool,
}

/// See the module doc.
#[derive(Debug)]
pub(crate) struct Ticker {
    /// Connected to this node.
    viewers: u32,
    /// Connected to the other nodes (`--redis`), as last read.
    others: u32,
    count_sent: u32,
    count_sent_at: Option<Instant>,
    /// Taps since the last `hearts` frame.
    hearts: BTreeMap<&'static str, u32>,
    /// Shared (`--redis`): this node's taps not yet sent to Redis; `None` on one node.
    outgoing: Option<BTreeMap<&'static str, u32>>,
    hearts_total: u64,
    /// What the store has, and when this process wrote it.
    hearts_saved: u64,
    hearts_saved_at: Option<Instant>,
    /// Whether the timer runs (or was woken).
    ticking: bool,
}

impl Ticker {
    /// A room with `hearts_total` hearts on record and nobody in it.
    pub(crate) fn new(hearts_total: u64) -> Ticker {
        Ticker {
            viewers: 0,
            others: 0,
            count_sent: 0,
            count_sent_at: None,
            hearts: BTreeMap::new(),
            outgoing: None,
            hearts_total,
            hearts_saved: hearts_total,
            hearts_saved_at: None,
            ticking: false,
        }
    }

    /// A ticker whose hearts go through Redis (see the module doc); `hearts_total` is
    /// Redis's.
    pub(crate) fn shared(hearts_total: u64) -> Ticker {
        Ticker {
            outgoing: Some(BTreeMap::new()),
            ..Ticker::new(hearts_total)
        }
    }

    pub(crate) fn viewers(&self) -> u32 {
        self.viewers
    }

    /// The count viewers are shown: this node's and the other nodes'.
    pub(crate) fn shown(&self) -> u32 {
        self.viewers.saturating_add(self.others)
    }

    /// The other nodes' viewers; true if the timer must be woken.
    pub(crate) fn set_others(&mut self, n: u32) -> bool {
        std::mem::replace(&mut self.others, n) != n && self.arm()
    }

    pub(crate) fn hearts_total(&self) -> u64 {
        self.hearts_total
    }

    /// One more viewer; true if the timer must be woken.
    pub(crate) fn join(&mut self) -> bool {
        self.viewers += 1;
        self.arm()
    }

    /// One viewer fewer; true if the timer must be woken.
    pub(crate) fn leave(&mut self) -> bool {
        self.viewers = self.viewers.saturating_sub(1);
        self.arm()
    }

    /// Counts `n` taps of `colour`; true if the timer must be woken.
    pub(crate) fn add_hearts(&mut self, colour: &'static str, n: u32) -> bool {
        match &mut self.outgoing {
            Some(out) => *out.entry(colour).or_default() += n,
            None => {
                *self.hearts.entry(colour).or_default() += n;
                self.hearts_total += u64::from(n);
            }
        }
        self.arm()
    }

    /// Shared: a batch read from the room's hearts stream (any node's, this one's too),
    /// after which Redis counted `total`; true if the timer must be woken.
    pub(crate) fn add_batch(
        &mut self,
        counts: impl IntoIterator<Item = (&'static str, u32)>,
        total: u64,
    ) -> bool {
        for (colour, n) in counts {
            *self.hearts.entry(colour).or_default() += n;
        }
        self.hearts_total = self.hearts_total.max(total);
        self.arm()
    }

    /// Something else is due at the next tick (questions' votes); true if the timer
    /// must be woken.
    pub(crate) fn poke(&mut self) -> bool {
        self.arm()
    }

    fn arm(&mut self) -> bool {
        !std::mem::replace(&mut self.ticking, true)
    }

    /// The hearts frame and the viewer count, if due, and a save if one is due.
    pub(crate) fn tick(&mut self, now: Instant) -> Tick {
        let mut out = Tick::default();
        if let Some(outgoing) = self.outgoing.as_mut().filter(|o| !o.is_empty()) {
            out.flush = std::mem::take(outgoing).into_iter().collect();
            out.more = true;
        }
        let flowing = !self.hearts.is_empty();
        if flowing {
            let counts = std::mem::take(&mut self.hearts)
                .into_iter()
                .map(|(c, n)| (c.to_owned(), n))
                .collect();
            out.frames.push(ServerMessage::Hearts(Hearts {
                counts,
                total: self.hearts_total,
            }));
            // Keep ticking: the next taps must wait a full tick too.
            out.more = true;
        }
        let total = self.hearts_total;
        // Shared: Redis keeps the total.
        if self.outgoing.is_none()
            && hearts::save_due(total, self.hearts_saved, self.hearts_saved_at, flowing, now)
        {
            self.hearts_saved = total;
            self.hearts_saved_at = Some(now);
            out.save = Some(total);
        }
        let shown = self.shown();
        if shown != self.count_sent {
            match self.count_sent_at {
                Some(at) if now.duration_since(at) < COUNT_INTERVAL => out.more = true,
                _ => {
                    self.count_sent = shown;
                    self.count_sent_at = Some(now);
                    out.frames
                        .push(ServerMessage::ViewerCount(ViewerCount { count: shown }));
                    out.more = true;
                }
            }
        }
        self.ticking = out.more;
        out
    }

    /// The hearts total if the store does not have it yet (the room is unloading).
    pub(crate) fn unsaved(&mut self) -> Option<u64> {
        (self.outgoing.is_none() && self.hearts_total != self.hearts_saved).then(|| {
            self.hearts_saved = self.hearts_total;
            self.hearts_total
        })
    }
}

/// A room's timer: once woken, calls `tick` every [`HEARTS_TICK`] until it says nothing
/// more is due, then sleeps until the next wake-up; ends when the room is `retired`.
pub(crate) async fn run(wake: &Notify, retired: impl Fn() -> bool, tick: impl Fn() -> bool) {
    loop {
        wake.notified().await;
        loop {
            if retired() {
                return;
            }
            tokio::time::sleep(HEARTS_TICK).await;
            if !tick() {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hearts_are_aggregated_per_colour_and_counted() {
        let mut t = Ticker::new(10);
        let now = Instant::now();
        assert!(t.add_hearts("#ff6b6b", 3), "the first tap wakes the timer");
        assert!(!t.add_hearts("#48dbfb", 1));
        t.add_hearts("#ff6b6b", 2);
        let tick = t.tick(now);
        assert_eq!(
            tick.frames,
            [ServerMessage::Hearts(Hearts {
                counts: BTreeMap::from([("#ff6b6b".into(), 5), ("#48dbfb".into(), 1)]),
                total: 16
            })]
        );
        assert_eq!((tick.save, tick.more), (Some(16), true));
        // Taps stopped: one quiet tick, and the timer stops.
        let tick = t.tick(now + HEARTS_TICK);
        assert_eq!(tick, Tick::default());
        assert_eq!(t.unsaved(), None);
        assert!(t.add_hearts("#ff6b6b", 1));
        assert_eq!(t.unsaved(), Some(17));
    }

    #[test]
    fn the_viewer_count_goes_out_at_most_once_a_second() {
        let mut t = Ticker::new(0);
        let t0 = Instant::now();
        assert!(t.join());
        let tick = t.tick(t0);
        assert_eq!(
            tick.frames,
            [ServerMessage::ViewerCount(ViewerCount { count: 1 })]
        );
        assert!(tick.more);
        t.join();
        t.join();
        t.leave();
        let tick = t.tick(t0 + HEARTS_TICK);
        assert!(
            tick.frames.is_empty() && tick.more,
            "waits for the interval"
        );
        let tick = t.tick(t0 + COUNT_INTERVAL);
        assert_eq!(
            tick.frames,
            [ServerMessage::ViewerCount(ViewerCount { count: 2 })]
        );
        assert!(!t.tick(t0 + COUNT_INTERVAL * 2).more, "nothing changed");
        assert_eq!(t.viewers(), 2);
    }

    #[test]
    fn shared_hearts_are_sent_once_a_tick_and_shown_as_redis_counted_them() {
        let mut t = Ticker::shared(100);
        let t0 = Instant::now();
        assert!(t.add_hearts("#ff6b6b", 2));
        t.add_hearts("#48dbfb", 1);
        assert_eq!(t.hearts_total(), 100, "not counted before Redis has them");
        let tick = t.tick(t0);
        assert_eq!(tick.flush, [("#48dbfb", 1), ("#ff6b6b", 2)]);
        assert!(tick.frames.is_empty() && tick.more && tick.save.is_none());
        // Another node's batch, then this node's, come back from the stream.
        t.add_batch([("#ff6b6b", 4)], 104);
        t.add_batch([("#ff6b6b", 2), ("#48dbfb", 1)], 107);
        let tick = t.tick(t0 + HEARTS_TICK);
        assert!(tick.flush.is_empty());
        assert_eq!(
            tick.frames,
            [ServerMessage::Hearts(Hearts {
                counts: BTreeMap::from([("#ff6b6b".into(), 6), ("#48dbfb".into(), 1)]),
                total: 107
            })]
        );
        // An older batch read late never lowers the total.
        t.add_batch([], 105);
        assert_eq!(t.hearts_total(), 107);
        assert_eq!(t.unsaved(), None, "Redis keeps the total");
    }

    #[test]
    fn other_nodes_viewers_are_added_to_the_pushed_count() {
        let mut t = Ticker::new(0);
        let t0 = Instant::now();
        assert!(t.join());
        t.set_others(2);
        let tick = t.tick(t0);
        assert!(tick
            .frames
            .contains(&ServerMessage::ViewerCount(ViewerCount { count: 3 })));
        assert_eq!((t.viewers(), t.shown()), (1, 3));
        // A change of the others' alone wakes an idle timer.
        assert!(!t.tick(t0 + COUNT_INTERVAL).more);
        assert!(t.set_others(1));
        assert!(!t.set_others(1), "unchanged, already woken");
    }
}
