//! [`ClientKey`]: a client as per-client limits and accounting see it, an
//! IPv4 address or an IPv6 /64 (one site's hosts share it, as IPv4 hosts
//! behind NAT share an address).

use socks4_acl::canonical;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A client, as limits and accounting see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClientKey {
    /// An IPv4 address (IPv4-mapped IPv6 addresses count as IPv4).
    V4(Ipv4Addr),
    /// An IPv6 /64: the address's first 64 bits.
    V6(u64),
}

impl ClientKey {
    /// The client an address belongs to.
    pub fn of(addr: IpAddr) -> ClientKey {
        match canonical(addr) {
            IpAddr::V4(v4) => ClientKey::V4(v4),
            IpAddr::V6(v6) => ClientKey::V6((u128::from(v6) >> 64) as u64),
        }
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientKey::V4(a) => a.fmt(f),
            ClientKey::V6(prefix) => {
                write!(f, "{}/64", Ipv6Addr::from(u128::from(*prefix) << 64))
            }
        }
    }
}
