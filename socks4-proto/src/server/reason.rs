//! [`CloseReason`]: why a session ended, with the one table of labels that logs,
//! counters and metrics use for it ([`CloseReason::label`], [`CloseReason::LABELS`]),
//! and the reasons' parts: [`ResolveError`], [`Limit`] and [`TlsFailure`].

use super::timer::Timer;
use crate::codec::DecodeError;
use socks4_acl::Source;
use std::fmt;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The relay ended (either side closed, both directions done).
    Done,
    /// The client closed before the handshake was over, or hung up while a
    /// step (resolve, IDENT, connect, BIND) was pending.
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
    /// The SOCKS4a name did not resolve.
    ResolveFailed(ResolveError),
    /// No candidate address could be connected (the last error).
    ConnectFailed(Option<ErrorKind>),
    /// The BIND listener could not be opened.
    BindFailed(ErrorKind),
    /// Accepting the BIND's inbound connection failed.
    AcceptFailed(ErrorKind),
    /// The BIND's inbound connection came from another address than DSTIP.
    BindWrongPeer(SocketAddr),
    /// A read or write failed on either side of the relay (a reset, for one);
    /// both sides were closed.
    RelayError(ErrorKind),
    /// Neither side of the relay sent anything for the idle timeout.
    IdleTimeout,
    /// The server stopped and the relay outlived the shutdown grace period.
    Shutdown,
    /// A per-client limit refused the request or cut the relay.
    Limited(Limit),
    /// No parent proxy of the route could be reached or granted the request
    /// (the last error; `Unsupported`: the request cannot go through these
    /// parents, e.g. a BIND, or a SOCKS4 parent and no IPv4 address).
    ParentFailed(ErrorKind),
    /// The client's TLS handshake failed (a listener that serves SOCKS inside
    /// TLS); no reply is sent.
    TlsFailed(TlsFailure),
    /// The request would loop back into this server: its destination is one
    /// of the server's own listeners ([`OwnAddresses`](super::OwnAddresses)),
    /// or the connection is the server's own outbound connection coming back
    /// (through a redirect, say). Refused whatever the rules say.
    Loop,
    /// An operator ended the connection (`ctl kill`): both sockets were
    /// closed at once, whatever its phase.
    Killed,
}

impl CloseReason {
    /// Every label [`label`](Self::label) can return, in a fixed order (counters
    /// index by it: [`label_index`](Self::label_index)).
    pub const LABELS: [&'static str; 26] = [
        "done",
        "peer_closed",
        "protocol_error",
        "early_data_overflow",
        "denied",
        "ident_unavailable",
        "ident_mismatch",
        "timed_out",
        "bad_destination",
        "resolve_failed",
        "connect_failed",
        "bind_failed",
        "accept_failed",
        "bind_wrong_peer",
        "relay_error",
        "idle_timeout",
        "shutdown",
        "client_cap",
        "bind_cap",
        "rate_limited",
        "quota",
        "resolver_busy",
        "parent_failed",
        "tls_failed",
        "loop",
        "killed",
    ];

    /// The position of this reason's label in [`LABELS`](Self::LABELS).
    pub fn label_index(&self) -> usize {
        match self {
            CloseReason::Done => 0,
            CloseReason::PeerClosed => 1,
            CloseReason::Protocol(_) => 2,
            CloseReason::EarlyDataOverflow => 3,
            CloseReason::Denied(_) => 4,
            CloseReason::IdentUnavailable => 5,
            CloseReason::IdentMismatch => 6,
            CloseReason::TimedOut(_) => 7,
            CloseReason::BadDestination(_) => 8,
            CloseReason::ResolveFailed(_) => 9,
            CloseReason::ConnectFailed(_) => 10,
            CloseReason::BindFailed(_) => 11,
            CloseReason::AcceptFailed(_) => 12,
            CloseReason::BindWrongPeer(_) => 13,
            CloseReason::RelayError(_) => 14,
            CloseReason::IdleTimeout => 15,
            CloseReason::Shutdown => 16,
            CloseReason::Limited(Limit::Connections) => 17,
            CloseReason::Limited(Limit::BindListeners) => 18,
            CloseReason::Limited(Limit::Rate) => 19,
            CloseReason::Limited(Limit::Quota) => 20,
            CloseReason::Limited(Limit::Resolver) => 21,
            CloseReason::ParentFailed(_) => 22,
            CloseReason::TlsFailed(_) => 23,
            CloseReason::Loop => 24,
            CloseReason::Killed => 25,
        }
    }

