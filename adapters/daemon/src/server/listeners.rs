//! The listeners being served, each by its accept loop: started when serving
//! starts or when a reload adds one, stopped one by one when a reload removes
//! it, and all at shutdown; and the moment every one of them is closed (each
//! loop drains its accept queue first: [`AcceptLoop`]).

use super::bind::bind_listener;
use crate::config::listeners::{Listener, ListenerKind};
use crate::config::settings::Settings;
use crate::conn::accept::AcceptLoop;
use crate::daemon::upgrade_state::Handed;
use crate::daemon::{Daemon, Rebind};
use crate::runtime::{socket, Runtime};
use futures_lite::future::FutureExt;
use socks4_proto::server::OwnAddresses;
use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener};

/// The running listeners of a server, by bound address.
pub(crate) struct Listeners<R: Runtime> {
    rt: R,
    daemon: Daemon,
    /// Each listener's configuration and what stops its loop alone (dropped:
    /// the loop drains its queue and closes the listener).
    running: HashMap<SocketAddr, async_channel::Sender<()>>,
    /// Cloned into each loop; see [`closed`](Self::closed).
    open: Option<async_channel::Sender<()>>,
    /// Fails once every loop ended (every listener closed).
    all_closed: async_channel::Receiver<()>,
}

impl<R: Runtime> Listeners<R> {
    /// None running yet.
    pub(crate) fn new(rt: R, daemon: Daemon) -> Self {
        let (open, all_closed) = async_channel::bounded(1);
        Listeners {
            rt,
            daemon,
            running: HashMap::new(),
            open: Some(open),
            all_closed,
        }
    }

    /// The addresses served now.
    pub(crate) fn addrs(&self) -> Vec<SocketAddr> {
        self.running.keys().copied().collect()
    }

    /// Registers a bound listener with the runtime and starts its accept
    /// loop; it is one a binary upgrade can hand over (`activated`: one
    /// systemd passed).
    pub(crate) fn start(
        &mut self,
        config: Listener,
        listener: TcpListener,
        activated: bool,
    ) -> io::Result<()> {
        let Some(open) = self.open.clone() else {
            return Ok(()); // shutting down: dropped, so closed
        };
        let addr = socket::local_addr(&listener)?;
        let raw = listener.try_clone()?;
        let handed = Handed {
            kind: if activated {
                "activated"
            } else {
                config.kind.name()
            }
            .to_owned(),
            addr: Some(config.addr.to_string()),
            path: None,
        };
        self.daemon
            .upgrade()
            .register(handed, Some(addr), listener.try_clone()?.into());
        // The keepalive its connections start with (they inherit the
        // listener's): a relay then sets its client's only when a reload
        // changed it since.
        let keepalive = self.daemon.current().keepalive;
        let keepalive = match socket::set_keepalive(&listener, keepalive) {
            Ok(()) => Some(keepalive),
            Err(e) => {
                tracing::debug!(target: "socks4d", listen = %addr, error = %e, "TCP keepalive not set on the listener");
                None
            }
        };
        let listener = self.rt.listener(listener)?;
        let counts = self.daemon.books().counters.add_listener(addr);
        let proxy = config.proxy_protocol.map(|p| p.to_string());
        tracing::info!(target: "socks4d", listen = %addr, kind = config.kind.name(), proxy_protocol = proxy.as_deref().unwrap_or("off"), "listening");
        let (stop_tx, stop) = async_channel::bounded(1);
        let accepting = AcceptLoop {
            rt: self.rt.clone(),
            daemon: self.daemon.clone(),
            listener,
            addr,
            config,
            counts,
            raw,
            keepalive,
            stop,
            _open: open,
        };
        self.running.insert(addr, stop_tx);
        self.rt.spawn(accepting.run());
        Ok(())
    }

    /// Stops the listener at `addr`: its loop drains the accept queue and
    /// closes it (its open connections go on).
    pub(crate) fn stop(&mut self, addr: SocketAddr) {
        self.daemon.upgrade().unregister(addr);
        if self.running.remove(&addr).is_some() {
            tracing::info!(target: "socks4d", listen = %addr, "listener removed by reload");
        }
    }

    /// Stops every listener and completes once all are closed (each drained
    /// its accept queue first).
    pub(crate) async fn closed(&mut self) {
        self.daemon.upgrade().clear();
        self.running.clear();
        self.open = None;
        let _ = self.all_closed.recv().await;
    }
}

