//! [`ServerSession`]: the per-connection state machine. This file holds the
//! session's state and its surface: the constructors, the `handle_*` inputs
//! (which hand each input to its phase), the `poll_*` outputs and the queries.
//! Its inputs and outputs are in [`action`](super::action), its events in
//! [`event`](super::event), its close reasons in [`reason`](super::reason).
//!
//! The phases, one file each, in the order a connection meets them:
//!
//! - [`request`]: reading the request (or taking a known destination), the
//!   early data cap, and a SOCKS4a name's lookup.
//! - [`policy`]: the access policy for each destination address, the route,
//!   admission, and a denial with its notification.
//! - [`ident`]: the IDENT query and what its answer decides.
//! - [`connect`]: connecting, directly or through the route's parents.
//! - [`late`]: a name's answer in two parts (RFC 8305), the late addresses
//!   joining a connect in progress.
//! - [`bind`]: BIND's listener and the one inbound connection it takes.
//! - [`finish`]: the replies, the hand-off to the relay, a refusal and the
//!   close.
//!
//! What only the handshake needs (timers, the request, candidates, ...)
//! lives in [`handshake`]'s box, freed when the relay starts.

mod bind;
mod connect;
mod finish;
mod handshake;
mod ident;
mod late;
mod policy;
mod request;

use super::action::{Action, ActionOutcome, Destination, RelayEnd, RelayStats};
use super::config::ServerConfig;
use super::event::Event;
use super::reason::{CloseReason, TlsFailure};
use super::timer::Timer;
use crate::codec::{Command, ReplyCode};
use core::fmt;
use handshake::HandshakeBox;
use late::Late;
use policy::{Next, Routed};
use socks4_acl::Source;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

/// An outcome was reported that the session did not ask for (caller misuse).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnexpectedOutcome {
    /// The session's state when it arrived.
    pub state: &'static str,
}

impl fmt::Display for UnexpectedOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "outcome not expected in state {}", self.state)
    }
}

impl std::error::Error for UnexpectedOutcome {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    ReadRequest,
    Resolving,
    Admitting,
    Identing,
    Connecting,
    Binding,
    Accepting,
    Relaying,
    Closed,
}

/// The request, owned once decoded.
#[derive(Debug, Clone)]
struct Req {
    command: Command,
    host: Option<String>,
    port: u16,
    user_id: Vec<u8>,
    /// The destination as the client gave it, for events.
    shown: String,
}

/// One client connection, from accept to relay: see the [module docs](super).
#[derive(Debug)]
pub struct ServerSession {
    cfg: Arc<ServerConfig>,
    peer: SocketAddr,
    local: SocketAddr,
    state: State,
    /// What only the handshake needs: freed when the relay starts.
    hs: HandshakeBox,
    ident_required: bool,
    /// identd was asked and its answer taken (the session went on).
    identified: bool,
    /// identd's answer named the request's user id, and IDENT was required.
    ident_matched: bool,
    source: Source,
    /// The policy has passed the request (before or after resolving).
    decided: bool,
    /// The route, once chosen: `Some(None)` direct, `Some(Some(..))` through
    /// parents.
    route: Option<Option<Routed>>,
    /// The chosen route's exit clauses (default: none, or no route).
    exit: socks4_acl::Exit,
    /// Whether the client speaks SOCKS and gets replies.
    replies: bool,
    /// Where admission leads.
    after_admission: Next,
    /// The subject common name of the client's verified TLS certificate.
    cert: Option<String>,
    /// The address the client reached, when not `local` (behind a load
    /// balancer: the PROXY header's destination).
    reached: Option<SocketAddr>,
    /// The request's name was sniffed from the client's first bytes: a
    /// parent that takes names gets it even when its address is known.
    sniffed: bool,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
}

