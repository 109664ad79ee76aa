//! The kinds of listener a server has, and what each makes of an accepted
//! connection: a SOCKS client (reads a request; `--listen`, or inside TLS with
//! `--listen-tls`), a connection whose kind its first byte tells (`--dual`),
//! or a connection whose destination is already known and that gets no SOCKS
//! request or reply:
//! - transparent (`--transparent`, Linux TPROXY): the socket has
//!   `IP_TRANSPARENT`, and an accepted connection's local address is the
//!   destination the client meant;
//! - redirected (`--redirect`, nftables/iptables `REDIRECT` or DNAT): the
//!   original destination is asked of the kernel (`SO_ORIGINAL_DST`);
//! - forwarded (`--forward ADDR=HOST:PORT`): a plain TCP port forward to a
//!   fixed destination (Net::Proxy's tcp → tcp);
//! - forwarded over TLS (`--forward-tls ADDR=HOST:PORT`): the same, with TLS
//!   towards HOST:PORT (Net::Proxy's tcp → ssl; through an `http://` route,
//!   its `connect_ssl`).
//!
//! A dual listener (`--dual ADDR=HOST:PORT`, Net::Proxy's `dual`) serves SOCKS
//! and another service on one port: a client whose first byte is SOCKS4's is
//! served as SOCKS, one that opens with a TLS handshake as SOCKS inside TLS
//! (when a certificate is configured), and any other, or one silent for the
//! dual timeout, is relayed to HOST:PORT
//! ([`socks4_proto::server::dual`]).
//!
//! Transparent, redirect and (when `sniff` names them) forward listeners
//! sniff: a client's first bytes are read for the name it means (a TLS SNI,
//! an HTTP Host), which rules, routes and parents then see ([`Sniffing`]).
//!
//! Every kind goes through the same policy, routes, limits, timeouts, events,
//! counters and logs.

use socks4_proto::server::Destination;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::str::FromStr;

/// One configured listener: what it serves, where, and whether a PROXY
/// protocol header comes first on its connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// What it serves.
    pub kind: ListenerKind,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The PROXY protocol versions it requires before a client's bytes
    /// (behind a load balancer); `None`: no header.
    pub proxy_protocol: Option<socks4_proto::proxy_header::Accept>,
}

/// What a listener serves.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListenerKind {
    /// SOCKS4/4a clients.
    Socks,
    /// SOCKS4/4a clients inside TLS.
    Tls,
    /// SOCKS, SOCKS inside TLS, or else a relay to this destination, by the
    /// client's first byte.
    Dual(Destination),
    /// Connections intercepted by TPROXY.
    Transparent,
    /// Connections redirected by NAT (REDIRECT, DNAT).
    Redirect,
    /// A port forward to this destination.
    Forward(Destination),
    /// A port forward to this destination over TLS.
    ForwardTls(Destination),
}

impl ListenerKind {
    /// Its name in logs: `socks`, `tls`, `dual`, `transparent`, `redirect`,
    /// `forward`, `forward_tls`.
    pub fn name(&self) -> &'static str {
        match self {
            ListenerKind::Socks => "socks",
            ListenerKind::Tls => "tls",
            ListenerKind::Dual(_) => "dual",
            ListenerKind::ForwardTls(_) => "forward_tls",
            ListenerKind::Transparent => "transparent",
            ListenerKind::Redirect => "redirect",
            ListenerKind::Forward(_) => "forward",
        }
    }

    /// Whether its clients speak SOCKS in clear from their first byte, so that
    /// a refusal can be a SOCKS reply (others are closed instead).
    pub fn replies_in_clear(&self) -> bool {
        *self == ListenerKind::Socks
    }

    /// The destination of a connection accepted on this listener, when the
    /// listener (not a SOCKS request) says it: `None` for SOCKS listeners
    /// (and dual ones, whose clients decide).
    /// `stream` is the accepted socket, `local` its local address.
    pub fn destination(
        &self,
        stream: &impl AsFd,
        local: SocketAddr,
    ) -> io::Result<Option<Destination>> {
        Ok(match self {
            ListenerKind::Socks | ListenerKind::Tls | ListenerKind::Dual(_) => None,
            ListenerKind::Transparent => Some(Destination::Addr(local)),
            ListenerKind::Redirect => Some(Destination::Addr(
                crate::runtime::socket::original_dst(stream, local.is_ipv4())?,
            )),
            ListenerKind::Forward(dest) | ListenerKind::ForwardTls(dest) => Some(dest.clone()),
        })
    }
}

