//! The conditions a rule puts on a port ([`PortMatch`]) and on a destination
//! ([`DestMatch`], with [`HostPattern`] for SOCKS4a names), and how each
//! matches.

use crate::net::{ipv4_equivalent, AddrClass, Netmask};
use std::net::IpAddr;

/// A condition on a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortMatch {
    /// Any port.
    Any,
    /// `eq N`: exactly N.
    Eq(u16),
    /// `neq N`: anything but N.
    Neq(u16),
    /// `lt N`: below N.
    Lt(u16),
    /// `gt N`: above N.
    Gt(u16),
    /// `range A-B`: A to B inclusive (A ≤ B).
    Range(u16, u16),
}

impl PortMatch {
    /// Whether `port` satisfies the condition.
    pub fn matches(self, port: u16) -> bool {
        match self {
            PortMatch::Any => true,
            PortMatch::Eq(n) => port == n,
            PortMatch::Neq(n) => port != n,
            PortMatch::Lt(n) => port < n,
            PortMatch::Gt(n) => port > n,
            PortMatch::Range(a, b) => (a..=b).contains(&port),
        }
    }
}

/// A host name pattern for SOCKS4a destinations. Comparison ignores ASCII case and
/// a trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// `example.com`: exactly that name.
    Exact(String),
    /// `.example.com`: the domain itself and every name under it
    /// (`example.com`, `www.example.com`), but not `badexample.com`.
    Domain(String),
}

impl HostPattern {
    /// Whether `host` matches.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.strip_suffix('.').unwrap_or(host);
        match self {
            HostPattern::Exact(name) => host.eq_ignore_ascii_case(name),
            HostPattern::Domain(domain) => {
                host.eq_ignore_ascii_case(domain)
                    || (host.len() > domain.len()
                        && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
                        && host[host.len() - domain.len()..].eq_ignore_ascii_case(domain))
            }
        }
    }
}

/// A condition on the destination.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DestMatch {
    /// Any destination, by address or by name.
    Any,
    /// A destination address in this net. For SOCKS4a the resolved address is
    /// compared; a subject with no address yet does not match. An IPv6 address
    /// that spells an IPv4 one ([`ipv4_equivalent`]: mapped, compatible, NAT64,
    /// and `::1` for `127.0.0.1`) matches the IPv4 nets its IPv4 address is in.
    Net(Netmask),
    /// A SOCKS4a host name matching this pattern. A plain SOCKS4 request (an
    /// address, no name) does not match.
    Host(HostPattern),
    /// A destination address in this class, either family (`to loopback`,
    /// `to private`, `to link-local`, `to unspecified`).
    Class(AddrClass),
}

impl DestMatch {
    /// Whether the destination, by address (`None` before a SOCKS4a name
    /// resolves) or by name, satisfies the condition.
    pub(super) fn matches(&self, addr: Option<IpAddr>, host: Option<&str>) -> bool {
        match self {
            DestMatch::Any => true,
            DestMatch::Net(net) => addr.is_some_and(|a| {
                net.contains(a) || ipv4_equivalent(a).is_some_and(|v4| net.contains(v4.into()))
            }),
            DestMatch::Host(pattern) => host.is_some_and(|h| pattern.matches(h)),
            DestMatch::Class(class) => addr.is_some_and(|a| class.contains(a)),
        }
    }

    /// Whether deciding this condition needs the destination's address.
    pub fn needs_address(&self) -> bool {
        matches!(self, DestMatch::Net(_) | DestMatch::Class(_))
    }
}
