//! [`Netmask`]: a set of addresses as people type it (`any`, CIDR, an address
//! and a dotted mask, one address), how it parses and prints, and the
//! [`loopback`] nets.

use super::spelling::{canonical, canonical_net};
use core::fmt;
use core::str::FromStr;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A set of addresses written the way a user types it: `any`, a CIDR net
/// (`10.0.0.0/8`, `2001:db8::/32`), an address and a dotted netmask
/// (`10.0.0.0 255.0.0.0` or `10.0.0.0/255.0.0.0`), or a single address
/// (`127.0.0.1`, `::1`).
///
/// Host bits are cleared (`10.1.2.3/8` is `10.0.0.0/8`) and a net inside the
/// IPv4-mapped block is the IPv4 net it spells (`::ffff:10.0.0.0/104` is
/// `10.0.0.0/8`, see [`canonical_net`]) so that equal sets compare equal,
/// print the same and match the same addresses; non-contiguous netmasks are
/// rejected.
///
/// ```
/// use socks4_acl::Netmask;
/// let net: Netmask = "10.9.8.7 255.0.0.0".parse()?;
/// assert_eq!(net.to_string(), "10.0.0.0/8");
/// assert!(net.contains("10.200.0.1".parse()?));
/// assert!("any".parse::<Netmask>()?.contains("::1".parse()?));
/// assert!("10.0.0.0 255.0.255.0".parse::<Netmask>().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Netmask {
    /// Every address, IPv4 and IPv6.
    Any,
    /// One IPv4 or IPv6 network, host bits cleared.
    Net(IpNet),
}

impl Netmask {
    /// The netmask for one network (host bits are cleared; a net inside the
    /// IPv4-mapped block becomes the IPv4 net it spells).
    pub fn new(net: IpNet) -> Netmask {
        Netmask::Net(canonical_net(net.trunc()))
    }

    /// The netmask holding exactly one address (an IPv4-mapped address is
    /// the IPv4 address it maps).
    pub fn host(addr: IpAddr) -> Netmask {
        Netmask::Net(IpNet::from(canonical(addr)))
    }

    /// Whether `addr` is in this set. An IPv4-mapped IPv6 address
    /// (`::ffff:10.0.0.1`, as a dual-stack listener reports IPv4 clients) is
    /// treated as the IPv4 address it maps, and so is a net in the mapped
    /// block, however it was built.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match self {
            Netmask::Any => true,
            Netmask::Net(net) => canonical_net(*net).contains(&canonical(addr)),
        }
    }
}

/// Why a netmask does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetmaskError {
    input: String,
}

impl fmt::Display for NetmaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "'{}' is not a netmask: expected 'any', an address, ADDR/LEN, or an IPv4 address and a contiguous netmask",
            self.input
        )
    }
}

impl std::error::Error for NetmaskError {}

impl FromStr for Netmask {
    type Err = NetmaskError;

    fn from_str(s: &str) -> Result<Netmask, NetmaskError> {
        let err = || NetmaskError {
            input: s.to_owned(),
        };
        let s = s.trim();
        if s.eq_ignore_ascii_case("any") {
            return Ok(Netmask::Any);
        }
        if let Ok(addr) = s.parse::<IpAddr>() {
            return Ok(Netmask::host(addr));
        }
        // "ADDR MASK" or "ADDR/MASK" with a dotted IPv4 mask.
        let split = s.split_once(|c: char| c == '/' || c.is_whitespace());
        if let Some((addr, mask)) = split {
            let mask = mask.trim();
            if let (Ok(addr), Ok(mask)) = (addr.parse::<Ipv4Addr>(), mask.parse::<Ipv4Addr>()) {
                return Ipv4Net::with_netmask(addr, mask)
                    .map(|n| Netmask::new(n.into()))
                    .map_err(|_| err());
            }
        }
        if s.contains(char::is_whitespace) {
            return Err(err());
        }
        s.parse::<IpNet>().map(Netmask::new).map_err(|_| err())
    }
}

impl fmt::Display for Netmask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Netmask::Any => f.write_str("any"),
            Netmask::Net(net) => net.fmt(f),
        }
    }
}

impl From<IpNet> for Netmask {
    fn from(net: IpNet) -> Netmask {
        Netmask::new(net)
    }
}

/// The loopback nets, `127.0.0.0/8` and `::1/128`.
pub fn loopback() -> [Netmask; 2] {
    [
        Netmask::Net(IpNet::V4(Ipv4Net::new_assert(
            Ipv4Addr::new(127, 0, 0, 0),
            8,
        ))),
        Netmask::Net(IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::LOCALHOST, 128))),
    ]
}
