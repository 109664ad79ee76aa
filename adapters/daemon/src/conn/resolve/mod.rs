//! Name resolution for every outbound connection by name (SOCKS4a
//! destinations, forwarded hosts, parents): `[resolver] mode = "own"` (the
//! default: the hosts file, then our own caching resolver, [`own`], over the
//! runtime seam, [`query`]) or `"system"` (getaddrinfo, [`system`]). Either
//! way the addresses come back filtered by `[resolver] only_family` and in
//! Happy Eyeballs order (families interleaved, `prefer_family` first).

mod hosts;
mod own;
mod query;
mod system;

use crate::daemon::Daemon;
use crate::runtime::Runtime;
use socks4_proto::eyeballs::interleave;
use socks4_proto::server::ResolveError;
use std::net::IpAddr;

/// The addresses of `host`, in the order to try them. A stale answer (served
/// because no nameserver answered, RFC 8767) is logged as such with the
/// connection's id `conn`.
pub(crate) async fn resolve<R: Runtime>(
    rt: &R,
    daemon: &Daemon,
    host: &str,
    conn: u64,
    held: impl Send + 'static,
) -> Result<Vec<IpAddr>, ResolveError> {
    let outbound = &daemon.settings().outbound;
    let found = if let Ok(ip) = host.parse::<IpAddr>() {
        vec![ip]
    } else if outbound.own_resolver {
        let in_hosts = {
            let mut snap = daemon.outbound().resolver.hosts();
            hosts::lookup(&mut snap, &outbound.hosts_file, host, rt.now())
        };
        match in_hosts {
            Some(addrs) => addrs,
            None => {
                let (addrs, stale) = own::resolve(rt, daemon, host, outbound.only).await?;
                if stale {
                    tracing::info!(target: "socks4d", conn, host, stale = true, "stale answer served: no nameserver answered in time");
                }
                addrs
            }
        }
    } else {
        system::resolve(rt, daemon.lookups(), host.to_owned(), held).await?
    };
    let usable: Vec<IpAddr> = found
        .into_iter()
        .filter(|ip| outbound.only.allows(*ip))
        .collect();
    if usable.is_empty() {
        return Err(ResolveError::NoAddress);
    }
    Ok(interleave(&usable, outbound.prefer))
}
