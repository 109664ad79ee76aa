//! Counters a running server keeps: connections opened and closed per listener
//! (named by its bound address) and in total, active now, closes by outcome
//! (labelled by [`CloseReason::LABELS`]), replies by code, bytes relayed, TLS
//! handshakes that failed (by side and kind).
//! Lock-free on the connection path; read with [`Counters::snapshot`].

use socks4_proto::server::{CloseReason, Limit, TlsFailure};
use socks4_proto::ReplyCode;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};

/// One listener's connection counts.
#[derive(Debug, Default)]
pub struct ListenerCounts {
    opened: AtomicU64,
    closed: AtomicU64,
}

impl ListenerCounts {
    pub(crate) fn opened(&self) {
        self.opened.fetch_add(1, Relaxed);
    }

    pub(crate) fn closed(&self) {
        self.closed.fetch_add(1, Relaxed);
    }
}

/// The live counters.
#[derive(Debug, Default)]
pub struct Counters {
    listeners: RwLock<Vec<(SocketAddr, Arc<ListenerCounts>)>>,
    accept_pauses: AtomicU64,
    limited: [AtomicU64; Limit::ALL.len()],
    by_outcome: [AtomicU64; CloseReason::LABELS.len()],
    by_reply: [AtomicU64; 4],
    client_to_dest: AtomicU64,
    dest_to_client: AtomicU64,
    relays_open: AtomicU64,
    idents: [AtomicU64; IDENT_RESULTS.len()],
    lookups: [AtomicU64; LOOKUP_RESULTS.len()],
    reloads: [AtomicU64; 2],
    tls_failures: [[AtomicU64; TlsFailure::ALL.len()]; TLS_SIDES.len()],
    proxy_headers: [AtomicU64; PROXY_RESULTS.len()],
}

/// What became of connections to listeners that require a PROXY protocol
/// header: `proxied` (a header named the client), `local` (a `LOCAL` or
/// `UNKNOWN` header: a health check, served as from the balancer), `untrusted`
/// (from outside `proxy_protocol_from`), `invalid` (not a header, or too long,
/// or of a version not accepted), `timed_out` (no complete header within the
/// handshake timeout), `closed` (the connection closed first).
pub const PROXY_RESULTS: [&str; 6] = [
    "proxied",
    "local",
    "untrusted",
    "invalid",
    "timed_out",
    "closed",
];

/// The sides a TLS handshake can fail on, as counted: with a `client` (a TLS
/// listener), a `destination` (`forward_tls`), a `parent` (`socks4+tls://`,
/// `https://`).
pub const TLS_SIDES: [&str; 3] = ["client", "destination", "parent"];

/// The results of IDENT queries, as counted: identd named a user, answered
/// with an error, or gave no usable answer (unreachable, timed out, garbage).
pub const IDENT_RESULTS: [&str; 3] = ["user", "error", "no_answer"];

/// The results of name lookups, as counted: `ok`, `timeout`, and the
/// resolver's errors ([`ResolveError::label`](socks4_proto::server::ResolveError::label)).
pub const LOOKUP_RESULTS: [&str; 6] = [
    "ok",
    "timeout",
    "no_such_host",
    "no_address",
    "temporary_failure",
    "failed",
];

