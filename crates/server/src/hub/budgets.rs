//! The hub's per-address budgets ([`Spend`]: new identities, made-up rooms, wrong
//! secrets) and where they are counted: in the node's memory on one node, in Redis with
//! `--redis` so that an address spreading its requests over N nodes gets one budget,
//! not N (the buckets are the same GCRA as `budget`'s, run by a script in `cluster`, on
//! Redis's clock).
//!
//! # When Redis does not answer
//! The node counts on its own (`budget::Budget`), as on one node: neither open (no limit
//! at all) nor closed (refuse everyone). The node's own buckets are charged with every
//! unit Redis granted through it, so the count it falls back to is already warm. Why
//! not closed: the budget on wrong secrets sits in front of the studio's stream-key
//! check, and video must not depend on Redis (a broadcaster could not go live); a
//! refusal for "too many new viewers" would also tell every newcomer something false.
//! Why not open: an attacker able to slow Redis down would get unlimited guesses. What
//! is lost during an outage is only the sharing: at most N× a node's allowance, for its
//! duration, while posts and room loads (what new identities and rooms buy) are refused
//! `unavailable` anyway. Redis is given [`BUDGET_PATIENCE`] (joins wait on it).

use super::budget::{Budget, ClientKey, Rate};
use super::cluster::{Cluster, BUDGET_PATIENCE};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a client spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spend {
    /// A new viewer identity (each brings its own chat allowance).
    NewViewer,
    /// A made-up room opened (`--free-rooms`).
    NewRoom,
    /// A wrong staff token or studio secret.
    Guess,
}

impl Spend {
    /// Its name in Redis keys.
    fn name(self) -> &'static str {
        match self {
            Spend::NewViewer => "new-viewers",
            Spend::NewRoom => "new-rooms",
            Spend::Guess => "guesses",
        }
    }
}

/// The three budgets, and Redis when nodes share them.
#[derive(Debug)]
pub(crate) struct Budgets {
    new_viewers: Mutex<Budget>,
    new_rooms: Mutex<Budget>,
    guesses: Mutex<Budget>,
    cluster: Option<Arc<Cluster>>,
    /// When the last "counting alone" warning was logged (unix ms), so an outage logs
    /// once in a while, not once per request.
    warned_ms: AtomicU64,
}

/// Made-up rooms one client address may open per minute.
const NEW_ROOMS_PER_MIN: u32 = 5;
/// Wrong staff tokens one client address may try per minute.
const GUESSES_PER_MIN: u32 = 5;

impl Budgets {
    /// `new_viewers_per_min` new identities per address (0: no limit); shared through
    /// `cluster` when there is one.
    pub(crate) fn new(new_viewers_per_min: u32, cluster: Option<Arc<Cluster>>) -> Budgets {
        Budgets {
            new_viewers: Mutex::new(Budget::new(Rate::per_minute(new_viewers_per_min))),
            new_rooms: Mutex::new(Budget::new(Rate::per_minute(NEW_ROOMS_PER_MIN))),
            guesses: Mutex::new(Budget::new(Rate::per_minute(GUESSES_PER_MIN))),
            cluster,
            warned_ms: AtomicU64::new(0),
        }
    }

    fn local(&self, what: Spend) -> std::sync::MutexGuard<'_, Budget> {
        match what {
            Spend::NewViewer => &self.new_viewers,
            Spend::NewRoom => &self.new_rooms,
            Spend::Guess => &self.guesses,
        }
        .lock()
        .unwrap_or_else(|e| e.into_inner())
    }

    /// `Err(retry_after)` when `client` has no `what` left; spends nothing.
    pub(crate) async fn check(&self, what: Spend, client: ClientKey) -> Result<(), Duration> {
        self.spend(what, client, false).await
    }

    /// Spends one `what` of `client`'s, or says when there will be one.
    pub(crate) async fn take(&self, what: Spend, client: ClientKey) -> Result<(), Duration> {
        self.spend(what, client, true).await
    }

    async fn spend(&self, what: Spend, client: ClientKey, take: bool) -> Result<(), Duration> {
        let Some(rate) = self.local(what).rate() else {
            return Ok(());
        };
        if let Some(cluster) = &self.cluster {
            match cluster.budget(what.name(), client, rate, take).await {
                Ok(verdict) => {
                    if take && verdict.is_ok() {
                        self.local(what).charge(client, Instant::now());
                    }
                    return verdict;
                }
                Err(e) => self.counting_alone(&e),
            }
        }
        let mut local = self.local(what);
        let now = Instant::now();
        if take {
            local.take(client, now)
        } else {
            local.check(client, now)
        }
    }

    fn counting_alone(&self, e: &super::cluster::ClusterError) {
        let now = super::now_ms();
        let last = self.warned_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 10_000
            && self
                .warned_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                "chat: per-address budgets counted by this node alone (Redis: {e}; waited at most {} ms)",
                BUDGET_PATIENCE.as_millis()
            );
        }
    }
}
