//! The session's side of the adapter contract: the [`Action`]s it asks for and
//! the [`ActionOutcome`]s an adapter reports back, and the relay's end
//! ([`RelayEnd`], [`RelayStats`]).

use socks4_ident::Query;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};

use crate::codec::{Command, Reply};
use socks4_acl::{Balance, Parent, Verdict};

use super::reason::{CloseReason, Limit, ResolveError};

/// Something the adapter must do. Each action that has an outcome is answered
/// with the matching [`ActionOutcome`] through
/// [`ServerSession::handle_outcome`](super::ServerSession::handle_outcome).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Write this reply's 8 bytes ([`Reply::to_bytes`]) to the client.
    SendReply(Reply),
    /// Resolve `host`; answer [`ActionOutcome::Resolved`] with the whole
    /// answer, or [`ActionOutcome::ResolvedFirst`] with one family's
    /// addresses when the other's is still awaited (RFC 8305 §3).
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
    /// The access policy passed the request: check the limits that apply to
    /// this client (its connection rate, its traffic quota, its BIND
    /// listeners...) and answer [`ActionOutcome::Admitted`]. Asked only when
    /// [`ServerConfig::admission`](super::ServerConfig::admission) is on,
    /// before any resolve, IDENT query or connect that the decision does not
    /// need.
    Admit {
        /// CONNECT or BIND.
        command: Command,
        /// The policy's verdict: which rule passed the request, with its
        /// options.
        verdict: Verdict,
    },
    /// Open a TCP connection to one of these addresses (each one the policy
    /// passed, in the resolver's order): race them as Happy Eyeballs does
    /// (RFC 8305: the next attempt starts after `attempt_delay` without
    /// cancelling the previous one, each attempt within `connect_attempt`,
    /// the first connected wins and the others are closed; see
    /// [`crate::eyeballs`]); answer [`ActionOutcome::Connected`] with the
    /// winner's index, or the last error when none connected. Addresses
    /// that come later may join the race ([`Action::ConnectMore`]).
    Connect(Vec<SocketAddr>),
    /// While a [`Action::Connect`] is in progress: more addresses the policy
    /// passed (the other family's, whose answer came after connecting
    /// started: RFC 8305 §3) join its race. In the [`Won::index`] numbering
    /// they come after the candidates asked for so far, in this order. Asked
    /// for only from
    /// [`ServerSession::handle_late_addresses`](super::ServerSession::handle_late_addresses),
    /// and no answer is due for it (the `Connect`'s answer covers them).
    ConnectMore(Vec<SocketAddr>),
    /// Connect through one of a route's parent proxies (connect to it, then
    /// its handshake: SOCKS4/4a, or HTTP CONNECT), one at a time, each within
    /// `connect_attempt`, in an order the driver chooses from `balance` and
    /// the parents' health (see [`crate::health`]); answer
    /// [`ActionOutcome::Connected`] with the index of the hop that worked, or
    /// the last error when none did.
    ConnectVia {
        /// The parents, in the route's order, with what to ask of each.
        hops: Vec<Hop>,
        /// How the route's parents share connections.
        balance: Balance,
    },
    /// Listen on this address (port 0: any free port); answer
    /// [`ActionOutcome::Bound`].
    Bind(SocketAddr),
    /// Accept one connection on the BIND listener; answer
    /// [`ActionOutcome::Accepted`]. Keep the listener until then.
    Accept,
    /// The handshake is over: relay between the client and the outbound (CONNECT)
    /// or accepted (BIND) connection, first writing `client_leftover` (bytes the
    /// client sent right behind its request) to the other side. Report the end
    /// with [`ServerSession::handle_relay_end`](super::ServerSession::handle_relay_end).
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
    Resolved(Result<Vec<IpAddr>, ResolveError>),
    /// For [`Action::Resolve`], when the answer comes in two parts (RFC 8305
    /// §3): one family's addresses (the preferred family's, or the other's
    /// once the resolution delay passed without the preferred's), while the
    /// other family's answer is still awaited. A direct CONNECT goes on with
    /// them at once; anything else waits for the rest. The rest follows,
    /// exactly once, through
    /// [`ServerSession::handle_late_addresses`](super::ServerSession::handle_late_addresses)
    /// (empty when the other family had none or its lookup failed).
    ResolvedFirst(Vec<IpAddr>),
    /// For [`Action::Admit`]: admitted, or the limit that refuses the request
    /// (reply 91).
    Admitted(Result<(), Limit>),
    /// For [`Action::IdentQuery`]: identd's answer, or why it could not be had.
    Ident(Result<socks4_ident::Outcome, ErrorKind>),
    /// For [`Action::Connect`] and [`Action::ConnectVia`]: which candidate
    /// connected, or why none did.
    Connected(Result<Won, ErrorKind>),
    /// For [`Action::Bind`]: the address the listener is bound to.
    Bound(Result<SocketAddr, ErrorKind>),
    /// For [`Action::Accept`]: the address of the peer that connected.
    Accepted(Result<SocketAddr, ErrorKind>),
}

/// The candidate that connected first, answering [`Action::Connect`] or
/// [`Action::ConnectVia`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Won {
    /// Its index among the action's candidates.
    pub index: usize,
    /// How many attempts were started, the winner's included.
    pub attempts: u32,
}

impl Won {
    /// The first candidate, on the first attempt.
    pub const FIRST: Won = Won {
        index: 0,
        attempts: 1,
    };
}

/// One parent of a route, as [`Action::ConnectVia`] asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// The parent.
    pub parent: Parent,
    /// What to ask of it: an address, or a name it resolves.
    pub dest: Destination,
    /// The USERID to send to a SOCKS parent.
    pub user_id: Vec<u8>,
}

/// Where a connection goes: an address, or a name (a parent resolves it, or
/// the session does).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Destination {
    /// An address and port.
    Addr(SocketAddr),
    /// A host name and port.
    Name(String, u16),
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::Addr(a) => a.fmt(f),
            Destination::Name(h, p) => write!(f, "{h}:{p}"),
        }
    }
}

/// Bytes moved by a relay, for the `sock_down` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RelayStats {
    /// Bytes from the client to the destination (leftover included).
    pub client_to_dest: u64,
    /// Bytes from the destination to the client.
    pub dest_to_client: u64,
}

/// How a relay ended, reported with
/// [`ServerSession::handle_relay_end`](super::ServerSession::handle_relay_end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RelayEnd {
    /// Both directions reached end of stream.
    Finished,
    /// A read or write failed on either side (a reset, for one): both sides
    /// were closed at once.
    Error(ErrorKind),
    /// Neither side sent anything for the idle timeout.
    Idle,
    /// The server stopped and the shutdown grace period ran out.
    Shutdown,
    /// A traffic limit (a quota) cut the relay.
    Limited(Limit),
    /// An operator ended the connection (`ctl kill`).
    Killed,
}
