//! [`ServerSession`]: the per-connection state machine. Its inputs and outputs
//! are in [`io`](super::io), its events in [`event`](super::event), its close
//! reasons in [`reason`](super::reason).

use super::config::{IdentMode, ServerConfig};
use super::event::Event;
use super::io::{Action, ActionOutcome, Destination, RelayEnd, RelayStats};
use super::reason::{CloseReason, ResolveError, TlsFailure};
use super::timer::{Timer, TimerTable};
use crate::codec::{Command, Dest, Reply, ReplyCode, Request, Status};
use core::fmt;
use socks4_acl::{canonical, Parent, Source, Subject, Target, Verdict};
use socks4_ident::{Comparison, Query};
use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
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
    timers: TimerTable,
    /// Request bytes while reading it; afterwards the client's early data.
    buf: Vec<u8>,
    req: Option<Req>,
    /// Addresses the policy passed, in order: CONNECT tries them, BIND accepts an
    /// inbound connection from any of them.
    candidates: VecDeque<SocketAddr>,
    allowed_peers: Vec<IpAddr>,
    last_connect_error: Option<ErrorKind>,
    ident_required: bool,
    source: Source,
    /// The policy has passed the request (before or after resolving).
    decided: bool,
    /// The route, once chosen: `Some(None)` direct, `Some(Some(..))` through
    /// parents.
    route: Option<Option<Routed>>,
    /// Parents of the route not tried yet.
    parents_left: VecDeque<Parent>,
    /// The parent being connected through, and the destination asked of it.
    via: Option<(Parent, Destination)>,
    /// Whether the client speaks SOCKS and gets replies.
    replies: bool,
    /// Where admission leads.
    after_admission: Next,
    /// The subject common name of the client's verified TLS certificate.
    cert: Option<String>,
    /// The address the client reached, when not `local` (behind a load
    /// balancer: the PROXY header's destination).
    reached: Option<SocketAddr>,
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
        let mut timers = TimerTable::default();
        timers.set(Timer::Handshake, now + cfg.timeouts.handshake);
        let mut s = ServerSession {
            cfg,
            peer,
            local,
            state: State::ReadRequest,
            timers,
            buf: Vec::new(),
            req: None,
            candidates: VecDeque::new(),
            allowed_peers: Vec::new(),
            last_connect_error: None,
            ident_required: false,
            source: Source::Default,
            decided: false,
            route: None,
            parents_left: VecDeque::new(),
            via: None,
            replies: true,
            after_admission: Next::Identify,
            cert: None,
            reached: None,
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
        s.timers.stop(Timer::Handshake);
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

    /// Bytes from the client. Read them only while [`wants_input`](Self::wants_input);
    /// bytes given later, before the relay starts, are kept for the relay up to
    /// `max_early_data`.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        match self.state {
            State::ReadRequest => {
                self.buf.extend_from_slice(bytes);
                self.try_request(now);
            }
            State::Resolving
            | State::Admitting
            | State::Identing
            | State::Connecting
            | State::Binding
            | State::Accepting => {
                self.buf.extend_from_slice(bytes);
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
        if self.state == State::ReadRequest && self.buf.is_empty() && self.cert.is_none() {
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
        if self.state == State::ReadRequest && self.buf.is_empty() {
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

    /// The outcome of an action this session asked for.
    pub fn handle_outcome(
        &mut self,
        now: Instant,
        outcome: ActionOutcome,
    ) -> Result<(), UnexpectedOutcome> {
        match (self.state, outcome) {
            (State::Resolving, ActionOutcome::Resolved(result)) => {
                self.timers.stop(Timer::Resolve);
                self.on_resolved(now, result);
            }
            (State::Admitting, ActionOutcome::Admitted(Ok(()))) => {
                let next = self.after_admission;
                self.go_on(now, next);
            }
            (State::Admitting, ActionOutcome::Admitted(Err(limit))) => {
                self.reject(ReplyCode::Rejected, CloseReason::Limited(limit));
            }
            (State::Identing, ActionOutcome::Ident(result)) => {
                self.timers.stop(Timer::Ident);
                self.on_ident(now, result.ok());
            }
            (State::Connecting, ActionOutcome::Connected(Ok(()))) if self.via.is_some() => {
                self.on_connected_via()
            }
            (State::Connecting, ActionOutcome::Connected(Ok(()))) => self.on_connected(),
            (State::Connecting, ActionOutcome::Connected(Err(kind))) if self.via.is_some() => {
                self.last_connect_error = Some(kind);
                self.connect_next_parent();
            }
            (State::Connecting, ActionOutcome::Connected(Err(kind))) => {
                self.last_connect_error = Some(kind);
                self.connect_next();
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
        });
        Ok(())
    }

    /// Time has passed: fires every deadline at or before `now`. Calls with no
    /// deadline due do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.expired(now) {
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
        self.timers.next()
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
            _ => self.cfg.max_early_data.saturating_sub(self.buf.len()),
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

    /// The configuration this session runs with.
    pub fn config(&self) -> &ServerConfig {
        &self.cfg
    }

    // ---- the phases ----

    fn try_request(&mut self, now: Instant) {
        let (req, used, ip) = match Request::decode(&self.buf, &self.cfg.limits) {
            Ok(Status::Incomplete) => return,
            Err(e) => return self.reject(e.reply_code(), CloseReason::Protocol(e)),
            Ok(Status::Complete(r, used)) => {
                let (host, ip) = match r.dest {
                    Dest::Addr(a) => (None, Some(*a.ip())),
                    Dest::Domain(h, _) => (Some(h.to_owned()), None),
                };
                let req = Req {
                    command: r.command,
                    host,
                    port: r.dest.port(),
                    user_id: r.user_id.to_vec(),
                    shown: r.dest.to_string(),
                };
                (req, used, ip)
            }
        };
        self.timers.stop(Timer::Handshake);
        self.buf.drain(..used);
        self.on_request(now, req, ip.map(IpAddr::V4));
    }

    /// A request is known (read from the client, or made up for a connection
    /// whose destination is known): decide it.
    fn on_request(&mut self, now: Instant, req: Req, ip: Option<IpAddr>) {
        self.events.push_back(Event::Request {
            command: req.command,
            dest: req.shown.clone(),
            user_id: req.user_id.clone(),
        });
        self.req = Some(req);
        if self.check_early_data() {
            return;
        }
        match ip {
            // SOCKS4: the address is in the request.
            Some(ip) => self.on_addresses(now, vec![ip]),
            // SOCKS4a: the request named a host instead. Decide what can be
            // decided before resolving it: a refused client costs no lookup.
            None => {
                let cfg = self.cfg.clone();
                let req = self.req();
                let subject = Subject {
                    client: self.peer,
                    dest_addr: None,
                    dest_host: req.host.as_deref(),
                    dest_port: req.port,
                    command: acl_command(req.command),
                    user_id: &req.user_id,
                    cert: self.cert.as_deref(),
                };
                let decision = cfg.policy.decide_without_address(&subject);
                // The route, too, if the address cannot change it: a parent
                // that takes names gets the name unresolved.
                let route = cfg
                    .policy
                    .routes
                    .find_without_address(&subject)
                    .map(|r| r.and_then(Routed::of));
                match decision {
                    Some(verdict) if !verdict.is_pass() => self.deny(verdict),
                    Some(verdict) => {
                        self.decided = true;
                        let mut next = Next::Resolve;
                        if let Some(routed) = route {
                            if Routed::all_take_names(&routed) {
                                next = Next::Identify;
                            }
                            self.route = Some(routed);
                        }
                        self.admit(now, verdict, next);
                    }
                    None => self.resolve(now),
                }
            }
        }
    }

    fn resolve(&mut self, now: Instant) {
        let req = self.req();
        let action = Action::Resolve {
            host: req.host.clone().unwrap_or_default(),
            port: req.port,
        };
        self.state = State::Resolving;
        self.timers
            .set(Timer::Resolve, now + self.cfg.timeouts.resolve);
        self.actions.push_back(action);
    }

    /// The policy passed the request: take its rule's options, ask the adapter
    /// to admit it when configured to (per-client limits), then go on.
    fn admit(&mut self, now: Instant, verdict: Verdict, next: Next) {
        self.events.push_back(Event::Decided { verdict });
        self.notify(&verdict, None);
        self.source = verdict.source;
        self.ident_required |= verdict.require_ident;
        if self.cfg.admission {
            self.state = State::Admitting;
            self.after_admission = next;
            self.actions.push_back(Action::Admit {
                command: self.req().command,
                verdict,
            });
        } else {
            self.go_on(now, next);
        }
    }

    fn go_on(&mut self, now: Instant, next: Next) {
        match next {
            Next::Resolve => self.resolve(now),
            Next::Identify => self.identify(now),
        }
    }

    /// Refuses the request when the client has sent too much early data.
    fn check_early_data(&mut self) -> bool {
        if self.buf.len() > self.cfg.max_early_data {
            self.reject(ReplyCode::Rejected, CloseReason::EarlyDataOverflow);
            return true;
        }
        false
    }

    fn on_resolved(&mut self, now: Instant, result: Result<Vec<IpAddr>, ResolveError>) {
        let host = self.req().host.clone().unwrap_or_default();
        match result {
            Ok(addrs) if !addrs.is_empty() => {
                self.events.push_back(Event::DnsLookup {
                    host,
                    addrs: addrs.clone(),
                });
                self.on_addresses(now, addrs);
            }
            Ok(_) => self.reject(
                ReplyCode::Rejected,
                CloseReason::ResolveFailed(ResolveError::NoAddress),
            ),
            Err(e) => self.reject(ReplyCode::Rejected, CloseReason::ResolveFailed(e)),
        }
    }

    /// The destination's addresses are known: apply the policy to each (unless
    /// it was decided before resolving).
    fn on_addresses(&mut self, now: Instant, addrs: Vec<IpAddr>) {
        let req = self.req().clone();
        let command = acl_command(req.command);
        let mut first_block: Option<Verdict> = None;
        let mut first_bad: Option<IpAddr> = None;
        let mut passed: Option<Verdict> = None;
        for addr in addrs.into_iter().map(canonical) {
            // BIND's DSTIP names who may connect in, not where to go.
            if req.command == Command::Connect && !connectable(addr) {
                first_bad.get_or_insert(addr);
                continue;
            }
            if self.decided {
                self.candidates.push_back(SocketAddr::new(addr, req.port));
                self.allowed_peers.push(addr);
                continue;
            }
            let subject = Subject {
                client: self.peer,
                dest_addr: Some(addr),
                dest_host: req.host.as_deref(),
                dest_port: req.port,
                command,
                user_id: &req.user_id,
                cert: self.cert.as_deref(),
            };
            let verdict = self.cfg.policy.evaluate(&subject);
            if verdict.is_pass() {
                self.ident_required |= verdict.require_ident;
                passed.get_or_insert(verdict);
                self.candidates.push_back(SocketAddr::new(addr, req.port));
                self.allowed_peers.push(addr);
            } else {
                first_block.get_or_insert(verdict);
            }
        }
        self.choose_route();
        if self.decided {
            // Decided and admitted before resolving.
            return match first_bad {
                _ if !self.candidates.is_empty() => self.identify(now),
                Some(ip) => self.reject(ReplyCode::Rejected, CloseReason::BadDestination(ip)),
                None => self.reject(ReplyCode::Rejected, CloseReason::ConnectFailed(None)),
            };
        }
        let Some(pass) = passed else {
            return match (first_block, first_bad) {
                (Some(verdict), _) => self.deny(verdict),
                (None, Some(ip)) => {
                    self.reject(ReplyCode::Rejected, CloseReason::BadDestination(ip))
                }
                (None, None) => self.reject(ReplyCode::Rejected, CloseReason::ConnectFailed(None)),
            };
        };
        self.decided = true;
        self.admit(now, pass, Next::Identify);
    }

    /// Access is settled: ask identd when configured to, then connect or bind.
    fn identify(&mut self, now: Instant) {
        self.ident_required |= self.cfg.ident == IdentMode::Require;
        if self.ident_required || self.cfg.ident == IdentMode::Log {
            self.state = State::Identing;
            self.timers.set(Timer::Ident, now + self.cfg.timeouts.ident);
            let to = SocketAddr::new(self.peer.ip(), self.cfg.ident_port);
            let server_port = self.reached.unwrap_or(self.local).port();
            let query = Query::new(self.peer.port(), server_port);
            self.actions.push_back(Action::IdentQuery { to, query });
        } else {
            self.proceed(now);
        }
    }

    fn on_ident(&mut self, now: Instant, outcome: Option<socks4_ident::Outcome>) {
        let comparison = outcome
            .as_ref()
            .map_or(Comparison::Unavailable, |o| o.compare(&self.req().user_id));
        self.events.push_back(Event::Ident { outcome });
        if !self.ident_required {
            return self.proceed(now);
        }
        match comparison {
            Comparison::Match => self.proceed(now),
            Comparison::Mismatch => {
                self.reject(ReplyCode::IdentMismatch, CloseReason::IdentMismatch)
            }
            Comparison::Unavailable => {
                self.reject(ReplyCode::IdentUnreachable, CloseReason::IdentUnavailable)
            }
        }
    }

    /// The route, from the first address the policy passed, unless it was
    /// chosen before resolving.
    fn choose_route(&mut self) {
        if self.route.is_some() {
            return;
        }
        let Some(first) = self.candidates.front().copied() else {
            return;
        };
        let req = self.req();
        let subject = Subject {
            client: self.peer,
            dest_addr: Some(first.ip()),
            dest_host: req.host.as_deref(),
            dest_port: req.port,
            command: acl_command(req.command),
            user_id: &req.user_id,
            cert: self.cert.as_deref(),
        };
        let routed = self.cfg.policy.routes.find(&subject).and_then(Routed::of);
        self.route = Some(routed);
    }

    /// Access and identity are settled: connect (directly, or through the
    /// route's parents), or bind.
    fn proceed(&mut self, now: Instant) {
        let via = self.route.clone().flatten();
        match self.req().command {
            Command::Connect => {
                self.state = State::Connecting;
                self.timers
                    .set(Timer::Connect, now + self.cfg.timeouts.connect);
                match via {
                    None => self.connect_next(),
                    Some(routed) => {
                        self.parents_left = routed.parents.into();
                        self.connect_next_parent();
                    }
                }
            }
            // A BIND listens here, for the client's peer to reach: it is not
            // forwarded to a parent.
            Command::Bind if via.is_some() => self.reject(
                ReplyCode::Rejected,
                CloseReason::ParentFailed(ErrorKind::Unsupported),
            ),
            Command::Bind => {
                self.state = State::Binding;
                self.timers
                    .set(Timer::Accept, now + self.cfg.timeouts.bind_accept);
                let ip = self.cfg.bind_address.unwrap_or(self.local.ip());
                self.actions.push_back(Action::Bind(SocketAddr::new(ip, 0)));
            }
        }
    }

    /// Tries the next parent of the route; 91 when none is left.
    fn connect_next_parent(&mut self) {
        while let Some(parent) = self.parents_left.pop_front() {
            let req = self.req();
            let dest = match &req.host {
                Some(host) if parent.kind.takes_names() && self.candidates.is_empty() => {
                    Destination::Name(host.clone(), req.port)
                }
                _ => {
                    // An address the policy passed; a SOCKS4 parent needs IPv4.
                    let found = self
                        .candidates
                        .iter()
                        .find(|a| a.is_ipv4() || parent.kind.takes_names());
                    match found {
                        Some(a) => Destination::Addr(*a),
                        None => {
                            self.last_connect_error = Some(ErrorKind::Unsupported);
                            continue;
                        }
                    }
                }
            };
            let user_id = parent
                .user
                .as_ref()
                .map_or_else(|| req.user_id.clone(), |u| u.as_bytes().to_vec());
            self.via = Some((parent.clone(), dest.clone()));
            self.actions.push_back(Action::ConnectVia {
                parent,
                dest,
                user_id,
            });
            return;
        }
        self.via = None;
        self.reject(
            ReplyCode::Rejected,
            CloseReason::ParentFailed(self.last_connect_error.unwrap_or(ErrorKind::Unsupported)),
        );
    }

    fn connect_next(&mut self) {
        match self.candidates.pop_front() {
            Some(addr) => self.actions.push_back(Action::Connect(addr)),
            None => self.reject(
                ReplyCode::Rejected,
                CloseReason::ConnectFailed(self.last_connect_error),
            ),
        }
    }

    fn on_connected(&mut self) {
        // Connect pops its candidate; the one connected is the last popped.
        let dest = self.connected_dest();
        self.timers.clear();
        self.reply(Reply::new(ReplyCode::Granted, reply_addr(dest)));
        self.events.push_back(Event::SockUp {
            dest,
            source: self.source,
        });
        self.start_relay();
    }

    fn on_connected_via(&mut self) {
        let Some((parent, dest)) = self.via.take() else {
            return;
        };
        // Through a parent, a name's address is the parent's business: the
        // reply carries 0.0.0.0 and the port (clients ignore CONNECT's).
        let addr = match &dest {
            Destination::Addr(a) => *a,
            Destination::Name(_, port) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), *port),
        };
        self.timers.clear();
        self.reply(Reply::new(ReplyCode::Granted, reply_addr(addr)));
        self.events.push_back(Event::Routed { parent, dest });
        self.events.push_back(Event::SockUp {
            dest: addr,
            source: self.source,
        });
        self.start_relay();
    }

    fn connected_dest(&self) -> SocketAddr {
        let tried = self.allowed_peers.len() - self.candidates.len();
        SocketAddr::new(self.allowed_peers[tried - 1], self.req().port)
    }

    fn on_bound(&mut self, addr: SocketAddr) {
        // The listener's own address; if bound to a wildcard, the interface the
        // client reached us on is the truth.
        let addr = if addr.ip().is_unspecified() {
            SocketAddr::new(self.local.ip(), addr.port())
        } else {
            addr
        };
        self.state = State::Accepting;
        self.reply(Reply::new(ReplyCode::Granted, reply_addr(addr)));
        self.events.push_back(Event::BindUp { listen: addr });
        self.actions.push_back(Action::Accept);
    }

    fn on_accepted(&mut self, from: SocketAddr) {
        if !self.allowed_peers.contains(&canonical(from.ip())) {
            return self.reject(ReplyCode::Rejected, CloseReason::BindWrongPeer(from));
        }
        self.timers.clear();
        self.reply(Reply::new(ReplyCode::Granted, reply_addr(from)));
        self.events.push_back(Event::SockUp {
            dest: from,
            source: self.source,
        });
        self.start_relay();
    }

    fn start_relay(&mut self) {
        self.state = State::Relaying;
        // What only the handshake needed goes, so that a long relay holds little.
        self.candidates = VecDeque::new();
        self.allowed_peers = Vec::new();
        self.req = None;
        let client_leftover = std::mem::take(&mut self.buf);
        self.actions
            .push_back(Action::StartRelay { client_leftover });
    }

    fn deny(&mut self, verdict: Verdict) {
        let code = match verdict.action {
            socks4_acl::Action::Block { reply } => {
                ReplyCode::from_u8(reply).unwrap_or(ReplyCode::Rejected)
            }
            socks4_acl::Action::Pass => ReplyCode::Rejected,
        };
        self.events.push_back(Event::Decided { verdict });
        self.notify(&verdict, Some(code));
        self.events.push_back(Event::Denied {
            peer: self.peer,
            source: verdict.source,
            log: verdict.log,
        });
        self.reject(code, CloseReason::Denied(verdict.source));
    }

    /// A notification, when the deciding rule asks for one: `reply` is the
    /// code a denied request gets, `None` for a passed one.
    fn notify(&mut self, verdict: &Verdict, reply: Option<ReplyCode>) {
        if !verdict.notify {
            return;
        }
        let rule = match verdict.source {
            Source::Rule { number, .. } => self
                .cfg
                .policy
                .rules
                .rules()
                .get(number - 1)
                .map(|r| r.to_string())
                .unwrap_or_default(),
            _ => String::new(),
        };
        let req = self.req();
        let event = Event::Notify {
            peer: self.peer,
            reply,
            source: verdict.source,
            rule,
            command: req.command,
            dest: req.shown.clone(),
            user_id: req.user_id.clone(),
        };
        self.events.push_back(event);
    }

    /// Sends a reply, unless the connection has no SOCKS client (transparent,
    /// redirected and forwarded connections get none).
    fn reply(&mut self, reply: Reply) {
        if self.replies {
            self.actions.push_back(Action::SendReply(reply));
        }
    }

    fn reject(&mut self, code: ReplyCode, reason: CloseReason) {
        self.reply(Reply::with_code(code));
        self.events.push_back(Event::Rejected { code, reason });
        self.close(reason);
    }

    fn close(&mut self, reason: CloseReason) {
        if self.state == State::Closed {
            return;
        }
        self.state = State::Closed;
        self.timers.clear();
        self.buf = Vec::new();
        self.candidates.clear();
        self.actions.push_back(Action::Close(reason));
        self.events.push_back(Event::Disconnected { reason });
    }

    fn req(&self) -> &Req {
        self.req
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

/// A route through parents, as chosen for one request.
#[derive(Debug, Clone)]
struct Routed {
    parents: Vec<Parent>,
}

impl Routed {
    fn of((_, _, route): (usize, Option<usize>, &socks4_acl::Route)) -> Option<Routed> {
        match &route.target {
            Target::Via(parents) => Some(Routed {
                parents: parents.clone(),
            }),
            _ => None,
        }
    }

    fn all_take_names(routed: &Option<Routed>) -> bool {
        routed
            .as_ref()
            .is_some_and(|r| r.parents.iter().all(|p| p.kind.takes_names()))
    }
}

/// What follows admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Resolve the SOCKS4a name (the policy decided before resolving).
    Resolve,
    /// Ask identd, then connect or bind.
    Identify,
}

/// The request's command, as access control names it.
fn acl_command(c: Command) -> socks4_acl::Command {
    match c {
        Command::Connect => socks4_acl::Command::Connect,
        Command::Bind => socks4_acl::Command::Bind,
    }
}

/// Whether a destination address can be connected to at all.
fn connectable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    }
}

/// The address fields of a reply: IPv4 as is, IPv4-mapped IPv6 as IPv4, and
/// anything else (a real IPv6 address, which SOCKS4 cannot carry) as 0.0.0.0 with
/// the port, which tells a BIND client to use the proxy's address.
fn reply_addr(addr: SocketAddr) -> SocketAddrV4 {
    match canonical(addr.ip()) {
        IpAddr::V4(v4) => SocketAddrV4::new(v4, addr.port()),
        IpAddr::V6(_) => SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, addr.port()),
    }
}
