//! TLS towards a destination holds on every path: a `forward_tls`
//! listener's connections go to the destination directly or through a
//! plain parent (`socks4://`, `socks4a://`, `http://`), whose tunnel then
//! carries the TLS, never through a TLS parent (`https://`, `socks4+tls://`,
//! `socks4a+tls://`): TLS inside TLS is not supported, so such a route is
//! refused when the settings are loaded (at start and on reload), naming
//! the listener and the route. (The driver refuses the same at run time,
//! for routes added while the server runs.)

use super::{err, ConfigError};
use crate::config::listeners::{Listener, ListenerKind};
use socks4_acl::{Command, Policy, Target};
use socks4_proto::server::Destination;

/// Refuses a route that may send a `forward_tls` listener's connections
/// through a TLS parent.
pub(super) fn check_tls_paths(listeners: &[Listener], policy: &Policy) -> Result<(), ConfigError> {
    for l in listeners {
        let ListenerKind::ForwardTls(dest) = &l.kind else {
            continue;
        };
        let (host, addr, port) = match dest {
            Destination::Addr(a) => (None, Some(a.ip()), a.port()),
            Destination::Name(h, p) => (Some(h.as_str()), None, *p),
        };
        for (i, route) in policy.routes.routes().enumerate() {
            let Target::Via(parents) = &route.target else {
                continue;
            };
            let Some(tls_parent) = parents.iter().find(|p| p.kind.tls()) else {
                continue;
            };
            if route
                .conditions
                .may_match_destination(host, addr, port, Command::Connect)
            {
                return Err(err(format!(
                    "forward_tls listener {} -> {dest}: route {} (`{}`) may send its \
                     connections through {}, a TLS parent, and TLS to the destination inside \
                     TLS to a parent is not supported; send them direct or through a plain \
                     parent (socks4://, socks4a://, http://), whose tunnel carries the TLS",
                    l.addr,
                    i + 1,
                    route.redacted(),
                    tls_parent
                )));
            }
        }
    }
    Ok(())
}
