//! One connection's drive loop: the driver owns the connection's
//! [`ServerSession`], performs each [`Action`] it asks for over the runtime's
//! sockets, reports the outcome, and hands every event the session emits to the
//! connection's [`Observer`]. All session input goes through one method
//! ([`Connection::step`]), which drains the events after it, so no event is
//! missed.
//!
//! Before the session reads anything, the listener's kind may ask for more: a
//! TLS handshake with the client (`listen_tls`), or, on a dual listener, a
//! look at the client's first byte ([`socks4_proto::server::dual`]), within
//! the handshake timeout (which runs from accept). A `forward_tls` connection
//! does its TLS handshake with the destination as part of connecting.
//!
//! While an action is pending (resolve, IDENT, connect, BIND) the client is
//! watched: bytes it sends are early data for the relay (up to
//! `max_early_data`; beyond it the client is no longer read until the relay,
//! and TCP slows it down); if it hangs up, the action is abandoned and its
//! sockets closed at once.

use crate::clients::{ClientGuard, ClientKey, RateTicket};
use crate::daemon::{Daemon, Slot};
use crate::endpoint::{tls_failure_of, Endpoint};
use crate::listeners::ListenerKind;
use crate::meter::Meter;
use crate::observe::Observer;
use crate::runtime::{before, poll_io, recv, sleep_until_or_never, Direction, Runtime};
use crate::{ident, net, parent, relay, resolve};
use socks4_proto::server::dual::{FirstByte, Protocol};
use socks4_proto::server::{
    Action, ActionOutcome, Destination, RelayEnd, RelayStats, ServerSession,
};
use socks4_proto::{Command, Reply, ReplyCode};
use std::future::{poll_fn, Future};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

/// Size of the buffer a request is read into (a request is at most a few
/// hundred bytes; more arrives in further reads).
const REQUEST_READ: usize = 1024;

/// What an accepted connection needs to be served.
pub(crate) struct Accepted<R: Runtime> {
    /// The client's stream.
    pub(crate) client: R::Stream,
    /// The client's address.
    pub(crate) peer: SocketAddr,
    /// Our address the client connected to.
    pub(crate) local: SocketAddr,
    /// The bound address of the listener it arrived on.
    pub(crate) listener: SocketAddr,
    /// The listener's kind.
    pub(crate) kind: ListenerKind,
    /// Its destination, when the listener says it (transparent, redirect,
    /// forward); `None` for a SOCKS client.
    pub(crate) dest: Option<Destination>,
    /// The PROXY protocol header its listener requires first; `peer` is then
    /// the load balancer, and `slot` not yet counted for a client.
    pub(crate) proxy: Option<socks4_proto::proxy::Accept>,
    /// Its place among `max_connections`.
    pub(crate) slot: Slot,
}

/// What a connection turned out to be, once its listener (and, on a dual
/// listener, its first byte) said.
enum Entry {
    /// A SOCKS client.
    Socks,
    /// A SOCKS client inside TLS.
    Tls(Arc<rustls::ServerConfig>),
    /// A connection to relay to a known destination (over TLS to this host,
    /// for `forward_tls`).
    Known(Destination, Option<String>),
}

/// Serves one accepted connection to its end.
///
/// Not an `async fn`: its arguments would then stay in the task's state for
/// the connection's whole life. What a connection needs before its session
/// runs lives in `open`'s own (boxed, short-lived) future, so the task that
/// stays while a relay runs holds the connection and its slot, and no more.
pub(crate) fn serve<R: Runtime>(
    rt: R,
    daemon: Daemon,
    accepted: Accepted<R>,
) -> impl Future<Output = ()> + Send + 'static {
    let opening = Box::pin(open(rt, daemon, accepted));
    async move {
        let Some((mut conn, slot)) = opening.await else {
            return;
        };
        if matches!(conn.client, Endpoint::Tls(_)) {
            Box::pin(conn.accept_tls()).await;
        }
        conn.run().await;
        drop(slot);
    }
}