/// Which listeners sniff their connections' first bytes for the name they
/// mean (a TLS ClientHello's SNI, an HTTP/1.x request's Host:
/// [`socks4_proto::sniff`]), for how long and how many bytes, and where a
/// sniffed connection goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sniffing {
    /// Transparent listeners sniff.
    pub transparent: bool,
    /// Redirect listeners sniff.
    pub redirect: bool,
    /// Port forwards (`forward`) sniff.
    pub forward: bool,
    /// Where a sniffed connection goes, unless its listener says otherwise.
    pub target: crate::config::options::SniffTarget,
    /// `sniff_target` per listener address.
    pub per_listener: std::collections::BTreeMap<SocketAddr, crate::config::options::SniffTarget>,
    /// How long the first bytes are waited for (`[timeouts] sniff`).
    pub timeout: std::time::Duration,
    /// The most bytes read (`[limits] max_sniff`).
    pub max: usize,
}

impl Sniffing {
    /// Whether connections on a listener of `kind` at `addr` are sniffed,
    /// and then where they go.
    pub fn for_listener(
        &self,
        kind: &ListenerKind,
        addr: SocketAddr,
    ) -> Option<crate::config::options::SniffTarget> {
        let on = match kind {
            ListenerKind::Transparent => self.transparent,
            ListenerKind::Redirect => self.redirect,
            ListenerKind::Forward(_) => self.forward,
            _ => false,
        };
        on.then(|| *self.per_listener.get(&addr).unwrap_or(&self.target))
    }
}

/// A port forward as written: `ADDR=HOST:PORT` (`127.0.0.1:2222=10.0.0.5:22`,
/// `[::1]:8443=example.com:443`); also how a dual listener names its other
/// service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Where to go.
    pub to: Destination,
}

impl FromStr for Forward {
    type Err = String;

    fn from_str(s: &str) -> Result<Forward, String> {
        let err = || {
            format!(
                "'{s}' is not a forward: expected ADDR=HOST:PORT, e.g. 127.0.0.1:2222=10.0.0.5:22"
            )
        };
        let (listen, to) = s.split_once('=').ok_or_else(err)?;
        let listen: SocketAddr = listen.trim().parse().map_err(|_| err())?;
        let to = to.trim();
        let to = match to.parse::<SocketAddr>() {
            Ok(a) => Destination::Addr(a),
            Err(_) => {
                let (host, port) = to.rsplit_once(':').ok_or_else(err)?;
                let port: u16 = port.parse().map_err(|_| err())?;
                let ok = !host.is_empty()
                    && host
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
                if !ok || port == 0 {
                    return Err(err());
                }
                Destination::Name(host.to_owned(), port)
            }
        };
        Ok(Forward { listen, to })
    }
}

impl fmt::Display for Forward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.listen, self.to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_as_written() {
        let f: Forward = "127.0.0.1:2222=10.0.0.5:22".parse().unwrap();
        assert_eq!(f.listen, "127.0.0.1:2222".parse().unwrap());
        assert_eq!(f.to, Destination::Addr("10.0.0.5:22".parse().unwrap()));
        let f: Forward = "[::1]:8443=example.com:443".parse().unwrap();
        assert_eq!(f.to, Destination::Name("example.com".into(), 443));
        assert_eq!(f.to_string(), "[::1]:8443=example.com:443");
        for bad in [
            "127.0.0.1:1",
            "x=y:1",
            "127.0.0.1:1=host",
            "127.0.0.1:1=ho st:1",
            "127.0.0.1:1=h:0",
        ] {
            assert!(bad.parse::<Forward>().is_err(), "{bad}");
        }
    }
}
