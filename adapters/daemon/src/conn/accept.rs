//! The accept loop of one listener: wait for room under `max_connections`,
//! accept, admit the connection (its slot, its client's cap, who may send a
//! PROXY header), find its destination when the listener says it, and spawn
//! its connection task. A connection refused by a per-client cap gets its 91
//! here, before anything else is read.
//!
//! When the loop stops (shutdown, or a reload that removed its listener) it
//! drains the listener's accept queue before the listener closes: the
//! connections the kernel already completed are accepted (without waiting)
//! and served like any other, rather than reset by the close.

use crate::config::listeners::{Listener, ListenerKind};
use crate::config::options::WhenFull;
use crate::conn::refuse;
use crate::conn::start::{self, Accepted};
use crate::daemon::{Admission, Daemon, Slot};
use crate::observe::counters::ListenerCounts;
use crate::runtime::{socket, Runtime};
use futures_lite::future::FutureExt;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

/// One listener being served: what its accept loop needs.
pub(crate) struct AcceptLoop<R: Runtime> {
    /// The runtime the loop and its connections run on.
    pub(crate) rt: R,
    /// The server.
    pub(crate) daemon: Daemon,
    /// The registered listening socket.
    pub(crate) listener: R::Listener,
    /// Its bound address.
    pub(crate) addr: SocketAddr,
    /// Its configuration.
    pub(crate) config: Listener,
    /// Its counters.
    pub(crate) counts: Arc<ListenerCounts>,
    /// The same listening socket (a duplicate descriptor), for the
    /// non-blocking accepts of the drain.
    pub(crate) raw: std::net::TcpListener,
    /// The TCP keepalive set on the listening socket, which its accepted
    /// connections inherit (`None`: unknown, it could not be set).
    pub(crate) keepalive: Option<Option<Duration>>,
    /// Closed by the server to stop this listener alone (a reload removed
    /// it); shutdown stops every listener.
    pub(crate) stop: async_channel::Receiver<()>,
    /// Held while the listener is open: the server knows every listener is
    /// closed once every clone is dropped.
    pub(crate) _open: async_channel::Sender<()>,
}

/// The most connections a stopping listener takes from its accept queue
/// (the queue holds at most the listen backlog; new ones may arrive while
/// it drains).
const DRAIN_MAX: usize = 4 * socket::LISTEN_BACKLOG as usize;

/// Shortest and longest pause after a failed accept (EMFILE, ENFILE,
/// ENOBUFS...), doubling in between, so that the loop never spins.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(5), Duration::from_secs(1));