    /// A short, stable, machine-friendly label (`done`, `denied`, `timed_out`,
    /// ...): the `outcome` of log lines and counters.
    pub fn label(&self) -> &'static str {
        Self::LABELS[self.label_index()]
    }
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
            CloseReason::TimedOut(t) => write!(f, "{} timed out", t.name()),
            CloseReason::BadDestination(ip) => write!(f, "bad destination {ip}"),
            CloseReason::ResolveFailed(e) => write!(f, "resolve failed: {e}"),
            CloseReason::ConnectFailed(Some(k)) => write!(f, "connect failed: {k}"),
            CloseReason::ConnectFailed(None) => f.write_str("connect failed: no address allowed"),
            CloseReason::BindFailed(k) => write!(f, "bind failed: {k}"),
            CloseReason::AcceptFailed(k) => write!(f, "accept failed: {k}"),
            CloseReason::BindWrongPeer(a) => write!(f, "inbound connection from {a}, not DSTIP"),
            CloseReason::RelayError(k) => write!(f, "relay error: {k}"),
            CloseReason::IdleTimeout => f.write_str("relay idle for too long"),
            CloseReason::Shutdown => f.write_str("server shutting down"),
            CloseReason::Limited(limit) => write!(f, "limited: {limit}"),
            CloseReason::ParentFailed(ErrorKind::Unsupported) => {
                f.write_str("not possible through the route's parent proxies")
            }
            CloseReason::ParentFailed(k) => write!(f, "parent proxy failed: {k}"),
            CloseReason::TlsFailed(kind) => write!(f, "TLS handshake failed: {kind}"),
            CloseReason::Loop => f.write_str("the request would loop back into this server"),
            CloseReason::Killed => f.write_str("ended by an operator"),
        }
    }
}

/// Why a name did not resolve, as the system resolver (getaddrinfo) says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResolveError {
    /// The name does not exist (NXDOMAIN; `EAI_NONAME`).
    NoSuchHost,
    /// The name exists but has no address (`EAI_NODATA`), or none usable.
    NoAddress,
    /// The resolver could not answer now (`EAI_AGAIN`: a server timed out or
    /// refused); trying later may work.
    TemporaryFailure,
    /// Any other resolver failure (`EAI_FAIL`, `EAI_SYSTEM`, ...).
    Failed,
}

impl ResolveError {
    /// Every resolver error, in the order of their labels.
    pub const ALL: [ResolveError; 4] = [
        ResolveError::NoSuchHost,
        ResolveError::NoAddress,
        ResolveError::TemporaryFailure,
        ResolveError::Failed,
    ];

    /// A short label for logs and metrics: `no_such_host`, `no_address`,
    /// `temporary_failure`, `failed`.
    pub fn label(self) -> &'static str {
        match self {
            ResolveError::NoSuchHost => "no_such_host",
            ResolveError::NoAddress => "no_address",
            ResolveError::TemporaryFailure => "temporary_failure",
            ResolveError::Failed => "failed",
        }
    }
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResolveError::NoSuchHost => "no such host",
            ResolveError::NoAddress => "no address for the name",
            ResolveError::TemporaryFailure => "temporary failure in name resolution",
            ResolveError::Failed => "resolver failure",
        })
    }
}

impl std::error::Error for ResolveError {}

/// A per-client limit that refused a request or cut a relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// The client address holds as many connections as it may.
    Connections,
    /// The client address holds as many BIND listeners as it may.
    BindListeners,
    /// The client address made as many granted requests as its rate allows.
    Rate,
    /// The client address used up its traffic quota.
    Quota,
    /// Too many name lookups are waiting (the resolver's bound).
    Resolver,
}