/// Everything before the session runs: the PROXY header, the client's cap,
/// a dual listener's first byte, the session and its connection.
async fn open<R: Runtime>(
    rt: R,
    daemon: Daemon,
    accepted: Accepted<R>,
) -> Option<(Connection<R>, Slot)> {
    let now = rt.now();
    let Accepted {
        client,
        mut peer,
        local,
        listener,
        kind,
        dest,
        proxy,
        mut slot,
    } = accepted;
    // Behind a load balancer: its header names the client, within the
    // handshake timeout (which runs from accept); the connection then counts
    // under that client's cap.
    let mut reached = None;
    if let Some(accept) = proxy {
        let settings = daemon.settings();
        let deadline = now + daemon.server_config().timeouts.handshake;
        let counters = &daemon.books().counters;
        let header =
            crate::proxy_header::read(&rt, &client, accept, settings.max_proxy_header, deadline);
        match Box::pin(header).await {
            Ok(header) => {
                counters.proxy_header(if header.source.is_some() {
                    "proxied"
                } else {
                    "local"
                });
                if let Some(source) = header.source {
                    peer = source;
                    reached = header.destination;
                }
            }
            Err(failure) => {
                counters.proxy_header(failure.label());
                if daemon.books().may_log_refusal(rt.now()) {
                    tracing::info!(target: "socks4d", balancer = %peer, %listener, reason = %failure, "closed: no valid PROXY header");
                }
                return None;
            }
        }
        if let Err(limit) = slot.attribute(peer) {
            if daemon.books().may_log_refusal(rt.now()) {
                tracing::info!(target: "socks4d", %peer, %listener, limit = limit.label(), reason = %limit, "refused");
            }
            if kind.replies_in_clear() {
                refuse(rt, client).await;
            }
            return None;
        }
    }
    let tls = daemon.tls();
    let entry = match (kind, dest) {
        (ListenerKind::Dual(service), _) => {
            let wait = daemon.settings().dual_timeout;
            match Box::pin(first_byte(&rt, &client, FirstByte::new(now, wait))).await {
                Some(Protocol::Tls) if tls.server.is_some() => {
                    Entry::Tls(tls.server.clone().expect("checked"))
                }
                Some(Protocol::Tls | Protocol::Other) => Entry::Known(service, None),
                // SOCKS, or a client that left: the session sees which.
                Some(Protocol::Socks) | None => Entry::Socks,
            }
        }
        (ListenerKind::Tls, _) => match &tls.server {
            Some(config) => Entry::Tls(config.clone()),
            None => return None, // settings make sure there is one
        },
        (ListenerKind::ForwardTls(to), _) => {
            let host = match &to {
                Destination::Addr(a) => a.ip().to_string(),
                Destination::Name(host, _) => host.clone(),
            };
            Entry::Known(to, Some(host))
        }
        (_, Some(dest)) => Entry::Known(dest, None),
        (_, None) => Entry::Socks,
    };
    let cfg = daemon.server_config();
    let (mut session, client, dest_tls) = match entry {
        Entry::Socks => (
            ServerSession::new(cfg, peer, local, now),
            Endpoint::Plain(client),
            None,
        ),
        Entry::Tls(config) => match Endpoint::tls_server(client, config) {
            Ok(client) => (ServerSession::new(cfg, peer, local, now), client, None),
            Err(e) => {
                tracing::error!(target: "socks4d", %peer, error = %e, "cannot start TLS");
                return None;
            }
        },
        Entry::Known(dest, tls_host) => (
            ServerSession::with_destination(cfg, peer, local, dest, now),
            Endpoint::Plain(client),
            tls_host,
        ),
    };
    if let Some(reached) = reached {
        session.set_reached(reached);
    }
    let observer = Observer::new(
        daemon.books().clone(),
        daemon.clients().clone(),
        slot.id,
        listener,
        peer,
        now,
    );
    let mut conn = Connection {
        rt,
        daemon,
        session,
        observer,
        client,
        tls,
        dest_tls,
        other: None,
        bind_listener: None,
        bind_counted: None,
        meter: None,
        rate_ticket: None,
        dest_leftover: Vec::new(),
        client_error: None,
        tried_early_read: false,
    };
    conn.step(|_, _| {});
    Some((conn, slot))
}

