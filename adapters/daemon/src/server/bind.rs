//! Binding what the settings ask for, before any runtime exists (so that a
//! privilege drop can follow): the listeners of every kind (or those systemd
//! passed by socket activation, or those a binary upgrade handed over), the
//! metrics listener and the control socket.

use crate::config::listeners::{Listener, ListenerKind};
use crate::config::settings::Settings;
use crate::ops::upgrade::Handover;
use crate::ops::{control, systemd};
use crate::runtime::socket;
use std::io;
use std::net::TcpListener;

/// The sockets a server serves on, bound before any runtime exists (so that a
/// privilege drop can follow).
#[derive(Debug)]
pub struct Bound {
    /// The listeners, each with its configuration.
    pub listeners: Vec<(Listener, TcpListener)>,
    /// The metrics listener, if configured.
    pub metrics: Option<TcpListener>,
    /// The control socket, if configured.
    pub control: Option<std::os::unix::net::UnixListener>,
}

/// Binds what the settings ask for: the SOCKS listeners (or takes those
/// systemd passed by socket activation, which replace `listen`, and which
/// get the refusal bound ones get beyond loopback), the metrics listener and
/// the control socket.
pub fn bind(settings: &Settings) -> io::Result<Bound> {
    bind_with(settings, systemd::inherited_listeners()?, None)
}

/// [`bind`], with the listeners systemd passed already taken (`None`:
/// not socket-activated), and in a process a binary upgrade started, the
/// sockets it handed over: each listener, the metrics listener and the
/// control socket configured as an inherited one was is served as it is,
/// not bound again (those the new settings no longer name are closed).
pub(crate) fn bind_with(
    settings: &Settings,
    inherited: Option<Vec<TcpListener>>,
    mut handover: Option<&mut Handover>,
) -> io::Result<Bound> {
    let mut listeners = Vec::new();
    let socks_inherited = inherited.is_some();
    for l in inherited.into_iter().flatten() {
        let config = Listener {
            kind: ListenerKind::Socks,
            addr: socket::local_addr(&l)?,
            proxy_protocol: settings.proxy_protocol,
        };
        listeners.push((config, l));
    }
    // Inherited sockets get the refusal bound ones get (the start's checks
    // made it already; an embedder's `bind` has only this one).
    let addrs: Vec<_> = listeners.iter().map(|(c, _)| c.addr).collect();
    crate::config::preflight::activated_listeners(settings, &addrs)
        .map_err(|e| io::Error::new(io::ErrorKind::PermissionDenied, e))?;
    for config in &settings.listeners {
        if socks_inherited && config.kind == ListenerKind::Socks {
            continue; // socket activation replaces `listen`
        }
        let handed = handover
            .as_deref_mut()
            .and_then(|h| h.take_listener(config.kind.name(), config.addr));
        let listener = match handed {
            Some(l) => l,
            None => bind_listener(settings, config)?,
        };
        listeners.push((config.clone(), listener));
    }
    let metrics = settings
        .metrics_listen
        .map(|addr| {
            if let Some(l) = handover.as_deref_mut().and_then(|h| h.take_metrics(addr)) {
                return Ok(l);
            }
            socket::listen(addr).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("metrics listen on {addr}: {e}{}", hint(&e, addr, false)),
                )
            })
        })
        .transpose()?;
    let control = settings
        .control_socket
        .as_deref()
        .map(|p| {
            if let Some(l) = handover.take().and_then(|h| h.take_control(p)) {
                return Ok(l);
            }
            control::bind(p).map_err(|e| {
                io::Error::new(e.kind(), format!("control socket {}: {e}", p.display()))
            })
        })
        .transpose()?;
    Ok(Bound {
        listeners,
        metrics,
        control,
    })
}

/// Binds one listener of the settings (at start, or when a reload adds it);
/// the error names it.
pub(crate) fn bind_listener(settings: &Settings, config: &Listener) -> io::Result<TcpListener> {
    let (kind, addr) = (&config.kind, config.addr);
    let options = socket::ListenOptions {
        transparent: *kind == ListenerKind::Transparent,
        reuse_port: settings.reuse_port,
    };
    socket::listen_with(addr, options).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "{} listen on {addr}: {e}{}",
                kind.name(),
                hint(&e, addr, options.transparent)
            ),
        )
    })
}

/// What to do about a listener that could not be bound for want of
/// privilege (a port below 1024, a transparent listener), or "".
fn hint(e: &io::Error, addr: std::net::SocketAddr, transparent: bool) -> String {
    match e.kind() {
        io::ErrorKind::PermissionDenied if addr.port() < 1024 => {
            format!(": {}", crate::config::preflight::PRIVILEGED_PORT_HINT)
        }
        io::ErrorKind::PermissionDenied if transparent => {
            ": a transparent listener needs CAP_NET_ADMIN (or root)".to_owned()
        }
        _ => String::new(),
    }
}