impl ServerSession {
    /// A session for a client at `peer` that connected to our `local` address,
    /// at `now`. Arms the handshake timeout.
    pub fn new(
        cfg: Arc<ServerConfig>,
        peer: SocketAddr,
        local: SocketAddr,
        now: Instant,
    ) -> ServerSession {
        let mut hs = HandshakeBox::new();
        hs.timers
            .set_after(Timer::Handshake, now, cfg.timeouts.handshake);
        let mut s = ServerSession {
            cfg,
            peer,
            local,
            state: State::ReadRequest,
            hs,
            ident_required: false,
            identified: false,
            ident_matched: false,
            source: Source::Default,
            decided: false,
            route: None,
            exit: socks4_acl::Exit::default(),
            replies: true,
            after_admission: Next::Identify,
            cert: None,
            reached: None,
            sniffed: false,
            actions: VecDeque::new(),
            events: VecDeque::new(),
        };
        s.events.push_back(Event::Connection { peer, local });
        s
    }

    /// A session for a connection whose destination is already known: a
    /// transparent (TPROXY) or redirected connection, where it is the address
    /// the client meant, or a forwarded one, where it is the configured
    /// target. No request is read and no reply is sent: the session goes
    /// straight to the policy (`command connect`, an empty user id), then the
    /// route, the connect and the relay, with the same events as any other.
    pub fn with_destination(
        cfg: Arc<ServerConfig>,
        peer: SocketAddr,
        local: SocketAddr,
        dest: Destination,
        now: Instant,
    ) -> ServerSession {
        let mut s = ServerSession::new(cfg, peer, local, now);
        s.replies = false;
        s.hs.timers.stop(Timer::Handshake);
        let (host, ip, port) = match &dest {
            Destination::Addr(a) => (None, Some(a.ip()), a.port()),
            Destination::Name(h, p) => (Some(h.clone()), None, *p),
        };
        let req = Req {
            command: Command::Connect,
            host,
            port,
            user_id: Vec::new(),
            shown: dest.to_string(),
        };
        s.on_request(now, req, ip);
        s
    }

    /// A session for a connection whose destination is known, as
    /// [`with_destination`](Self::with_destination), whose first bytes
    /// were read to sniff the name it means ([`crate::sniff`]): `bytes` go
    /// first to the destination, unchanged (beside `max_early_data`).
    ///
    /// With a `name` (and its kind), the request carries it: rules and
    /// routes with names match it, a parent that takes names (`socks4a://`,
    /// `http://`) is handed it with `dest`'s port, and
    /// [`Event::Sniffed`] reports it. Where the connection goes is
    /// `to_name`'s choice: `false`, `dest` (an address stays the address,
    /// rules seeing both it and the name; a forward's configured name stays
    /// that name, the sniffed one only reported); `true`, the sniffed name,
    /// resolved as a SOCKS4a request's. Without a name it is
    /// [`with_destination`](Self::with_destination) with the bytes.
    #[allow(clippy::too_many_arguments)]
    pub fn with_sniffed(
        cfg: Arc<ServerConfig>,
        peer: SocketAddr,
        local: SocketAddr,
        dest: Destination,
        name: Option<(String, crate::sniff::NameKind)>,
        to_name: bool,
        bytes: Vec<u8>,
        now: Instant,
    ) -> ServerSession {
        let mut s = ServerSession::new(cfg, peer, local, now);
        s.replies = false;
        s.hs.timers.stop(Timer::Handshake);
        s.hs.sniffed_bytes = bytes.len();
        s.hs.buf = bytes;
        let (mut host, mut ip, port) = match &dest {
            Destination::Addr(a) => (None, Some(a.ip()), a.port()),
            Destination::Name(h, p) => (Some(h.clone()), None, *p),
        };
        let mut shown = dest.to_string();
        if let Some((name, kind)) = name {
            s.events.push_back(Event::Sniffed {
                name: name.clone(),
                kind,
                dest: dest.clone(),
            });
            if to_name || host.is_none() {
                shown = Destination::Name(name.clone(), port).to_string();
                s.sniffed = true;
                host = Some(name);
                if to_name {
                    ip = None;
                }
            }
        }
        let req = Req {
            command: Command::Connect,
            host,
            port,
            user_id: Vec::new(),
            shown,
        };
        s.on_request(now, req, ip);
        s
    }

