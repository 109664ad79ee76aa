//! IPv6 spellings of IPv4 addresses: [`canonical`] turns an IPv4-mapped
//! address (as a dual-stack listener reports an IPv4 client) into IPv4, and
//! [`ipv4_equivalent`] finds the IPv4 address any IPv6 destination stands
//! for, so that no spelling gets around an IPv4 rule; [`canonical_net`] does
//! for a net what [`canonical`] does for an address.

use ipnet::{IpNet, Ipv4Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IPv4-mapped IPv6 address as IPv4; every other address unchanged.
pub fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

/// A net written inside the IPv4-mapped block (`::ffff:192.0.2.0/120`) as the
/// IPv4 net it spells (`192.0.2.0/24`); every other net unchanged.
///
/// Addresses are compared in their [`canonical`] form, in which an
/// IPv4-mapped address is IPv4: a net in the mapped block must be IPv4 too,
/// or it would never match the clients and destinations it names. A wider
/// IPv6 net that merely includes the mapped block (`::/0`, `::/80`) stays an
/// IPv6 net: it names IPv6 addresses.
///
/// ```
/// use socks4_acl::{canonical_net, IpNet};
/// let net: IpNet = "::ffff:192.0.2.0/120".parse()?;
/// assert_eq!(canonical_net(net).to_string(), "192.0.2.0/24");
/// let wide: IpNet = "::/0".parse()?;
/// assert_eq!(canonical_net(wide), wide);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn canonical_net(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.network().to_ipv4_mapped() {
            Some(v4) => IpNet::V4(Ipv4Net::new_assert(v4, v6.prefix_len() - 96).trunc()),
            None => net,
        },
        _ => net,
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