impl<R: Runtime> AcceptLoop<R> {
    /// Accepts until shutdown is asked for or the server stops this
    /// listener, then drains the accept queue; the listener closes when this
    /// returns.
    pub(crate) async fn run(self) {
        let mut backoff = ACCEPT_BACKOFF.0;
        let (daemon, stop) = (self.daemon.clone(), self.stop.clone());
        let mut shutdown = pin!(daemon.shutdown_requested().or(async {
            let _ = stop.recv().await;
        }));
        loop {
            // Full: wait for room, unless full means refuse (then the
            // connection is accepted and refused at once).
            if !self.daemon.has_room()
                && !self.refuses_when_full()
                && !self.wait_for_room(shutdown.as_mut()).await
            {
                break;
            }
            let accept = self.rt.accept(&self.listener);
            // Stopping first: once asked for, only the queue is drained.
            match first_unless(shutdown.as_mut(), accept).await {
                None => break,
                Some(Ok((client, peer))) if self.stopping() => {
                    let slot = self.slot_now(peer);
                    self.admit(client, peer, slot);
                    break;
                }
                Some(Ok((client, peer))) => {
                    backoff = ACCEPT_BACKOFF.0;
                    let slot = self.slot(peer, shutdown.as_mut()).await;
                    self.admit(client, peer, slot);
                    // Stopped while it waited for a slot: `shutdown` is
                    // over (and must not be polled again).
                    if self.stopping() {
                        break;
                    }
                }
                Some(Err(e)) => {
                    if self.daemon.books().may_log_warning(self.rt.now()) {
                        tracing::warn!(target: "socks4d", error = %e, ?backoff, "accept failed");
                    }
                    self.rt.sleep_until(self.rt.now() + backoff).await;
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF.1);
                }
            }
        }
        self.drain();
    }

    /// Whether this listener is to stop (shutdown, or the server removed it).
    fn stopping(&self) -> bool {
        self.daemon.is_shutting_down() || self.stop.is_closed()
    }

    /// Accepts, without waiting, the connections the kernel queued for this
    /// listener, and serves them like any other (a full server answers them
    /// as refused); then the listener closes, as `self` is dropped. What
    /// arrives after the last accept and before the close is reset by the
    /// kernel (with `reuse_port`, a new connection may still be hashed to
    /// this listener until it closes).
    fn drain(self) {
        let mut drained = 0usize;
        while drained < DRAIN_MAX {
            match self.raw.accept() {
                Ok((client, peer)) => {
                    drained += 1;
                    let registered = client
                        .set_nonblocking(true)
                        .and_then(|()| self.rt.stream(client));
                    if let Ok(client) = registered {
                        let slot = self.slot_now(peer);
                        self.admit(client, peer, slot);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::warn!(target: "socks4d", listen = %self.addr, error = %e, "accept failed while draining the listen queue");
                    break;
                }
            }
        }
        // Closed at once after the last accept (the moment in which a new
        // connection could still land and be reset), then said.
        let addr = self.addr;
        drop(self);
        tracing::info!(target: "socks4d", listen = %addr, drained, "listener closed");
    }

    /// [`slot`](Self::slot) for a connection taken while stopping: no
    /// waiting for room (a full server refuses it).
    fn slot_now(&self, peer: SocketAddr) -> Result<Slot, Refusal> {
        let mut stopped = pin!(std::future::ready(()));
        let slot = pin!(self.slot(peer, stopped.as_mut()));
        // With `stopped` ready, `slot` never waits.
        futures_lite::future::block_on(slot)
    }

    /// At `max_connections`: new connections wait in the listen queue (the
    /// kernel's backlog) until one closes, rather than being accepted and
    /// closed. `false` when shutdown came first.
    async fn wait_for_room(&self, shutdown: Pin<&mut impl Future<Output = ()>>) -> bool {
        self.daemon.books().counters.accept_paused();
        if self.daemon.books().may_log_warning(self.rt.now()) {
            tracing::warn!(target: "socks4d", listen = %self.addr, max = self.daemon.max_connections(), "connection cap reached: accepting paused until a connection closes");
        }
        first_unless(shutdown, self.daemon.room()).await.is_some()
    }

    /// Whether a connection past `max_connections` is refused at once
    /// (`when_full = "refuse"`) rather than left waiting.
    fn refuses_when_full(&self) -> bool {
        self.daemon.current().when_full == WhenFull::Refuse
    }

    /// The refusal of a connection past `max_connections` when full means
    /// refuse (logged within the refusal log budget), or `None`: wait.
    fn full(&self, peer: SocketAddr, refusal: Refusal) -> Option<Refusal> {
        if !self.refuses_when_full() {
            return None;
        }
        if self.daemon.books().may_log_refusal(self.rt.now()) {
            let max = self.daemon.max_connections();
            tracing::info!(target: "socks4d", %peer, listener = %self.addr, limit = "max_connections", max, reply = 91, "refused: max_connections are open (when_full = refuse)");
        }
        Some(refusal)
    }

    /// Spawns a new connection in its slot, or refuses it.
    fn admit(&self, client: R::Stream, peer: SocketAddr, slot: Result<Slot, Refusal>) {
        let slot = match slot {
            Ok(slot) => slot,
            Err(Refusal::Close) => return,
            Err(Refusal::Reply) => return self.refuse(client),
        };
        let (kind, addr) = (&self.config.kind, self.addr);
        // The address the client reached: the listener's, unless it listens
        // on a wildcard address, intercepts connections meant for other
        // addresses, or sits behind a balancer.
        let local = if addr.ip().is_unspecified()
            || *kind == ListenerKind::Transparent
            || self.config.proxy_protocol.is_some()
        {
            socket::local_addr(&client).unwrap_or(addr)
        } else {
            addr
        };
        let dest = match kind.destination(&client, local) {
            Ok(d) => d,
            Err(e) => {
                if self.daemon.books().may_log_warning(self.rt.now()) {
                    tracing::warn!(target: "socks4d", %peer, listener = %addr, error = %e, "no destination for an intercepted connection");
                }
                return;
            }
        };
        let accepted = Accepted {
            client,
            peer,
            local,
            listener: addr,
            kind: kind.clone(),
            dest,
            proxy: self.config.proxy_protocol,
            slot,
            keepalive: self.keepalive,
        };
        let (rt, daemon) = (self.rt.clone(), self.daemon.clone());
        self.rt.spawn(start::serve(rt, daemon, accepted));
    }

    /// The connection's slot, or how to refuse it. A client whose source no
    /// rule could pass is refused here, before TLS or its request, and holds
    /// no slot. When another listener took the last slot meanwhile, the
    /// connection waits for one (as those in the listen queue do).
    async fn slot(
        &self,
        peer: SocketAddr,
        mut shutdown: Pin<&mut impl Future<Output = ()>>,
    ) -> Result<Slot, Refusal> {
        let (daemon, addr) = (&self.daemon, self.addr);
        if self.config.proxy_protocol.is_some() {
            // Behind a load balancer: only it may connect, and its header
            // says who the client is (and so which client's cap the
            // connection counts under).
            let current = daemon.current();
            let trusted = current.proxy_protocol_from.iter();
            if !trusted.clone().any(|n| n.contains(peer.ip())) {
                daemon.books().counters.proxy_header("untrusted");
                if daemon.books().may_log_refusal(self.rt.now()) {
                    tracing::warn!(target: "socks4d", %peer, listener = %addr, "connection to a PROXY protocol listener from outside proxy_protocol_from: closed");
                }
                return Err(Refusal::Close);
            }
            loop {
                if let Some(slot) = daemon.admit_unattributed(&self.counts) {
                    return Ok(slot);
                }
                if let Some(refusal) = self.full(peer, Refusal::Close) {
                    return Err(refusal);
                }
                first_unless(shutdown.as_mut(), daemon.room())
                    .await
                    .ok_or(Refusal::Close)?;
            }
        }
        let at = start::Arrival {
            peer,
            local: addr,
            listener: addr,
            counts: Some(&self.counts),
            id: None,
        };
        let replies = self.config.kind.replies_in_clear();
        if start::source_refused(daemon, at, replies, self.rt.now()) {
            return Err(self.refusal());
        }
        loop {
            match daemon.admit(&self.counts, peer) {
                Admission::Slot(slot) => return Ok(slot),
                Admission::Full => {
                    if let Some(refusal) = self.full(peer, self.refusal()) {
                        return Err(refusal);
                    }
                    // Another listener took the last slot: wait for one.
                    first_unless(shutdown.as_mut(), daemon.room())
                        .await
                        .ok_or_else(|| self.refusal())?;
                }
                Admission::Limited(limit) => {
                    if daemon.books().may_log_refusal(self.rt.now()) {
                        tracing::info!(target: "socks4d", %peer, listener = %addr, limit = limit.label(), reason = %limit, reply = 91, "refused");
                    }
                    return Err(self.refusal());
                }
            }
        }
    }

    /// How this listener refuses: a SOCKS client reads a 91; any other is
    /// closed at once (it could not read a SOCKS reply).
    fn refusal(&self) -> Refusal {
        if self.config.kind.replies_in_clear() {
            Refusal::Reply
        } else {
            Refusal::Close
        }
    }

    /// Answers a refused client with a 91 in a task of its own, if a
    /// lingering place is free (otherwise the connection just closes).
    fn refuse(&self, client: R::Stream) {
        if let Some(lingering) = self.daemon.refusal_slot() {
            let rt = self.rt.clone();
            let linger = self.daemon.settings().refused_timeout;
            self.rt.spawn(async move {
                refuse::refuse(rt, client, linger).await;
                drop(lingering);
            });
        }
    }
}

/// How a connection that gets no slot is turned away.
enum Refusal {
    /// Closed at once.
    Close,
    /// Answered with a 91 first (a SOCKS client in clear can read it).
    Reply,
}

/// `fut`'s output, or `None` once `stop` completes (checked first).
async fn first_unless<T>(
    mut stop: Pin<&mut impl Future<Output = ()>>,
    fut: impl Future<Output = T>,
) -> Option<T> {
    let mut fut = pin!(fut);
    poll_fn(|cx| {
        if stop.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        fut.as_mut().poll(cx).map(Some)
    })
    .await
}