    /// A connection that comes from this server itself: one of its own
    /// outbound connections, come back in (a redirect or transparent
    /// listener intercepted it, or it reached a listener by a way the
    /// [`OwnAddresses`](super::OwnAddresses) do not show). The session refuses
    /// it at once, whatever the rules say: a 91 when `replies` (a SOCKS
    /// client in clear), then [`Action::Close`] with
    /// [`CloseReason::Loop`]. Nothing is read, decided or connected.
    pub fn from_self(
        cfg: Arc<ServerConfig>,
        peer: SocketAddr,
        local: SocketAddr,
        replies: bool,
        now: Instant,
    ) -> ServerSession {
        let mut s = ServerSession::new(cfg, peer, local, now);
        s.replies = replies;
        s.reject(ReplyCode::Rejected, CloseReason::Loop);
        s
    }

    /// A connection whose source alone decides that every request of its is
    /// refused (the adapter asked the policy's
    /// [`decide_by_source`](socks4_acl::Policy::decide_by_source) at accept,
    /// before TLS or reading a request): the session records the decision
    /// as a denial by `verdict` and refuses at once, a 91 when `replies` (a
    /// SOCKS client in clear), then [`Action::Close`] with
    /// [`CloseReason::Denied`]. Its events are those of any denial, without
    /// a request.
    pub fn refused_by_source(
        cfg: Arc<ServerConfig>,
        peer: SocketAddr,
        local: SocketAddr,
        verdict: socks4_acl::Verdict,
        replies: bool,
        now: Instant,
    ) -> ServerSession {
        let mut s = ServerSession::new(cfg, peer, local, now);
        s.replies = replies;
        s.source = verdict.source;
        s.events.push_back(Event::Decided { verdict });
        s.events.push_back(Event::Denied {
            peer,
            source: verdict.source,
            log: verdict.log,
        });
        s.reject(ReplyCode::Rejected, CloseReason::Denied(verdict.source));
        s
    }