/// Peeks at a dual listener's client until `first` decides what it is;
/// `None` when the client closed or failed first.
async fn first_byte<R: Runtime>(
    rt: &R,
    client: &R::Stream,
    mut first: FirstByte,
) -> Option<Protocol> {
    let deadline = first.poll_timeout();
    let peek = poll_fn(|cx| {
        let mut byte = [0u8; 1];
        poll_io(client, Direction::Read, cx, &mut |fd| {
            rustix::net::recv(fd, &mut byte, rustix::net::RecvFlags::PEEK)
                .map(|(n, _)| n)
                .map_err(std::io::Error::from)
        })
        .map(|peeked| match peeked {
            Ok(n) if n > 0 => first.handle_input(rt.now(), &byte[..n]),
            _ => None,
        })
    });
    match before(rt, deadline, peek).await {
        Some(decided) => decided,
        None => first.handle_timeout(rt.now()),
    }
}

/// A session being driven.
struct Connection<R: Runtime> {
    rt: R,
    daemon: Daemon,
    session: ServerSession,
    observer: Observer,
    client: Endpoint<R::Stream>,
    /// The TLS configurations this connection started with.
    tls: Arc<crate::tls::Tls>,
    /// `forward_tls`: TLS towards the destination, for this host name.
    dest_tls: Option<String>,
    /// The outbound connection (CONNECT) or the accepted one (BIND), once up.
    other: Option<Endpoint<R::Stream>>,
    /// BIND's listener, between `Bound` and `Accepted`.
    bind_listener: Option<R::Listener>,
    /// The BIND listener counted for its client, from admission to accept.
    bind_counted: Option<ClientGuard>,
    /// The relay's limits (bandwidth, quota), from admission.
    meter: Option<Meter>,
    /// The request counted in its client's connection rate, taken back unless
    /// the request is granted.
    rate_ticket: Option<RateTicket>,
    /// Bytes a parent sent after granting, for the client before the relay's.
    dest_leftover: Vec<u8>,
    /// Set when writing to the client failed.
    client_error: Option<ErrorKind>,
    /// Whether the first read of the request was tried.
    tried_early_read: bool,
}

/// Why a pending action was not waited for to its end.
enum Interrupted {
    /// The session's deadline came first.
    TimedOut,
    /// The client hung up, or its early data ended the session (which knows).
    Client,
}

impl<R: Runtime> Connection<R> {
    /// Gives the session one input at the runtime's now, then hands every event
    /// it emitted to the observer.
    fn step(&mut self, input: impl FnOnce(&mut ServerSession, Instant)) {
        let now = self.rt.now();
        input(&mut self.session, now);
        while let Some(event) = self.session.poll_event() {
            self.observer.observe(event, now);
        }
    }

    /// Reports an action's outcome.
    fn outcome(&mut self, outcome: ActionOutcome) {
        let mut misuse = None;
        self.step(|s, now| misuse = s.handle_outcome(now, outcome).err());
        if let Some(e) = misuse {
            // A driver bug, not a peer's doing: say so loudly and end the
            // connection rather than go on with a session in an unknown state.
            tracing::error!(target: "socks4d", conn = self.observer.id(), error = %e, "driver reported an outcome the session did not ask for");
            self.abandon();
        }
    }

    /// Reports why a pending action was not waited for.
    fn interrupted(&mut self, why: Interrupted) {
        match why {
            Interrupted::TimedOut => self.step(|s, now| s.handle_timeout(now)),
            Interrupted::Client => {}
        }
    }

    /// Ends a session that cannot go on, as if the client had left.
    fn abandon(&mut self) {
        self.step(|s, now| s.handle_eof(now));
    }

    /// The client's TLS handshake, within the handshake timeout: its
    /// certificate's name goes to the session; a failure or the timeout ends
    /// the session without a reply (which the client could not read).
    async fn accept_tls(&mut self) {
        let deadline = self.session.poll_timeout();
        let rt = self.rt.clone();
        let done = before(&rt, deadline, self.client.handshake()).await;
        match done {
            Some(Ok(())) => {
                if let Some(name) = crate::tls::common_name(self.client.peer_certificates()) {
                    self.step(|s, now| s.set_client_cert(now, name));
                }
            }
            Some(Err(e)) => {
                self.client_error = Some(ErrorKind::InvalidData);
                match e.failure() {
                    Some(kind) => self.step(|s, now| s.handle_tls_failure(now, kind)),
                    None => self.abandon(),
                }
            }
            None => {
                self.client_error = Some(ErrorKind::TimedOut);
                self.step(|s, now| s.handle_timeout(now));
            }
        }
    }

