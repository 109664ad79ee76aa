//! [`ServerSession`]: the per-connection state machine, with its inputs
//! ([`ActionOutcome`]), outputs ([`Action`], [`Event`]) and close reasons.

use super::config::{IdentMode, ServerConfig};
use super::timer::{Timer, TimerTable};
use crate::codec::{Command, DecodeError, Dest, Reply, ReplyCode, Request, Status};
use core::fmt;
use socks4_acl::{canonical, Source, Subject, Verdict};
use socks4_ident::{Comparison, Query};
use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Instant;

/// Something the adapter must do. Each action that has an outcome is answered
/// with the matching [`ActionOutcome`] through [`ServerSession::handle_outcome`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Write this reply's 8 bytes ([`Reply::to_bytes`]) to the client.
    SendReply(Reply),
    /// Resolve `host` with the system resolver; answer [`ActionOutcome::Resolved`].
    Resolve {
        /// The SOCKS4a host name.
        host: String,
        /// The destination port (for resolvers that want one).
        port: u16,
    },
    /// Run an IDENT exchange ([`socks4_ident::IdentClient`]) with the identd at
    /// `to`; answer [`ActionOutcome::Ident`].
    IdentQuery {
        /// The client host's identd: port 113 unless configured otherwise.
        to: SocketAddr,
        /// The port pair to ask about.
        query: Query,
    },
    /// Open a TCP connection to this address; answer [`ActionOutcome::Connected`].
    Connect(SocketAddr),
    /// Listen on this address (port 0: any free port); answer
    /// [`ActionOutcome::Bound`].
    Bind(SocketAddr),
    /// Accept one connection on the BIND listener; answer
    /// [`ActionOutcome::Accepted`]. Keep the listener until then.
    Accept,
    /// The handshake is over: relay between the client and the outbound (CONNECT)
    /// or accepted (BIND) connection, first writing `client_leftover` (bytes the
    /// client sent right behind its request) to the other side. Report the end
    /// with [`ServerSession::handle_relay_end`].
    StartRelay {
        /// Client bytes that arrived after the request, in order.
        client_leftover: Vec<u8>,
    },
    /// Close every socket of this session (client, outbound, listener, accepted
    /// connection, identd connection). Always the last action.
    Close(CloseReason),
}

/// The result of an [`Action`], reported by the adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ActionOutcome {
    /// For [`Action::Resolve`]: the addresses in the resolver's order.
    Resolved(Result<Vec<IpAddr>, ErrorKind>),
    /// For [`Action::IdentQuery`]: identd's answer, or why it could not be had.
    Ident(Result<socks4_ident::Outcome, ErrorKind>),
    /// For [`Action::Connect`]: the local address of the new connection.
    Connected(Result<SocketAddr, ErrorKind>),
    /// For [`Action::Bind`]: the address the listener is bound to.
    Bound(Result<SocketAddr, ErrorKind>),
    /// For [`Action::Accept`]: the address of the peer that connected.
    Accepted(Result<SocketAddr, ErrorKind>),
}

/// Bytes moved by a relay, for the `sock_down` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RelayStats {
    /// Bytes from the client to the destination (leftover included).
    pub client_to_dest: u64,
    /// Bytes from the destination to the client.
    pub dest_to_client: u64,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The relay ended (either side closed, both directions done).
    Done,
    /// The client closed before the handshake was over.
    PeerClosed,
    /// The request was malformed, the wrong version, or over a limit.
    Protocol(DecodeError),
    /// The client sent more than `max_early_data` bytes before the reply.
    EarlyDataOverflow,
    /// The access policy refused the request.
    Denied(Source),
    /// IDENT was required and identd could not be reached, erred or timed out.
    IdentUnavailable,
    /// IDENT was required and identd named another user than the request.
    IdentMismatch,
    /// A phase took longer than its timeout.
    TimedOut(Timer),
    /// The destination is not an address one can connect to (`0.0.0.0`,
    /// multicast, broadcast).
    BadDestination(IpAddr),
    /// The SOCKS4a name did not resolve (the resolver's error, if it had one).
    ResolveFailed(Option<ErrorKind>),
    /// No candidate address could be connected (the last error).
    ConnectFailed(Option<ErrorKind>),
    /// The BIND listener could not be opened.
    BindFailed(ErrorKind),
    /// Accepting the BIND's inbound connection failed.
    AcceptFailed(ErrorKind),
    /// The BIND's inbound connection came from another address than DSTIP.
    BindWrongPeer(SocketAddr),
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Done => f.write_str("relay finished"),
            CloseReason::PeerClosed => f.write_str("client closed during the handshake"),
            CloseReason::Protocol(e) => write!(f, "bad request: {e}"),
            CloseReason::EarlyDataOverflow => f.write_str("too much data before the reply"),
            CloseReason::Denied(source) => write!(f, "denied by {source}"),
            CloseReason::IdentUnavailable => f.write_str("identd unavailable"),
            CloseReason::IdentMismatch => f.write_str("identd reports another user id"),
            CloseReason::TimedOut(t) => write!(f, "{t:?} timed out"),
            CloseReason::BadDestination(ip) => write!(f, "bad destination {ip}"),
            CloseReason::ResolveFailed(Some(k)) => write!(f, "resolve failed: {k}"),
            CloseReason::ResolveFailed(None) => f.write_str("resolve failed: no address"),
            CloseReason::ConnectFailed(Some(k)) => write!(f, "connect failed: {k}"),
            CloseReason::ConnectFailed(None) => f.write_str("connect failed: no address allowed"),
            CloseReason::BindFailed(k) => write!(f, "bind failed: {k}"),
            CloseReason::AcceptFailed(k) => write!(f, "accept failed: {k}"),
            CloseReason::BindWrongPeer(a) => write!(f, "inbound connection from {a}, not DSTIP"),
        }
    }
}

