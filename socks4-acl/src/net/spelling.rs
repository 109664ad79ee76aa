//! IPv6 spellings of IPv4 addresses: [`canonical`] turns an IPv4-mapped
//! address (as a dual-stack listener reports an IPv4 client) into IPv4, and
//! [`ipv4_equivalent`] finds the IPv4 address any IPv6 destination stands
//! for, so that no spelling gets around an IPv4 rule.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IPv4-mapped IPv6 address as IPv4; every other address unchanged.
pub fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

/// The IPv4 address an IPv6 destination reaches, where it spells one: an
/// IPv4-mapped address (`::ffff:a.b.c.d`), a deprecated IPv4-compatible one
/// (`::a.b.c.d`), one in the well-known NAT64 prefix (`64:ff9b::a.b.c.d`,
/// RFC 6052), and the IPv6 loopback `::1`, which reaches the local host just as
/// `127.0.0.1` does. Destination rules with an IPv4 net match these addresses
/// too, so that no IPv6 spelling gets around a rule like `block to
/// 127.0.0.0/8`. `None` for an IPv4 address or any other IPv6 one.
pub fn ipv4_equivalent(addr: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(v6) = addr else { return None };
    if v6 == Ipv6Addr::LOCALHOST {
        return Some(Ipv4Addr::LOCALHOST);
    }
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let bits = u128::from(v6);
    let low = Ipv4Addr::from(bits as u32);
    let compatible = bits >> 32 == 0 && !v6.is_unspecified();
    let nat64 = bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000;
    (compatible || nat64).then_some(low)
}
