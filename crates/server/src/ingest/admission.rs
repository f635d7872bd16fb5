//! The budget of RTMP connections that are not publishing yet (in the handshake, or
//! between `connect` and an accepted `publish`): at most so many in all and so many per
//! source host. It only counts; the deadlines that bound how long a pending connection
//! lasts, and the publishing slots, are [`super`]'s.
//!
//! Pending connections have their own budget so that they cannot take publishing slots:
//! upstream ingest took a slot at accept, and 64 idle sockets kept every publisher out.
//! The per-host share keeps one scanner from filling the whole budget; IPv6 hosts are
//! counted by /64, the block a single subscriber usually gets.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Counts pending connections; cloning shares the counts.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    counts: Arc<Mutex<Counts>>,
    /// Pending connections in all.
    max_total: usize,
    /// Pending connections per host.
    max_per_host: usize,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    /// Hosts with at least one pending connection (entries go at zero, so the map
    /// never holds more than `max_total` entries).
    per_host: HashMap<IpAddr, usize>,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Full {
    /// The whole budget is taken.
    #[error("{0} connections are already waiting to publish")]
    Total(usize),
    /// The host's share is taken.
    #[error("its host already has {0} connections waiting to publish")]
    Host(usize),
}

/// One admitted pending connection; dropping it gives the place back.
#[derive(Debug)]
pub(crate) struct Admitted {
    pending: Pending,
    /// [`crate::client::host`] of its address.
    host: IpAddr,
}

impl Pending {
    pub(crate) fn new(max_total: usize, max_per_host: usize) -> Self {
        Pending {
            counts: Arc::default(),
            max_total,
            max_per_host,
        }
    }

    /// Counts a new connection from `ip`, if the budget has room for it.
    pub(crate) fn admit(&self, ip: IpAddr) -> Result<Admitted, Full> {
        let host = crate::client::host(ip);
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if counts.total >= self.max_total {
            return Err(Full::Total(counts.total));
        }
        let of_host = counts.per_host.entry(host).or_default();
        if *of_host >= self.max_per_host {
            return Err(Full::Host(*of_host));
        }
        *of_host += 1;
        counts.total += 1;
        Ok(Admitted {
            pending: self.clone(),
            host,
        })
    }

    /// Pending connections counted now.
    #[cfg(test)]
    fn total(&self) -> usize {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut counts = self
            .pending
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        counts.total -= 1;
        if let Some(n) = counts.per_host.get_mut(&self.host) {
            *n -= 1;
            if *n == 0 {
                counts.per_host.remove(&self.host);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_host_gets_its_share_and_no_more() {
        let pending = Pending::new(10, 2);
        let _a = pending.admit(ip("192.0.2.1")).unwrap();
        let _b = pending.admit(ip("192.0.2.1")).unwrap();
        assert_eq!(pending.admit(ip("192.0.2.1")).unwrap_err(), Full::Host(2));
        assert!(pending.admit(ip("192.0.2.2")).is_ok());
    }

    #[test]
    fn the_total_holds_across_hosts() {
        let pending = Pending::new(3, 2);
        let held: Vec<_> = (1..=3)
            .map(|i| pending.admit(ip(&format!("192.0.2.{i}"))).unwrap())
            .collect();
        assert_eq!(pending.admit(ip("192.0.2.9")).unwrap_err(), Full::Total(3));
        drop(held);
        assert!(pending.admit(ip("192.0.2.9")).is_ok());
    }

    #[test]
    fn a_closed_connection_gives_its_place_back() {
        let pending = Pending::new(10, 1);
        let a = pending.admit(ip("192.0.2.1")).unwrap();
        assert!(pending.admit(ip("192.0.2.1")).is_err());
        drop(a);
        assert_eq!(pending.total(), 0);
        assert!(pending.admit(ip("192.0.2.1")).is_ok());
    }

    #[test]
    fn ipv6_hosts_are_counted_by_their_64_block() {
        let pending = Pending::new(10, 1);
        let _a = pending.admit(ip("2001:db8:0:1::1")).unwrap();
        assert!(pending.admit(ip("2001:db8:0:1::ffff")).is_err());
        assert!(pending.admit(ip("2001:db8:0:2::1")).is_ok());
    }

    #[test]
    fn ipv4_mapped_addresses_count_as_their_ipv4_host() {
        let pending = Pending::new(10, 1);
        let _a = pending.admit(ip("192.0.2.1")).unwrap();
        assert!(pending.admit(ip("::ffff:192.0.2.1")).is_err());
    }
}
