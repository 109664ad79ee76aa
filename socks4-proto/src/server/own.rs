//! [`OwnAddresses`]: where the server itself can be reached, so that a
//! session refuses a CONNECT that would loop back into it (each turn of a
//! loop would take another connection slot, and a client could fill them
//! all with one connection, or reach a listener that trusts local peers).

use socks4_acl::canonical;
use std::net::{IpAddr, SocketAddr};

/// The server's listening addresses and the machine's local addresses (which
/// reach a listener bound to `0.0.0.0` or `::`). The adapter keeps them
/// current (listeners once bound; local addresses as interfaces change); a
/// session refuses a CONNECT to any of them with 91 and the close reason
/// [`Loop`](super::CloseReason::Loop), whatever the rules say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnAddresses {
    listeners: Vec<SocketAddr>,
    local: Vec<IpAddr>,
}

impl OwnAddresses {
    /// The server listens on `listeners` (as bound: a wildcard address
    /// stands for every local address) on a machine whose addresses are
    /// `local` (loopback addresses are always local).
    pub fn new(
        listeners: impl IntoIterator<Item = SocketAddr>,
        local: impl IntoIterator<Item = IpAddr>,
    ) -> OwnAddresses {
        let mut local: Vec<IpAddr> = local.into_iter().map(canonical).collect();
        local.sort();
        local.dedup();
        OwnAddresses {
            listeners: listeners.into_iter().collect(),
            local,
        }
    }

    /// The listening addresses.
    pub fn listeners(&self) -> &[SocketAddr] {
        &self.listeners
    }

    /// The machine's local addresses, as given.
    pub fn local(&self) -> &[IpAddr] {
        &self.local
    }

    /// Whether `ip` is an address of this machine.
    pub fn is_local(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_loopback() || ip.is_unspecified() || self.local.binary_search(&ip).is_ok()
    }

    /// Whether a connection to `dest` would reach one of the server's own
    /// listeners.
    pub fn contains(&self, dest: SocketAddr) -> bool {
        let ip = canonical(dest.ip());
        self.listeners.iter().any(|l| {
            l.port() == dest.port()
                && match canonical(l.ip()) {
                    // `0.0.0.0` takes IPv4 only; `::` takes both (unless
                    // IPV6_V6ONLY: counting it anyway refuses no more than
                    // a loop would cost).
                    IpAddr::V4(v4) if v4.is_unspecified() => ip.is_ipv4() && self.is_local(ip),
                    IpAddr::V6(v6) if v6.is_unspecified() => self.is_local(ip),
                    bound => bound == ip,
                }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_are_reached_by_every_local_address_of_a_wildcard_bind() {
        let own = OwnAddresses::new(
            [
                "127.0.0.1:1080".parse().unwrap(),
                "0.0.0.0:8080".parse().unwrap(),
                "[::]:9090".parse().unwrap(),
            ],
            [
                "192.0.2.10".parse().unwrap(),
                "2001:db8::1".parse().unwrap(),
            ],
        );
        let yes = [
            "127.0.0.1:1080",
            "[::ffff:127.0.0.1]:1080",
            "127.0.0.5:8080",
            "192.0.2.10:8080",
            "0.0.0.0:8080",
            "192.0.2.10:9090",
            "[2001:db8::1]:9090",
            "[::1]:9090",
        ];
        for d in yes {
            assert!(own.contains(d.parse().unwrap()), "{d}");
        }
        let no = [
            "127.0.0.2:1080",
            "192.0.2.11:8080",
            "[2001:db8::1]:8080",
            "192.0.2.10:1080",
            "198.51.100.1:9090",
        ];
        for d in no {
            assert!(!own.contains(d.parse().unwrap()), "{d}");
        }
    }
}
