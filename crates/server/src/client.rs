//! What counts as one client when limits are kept per address: an IPv4 address, or
//! the /64 of an IPv6 one (the block a single subscriber usually gets, so rotating
//! addresses within it earns nothing). IPv4-mapped IPv6 addresses count as their IPv4
//! address. Used by the RTMP pending budget and the hub's per-address budgets.

use std::net::{IpAddr, Ipv6Addr};

/// The address limits are counted against for a peer at `ip`.
pub fn host(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(host(a), host(b));
        assert_ne!(host(a), host(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(host(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }
}
