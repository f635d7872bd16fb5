//! Per-client budgets: what one client address may spend on things that are free for
//! it and costly for everyone else — new viewer identities (each brings a fresh chat
//! allowance), made-up rooms, wrong staff tokens. Pure: token buckets (GCRA) keyed by a
//! hash of the address, with the time passed in. With `--redis` the same buckets are
//! kept in Redis for every node (`budgets`, `cluster`); these are then the node's own
//! count, used while Redis does not answer.
//!
//! It keeps no address. A [`ClientKey`] is a keyed hash (HMAC-SHA256, 64 bits kept) of
//! the address, so what stays in memory (or in Redis) does not say who connected, and
//! is gone once the bucket has refilled. The key is random per process on one node; with
//! `--redis` it is derived from the identity secret every node shares, so one address
//! is one key on every node. IPv6 addresses count per /64, what one subscriber usually
//! gets; IPv4-mapped IPv6 addresses count as their IPv4 address.
//!
//! A bucket that has refilled is the same as no bucket: they are pruned when
//! [`PRUNE_AT`] accumulate, so the map holds only clients seen within a refill period.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Buckets are pruned when this many accumulate.
pub(crate) const PRUNE_AT: usize = 4096;

/// A client address, hashed (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(u64);

impl ClientKey {
    /// As Redis keys name it.
    pub(crate) fn hex(self) -> String {
        format!("{:016x}", self.0)
    }
}

/// Turns addresses into [`ClientKey`]s.
pub(crate) struct Keyer([u8; 32]);

impl std::fmt::Debug for Keyer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyer(..)")
    }
}

impl Default for Keyer {
    /// A key of this process alone.
    fn default() -> Keyer {
        Keyer(rand::random())
    }
}

impl Keyer {
    /// The keyer every node holding `secret` (the shared identity secret) agrees on.
    pub(crate) fn shared(secret: &[u8; 32]) -> Keyer {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key");
        mac.update(b"lucarne client key");
        Keyer(mac.finalize().into_bytes().into())
    }

    /// The key of `ip`: its /64 for IPv6.
    pub(crate) fn key(&self, ip: IpAddr) -> ClientKey {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key");
        match crate::client::host(ip) {
            IpAddr::V4(v4) => mac.update(&v4.octets()),
            IpAddr::V6(v6) => mac.update(&v6.octets()),
        }
        let tag = mac.finalize().into_bytes();
        let mut first = [0u8; 8];
        first.copy_from_slice(&tag[..8]);
        ClientKey(u64::from_be_bytes(first))
    }
}

/// `burst` at once, then one more every `every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rate {
    pub(crate) burst: u32,
    pub(crate) every: Duration,
}

impl Rate {
    /// `n` a minute, all of them at once if need be; `None` (no limit) for 0.
    pub(crate) fn per_minute(n: u32) -> Option<Rate> {
        (n > 0).then(|| Rate {
            burst: n,
            every: Duration::from_secs(60) / n,
        })
    }
}

/// A token bucket per client.
#[derive(Debug)]
pub(crate) struct Budget {
    rate: Option<Rate>,
    /// Theoretical arrival time of each client's next token (GCRA).
    tat: HashMap<ClientKey, Instant>,
}

impl Budget {
    /// A budget spending at `rate`; `None` never refuses.
    pub(crate) fn new(rate: Option<Rate>) -> Budget {
        Budget {
            rate,
            tat: HashMap::new(),
        }
    }

    /// `Err(retry_after)` when `client` has nothing left; spends nothing.
    pub(crate) fn check(&self, client: ClientKey, now: Instant) -> Result<(), Duration> {
        let Some(rate) = self.rate else {
            return Ok(());
        };
        let tolerance = rate.every * rate.burst.saturating_sub(1);
        match self.tat.get(&client) {
            Some(&tat) if tat > now + tolerance => Err(tat - tolerance - now),
            _ => Ok(()),
        }
    }

    /// Spends one unit of `client`'s budget, or says when there will be one.
    pub(crate) fn take(&mut self, client: ClientKey, now: Instant) -> Result<(), Duration> {
        self.check(client, now)?;
        self.charge(client, now);
        Ok(())
    }