/// What happened, in the seed's vocabulary, for logging, counting and publishing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A client connected (`connection`).
    Connection {
        /// The client's address.
        peer: SocketAddr,
        /// Our address the client connected to.
        local: SocketAddr,
    },
    /// A complete request arrived.
    Request {
        /// CONNECT or BIND.
        command: Command,
        /// The destination as the client gave it (`host:port` for SOCKS4a).
        dest: String,
        /// The request's USERID.
        user_id: Vec<u8>,
    },
    /// The access policy refused the client (`denied`).
    Denied {
        /// The client's address.
        peer: SocketAddr,
        /// What refused it.
        source: Source,
        /// Whether the deciding rule asks for a log line.
        log: bool,
    },
    /// The request was refused or failed (`rejected`): the reply code sent.
    Rejected {
        /// 91, 92 or 93.
        code: ReplyCode,
        /// Why.
        reason: CloseReason,
    },
    /// A SOCKS4a name resolved (`dns_lookup`).
    DnsLookup {
        /// The name.
        host: String,
        /// Its addresses, in resolver order.
        addrs: Vec<IpAddr>,
    },
    /// identd answered, or did not (`None`), in `log` or `require` mode.
    Ident {
        /// The answer.
        outcome: Option<socks4_ident::Outcome>,
    },
    /// A connection to the application server is up (`sock_up`): the outbound
    /// connection of a CONNECT, or the inbound one of a BIND.
    SockUp {
        /// The application server's address.
        dest: SocketAddr,
        /// The policy rule that passed the request.
        source: Source,
    },
    /// A BIND listener is up (`bind_up`).
    BindUp {
        /// The listener's address.
        listen: SocketAddr,
    },
    /// The relay ended (`sock_down`).
    SockDown {
        /// Bytes moved each way.
        stats: RelayStats,
    },
    /// The session is over (`disconnected`); always the last event.
    Disconnected {
        /// Why.
        reason: CloseReason,
    },
}

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
            actions: VecDeque::new(),
            events: VecDeque::new(),
        };
        s.events.push_back(Event::Connection { peer, local });
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
            (State::Identing, ActionOutcome::Ident(result)) => {
                self.timers.stop(Timer::Ident);
                self.on_ident(now, result.ok());
            }
            (State::Connecting, ActionOutcome::Connected(Ok(_local))) => self.on_connected(),
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

    /// The relay that [`Action::StartRelay`] started has ended.
    pub fn handle_relay_end(
        &mut self,
        _now: Instant,
        stats: RelayStats,
    ) -> Result<(), UnexpectedOutcome> {
        if self.state != State::Relaying {
            return Err(UnexpectedOutcome {
                state: self.state.name(),
            });
        }
        self.events.push_back(Event::SockDown { stats });
        self.close(CloseReason::Done);
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
        self.actions.pop_front()
    }

    /// The next event, in order.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
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

    /// Whether the session has closed (its last action was [`Action::Close`]).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    // ---- the phases ----

    fn try_request(&mut self, now: Instant) {
        let (req, used, ip, shown) = match Request::decode(&self.buf, &self.cfg.limits) {
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
                };
                (req, used, ip, r.dest.to_string())
            }
        };
        self.timers.stop(Timer::Handshake);
        self.buf.drain(..used);
        self.events.push_back(Event::Request {
            command: req.command,
            dest: shown,
            user_id: req.user_id.clone(),
        });
        self.req = Some(req);
        if self.check_early_data() {
            return;
        }
        match ip {
            // SOCKS4: the address is in the request.
            Some(ip) => self.on_addresses(now, vec![IpAddr::V4(ip)]),
            // SOCKS4a: the request named a host instead.
            None => {
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

    fn on_resolved(&mut self, now: Instant, result: Result<Vec<IpAddr>, ErrorKind>) {
        let host = self.req().host.clone().unwrap_or_default();
        match result {
            Ok(addrs) if !addrs.is_empty() => {
                self.events.push_back(Event::DnsLookup {
                    host,
                    addrs: addrs.clone(),
                });
                self.on_addresses(now, addrs);
            }
            Ok(_) => self.reject(ReplyCode::Rejected, CloseReason::ResolveFailed(None)),
            Err(kind) => self.reject(ReplyCode::Rejected, CloseReason::ResolveFailed(Some(kind))),
        }
    }

    /// The destination's addresses are known: apply the policy to each.
    fn on_addresses(&mut self, now: Instant, addrs: Vec<IpAddr>) {
        let req = self.req().clone();
        let command = match req.command {
            Command::Connect => socks4_acl::Command::Connect,
            Command::Bind => socks4_acl::Command::Bind,
        };
        let mut first_block: Option<Verdict> = None;
        let mut first_bad: Option<IpAddr> = None;
        let mut passed: Option<Verdict> = None;
        for addr in addrs.into_iter().map(canonical) {
            // BIND's DSTIP names who may connect in, not where to go.
            if req.command == Command::Connect && !connectable(addr) {
                first_bad.get_or_insert(addr);
                continue;
            }
            let subject = Subject {
                client: self.peer,
                dest_addr: Some(addr),
                dest_host: req.host.as_deref(),
                dest_port: req.port,
                command,
                user_id: &req.user_id,
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
        let Some(pass) = passed else {
            return match (first_block, first_bad) {
                (Some(verdict), _) => self.deny(verdict),
                (None, Some(ip)) => {
                    self.reject(ReplyCode::Rejected, CloseReason::BadDestination(ip))
                }
                (None, None) => self.reject(ReplyCode::Rejected, CloseReason::ConnectFailed(None)),
            };
        };
        self.source = pass.source;
        self.ident_required |= self.cfg.ident == IdentMode::Require;
        if self.ident_required || self.cfg.ident == IdentMode::Log {
            self.state = State::Identing;
            self.timers.set(Timer::Ident, now + self.cfg.timeouts.ident);
            let to = SocketAddr::new(self.peer.ip(), self.cfg.ident_port);
            let query = Query::new(self.peer.port(), self.local.port());
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

    /// Access and identity are settled: connect, or bind.
    fn proceed(&mut self, now: Instant) {
        match self.req().command {
            Command::Connect => {
                self.state = State::Connecting;
                self.timers
                    .set(Timer::Connect, now + self.cfg.timeouts.connect);
                self.connect_next();
            }
            Command::Bind => {
                self.state = State::Binding;
                self.timers
                    .set(Timer::Accept, now + self.cfg.timeouts.bind_accept);
                self.actions
                    .push_back(Action::Bind(SocketAddr::new(self.local.ip(), 0)));
            }
        }
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
        self.actions.push_back(Action::SendReply(Reply::new(
            ReplyCode::Granted,
            reply_addr(dest),
        )));
        self.events.push_back(Event::SockUp {
            dest,
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
        self.actions.push_back(Action::SendReply(Reply::new(
            ReplyCode::Granted,
            reply_addr(addr),
        )));
        self.events.push_back(Event::BindUp { listen: addr });
        self.actions.push_back(Action::Accept);
    }

    fn on_accepted(&mut self, from: SocketAddr) {
        if !self.allowed_peers.contains(&canonical(from.ip())) {
            return self.reject(ReplyCode::Rejected, CloseReason::BindWrongPeer(from));
        }
        self.timers.clear();
        self.actions.push_back(Action::SendReply(Reply::new(
            ReplyCode::Granted,
            reply_addr(from),
        )));
        self.events.push_back(Event::SockUp {
            dest: from,
            source: self.source,
        });
        self.start_relay();
    }

    fn start_relay(&mut self) {
        self.state = State::Relaying;
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
        self.events.push_back(Event::Denied {
            peer: self.peer,
            source: verdict.source,
            log: verdict.log,
        });
        self.reject(code, CloseReason::Denied(verdict.source));
    }

    fn reject(&mut self, code: ReplyCode, reason: CloseReason) {
        self.actions
            .push_back(Action::SendReply(Reply::with_code(code)));
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
            State::Identing => "Identing",
            State::Connecting => "Connecting",
            State::Binding => "Binding",
            State::Accepting => "Accepting",
            State::Relaying => "Relaying",
            State::Closed => "Closed",
        }
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
