//! The listeners being served, each by its accept loop: started when serving
//! starts or when a reload adds one, stopped one by one when a reload removes
//! it, and all at shutdown; and the moment every one of them is closed (each
//! loop drains its accept queue first: [`AcceptLoop`]).

use crate::config::listeners::Listener;
use crate::conn::accept::AcceptLoop;
use crate::daemon::Daemon;
use crate::runtime::{socket, Runtime};
use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener};

/// The running listeners of a server, by bound address.
pub(crate) struct Listeners<R: Runtime> {
    rt: R,
    daemon: Daemon,
    /// Each listener's configuration and what stops its loop alone (dropped:
    /// the loop drains its queue and closes the listener).
    running: HashMap<SocketAddr, (Listener, async_channel::Sender<()>)>,
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

    /// The configuration of each listener served now.
    pub(crate) fn configs(&self) -> impl Iterator<Item = &Listener> {
        self.running.values().map(|(config, _)| config)
    }

    /// Registers a bound listener with the runtime and starts its accept
    /// loop.
    pub(crate) fn start(&mut self, config: Listener, listener: TcpListener) -> io::Result<()> {
        let Some(open) = self.open.clone() else {
            return Ok(()); // shutting down: dropped, so closed
        };
        let addr = socket::local_addr(&listener)?;
        let raw = listener.try_clone()?;
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
            config: config.clone(),
            counts,
            raw,
            stop,
            _open: open,
        };
        self.running.insert(addr, (config, stop_tx));
        self.rt.spawn(accepting.run());
        Ok(())
    }

    /// Stops the listener at `addr`: its loop drains the accept queue and
    /// closes it (its open connections go on).
    pub(crate) fn stop(&mut self, addr: SocketAddr) {
        if self.running.remove(&addr).is_some() {
            tracing::info!(target: "socks4d", listen = %addr, "listener removed by reload");
        }
    }

    /// Stops every listener and completes once all are closed (each drained
    /// its accept queue first).
    pub(crate) async fn closed(&mut self) {
        self.running.clear();
        self.open = None;
        let _ = self.all_closed.recv().await;
    }
}