    async fn run(&mut self) {
        loop {
            loop {
                // The relay's state is the only one that lasts: every other
                // action's lives in a box while it runs, and the relay is
                // awaited after the match, so nothing of the action stays
                // beside it in this future.
                let client_leftover = match self.session.poll_action() {
                    None => break,
                    Some(Action::Close(_)) => return,
                    Some(Action::StartRelay { client_leftover }) => client_leftover,
                    Some(action) => {
                        Box::pin(self.perform(action)).await;
                        continue;
                    }
                };
                self.relay(client_leftover).await;
            }
            if self.session.is_closed() {
                return;
            }
            if !self.session.wants_input() {
                // Every action was performed and none is pending, so the session
                // must be waiting for client bytes or be closed.
                tracing::error!(target: "socks4d", conn = self.observer.id(), "session neither closed nor waiting for input");
                self.abandon();
                continue;
            }
            self.read_request().await;
        }
    }

    /// Reads what the client sent (the request) into the session, or fires
    /// its deadline. The bytes pass through a buffer on the stack of one
    /// poll, so the connection holds no read buffer while it waits.
    async fn read_request(&mut self) {
        if !self.tried_early_read {
            // Clients send the request right after connecting, so it is often
            // there already when the connection is accepted: read it without
            // waiting for the reactor to say so. (Only a first, direct try: a
            // `WouldBlock` here leaves the runtime's readiness as it was, and
            // every later read goes through `try_io`.)
            self.tried_early_read = true;
            if let Some(client) = self.client.plain() {
                let mut buf = [0u8; REQUEST_READ];
                match recv(client.as_fd(), &mut buf) {
                    Ok(0) => return self.step(|s, now| s.handle_eof(now)),
                    Ok(n) => return self.step(|s, now| s.handle_input(now, &buf[..n])),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => return self.step(|s, now| s.handle_eof(now)),
                }
            }
        }
        let deadline = self.session.poll_timeout();
        let rt = self.rt.clone();
        let read = poll_fn(|cx| {
            let mut buf = [0u8; REQUEST_READ];
            self.client
                .poll_op(Direction::Read, cx, |c| c.try_read(&mut buf))
                .map(|read| match read {
                    Ok(0) | Err(_) => self.step(|s, now| s.handle_eof(now)),
                    Ok(n) => self.step(|s, now| s.handle_input(now, &buf[..n])),
                })
        });
        if before(&rt, deadline, read).await.is_none() {
            self.step(|s, now| s.handle_timeout(now));
        }
    }

