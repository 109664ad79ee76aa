//! [`AddrClass`]: a class of addresses (loopback, private, link-local,
//! unspecified) in both families at once, as `to CLASS` rules name them.

use super::spelling::ipv4_equivalent;
use core::fmt;
use std::net::IpAddr;

/// A class of addresses, in both families at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AddrClass {
    /// `loopback`: 127.0.0.0/8 and ::1.
    Loopback,
    /// `private`: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 (RFC 1918) and
    /// fc00::/7 (unique local, RFC 4193).
    Private,
    /// `link-local`: 169.254.0.0/16 and fe80::/10.
    LinkLocal,
    /// `unspecified`: 0.0.0.0 and ::.
    Unspecified,
}

impl AddrClass {
    /// Every class, in the order the text format lists them.
    pub const ALL: [AddrClass; 4] = [
        AddrClass::Loopback,
        AddrClass::Private,
        AddrClass::LinkLocal,
        AddrClass::Unspecified,
    ];

    /// The class's name in the text format.
    pub fn name(self) -> &'static str {
        match self {
            AddrClass::Loopback => "loopback",
            AddrClass::Private => "private",
            AddrClass::LinkLocal => "link-local",
            AddrClass::Unspecified => "unspecified",
        }
    }

    /// The class named `name`.
    pub fn from_name(name: &str) -> Option<AddrClass> {
        Self::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }

    /// Whether `addr` is in the class; an IPv6 address that spells an IPv4
    /// one ([`ipv4_equivalent`]) is in the IPv4 address's class.
    pub fn contains(self, addr: IpAddr) -> bool {
        let v4 = match addr {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => ipv4_equivalent(addr),
        };
        if let Some(v4) = v4 {
            return match self {
                AddrClass::Loopback => v4.is_loopback(),
                AddrClass::Private => v4.is_private(),
                AddrClass::LinkLocal => v4.is_link_local(),
                AddrClass::Unspecified => v4.is_unspecified(),
            };
        }
        let IpAddr::V6(v6) = addr else { return false };
        let top = v6.segments()[0];
        match self {
            AddrClass::Loopback => v6.is_loopback(),
            AddrClass::Private => top & 0xfe00 == 0xfc00,
            AddrClass::LinkLocal => top & 0xffc0 == 0xfe80,
            AddrClass::Unspecified => v6.is_unspecified(),
        }
    }
}

impl fmt::Display for AddrClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
