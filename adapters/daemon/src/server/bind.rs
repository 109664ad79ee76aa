//! Binding what the settings ask for, before any runtime exists (so that a
//! privilege drop can follow): the listeners of every kind (or those systemd
//! passed by socket activation), the metrics listener and the control socket.

use crate::config::listeners::{Listener, ListenerKind};
use crate::config::settings::Settings;
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
/// systemd passed by socket activation, which replace `listen`), the metrics
/// listener and the control socket.
pub fn bind(settings: &Settings) -> io::Result<Bound> {
    let mut listeners = Vec::new();
    let inherited = systemd::inherited_listeners()?;
    let socks_inherited = inherited.is_some();
    for l in inherited.into_iter().flatten() {
        let config = Listener {
            kind: ListenerKind::Socks,
            addr: socket::local_addr(&l)?,
            proxy_protocol: settings.proxy_protocol,
        };
        listeners.push((config, l));
    }
    for config in &settings.listeners {
        if socks_inherited && config.kind == ListenerKind::Socks {
            continue; // socket activation replaces `listen`
        }
        let (kind, addr) = (&config.kind, config.addr);
        let options = socket::ListenOptions {
            transparent: *kind == ListenerKind::Transparent,
            reuse_port: settings.reuse_port,
        };
        let l = socket::listen_with(addr, options).map_err(|e| {
            io::Error::new(e.kind(), format!("{} listen on {addr}: {e}", kind.name()))
        })?;
        listeners.push((config.clone(), l));
    }
    // Inherited sockets get the same refusal as bound ones: known only now.
    let public: Vec<String> = listeners
        .iter()
        .map(|(c, _)| c.addr)
        .filter(|a| !a.ip().is_loopback())
        .map(|a| a.to_string())
        .collect();
    settings
        .check_listeners(&public)
        .map_err(|e| io::Error::new(io::ErrorKind::PermissionDenied, e.message))?;
    let metrics = settings
        .metrics_listen
        .map(|addr| {
            socket::listen(addr)
                .map_err(|e| io::Error::new(e.kind(), format!("metrics listen on {addr}: {e}")))
        })
        .transpose()?;
    let control = settings
        .control_socket
        .as_deref()
        .map(|p| {
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
