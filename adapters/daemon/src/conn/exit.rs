//! The exit one connection takes ([`Exit`]): its route's exit clauses
//! (`source`, `interface`, `mark`; [`socks4_acl::Exit`]) made concrete once
//! per connection (the next `source` address in turn, or a random address
//! of a `source PREFIX random`), then, for each address a race tries, the
//! socket options it leaves with ([`Exit::egress`]). Without a `source`
//! clause the server's `outgoing_address` is the source, as before.
//!
//! A route that names source addresses of one family only has none for a
//! destination of the other: such a candidate fails at once, without a
//! packet sent (the error says why), and a Happy Eyeballs race goes on with
//! the next. `source 2001:db8::/64 random` thus reaches IPv6 addresses only.

use crate::daemon::Daemon;
use crate::runtime::socket::Egress;
use socks4_acl::SourceAddr;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// One connection's exit: the source address for each family, the
/// interface and the mark.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Exit {
    /// The source addresses by family (IPv4, IPv6); `None` where the
    /// system chooses.
    from: [Option<IpAddr>; 2],
    /// Whether a family without a source address is refused (the route
    /// names sources) rather than left to the system.
    only_named: bool,
    /// `IP_FREEBIND` (a random address from a prefix).
    freebind: bool,
    /// `SO_BINDTODEVICE`.
    device: Option<String>,
    /// `SO_MARK`.
    mark: Option<u32>,
}

impl Exit {
    /// The server's default exit: `outgoing_address`, no interface, no mark.
    pub(crate) fn default_for(outgoing: &[IpAddr]) -> Exit {
        Exit {
            from: [
                outgoing.iter().copied().find(IpAddr::is_ipv4),
                outgoing.iter().copied().find(IpAddr::is_ipv6),
            ],
            ..Exit::default()
        }
    }

    /// The exit a new connection takes under `route` (the chosen route's
    /// exit clauses): the next source addresses in the route's turn, or a
    /// random one from its prefix.
    pub(crate) fn choose(daemon: &Daemon, route: &socks4_acl::Exit) -> Exit {
        let mut exit = Exit::default_for(&daemon.current().outgoing);
        match &route.source {
            SourceAddr::Rotate(list) => {
                let turn = daemon.outbound().parents.source_turn(&route.to_string());
                exit.from = [true, false].map(|v4| {
                    let family: Vec<IpAddr> =
                        list.iter().copied().filter(|a| a.is_ipv4() == v4).collect();
                    family.get(turn % family.len().max(1)).copied()
                });
                exit.only_named = true;
            }
            SourceAddr::Random(net) => {
                exit.from = [
                    None,
                    Some(IpAddr::V6(random_in(net.network(), net.prefix_len()))),
                ];
                exit.only_named = true;
                exit.freebind = true;
            }
            _ => {}
        }
        exit.device = route.interface.clone();
        exit.mark = route.mark;
        exit
    }

    /// How a connection to `to` leaves; an error when the route names no
    /// source address of `to`'s family.
    pub(crate) fn egress(&self, to: SocketAddr) -> io::Result<Egress> {
        let from = self.from[usize::from(to.is_ipv6())];
        if from.is_none() && self.only_named {
            let family = if to.is_ipv4() { "IPv4" } else { "IPv6" };
            return Err(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!("the route has no {family} source address for {to}"),
            ));
        }
        Ok(Egress {
            from,
            freebind: self.freebind,
            device: self.device.clone(),
            mark: self.mark,
        })
    }
}

/// The exit a route gives its connections, as `ctl check` shows it (text,
/// and the JSON object): its source (`outgoing` without a `source` clause),
/// interface and mark.
pub(crate) fn shown(route: &socks4_acl::Exit, outgoing: &[IpAddr]) -> (String, serde_json::Value) {
    let list = |l: &[IpAddr]| {
        l.iter()
            .map(IpAddr::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    let (source, kind) = match &route.source {
        SourceAddr::Rotate(l) => (list(l), "rotate"),
        SourceAddr::Random(net) => (net.to_string(), "random"),
        _ if outgoing.is_empty() => (String::new(), "system"),
        _ => (list(outgoing), "outgoing_address"),
    };
    let mut text = match kind {
        "rotate" => format!("source {source} (one per connection, in turn)"),
        "random" => format!("source a random address in {source} (one per connection)"),
        "outgoing_address" => format!("source {source} (outgoing_address)"),
        _ => "source chosen by the system".to_owned(),
    };
    if let Some(d) = &route.interface {
        text.push_str(&format!(", interface {d}"));
    }
    if let Some(m) = route.mark {
        text.push_str(&format!(", mark {m:#x}"));
    }
    let value = serde_json::json!({
        "source": source,
        "source_kind": kind,
        "interface": route.interface,
        "mark": route.mark,
    });
    (text, value)
}

/// A random address inside the prefix `network/len` (its host bits from
/// the system's random source).
fn random_in(network: Ipv6Addr, len: u8) -> Ipv6Addr {
    let mut bytes = [0u8; 16];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    let hostmask = u128::MAX.checked_shr(u32::from(len)).unwrap_or(0);
    let host = u128::from_be_bytes(bytes) & hostmask;
    Ipv6Addr::from((u128::from(network) & !hostmask) | host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_random_address_stays_inside_its_prefix() {
        let net: Ipv6Addr = "2001:db8:1:2::".parse().unwrap();
        let (a, b) = (random_in(net, 64), random_in(net, 64));
        for x in [a, b] {
            assert_eq!(x.segments()[..4], net.segments()[..4], "{x}");
        }
        assert_ne!(a, b, "64 random bits twice the same");
    }

    #[test]
    fn a_family_the_route_names_no_source_for_is_refused() {
        let exit = Exit {
            from: [Some("192.0.2.1".parse().unwrap()), None],
            only_named: true,
            ..Exit::default()
        };
        let v4: SocketAddr = "198.51.100.1:80".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:80".parse().unwrap();
        assert_eq!(exit.egress(v4).unwrap().from, exit.from[0]);
        assert_eq!(
            exit.egress(v6).unwrap_err().kind(),
            io::ErrorKind::AddrNotAvailable
        );
        // The server's default leaves the other family to the system.
        let default = Exit::default_for(&["192.0.2.1".parse().unwrap()]);
        assert_eq!(default.egress(v6).unwrap().from, None);
    }
}