    /// Performs one action (not `Close` or `StartRelay`: `run` does those) and
    /// reports its outcome.
    async fn perform(&mut self, action: Action) {
        let rt = self.rt.clone();
        match action {
            Action::SendReply(reply) => {
                if self.client_error.is_none() {
                    if let Err(e) = self.client.write_all(&reply.to_bytes()).await {
                        self.client_error = Some(e.kind());
                        self.abandon();
                    }
                }
            }
            Action::Admit { command, verdict } => {
                let key = ClientKey::of(self.session.peer().ip());
                let clients = self.daemon.clients().clone();
                let admitted =
                    clients
                        .admit(key, rt.now(), &verdict)
                        .and_then(|(ticket, meter)| {
                            if command == Command::Bind {
                                self.bind_counted = Some(clients.open_bind(key)?);
                            }
                            self.rate_ticket = ticket;
                            self.meter = Some(meter).filter(Meter::is_limited);
                            Ok(())
                        });
                self.outcome(ActionOutcome::Admitted(admitted));
            }
            Action::Resolve { host, port: _ } => {
                let lookups = self.daemon.lookups().clone();
                match self
                    .pending(Box::pin(resolve::resolve(&rt, &lookups, host)))
                    .await
                {
                    Ok(r) => self.outcome(ActionOutcome::Resolved(r)),
                    Err(why) => self.interrupted(why),
                }
            }
            Action::IdentQuery { to, query } => {
                let from = self.session.local().ip();
                match self
                    .pending(Box::pin(ident::exchange(&rt, from, to, query)))
                    .await
                {
                    Ok(r) => self.outcome(ActionOutcome::Ident(r.map_err(|e| e.kind()))),
                    Err(why) => self.interrupted(why),
                }
            }
            Action::Connect(addr) => {
                let from = net::outgoing_for(&self.daemon.settings().outgoing, addr);
                let tls = self
                    .dest_tls
                    .clone()
                    .map(|host| (host, self.tls.client.clone()));
                let connect = async move {
                    let stream = net::connect(&rt, addr, from).await?;
                    let Some((host, config)) = tls else {
                        return Ok(Endpoint::Plain(stream));
                    };
                    let config = config.ok_or_else(|| {
                        std::io::Error::new(ErrorKind::Unsupported, "no TLS configuration")
                    })?;
                    let mut tls = Endpoint::tls_client(stream, config, &host)?;
                    tls.handshake().await?;
                    Ok::<_, std::io::Error>(tls)
                };
                match self.pending(Box::pin(connect)).await {
                    Ok(Ok(other)) => {
                        self.other = Some(other);
                        self.outcome(ActionOutcome::Connected(Ok(())));
                    }
                    Ok(Err(e)) => {
                        if let Some(kind) = tls_failure_of(&e) {
                            self.daemon
                                .books()
                                .counters
                                .tls_failure("destination", kind);
                            tracing::info!(target: "socks4d", conn = self.observer.id(), dest = %addr, error = %e, "TLS with the destination failed");
                        }
                        self.outcome(ActionOutcome::Connected(Err(e.kind())))
                    }
                    Err(why) => self.interrupted(why),
                }
            }
            Action::ConnectVia {
                parent,
                dest,
                user_id,
            } => {
                let lookups = self.daemon.lookups().clone();
                let outgoing = self.daemon.settings().outgoing.clone();
                let how = parent::Reach {
                    outgoing: &outgoing,
                    lookups: &lookups,
                    tls: self.tls.client.clone(),
                };
                let via = parent::connect_via(&rt, &parent, &dest, &user_id, how);
                match self.pending(Box::pin(via)).await {
                    Ok(Ok((tunnel, leftover))) => {
                        self.other = Some(tunnel);
                        self.dest_leftover = leftover;
                        self.outcome(ActionOutcome::Connected(Ok(())));
                    }
                    Ok(Err(e)) => {
                        if let Some(kind) = tls_failure_of(&e) {
                            self.daemon.books().counters.tls_failure("parent", kind);
                        }
                        tracing::info!(target: "socks4d", conn = self.observer.id(), parent = %parent, error = %e, "parent failed");
                        self.outcome(ActionOutcome::Connected(Err(e.kind())));
                    }
                    Err(why) => self.interrupted(why),
                }
            }
            Action::Bind(addr) => {
                let bound = net::listen(addr).and_then(|l| {
                    let at = net::local_addr(&l)?;
                    Ok((rt.listener(l)?, at))
                });
                match bound {
                    Ok((listener, at)) => {
                        self.bind_listener = Some(listener);
                        self.outcome(ActionOutcome::Bound(Ok(at)));
                    }
                    Err(e) => self.outcome(ActionOutcome::Bound(Err(e.kind()))),
                }
            }
            Action::Accept => {
                let Some(listener) = self.bind_listener.take() else {
                    return self.outcome(ActionOutcome::Accepted(Err(ErrorKind::NotConnected)));
                };
                // One inbound connection only: the listener closes after it.
                let accepted = self.pending(Box::pin(rt.accept(&listener))).await;
                drop(listener);
                self.bind_counted = None;
                match accepted {
                    Ok(Ok((stream, from))) => {
                        self.other = Some(Endpoint::Plain(stream));
                        self.outcome(ActionOutcome::Accepted(Ok(from)));
                    }
                    Ok(Err(e)) => self.outcome(ActionOutcome::Accepted(Err(e.kind()))),
                    Err(why) => self.interrupted(why),
                }
            }
            // `run` handles these two itself and never passes them here.
            Action::StartRelay { .. } | Action::Close(_) => {}
            other => {
                tracing::error!(target: "socks4d", conn = self.observer.id(), action = ?other, "action this driver does not know");
                self.abandon();
            }
        }
    }