/// Listeners a reload bound and those it removed, for the server to start
/// and stop.
pub(crate) struct Change {
    /// Bound, to be served.
    bound: Vec<(Listener, TcpListener)>,
    /// The bound addresses of those to close.
    removed: Vec<SocketAddr>,
}

/// What a reload calls ([`Daemon::reload_report`]): compares the new
/// settings' listeners with those running (`running`: each as configured,
/// with its bound address), binds the added ones and sends the change to
/// `changes`. Listeners not in the start's settings (passed by systemd) are
/// kept, and then the SOCKS listeners of the settings are not bound (socket
/// activation replaces `listen`). A listener whose address stays but whose
/// kind, destination or PROXY protocol changes keeps running as it was: the
/// reload names it as needing a restart.
pub(crate) fn rebind(
    daemon: &Daemon,
    mut running: Vec<(Listener, SocketAddr)>,
    changes: async_channel::Sender<Change>,
) -> Rebind {
    let start = daemon.settings().clone();
    let inherited: Vec<SocketAddr> = running
        .iter()
        .filter(|(l, _)| !start.listeners.contains(l))
        .map(|(_, bound)| *bound)
        .collect();
    Box::new(move |new: &Settings| {
        let wanted: Vec<&Listener> = new
            .listeners
            .iter()
            .filter(|l| inherited.is_empty() || l.kind != ListenerKind::Socks)
            .collect();
        let mut changed = None;
        let mut added = Vec::new();
        for l in &wanted {
            match running.iter().find(|(r, _)| r.addr == l.addr) {
                Some((r, bound)) if r != *l => {
                    tracing::warn!(target: "socks4d", listen = %bound, "a reload changes the kind, destination or PROXY protocol of a listener: it keeps running as it was until a restart");
                    changed = Some("a listener's kind, destination or PROXY protocol");
                }
                Some(_) => {}
                None => added.push(*l),
            }
        }
        let root = rustix::process::geteuid().is_root() && start.user.is_none();
        if let Some(l) = added.iter().find(|l| !l.addr.ip().is_loopback()) {
            if root && !start.allow_root {
                // As the start refuses it (preflight).
                return Err(format!(
                    "refusing to add a listener beyond loopback ({}) while running as root \
                     without --user: restart with --user NAME, or --allow-root if root is meant",
                    l.addr
                ));
            }
        }
        let mut bound = Vec::new();
        for l in added {
            let socket = bind_listener(&start, l).map_err(|e| e.to_string())?;
            bound.push((l.clone(), socket));
        }
        let removed: Vec<SocketAddr> = running
            .iter()
            .filter(|(r, b)| !inherited.contains(b) && !wanted.iter().any(|l| l.addr == r.addr))
            .map(|(_, b)| *b)
            .collect();
        running.retain(|(_, b)| !removed.contains(b));
        for (l, socket) in &bound {
            running.push((
                l.clone(),
                socket::local_addr(socket).map_err(|e| e.to_string())?,
            ));
        }
        if !bound.is_empty() || !removed.is_empty() {
            // Unbounded: the server takes each change as soon as it runs.
            let _ = changes.try_send(Change { bound, removed });
        }
        Ok(changed)
    })
}

impl<R: Runtime> Listeners<R> {
    /// Applies the changes reloads send until shutdown is asked for; the
    /// daemon's own addresses follow (with `also_own`: the metrics
    /// listener's).
    pub(crate) async fn follow(
        &mut self,
        changes: async_channel::Receiver<Change>,
        also_own: Option<SocketAddr>,
    ) {
        loop {
            let daemon = self.daemon.clone();
            let stop = async {
                daemon.shutdown_requested().await;
                None
            };
            let next = async { changes.recv().await.ok() };
            let Some(change) = next.or(stop).await else {
                return;
            };
            for addr in change.removed {
                self.stop(addr);
            }
            for (config, listener) in change.bound {
                if let Err(e) = self.start(config.clone(), listener, false) {
                    tracing::error!(target: "socks4d", listen = %config.addr, error = %e, "could not serve a listener a reload added");
                }
            }
            let mut own = self.addrs();
            own.extend(also_own);
            let local = self.daemon.own().local().to_vec();
            self.daemon.set_own(OwnAddresses::new(own, local));
        }
    }
}
