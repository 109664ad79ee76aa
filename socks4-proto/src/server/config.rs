//! What a server session is configured with: limits, timeouts, IDENT mode and the
//! access policy. Every limit and timeout is a named field with a documented
//! default.

use crate::codec::Limits;
use socks4_acl::Policy;
use std::time::Duration;

/// Whether and how the server consults the client host's identd (RFC 1413).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IdentMode {
    /// Never query identd (unless a rule has `ident`). The default.
    #[default]
    Off,
    /// Query identd for every passing request and report the answer as an event,
    /// but never refuse because of it.
    Log,
    /// Query identd for every passing request: reply 92 when identd cannot be
    /// reached, errs or times out, 93 when it names another user than the
    /// request's USERID.
    Require,
}

/// How long each phase of a session may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Timeouts {
    /// From accept until the whole request has arrived. Default 10 s.
    pub handshake: Duration,
    /// For resolving a SOCKS4a host name. Default 10 s.
    pub resolve: Duration,
    /// For the IDENT exchange. Default 10 s. RFC 1413 asks querying clients to
    /// wait at least 30 s; a proxy's client is waiting for its reply meanwhile, so
    /// the default is shorter (raise it for slow networks).
    pub ident: Duration,
    /// For establishing the outbound connection, all candidate addresses
    /// together. Default 120 s, the protocol text's "2 minutes".
    pub connect: Duration,
    /// For the inbound connection of a BIND. Default 120 s.
    pub bind_accept: Duration,
    /// For each address of a destination and each parent of a route: an
    /// attempt that has not connected (and, for a parent, answered) within it
    /// is abandoned and the next is tried. Default 10 s.
    pub connect_attempt: Duration,
    /// Happy Eyeballs' "Connection Attempt Delay" (RFC 8305 §5): the next
    /// address is tried this long after the previous one started, without
    /// cancelling it. Default 250 ms.
    pub attempt_delay: Duration,
    /// For a relay in which neither side sends anything: the adapter's relay
    /// closes both sides after this long without traffic. Default one hour;
    /// `None` never closes an idle relay.
    pub idle: Option<Duration>,
}

impl Timeouts {
    /// The defaults: 10 s, 10 s, 10 s, 120 s, 120 s, 10 s per attempt, 250 ms
    /// between attempts, and one hour idle.
    pub const DEFAULT: Timeouts = Timeouts {
        handshake: Duration::from_secs(10),
        resolve: Duration::from_secs(10),
        ident: Duration::from_secs(10),
        connect: Duration::from_secs(120),
        bind_accept: Duration::from_secs(120),
        connect_attempt: Duration::from_secs(10),
        attempt_delay: Duration::from_millis(250),
        idle: Some(Duration::from_secs(3600)),
    };
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts::DEFAULT
    }
}

/// Everything a [`ServerSession`](super::ServerSession) needs to decide. Shared
/// between sessions behind an `Arc`; a server that reloads its configuration
/// builds a new one for new connections, and running sessions keep theirs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Request size limits.
    pub limits: Limits,
    /// Phase timeouts.
    pub timeouts: Timeouts,
    /// IDENT mode for every request (rules can require IDENT for some only).
    pub ident: IdentMode,
    /// Bytes a client may send after its request and before the reply (they are
    /// handed to the relay). Past this the request is refused with 91. Default
    /// 64 KiB. Adapters normally stop reading once the request is complete (see
    /// [`ServerSession::wants_input`](super::ServerSession::wants_input)), so only
    /// what arrived with the request counts.
    pub max_early_data: usize,
    /// The port identd listens on at client hosts. Default 113 (RFC 1413); other
    /// values are for tests and unusual setups.
    pub ident_port: u16,
    /// The access policy. Default [`Policy::loopback_only`]: never an open proxy.
    pub policy: Policy,
    /// Whether the session asks the adapter to admit each request the policy
    /// passed ([`Action::Admit`](super::Action::Admit)), for per-client limits
    /// kept outside the session. Default off: nothing to ask.
    pub admission: bool,
    /// With [`IdentMode::Require`] and [`admission`](Self::admission): ask
    /// identd once the policy passed the request and *before* admission, so
    /// that the adapter can count the request under the IDENT-verified user
    /// ([`ServerSession::ident_user`](super::ServerSession::ident_user))
    /// rather than the client's address. Default off: identd is asked after
    /// admission.
    pub ident_before_admission: bool,
    /// The address BIND listens on and names in its first reply. Default
    /// `None`: the address the client reached (the session's local address).
    /// Behind a load balancer, an address the client can reach.
    pub bind_address: Option<std::net::IpAddr>,
    /// Where the server itself listens: a CONNECT there would loop back into
    /// it, and is refused with 91 (close reason
    /// [`Loop`](super::CloseReason::Loop)) whatever the rules say. Default
    /// empty: nothing is known (an embedder that serves sessions sets it).
    pub own: std::sync::Arc<super::OwnAddresses>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            ident: IdentMode::default(),
            max_early_data: 64 * 1024,
            ident_port: socks4_ident::IDENT_PORT,
            policy: Policy::loopback_only(),
            admission: false,
            ident_before_admission: false,
            bind_address: None,
            own: Default::default(),
        }
    }
}

impl ServerConfig {
    /// The defaults with another policy.
    pub fn with_policy(policy: Policy) -> ServerConfig {
        ServerConfig {
            policy,
            ..ServerConfig::default()
        }
    }
}