    /// Bytes from the client. Read them only while [`wants_input`](Self::wants_input);
    /// bytes given later, before the relay starts, are kept for the relay up to
    /// `max_early_data`.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        match self.state {
            State::ReadRequest => {
                self.hs.buf.extend_from_slice(bytes);
                self.try_request(now);
            }
            State::Resolving
            | State::Admitting
            | State::Identing
            | State::Connecting
            | State::Binding
            | State::Accepting => {
                self.hs.buf.extend_from_slice(bytes);
                self.check_early_data();
            }
            State::Relaying | State::Closed => {}
        }
    }

    /// Behind a load balancer that sent a PROXY header: the address the
    /// client connected to (the balancer's, from the header). The IDENT query
    /// names its port (identd on the client's host knows the connection by
    /// it); BIND and everything else still use the local address.
    pub fn set_reached(&mut self, reached: SocketAddr) {
        self.reached = Some(reached);
    }

    /// The client came over TLS with a verified certificate whose subject
    /// common name is `common_name`: rules and routes with a `cert` clause see
    /// it, and [`Event::ClientCertificate`] reports it. Call it before the
    /// request's first byte (a transport below the session, such as TLS,
    /// settles the client's identity first); later calls are ignored.
    pub fn set_client_cert(&mut self, _now: Instant, common_name: impl Into<String>) {
        if self.state == State::ReadRequest && self.hs.buf.is_empty() && self.cert.is_none() {
            let name = common_name.into();
            self.events.push_back(Event::ClientCertificate {
                common_name: name.clone(),
            });
            self.cert = Some(name);
        }
    }

    /// The client's transport failed before the request: its TLS handshake
    /// (`kind` says how). The session closes without a reply (the client
    /// cannot read one). Ignored once the request has started to arrive.
    pub fn handle_tls_failure(&mut self, _now: Instant, kind: TlsFailure) {
        if self.state == State::ReadRequest && self.hs.buf.is_empty() {
            self.close(CloseReason::TlsFailed(kind));
        }
    }

    /// The client closed its sending side (or the connection).
    pub fn handle_eof(&mut self, _now: Instant) {
        match self.state {
            State::Relaying | State::Closed => {}
            _ => self.close(CloseReason::PeerClosed),
        }
    }

    /// An operator ends the connection (`ctl kill`) before its relay (a
    /// relay reports [`RelayEnd::Killed`] instead): the session closes at
    /// once, without a reply, whatever it was waiting for.
    pub fn handle_kill(&mut self, _now: Instant) {
        self.close(CloseReason::Killed);
    }

    /// The outcome of an action this session asked for.
    pub fn handle_outcome(
        &mut self,
        now: Instant,
        outcome: ActionOutcome,
    ) -> Result<(), UnexpectedOutcome> {
        match (self.state, outcome) {
            (State::Resolving, ActionOutcome::Resolved(result)) if self.hs.late == Late::None => {
                self.hs.timers.stop(Timer::Resolve);
                self.on_resolved(now, result);
            }
            (State::Resolving, ActionOutcome::ResolvedFirst(addrs))
                if self.hs.late == Late::None =>
            {
                self.on_resolved_first(now, addrs);
            }
            (State::Admitting, ActionOutcome::Admitted(Ok(()))) => {
                let next = self.after_admission;
                self.go_on(now, next);
            }
            (State::Admitting, ActionOutcome::Admitted(Err(limit))) => {
                self.reject(ReplyCode::Rejected, CloseReason::Limited(limit));
            }
            (State::Identing, ActionOutcome::Ident(result)) => {
                self.hs.timers.stop(Timer::Ident);
                self.on_ident(now, result.ok());
            }
            (State::Connecting, ActionOutcome::Connected(result)) => {
                self.on_connect_outcome(result)
            }
            (State::Binding, ActionOutcome::Bound(Ok(addr))) => self.on_bound(addr),
            (State::Binding, ActionOutcome::Bound(Err(kind))) => {
                self.reject(ReplyCode::Rejected, CloseReason::BindFailed(kind));
            }
            (State::Accepting, ActionOutcome::Accepted(Ok(from))) => self.on_accepted(from),
            (State::Accepting, ActionOutcome::Accepted(Err(kind))) => {
                self.reject(ReplyCode::Rejected, CloseReason::AcceptFailed(kind));
            }
            (state, _) => {
                return Err(UnexpectedOutcome {
                    state: state.name(),
                })
            }
        }
        Ok(())
    }

    /// The rest of a name's answer reported in two parts: after
    /// [`ActionOutcome::ResolvedFirst`], the other family's addresses, in
    /// resolver order (empty when it had none or its lookup failed); call it
    /// exactly once. A request that went on with the first part gets those
    /// the policy passes as further candidates: while it connects directly,
    /// they are asked for with [`Action::ConnectMore`] (the only action this
    /// call can ask for then), before that they join the coming
    /// [`Action::Connect`]. A request that waited for them is decided now on
    /// the whole answer, as on [`ActionOutcome::Resolved`]. Ignored when no
    /// rest is awaited or the session is past connecting.
    pub fn handle_late_addresses(&mut self, now: Instant, addrs: Vec<IpAddr>) {
        self.on_late(now, addrs);
    }

    /// The relay that [`Action::StartRelay`] started has ended, with `stats`
    /// bytes moved, because of `end`.
    pub fn handle_relay_end(
        &mut self,
        _now: Instant,
        stats: RelayStats,
        end: RelayEnd,
    ) -> Result<(), UnexpectedOutcome> {
        if self.state != State::Relaying {
            return Err(UnexpectedOutcome {
                state: self.state.name(),
            });
        }
        self.events.push_back(Event::SockDown { stats });
        self.close(match end {
            RelayEnd::Finished => CloseReason::Done,
            RelayEnd::Error(kind) => CloseReason::RelayError(kind),
            RelayEnd::Idle => CloseReason::IdleTimeout,
            RelayEnd::Shutdown => CloseReason::Shutdown,
            RelayEnd::Limited(limit) => CloseReason::Limited(limit),
            RelayEnd::Killed => CloseReason::Killed,
        });
        Ok(())
    }

    /// Time has passed: fires every deadline at or before `now`. Calls with no
    /// deadline due do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.hs.get_mut().and_then(|hs| hs.timers.expired(now)) {
            match (timer, self.state) {
                (Timer::Ident, State::Identing) if !self.ident_required => {
                    self.on_ident(now, None);
                }
                (Timer::Ident, State::Identing) => {
                    self.events.push_back(Event::Ident { outcome: None });
                    self.reject(
                        ReplyCode::IdentUnreachable,
                        CloseReason::TimedOut(Timer::Ident),
                    );
                }
                (Timer::Handshake, State::ReadRequest)
                | (Timer::Resolve, State::Resolving)
                | (Timer::Connect, State::Connecting)
                | (Timer::Accept, State::Binding | State::Accepting) => {
                    self.reject(ReplyCode::Rejected, CloseReason::TimedOut(timer));
                }
                _ => {} // a timer of a phase already left: nothing to do
            }
        }
    }

    /// The next action, in order. Drain after every `handle_*` call.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        let action = self.actions.pop_front();
        if action.is_none() && self.state == State::Relaying {
            // A relay may last for hours: hold no queue memory meanwhile.
            self.actions = VecDeque::new();
        }
        action
    }

    /// The next event, in order.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front();
        if event.is_none() && self.state == State::Relaying {
            self.events = VecDeque::new();
        }
        event
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.hs.timers.next()
    }

    /// Whether the adapter should read from the client: only until the request
    /// is complete. Afterwards, reading would only buffer data the relay will
    /// carry anyway.
    pub fn wants_input(&self) -> bool {
        self.state == State::ReadRequest
    }

    /// How many more bytes of early data (client bytes after the request,
    /// before the relay) the session takes: an adapter that reads no more than
    /// this leaves the rest in the socket, so that a client that sends early
    /// (a transparent or forwarded connection's, or a pipelining SOCKS client)
    /// is slowed down by TCP rather than refused.
    pub fn early_data_room(&self) -> usize {
        match self.state {
            State::ReadRequest | State::Relaying | State::Closed => 0,
            _ => {
                (self.cfg.max_early_data + self.hs.sniffed_bytes).saturating_sub(self.hs.buf.len())
            }
        }
    }

    /// Whether the session has closed (its last action was [`Action::Close`]).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Our address the client connected to.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// The subject common name of the client's verified TLS certificate,
    /// once [`set_client_cert`](Self::set_client_cert) gave it.
    pub fn client_cert(&self) -> Option<&str> {
        self.cert.as_deref()
    }

    /// The request's user id, once IDENT was required and identd's answer
    /// named it (verified as far as IDENT verifies: identd on the client's
    /// host said so). `None` before, or when IDENT was not required; never
    /// the user id alone, which is the client's claim.
    pub fn ident_user(&self) -> Option<&[u8]> {
        if !self.ident_matched {
            return None;
        }
        self.hs.req.as_ref().map(|r| r.user_id.as_slice())
    }

    /// The configuration this session runs with.
    pub fn config(&self) -> &ServerConfig {
        &self.cfg
    }

    /// How the request's connection leaves the server: the exit clauses of
    /// the route chosen for it (`source`, `interface`, `mark`), for the
    /// driver to apply to [`Action::Connect`] and to the connections toward
    /// [`Action::ConnectVia`]'s parents. The default (no clause) until a
    /// route is chosen, and when the route has none or no route matches.
    pub fn exit(&self) -> &socks4_acl::Exit {
        &self.exit
    }

    fn req(&self) -> &Req {
        self.hs
            .req
            .as_ref()
            .expect("the request is decoded before this phase")
    }
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::ReadRequest => "ReadRequest",
            State::Resolving => "Resolving",
            State::Admitting => "Admitting",
            State::Identing => "Identing",
            State::Connecting => "Connecting",
            State::Binding => "Binding",
            State::Accepting => "Accepting",
            State::Relaying => "Relaying",
            State::Closed => "Closed",
        }
    }
}