    /// Relays between the client and the other side until either ends, then
    /// reports how it ended.
    async fn relay(&mut self, client_leftover: Vec<u8>) {
        let rt = self.rt.clone();
        // Granted: the request stays counted in the client's rate.
        if let Some(ticket) = self.rate_ticket.take() {
            ticket.granted();
        }
        let (stats, end) = match (self.client_error, self.other.take()) {
            (Some(kind), _) => (RelayStats::default(), RelayEnd::Error(kind)),
            (None, None) => (
                RelayStats::default(),
                RelayEnd::Error(ErrorKind::NotConnected),
            ),
            (None, Some(mut other)) => {
                let idle = self.session.config().timeouts.idle;
                relay::relay(
                    &rt,
                    &mut self.client,
                    &mut other,
                    (client_leftover, std::mem::take(&mut self.dest_leftover)),
                    idle,
                    self.meter.as_ref(),
                    self.daemon.relays_cut(),
                )
                .await
            }
        };
        let mut misuse = None;
        self.step(|s, now| misuse = s.handle_relay_end(now, stats, end).err());
        if let Some(e) = misuse {
            tracing::error!(target: "socks4d", conn = self.observer.id(), error = %e, "relay ended outside a relay");
            self.abandon();
        }
    }

    /// Waits for `fut` while watching the session's deadline and the client.
    /// Callers box `fut`: a pending action's state then exists only while it is
    /// pending, and the connection stays small while it relays.
    async fn pending<T>(&mut self, fut: impl Future<Output = T>) -> Result<T, Interrupted> {
        let deadline = self.session.poll_timeout();
        let rt = self.rt.clone();
        let mut fut = pin!(fut);
        let mut timer = pin!(sleep_until_or_never(&rt, deadline));
        poll_fn(|cx| {
            if let Poll::Ready(v) = fut.as_mut().poll(cx) {
                return Poll::Ready(Ok(v));
            }
            if timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(Interrupted::TimedOut));
            }
            // The client: early data is kept for the relay, as much as the
            // session takes (the rest waits in the socket, and TCP slows the
            // client down); end of stream or an error means it left.
            loop {
                let room = self.session.early_data_room().min(512);
                if room == 0 {
                    return Poll::Pending;
                }
                let mut buf = [0u8; 512];
                match self
                    .client
                    .poll_op(Direction::Read, cx, |c| c.try_read(&mut buf[..room]))
                {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(n)) if n > 0 => {
                        self.step(|s, now| s.handle_input(now, &buf[..n]));
                        if self.session.is_closed() {
                            return Poll::Ready(Err(Interrupted::Client));
                        }
                    }
                    Poll::Ready(_) => {
                        self.step(|s, now| s.handle_eof(now));
                        return Poll::Ready(Err(Interrupted::Client));
                    }
                }
            }
        })
        .await
    }
}

/// How long a refused connection is kept so that the client reads its reply.
pub(crate) const REFUSAL_LINGER: std::time::Duration = std::time::Duration::from_secs(1);

/// What a refused client may still send before it is closed.
const REFUSAL_DRAIN: usize = 64 * 1024;

/// Refuses a connection its client may not open (a per-client cap): reply 91
/// at once, without waiting for the request; then half-close, and read and
/// drop what the client still sends until it closes, for at most
/// [`REFUSAL_LINGER`] (closing with its request unread would reset the
/// connection, and a reset can destroy the reply before the client reads it).
pub(crate) async fn refuse<R: Runtime>(rt: R, client: R::Stream) {
    let reply = Reply::with_code(ReplyCode::Rejected).to_bytes();
    let mut timer = pin!(rt.sleep_until(rt.now() + REFUSAL_LINGER));
    let mut sent = 0;
    let mut drained = 0;
    poll_fn(|cx| {
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        while sent < reply.len() {
            match poll_io(&client, Direction::Write, cx, &mut |fd| {
                crate::runtime::send(fd, &reply[sent..])
            }) {
                Poll::Ready(Ok(n)) => sent += n,
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
            if sent == reply.len() {
                let _ = crate::runtime::shutdown_write(client.as_fd());
            }
        }
        loop {
            let mut buf = [0u8; 1024];
            match poll_io(&client, Direction::Read, cx, &mut |fd| recv(fd, &mut buf)) {
                Poll::Ready(Ok(n)) if n > 0 && drained < REFUSAL_DRAIN => drained += n,
                Poll::Ready(_) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await
}