impl Limit {
    /// Every limit, in the order of their labels.
    pub const ALL: [Limit; 5] = [
        Limit::Connections,
        Limit::BindListeners,
        Limit::Rate,
        Limit::Quota,
        Limit::Resolver,
    ];

    /// The label used in logs and metrics: `connections`, `bind_listeners`,
    /// `rate`, `quota`, `resolver`.
    pub fn label(self) -> &'static str {
        match self {
            Limit::Connections => "connections",
            Limit::BindListeners => "bind_listeners",
            Limit::Rate => "rate",
            Limit::Quota => "quota",
            Limit::Resolver => "resolver",
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::Connections => "too many connections from this client",
            Limit::BindListeners => "too many BIND listeners for this client",
            Limit::Rate => "connection rate limit",
            Limit::Quota => "traffic quota used up",
            Limit::Resolver => "too many name lookups waiting",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_is_reachable_and_in_place() {
        let kind = ErrorKind::Other;
        let reasons = [
            CloseReason::Done,
            CloseReason::PeerClosed,
            CloseReason::Protocol(DecodeError::Version(5)),
            CloseReason::EarlyDataOverflow,
            CloseReason::Denied(Source::Default),
            CloseReason::IdentUnavailable,
            CloseReason::IdentMismatch,
            CloseReason::TimedOut(Timer::Handshake),
            CloseReason::BadDestination(IpAddr::from([0, 0, 0, 0])),
            CloseReason::ResolveFailed(ResolveError::NoSuchHost),
            CloseReason::ConnectFailed(None),
            CloseReason::BindFailed(kind),
            CloseReason::AcceptFailed(kind),
            CloseReason::BindWrongPeer(SocketAddr::from(([127, 0, 0, 1], 1))),
            CloseReason::RelayError(kind),
            CloseReason::IdleTimeout,
            CloseReason::Shutdown,
            CloseReason::Limited(Limit::Connections),
            CloseReason::Limited(Limit::BindListeners),
            CloseReason::Limited(Limit::Rate),
            CloseReason::Limited(Limit::Quota),
            CloseReason::Limited(Limit::Resolver),
            CloseReason::ParentFailed(kind),
            CloseReason::TlsFailed(TlsFailure::Protocol),
            CloseReason::Loop,
            CloseReason::Killed,
        ];
        assert_eq!(reasons.len(), CloseReason::LABELS.len());
        for (i, r) in reasons.iter().enumerate() {
            assert_eq!(r.label_index(), i, "{r:?}");
            assert_eq!(r.label(), CloseReason::LABELS[i]);
        }
    }
}

/// How a TLS handshake failed, as far as a log line and a counter need to
/// know: the kind, never the peer's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The peer does not speak TLS, or not a version or cipher suite both
    /// sides have, or broke the protocol.
    Protocol,
    /// A client certificate was required and none was sent.
    NoCertificate,
    /// The peer's certificate did not verify: signed by an untrusted
    /// authority, expired, or for another name.
    BadCertificate,
    /// The peer ended the handshake with an alert (it did not trust our
    /// certificate, say).
    PeerAlert,
}

impl TlsFailure {
    /// Every kind, in the order of their labels.
    pub const ALL: [TlsFailure; 4] = [
        TlsFailure::Protocol,
        TlsFailure::NoCertificate,
        TlsFailure::BadCertificate,
        TlsFailure::PeerAlert,
    ];

    /// A short label for logs and metrics: `protocol`, `no_certificate`,
    /// `bad_certificate`, `peer_alert`.
    pub fn label(self) -> &'static str {
        match self {
            TlsFailure::Protocol => "protocol",
            TlsFailure::NoCertificate => "no_certificate",
            TlsFailure::BadCertificate => "bad_certificate",
            TlsFailure::PeerAlert => "peer_alert",
        }
    }
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsFailure::Protocol => "not TLS, or no version and cipher suite in common",
            TlsFailure::NoCertificate => "no client certificate",
            TlsFailure::BadCertificate => "certificate not trusted",
            TlsFailure::PeerAlert => "the peer refused the handshake",
        })
    }
}
