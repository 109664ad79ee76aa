//! Name resolution for every outbound connection by name (SOCKS4a
//! destinations, forwarded hosts, parents): `[resolver] mode = "own"` (the
//! default: the hosts file, then our own caching resolver, [`own`], over the
//! runtime seam, [`query`]) or `"system"` (getaddrinfo, [`system`]). Either
//! way the addresses come back filtered by `[resolver] only_family` and in
//! Happy Eyeballs order (families interleaved, `prefer_family` first); the
//! own resolver's may come in two parts, the other family's later (RFC 8305
//! §3: connecting starts with the first).

mod hosts;
mod own;
mod query;
mod system;

use crate::daemon::Daemon;
use crate::runtime::Runtime;
use socks4_proto::eyeballs::{interleave, Only};
use socks4_proto::server::ResolveError;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

/// The rest of a two-part answer: the other family's addresses, filtered
/// and in resolver order; none when it had none or its lookup failed.
pub(crate) type Rest = Pin<Box<dyn Future<Output = Vec<IpAddr>> + Send>>;

/// A name's addresses: those known now, in the order to try them, and, when
/// the answer comes in two parts (RFC 8305 §3), the rest to come.
pub(crate) struct Resolution {
    /// The addresses known now.
    pub(crate) addrs: Vec<IpAddr>,
    /// The other family's, still to come.
    pub(crate) rest: Option<Rest>,
}

/// The addresses of `host`. A stale answer (served because no nameserver
/// answered, RFC 8767) is logged as such with the connection's id `conn`.
/// Only the own resolver answers in two parts; the hosts file, an address
/// and getaddrinfo answer whole.
pub(crate) async fn resolve<R: Runtime>(
    rt: &R,
    daemon: &Daemon,
    host: &str,
    conn: u64,
    held: impl Send + 'static,
) -> Result<Resolution, ResolveError> {
    let outbound = &daemon.settings().outbound;
    let (found, rest) = if let Ok(ip) = host.parse::<IpAddr>() {
        (vec![ip], None)
    } else if outbound.own_resolver {
        let in_hosts = {
            let mut snap = daemon.outbound().resolver.hosts();
            hosts::lookup(&mut snap, &outbound.hosts_file, host, rt.now())
        };
        match in_hosts {
            Some(addrs) => (addrs, None),
            None => {
                let found = own::resolve(rt, daemon, host, outbound.only, outbound.prefer).await?;
                if found.stale {
                    stale_served(conn, host);
                }
                (
                    found.addrs,
                    found.rest.map(|r| rest(r, outbound.only, conn, host)),
                )
            }
        }
    } else {
        (
            system::resolve(rt, &daemon.lookups(), host.to_owned(), held).await?,
            None,
        )
    };
    let usable: Vec<IpAddr> = found
        .into_iter()
        .filter(|ip| outbound.only.allows(*ip))
        .collect();
    if usable.is_empty() {
        return Err(ResolveError::NoAddress);
    }
    Ok(Resolution {
        addrs: interleave(&usable, outbound.prefer),
        rest,
    })
}

/// The rest of the own resolver's two-part answer, filtered, its stale
/// answer logged.
fn rest(rest: own::Rest, only: Only, conn: u64, host: &str) -> Rest {
    let host = host.to_owned();
    Box::pin(async move {
        let (addrs, stale) = rest.await;
        if stale {
            stale_served(conn, &host);
        }
        addrs.into_iter().filter(|ip| only.allows(*ip)).collect()
    })
}

fn stale_served(conn: u64, host: &str) {
    tracing::info!(target: "socks4d", conn, host, stale = true, "stale answer served: no nameserver answered in time");
}
