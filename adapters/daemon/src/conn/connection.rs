//! One connection's drive loop: the driver owns the connection's
//! [`ServerSession`], performs each [`Action`] it asks for over the runtime's
//! sockets (the actions themselves are in `conn::actions`), reports the
//! outcome, and hands every event the session emits to the connection's
//! [`Observer`]. All session input goes through one method
//! ([`Connection::step`]), which drains the events after it, so no event is
//! missed.
//!
//! A name's answer may come in two parts (RFC 8305 §3): the rest is handed
//! to the session when it is in, while a connect races (its addresses join
//! the race) or, when the session waits for it, within the resolution
//! delay.
//!
//! While an action is pending (resolve, IDENT, connect, BIND) the client is
//! watched: bytes it sends are early data for the relay (up to
//! `max_early_data`; beyond it the client is no longer read until the relay,
//! and TCP slows it down). A half-close (FIN) is not a hang-up: TCP lets a
//! client send its request, its data and its FIN back to back and still read
//! the answer, so the client is no longer read and the relay passes the FIN
//! on once it starts. If the client resets the connection (or with
//! `abort_on_client_close`, half-closes it), the action is abandoned and its
//! sockets closed at once; a client that closed for good shows when the
//! reply cannot be written.

use crate::conn::{relay, resolve};
use crate::daemon::Daemon;
use crate::limits::client_table::{ClientGuard, RateTicket};
use crate::limits::meter::Meter;
use crate::observe::books::Observer;
use crate::runtime::endpoint::Endpoint;
use crate::runtime::tls::Tls;
use crate::runtime::{before, recv, sleep_until_or_never, socket, Direction, Runtime};
use socks4_proto::eyeballs::RESOLUTION_DELAY;
use socks4_proto::server::{Action, ActionOutcome, RelayEnd, RelayStats, ServerSession};
use std::future::{poll_fn, Future};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Size of the buffer a request is read into (a request is at most a few
/// hundred bytes; more arrives in further reads).
const REQUEST_READ: usize = 1024;

/// A session being driven.
pub(crate) struct Connection<R: Runtime> {
    pub(super) rt: R,
    pub(super) daemon: Daemon,
    pub(super) session: ServerSession,
    pub(super) observer: Observer,
    pub(super) client: Endpoint<R::Stream>,
    /// The TLS configurations this connection started with.
    pub(super) tls: Arc<Tls>,
    /// What only the handshake needs, in a box allocated when one of its
    /// fields is set (most connections set none) and freed when the relay
    /// starts, so an idle relay does not hold their room.
    pub(super) before_relay: Option<Box<BeforeRelay<R>>>,
    /// The outbound connection (CONNECT) or the accepted one (BIND), once up.
    pub(super) other: Option<Endpoint<R::Stream>>,
    /// The outbound connection's local address, marked as ours while it is
    /// open (a connection accepted from it would be a loop).
    pub(super) other_mark: Option<crate::runtime::own_sockets::Mark>,
    /// The connection counted for its client: under its address from
    /// accept, moved at admission to the identity `[limits] key` names.
    pub(super) counted: Option<ClientGuard>,
    /// The relay's limits (bandwidth, quota), from admission.
    pub(super) meter: Option<Meter>,
    /// The connection counted as open through its parent.
    pub(super) parent_open: Option<crate::daemon::outbound::ParentOpen>,
    /// Set when writing to the client failed.
    pub(super) client_error: Option<ErrorKind>,
    /// Whether the first read of the request was tried.
    pub(super) tried_early_read: bool,
    /// Set when the client half-closed while an action was pending: it is
    /// not read again before the relay, which sees the end of its stream.
    pub(super) client_finished: bool,
    /// The TCP keepalive the client's socket has from its listener (`None`:
    /// unknown); the relay sets it only when the current one differs.
    pub(super) client_keepalive: Option<Option<Duration>>,
}

/// What a [`Connection`] needs only until its relay starts.
pub(crate) struct BeforeRelay<R: Runtime> {
    /// `forward_tls`: TLS towards the destination, for this host name.
    pub(super) dest_tls: Option<String>,
    /// BIND's listener, between `Bound` and `Accepted`.
    pub(super) bind_listener: Option<R::Listener>,
    /// The BIND listener counted for its client, from admission to accept.
    pub(super) bind_counted: Option<ClientGuard>,
    /// The request counted in its client's connection rate, taken back unless
    /// the request is granted.
    pub(super) rate_ticket: Option<RateTicket>,
    /// Bytes a parent sent after granting, for the client before the relay's.
    pub(super) dest_leftover: Vec<u8>,
    /// The rest of a name's answer given in two parts (RFC 8305 §3), and
    /// when its first part was reported: for the session once it is in.
    pub(super) late: Option<(resolve::Rest, Instant)>,
    /// While a connect races with the rest still to come: where the late
    /// addresses the session passes go (dropped: none will).
    pub(super) joining: Option<async_channel::Sender<Vec<SocketAddr>>>,
}

impl<R: Runtime> Default for BeforeRelay<R> {
    fn default() -> Self {
        BeforeRelay {
            dest_tls: None,
            bind_listener: None,
            bind_counted: None,
            rate_ticket: None,
            dest_leftover: Vec::new(),
            late: None,
            joining: None,
        }
    }
}

/// Why a pending action was not waited for to its end.
pub(super) enum Interrupted {
    /// The session's deadline came first.
    TimedOut,
    /// The client hung up, or its early data ended the session (which knows).
    Client,
}

impl<R: Runtime> Connection<R> {
    /// A driver for `session`, whose events go to `observer`.
    pub(super) fn new(
        rt: R,
        daemon: Daemon,
        session: ServerSession,
        observer: Observer,
        client: Endpoint<R::Stream>,
        tls: Arc<Tls>,
        dest_tls: Option<String>,
    ) -> Connection<R> {
        Connection {
            rt,
            daemon,
            session,
            observer,
            client,
            tls,
            before_relay: dest_tls.map(|dest_tls| {
                Box::new(BeforeRelay {
                    dest_tls: Some(dest_tls),
                    ..BeforeRelay::default()
                })
            }),
            other: None,
            other_mark: None,
            counted: None,
            meter: None,
            parent_open: None,
            client_error: None,
            tried_early_read: false,
            client_finished: false,
            client_keepalive: None,
        }
    }

    /// Gives the session one input at the runtime's now, then hands every event
    /// it emitted to the observer.
    pub(super) fn step(&mut self, input: impl FnOnce(&mut ServerSession, Instant)) {
        let now = self.rt.now();
        input(&mut self.session, now);
        while let Some(event) = self.session.poll_event() {
            self.observer.observe(event, now);
        }
    }

    /// Reports an action's outcome.
    pub(super) fn outcome(&mut self, outcome: ActionOutcome) {
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
    pub(super) fn interrupted(&mut self, why: Interrupted) {
        match why {
            Interrupted::TimedOut => self.step(|s, now| s.handle_timeout(now)),
            Interrupted::Client => {}
        }
    }

    /// Ends a session that cannot go on, as if the client had left.
    pub(super) fn abandon(&mut self) {
        self.step(|s, now| s.handle_eof(now));
    }

    /// The client's TLS handshake, within the handshake timeout: its
    /// certificate's name goes to the session; a failure or the timeout ends
    /// the session without a reply (which the client could not read).
    pub(super) async fn accept_tls(&mut self) {
        let deadline = self.session.poll_timeout();
        let rt = self.rt.clone();
        let done = before(&rt, deadline, self.client.handshake()).await;
        match done {
            Some(Ok(())) => {
                if let Some(name) =
                    crate::runtime::tls::common_name(self.client.peer_certificates())
                {
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

    /// What only the handshake needs, to change (allocated on first use).
    pub(super) fn before_relay(&mut self) -> &mut BeforeRelay<R> {
        self.before_relay.get_or_insert_with(Box::default)
    }

    /// Whether the rest of a name's answer is still to come.
    pub(super) fn waits_late(&self) -> bool {
        self.before_relay.as_ref().is_some_and(|b| b.late.is_some())
    }

    /// Runs the connection (first the client's TLS handshake, on a TLS
    /// listener) until it ends, or until an operator kills it before its
    /// relay (a relay sees the kill itself and reports its bytes): the
    /// session then closes with the outcome `killed`, and dropping the
    /// connection closes both sockets.
    pub(super) async fn run_unless_killed(&mut self) {
        let entry = self.observer.entry().cloned();
        let killed = {
            let mut work = pin!(async {
                if matches!(self.client, Endpoint::Tls(_)) {
                    Box::pin(self.accept_tls()).await;
                }
                self.run().await;
            });
            let mut kill = pin!(async {
                match &entry {
                    Some(entry) => entry.killed_before_relay().await,
                    None => std::future::pending().await,
                }
            });
            poll_fn(|cx| {
                if work.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(false);
                }
                kill.as_mut().poll(cx).map(|()| true)
            })
            .await
        };
        if killed {
            self.step(|s, now| s.handle_kill(now));
        }
    }

    pub(super) async fn run(&mut self) {
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
            if self.waits_late() {
                // The session waits for the rest of a name's answer.
                self.await_late().await;
                continue;
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

    /// The session waits for the rest of a two-part answer before it
    /// decides: it gets what comes within RFC 8305's resolution delay of the
    /// first part (none after it: the lookup goes on for the cache alone).
    async fn await_late(&mut self) {
        let Some((rest, since)) = self.before_relay().late.take() else {
            return;
        };
        let rt = self.rt.clone();
        let deadline = since + RESOLUTION_DELAY;
        let waited = self
            .pending(Box::pin(
                async move { before(&rt, Some(deadline), rest).await },
            ))
            .await;
        match waited {
            Ok(rest) => {
                let addrs = rest.unwrap_or_default();
                self.step(|s, now| s.handle_late_addresses(now, addrs));
            }
            Err(why) => self.interrupted(why),
        }
    }

    /// While a connect races: the rest of the name's answer, once in, goes
    /// to the session, and the addresses it passes to the race.
    fn poll_late(&mut self, cx: &mut Context<'_>) {
        let Some(before) = self.before_relay.as_deref_mut() else {
            return;
        };
        if before.joining.is_none() {
            return;
        }
        let Some((rest, _)) = before.late.as_mut() else {
            return;
        };
        let Poll::Ready(addrs) = rest.as_mut().poll(cx) else {
            return;
        };
        before.late = None;
        let joining = before.joining.take();
        self.step(|s, now| s.handle_late_addresses(now, addrs));
        let mut unexpected = None;
        while let Some(action) = self.session.poll_action() {
            match (action, &joining) {
                (Action::ConnectMore(addrs), Some(tx)) => {
                    let _ = tx.try_send(addrs);
                }
                (other, _) => unexpected = Some(other),
            }
        }
        if let Some(action) = unexpected {
            // The session asks for nothing else while it connects.
            tracing::error!(target: "socks4d", conn = self.observer.id(), ?action, "action asked for during a connect");
            self.abandon();
        }
        // Dropping the sender tells the race that nothing more will come.
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

    /// Relays between the client and the other side until either ends, then
    /// reports how it ended.
    async fn relay(&mut self, client_leftover: Vec<u8>) {
        let rt = self.rt.clone();
        // Granted: the request stays counted in the client's rate.
        // What only the handshake needed goes now.
        let dest_leftover = match self.before_relay.take() {
            Some(before) => {
                let BeforeRelay {
                    rate_ticket,
                    dest_leftover,
                    ..
                } = *before;
                if let Some(ticket) = rate_ticket {
                    ticket.granted();
                }
                dest_leftover
            }
            None => Vec::new(),
        };
        let (stats, end) = match (self.client_error, self.other.take()) {
            (Some(kind), _) => (RelayStats::default(), RelayEnd::Error(kind)),
            (None, None) => (
                RelayStats::default(),
                RelayEnd::Error(ErrorKind::NotConnected),
            ),
            (None, Some(mut other)) => {
                // The client's socket has its listener's keepalive: set
                // only when a reload changed it since (or it is unknown).
                let keepalive = self.daemon.current().keepalive;
                let client = (self.client_keepalive != Some(keepalive))
                    .then(|| self.client.stream().as_fd());
                let dest = keepalive.map(|_| other.stream().as_fd());
                for socket in client.into_iter().chain(dest) {
                    if let Err(e) = socket::set_keepalive(&socket, keepalive) {
                        tracing::debug!(target: "socks4d", conn = self.observer.id(), error = %e, "TCP keepalive not set");
                    }
                }
                let idle = self.session.config().timeouts.idle;
                let entry = self.observer.entry().cloned();
                let daemon = self.daemon.clone();
                // One listener per relay: a listed connection's entry is
                // woken for a kill and for the cut alike.
                let cut = async move {
                    let killed = match &entry {
                        Some(entry) => entry.killed_or_cut(|| daemon.are_relays_cut()).await,
                        None => {
                            daemon.relays_cut().await;
                            false
                        }
                    };
                    if killed {
                        RelayEnd::Killed
                    } else {
                        RelayEnd::Shutdown
                    }
                };
                relay::relay(
                    &rt,
                    &mut self.client,
                    &mut other,
                    (client_leftover, dest_leftover),
                    idle,
                    self.meter.as_ref(),
                    (cut, self.observer.entry().map(|e| &**e)),
                )
                .await
            }
        };
        // Its quota usage goes to the fleet soon, not at the next second.
        if let (Some(fleet), Some(Meter { quota: Some(_), .. })) =
            (self.daemon.fleet(), &self.meter)
        {
            fleet.relay_ended();
        }
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
    pub(super) async fn pending<T>(
        &mut self,
        fut: impl Future<Output = T>,
    ) -> Result<T, Interrupted> {
        let deadline = self.session.poll_timeout();
        let rt = self.rt.clone();
        let mut fut = pin!(fut);
        let mut timer = pin!(sleep_until_or_never(&rt, deadline));
        // Once a read of the client found nothing, it is read again only
        // when the runtime says it may have sent more: async-io keeps no
        // readiness, so a read at every wake-up (the connect's, a timer's)
        // would be a system call in vain each time.
        let mut client_quiet = false;
        poll_fn(|cx| {
            self.poll_late(cx);
            if let Poll::Ready(v) = fut.as_mut().poll(cx) {
                return Poll::Ready(Ok(v));
            }
            if timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(Interrupted::TimedOut));
            }
            if self.session.is_closed() {
                return Poll::Ready(Err(Interrupted::Client));
            }
            // The client: early data is kept for the relay, as much as the
            // session takes (the rest waits in the socket, and TCP slows the
            // client down); an error means it left, and so does the end of
            // its stream with abort_on_client_close (else it is a
            // half-close, for the relay to pass on).
            loop {
                let room = self.session.early_data_room().min(512);
                if room == 0 || self.client_finished {
                    return Poll::Pending;
                }
                if client_quiet {
                    // An error shows in the read that follows.
                    if self.client.poll_ready(Direction::Read, cx).is_pending() {
                        return Poll::Pending;
                    }
                    client_quiet = false;
                }
                let mut buf = [0u8; 512];
                match self.client.try_read(&mut buf[..room]) {
                    Err(e) if e.kind() == ErrorKind::WouldBlock => client_quiet = true,
                    Ok(n) if n > 0 => {
                        self.step(|s, now| s.handle_input(now, &buf[..n]));
                        if self.session.is_closed() {
                            return Poll::Ready(Err(Interrupted::Client));
                        }
                    }
                    Ok(_) if !self.daemon.current().abort_on_client_close => {
                        self.client_finished = true;
                        return Poll::Pending;
                    }
                    _ => {
                        self.step(|s, now| s.handle_eof(now));
                        return Poll::Ready(Err(Interrupted::Client));
                    }
                }
            }
        })
        .await
    }
}