/// Counters at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Snapshot {
    /// Per listener: its bound address, connections opened, connections closed.
    pub listeners: Vec<(SocketAddr, u64, u64)>,
    /// Connections accepted, all listeners.
    pub opened: u64,
    /// Connections finished, all listeners.
    pub closed: u64,
    /// Connections open now.
    pub active: u64,
    /// Times accepting paused because `max_connections` were open.
    pub accept_pauses: u64,
    /// Requests or connections refused by a per-client limit, by
    /// [`Limit::label`].
    pub limited: Vec<(&'static str, u64)>,
    /// Closed connections by outcome, labelled by [`CloseReason::LABELS`].
    pub by_outcome: Vec<(&'static str, u64)>,
    /// Replies sent, by code.
    pub by_reply: Vec<(ReplyCode, u64)>,
    /// Bytes relayed from clients to destinations.
    pub client_to_dest: u64,
    /// Bytes relayed from destinations to clients.
    pub dest_to_client: u64,
    /// Log lines dropped because a log output (standard error, the log
    /// file, syslog, the access log) could not keep up, or syslog could not
    /// be reached.
    pub log_lines_dropped: u64,
    /// Relays running now.
    pub relays_open: u64,
    /// IDENT queries by result, labelled by [`IDENT_RESULTS`].
    pub idents: Vec<(&'static str, u64)>,
    /// Name lookups by result, labelled by [`LOOKUP_RESULTS`].
    pub lookups: Vec<(&'static str, u64)>,
    /// Reloads that took effect.
    pub reloads_ok: u64,
    /// Reloads refused (the old configuration stayed).
    pub reloads_failed: u64,
    /// Failed TLS handshakes: side (of [`TLS_SIDES`]), kind
    /// ([`TlsFailure::label`]), count.
    pub tls_failures: Vec<(&'static str, &'static str, u64)>,
    /// Notifications by result, labelled by
    /// [`NOTIFY_RESULTS`](crate::observe::notify::NOTIFY_RESULTS).
    pub notifications: Vec<(&'static str, u64)>,
    /// PROXY protocol headers by result, labelled by [`PROXY_RESULTS`].
    pub proxy_headers: Vec<(&'static str, u64)>,
}

impl Snapshot {
    /// The count for one outcome label.
    pub fn outcome(&self, label: &str) -> u64 {
        self.by_outcome
            .iter()
            .find(|(l, _)| *l == label)
            .map_or(0, |(_, n)| *n)
    }

    /// The count of replies with one code.
    pub fn replies(&self, code: ReplyCode) -> u64 {
        self.by_reply
            .iter()
            .find(|(c, _)| *c == code)
            .map_or(0, |(_, n)| *n)
    }
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "opened={} closed={} active={} accept_pauses={} bytes_up={} bytes_down={}",
            self.opened,
            self.closed,
            self.active,
            self.accept_pauses,
            self.client_to_dest,
            self.dest_to_client
        )?;
        for (code, n) in &self.by_reply {
            write!(f, " reply_{}={n}", code.as_u8())?;
        }
        for (label, n) in self.by_outcome.iter().filter(|(_, n)| *n > 0) {
            write!(f, " {label}={n}")?;
        }
        for (label, n) in self.limited.iter().filter(|(_, n)| *n > 0) {
            write!(f, " limited_{label}={n}")?;
        }
        for (addr, o, c) in &self.listeners {
            write!(f, " [{addr} opened={o} closed={c}]")?;
        }
        Ok(())
    }
}

impl Counters {
    /// Starts counting for a listener bound to `addr`.
    pub fn add_listener(&self, addr: SocketAddr) -> Arc<ListenerCounts> {
        let mut listeners = self.listeners.write().unwrap_or_else(|e| e.into_inner());
        // A listener a reload removed and a later one added back counts on.
        if let Some((_, counts)) = listeners.iter().find(|(a, _)| *a == addr) {
            return counts.clone();
        }
        let counts = Arc::new(ListenerCounts::default());
        listeners.push((addr, counts.clone()));
        counts
    }

    pub(crate) fn accept_paused(&self) {
        self.accept_pauses.fetch_add(1, Relaxed);
    }

    pub(crate) fn limited(&self, limit: Limit) {
        if let Some(i) = Limit::ALL.iter().position(|l| *l == limit) {
            self.limited[i].fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn outcome(&self, reason: &CloseReason) {
        self.by_outcome[reason.label_index()].fetch_add(1, Relaxed);
    }

    pub(crate) fn reply(&self, code: ReplyCode) {
        self.by_reply[usize::from(code.as_u8() - 90)].fetch_add(1, Relaxed);
    }

    pub(crate) fn relay_opened(&self) {
        self.relays_open.fetch_add(1, Relaxed);
    }

    pub(crate) fn relay_closed(&self) {
        let _ = self
            .relays_open
            .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
    }

    pub(crate) fn ident(&self, result: &str) {
        if let Some(i) = IDENT_RESULTS.iter().position(|r| *r == result) {
            self.idents[i].fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn lookup(&self, result: &str) {
        if let Some(i) = LOOKUP_RESULTS.iter().position(|r| *r == result) {
            self.lookups[i].fetch_add(1, Relaxed);
        }
    }

    /// A TLS handshake failed on `side` (one of [`TLS_SIDES`]).
    pub(crate) fn tls_failure(&self, side: &str, kind: TlsFailure) {
        let s = TLS_SIDES.iter().position(|x| *x == side);
        let k = TlsFailure::ALL.iter().position(|x| *x == kind);
        if let (Some(s), Some(k)) = (s, k) {
            self.tls_failures[s][k].fetch_add(1, Relaxed);
        }
    }

    /// What became of a PROXY protocol connection (one of [`PROXY_RESULTS`]).
    pub(crate) fn proxy_header(&self, result: &str) {
        if let Some(i) = PROXY_RESULTS.iter().position(|r| *r == result) {
            self.proxy_headers[i].fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn reload(&self, ok: bool) {
        self.reloads[usize::from(!ok)].fetch_add(1, Relaxed);
    }

    pub(crate) fn bytes(&self, up: u64, down: u64) {
        self.client_to_dest.fetch_add(up, Relaxed);
        self.dest_to_client.fetch_add(down, Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        let listeners: Vec<(SocketAddr, u64, u64)> = self
            .listeners
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(a, l)| (*a, l.opened.load(Relaxed), l.closed.load(Relaxed)))
            .collect();
        let opened: u64 = listeners.iter().map(|l| l.1).sum();
        let closed: u64 = listeners.iter().map(|l| l.2).sum();
        Snapshot {
            listeners,
            opened,
            closed,
            active: opened.saturating_sub(closed),
            accept_pauses: self.accept_pauses.load(Relaxed),
            limited: Limit::ALL
                .iter()
                .zip(&self.limited)
                .map(|(l, n)| (l.label(), n.load(Relaxed)))
                .collect(),
            by_outcome: CloseReason::LABELS
                .iter()
                .zip(&self.by_outcome)
                .map(|(l, n)| (*l, n.load(Relaxed)))
                .collect(),
            by_reply: ReplyCode::ALL
                .iter()
                .zip(&self.by_reply)
                .map(|(c, n)| (*c, n.load(Relaxed)))
                .collect(),
            client_to_dest: self.client_to_dest.load(Relaxed),
            dest_to_client: self.dest_to_client.load(Relaxed),
            #[cfg(feature = "cli")]
            log_lines_dropped: crate::observe::logging::dropped_lines(),
            #[cfg(not(feature = "cli"))]
            log_lines_dropped: 0,
            relays_open: self.relays_open.load(Relaxed),
            idents: IDENT_RESULTS
                .iter()
                .zip(&self.idents)
                .map(|(l, n)| (*l, n.load(Relaxed)))
                .collect(),
            lookups: LOOKUP_RESULTS
                .iter()
                .zip(&self.lookups)
                .map(|(l, n)| (*l, n.load(Relaxed)))
                .collect(),
            reloads_ok: self.reloads[0].load(Relaxed),
            reloads_failed: self.reloads[1].load(Relaxed),
            tls_failures: TLS_SIDES
                .iter()
                .zip(&self.tls_failures)
                .flat_map(|(side, kinds)| {
                    TlsFailure::ALL
                        .iter()
                        .zip(kinds)
                        .map(move |(k, n)| (*side, k.label(), n.load(Relaxed)))
                })
                .collect(),
            // Kept by the notifier; [`Daemon::counters`](crate::Daemon::counters)
            // fills them in.
            notifications: Vec::new(),
            proxy_headers: PROXY_RESULTS
                .iter()
                .zip(&self.proxy_headers)
                .map(|(l, n)| (*l, n.load(Relaxed)))
                .collect(),
        }
    }
}
