//! Counters a running server keeps: connections opened and closed per listener
//! and in total (as Net::Proxy keeps them), active now, closes by outcome, replies
//! by code, bytes relayed. Lock-free; read with [`Counters::snapshot`].

use socks4_proto::server::CloseReason;
use socks4_proto::ReplyCode;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The outcome labels, in [`Snapshot::by_outcome`] order.
pub const OUTCOMES: [&str; 14] = [
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
];

/// The label of a close reason, one of [`OUTCOMES`].
pub fn outcome_label(reason: &CloseReason) -> &'static str {
    OUTCOMES[outcome_index(reason)]
}

fn outcome_index(reason: &CloseReason) -> usize {
    match reason {
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
        _ => 2,
    }
}

#[derive(Debug, Default)]
struct PerListener {
    opened: AtomicU64,
    closed: AtomicU64,
}

/// The live counters.
#[derive(Debug)]
pub struct Counters {
    listeners: Vec<(SocketAddr, PerListener)>,
    refused_over_capacity: AtomicU64,
    by_outcome: [AtomicU64; OUTCOMES.len()],
    by_reply: [AtomicU64; 4],
    client_to_dest: AtomicU64,
    dest_to_client: AtomicU64,
}

/// Counters at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Per listener: address, connections opened, connections closed.
    pub listeners: Vec<(SocketAddr, u64, u64)>,
    /// Connections accepted, all listeners.
    pub opened: u64,
    /// Connections finished, all listeners.
    pub closed: u64,
    /// Connections open now.
    pub active: u64,
    /// Connections closed at once because `max_connections` were open.
    pub refused_over_capacity: u64,
    /// Closed connections by outcome, labelled by [`OUTCOMES`].
    pub by_outcome: Vec<(&'static str, u64)>,
    /// Replies sent, by code.
    pub by_reply: Vec<(ReplyCode, u64)>,
    /// Bytes relayed from clients to destinations.
    pub client_to_dest: u64,
    /// Bytes relayed from destinations to clients.
    pub dest_to_client: u64,
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
            "opened={} closed={} active={} refused_over_capacity={} bytes_up={} bytes_down={}",
            self.opened,
            self.closed,
            self.active,
            self.refused_over_capacity,
            self.client_to_dest,
            self.dest_to_client
        )?;
        for (code, n) in &self.by_reply {
            write!(f, " reply_{}={n}", code.as_u8())?;
        }
        for (label, n) in self.by_outcome.iter().filter(|(_, n)| *n > 0) {
            write!(f, " {label}={n}")?;
        }
        for (addr, o, c) in &self.listeners {
            write!(f, " [{addr} opened={o} closed={c}]")?;
        }
        Ok(())
    }
}

impl Counters {
    /// Counters for these listeners (indexed by position).
    pub fn new(listeners: &[SocketAddr]) -> Counters {
        Counters {
            listeners: listeners
                .iter()
                .map(|a| (*a, PerListener::default()))
                .collect(),
            refused_over_capacity: AtomicU64::new(0),
            by_outcome: Default::default(),
            by_reply: Default::default(),
            client_to_dest: AtomicU64::new(0),
            dest_to_client: AtomicU64::new(0),
        }
    }

    pub(crate) fn opened(&self, listener: usize) {
        if let Some((_, l)) = self.listeners.get(listener) {
            l.opened.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn closed(&self, listener: usize) {
        if let Some((_, l)) = self.listeners.get(listener) {
            l.closed.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn refused_over_capacity(&self) {
        self.refused_over_capacity.fetch_add(1, Relaxed);
    }

    pub(crate) fn outcome(&self, reason: &CloseReason) {
        self.by_outcome[outcome_index(reason)].fetch_add(1, Relaxed);
    }

    pub(crate) fn reply(&self, code: ReplyCode) {
        self.by_reply[usize::from(code.as_u8() - 90)].fetch_add(1, Relaxed);
    }

    pub(crate) fn bytes(&self, up: u64, down: u64) {
        self.client_to_dest.fetch_add(up, Relaxed);
        self.dest_to_client.fetch_add(down, Relaxed);
    }

    /// Connections open now.
    pub fn snapshot_active(&self) -> u64 {
        let (o, c) = self.listeners.iter().fold((0u64, 0u64), |(o, c), (_, l)| {
            (o + l.opened.load(Relaxed), c + l.closed.load(Relaxed))
        });
        o.saturating_sub(c)
    }

    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        let listeners: Vec<(SocketAddr, u64, u64)> = self
            .listeners
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
            refused_over_capacity: self.refused_over_capacity.load(Relaxed),
            by_outcome: OUTCOMES
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
        }
    }
}