    /// Spends one unit of `client`'s budget without checking it (it was spent
    /// elsewhere: in Redis, for every node), so this count is ready if it must decide.
    pub(crate) fn charge(&mut self, client: ClientKey, now: Instant) {
        let Some(rate) = self.rate else {
            return;
        };
        if self.tat.len() >= PRUNE_AT {
            self.tat.retain(|_, tat| *tat > now);
        }
        let tat = self.tat.entry(client).or_insert(now);
        // Bounded: a client charged far past its burst is refused for one burst's time
        // at most after Redis goes away.
        *tat = ((*tat).max(now) + rate.every).min(now + rate.every * rate.burst);
    }

    /// The rate it spends at (`None`: no limit).
    pub(crate) fn rate(&self) -> Option<Rate> {
        self.rate
    }

    /// Clients with a bucket that has not refilled (or not been pruned yet).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.tat.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_spends_its_burst_then_one_per_period_and_others_are_unaffected() {
        let keys = Keyer::default();
        let (a, b) = (
            keys.key("192.0.2.1".parse().unwrap()),
            keys.key("192.0.2.2".parse().unwrap()),
        );
        let t0 = Instant::now();
        let mut budget = Budget::new(Rate::per_minute(3));
        for _ in 0..3 {
            budget.take(a, t0).unwrap();
        }
        let wait = budget.take(a, t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(20));
        assert_eq!(budget.check(a, t0), Err(wait));
        budget.take(b, t0).unwrap();
        // One comes back per period, not the whole burst.
        budget.take(a, t0 + wait).unwrap();
        assert!(budget.take(a, t0 + wait).is_err());
        // After a full minute of nothing, the burst is back.
        let later = t0 + Duration::from_secs(120);
        for _ in 0..3 {
            budget.take(a, later).unwrap();
        }
    }

    #[test]
    fn a_charge_counts_without_refusing_and_caps_at_one_burst() {
        let key = Keyer::default().key("192.0.2.1".parse().unwrap());
        let mut budget = Budget::new(Rate::per_minute(3));
        let t0 = Instant::now();
        for _ in 0..10 {
            budget.charge(key, t0);
        }
        assert_eq!(budget.check(key, t0), Err(Duration::from_secs(20)));
        // One burst's worth of time later (not ten charges' worth) one is back.
        assert!(budget.take(key, t0 + Duration::from_secs(20)).is_ok());
    }

    #[test]
    fn a_shared_keyer_gives_one_address_one_key_on_every_node() {
        let (a, b) = (Keyer::shared(&[5; 32]), Keyer::shared(&[5; 32]));
        let ip = "192.0.2.1".parse().unwrap();
        assert_eq!(a.key(ip), b.key(ip));
        assert_ne!(a.key(ip), Keyer::shared(&[6; 32]).key(ip));
        assert_ne!(a.key(ip), a.key("192.0.2.2".parse().unwrap()));
        assert_eq!(a.key(ip).hex().len(), 16);
    }

    #[test]
    fn no_rate_never_refuses() {
        let key = Keyer::default().key("192.0.2.1".parse().unwrap());
        let mut budget = Budget::new(Rate::per_minute(0));
        let now = Instant::now();
        for _ in 0..10_000 {
            budget.take(key, now).unwrap();
        }
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let keys = Keyer::default();
        let key = |s: &str| keys.key(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.7"), key("192.0.2.7"));
        assert_ne!(key("192.0.2.7"), key("192.0.2.8"));
    }

    #[test]
    fn refilled_buckets_are_pruned() {
        let keys = Keyer::default();
        let mut budget = Budget::new(Rate::per_minute(60));
        let t0 = Instant::now();
        for i in 0..PRUNE_AT as u32 {
            budget
                .take(keys.key(IpAddr::from(i.to_be_bytes())), t0)
                .unwrap();
        }
        assert_eq!(budget.len(), PRUNE_AT);
        let later = t0 + Duration::from_secs(2);
        budget
            .take(keys.key("192.0.2.1".parse().unwrap()), later)
            .unwrap();
        assert_eq!(budget.len(), 1);
    }
}
