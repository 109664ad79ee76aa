//! Bookkeeping that observes connections: [`Books`] (the counters and the event
//! bus a server shares) and `Observer`, which takes one connection's session
//! events as the driver hands them over and turns them into counts, published
//! events and the connection's one `closed` log line. Nothing here calls back
//! into the driver or the session.

use crate::counters::Counters;
use crate::events::{DaemonEvent, EventBus};
use socks4_acl::Source;
use socks4_proto::server::{CloseReason, Event, RelayStats};
use socks4_proto::ReplyCode;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// What every connection reports to: counters and event subscribers.
#[derive(Debug, Default)]
pub struct Books {
    /// The counters.
    pub counters: Counters,
    /// The event bus.
    pub bus: EventBus,
}

/// One connection's bookkeeping: what its log line will say.
#[derive(Debug)]
pub(crate) struct Observer {
    books: Arc<Books>,
    conn: u64,
    listener: SocketAddr,
    peer: SocketAddr,
    started: Instant,
    dest: Option<String>,
    user_id: Vec<u8>,
    source: Option<Source>,
    reply: Option<ReplyCode>,
    stats: RelayStats,
}

impl Observer {
    /// Bookkeeping for connection `conn` from `peer` on `listener`, accepted at
    /// `started` (the runtime's clock).
    pub(crate) fn new(
        books: Arc<Books>,
        conn: u64,
        listener: SocketAddr,
        peer: SocketAddr,
        started: Instant,
    ) -> Observer {
        Observer {
            books,
            conn,
            listener,
            peer,
            started,
            dest: None,
            user_id: Vec::new(),
            source: None,
            reply: None,
            stats: RelayStats::default(),
        }
    }

    /// The connection's id, for log lines about it.
    pub(crate) fn id(&self) -> u64 {
        self.conn
    }

    /// Takes one event of the session, at `now`.
    pub(crate) fn observe(&mut self, event: Event, now: Instant) {
        self.note(&event, now);
        let bus = &self.books.bus;
        if bus.has_subscribers() {
            bus.publish(DaemonEvent {
                conn: self.conn,
                listener: self.listener,
                at: SystemTime::now(),
                event,
            });
        }
    }

    fn note(&mut self, event: &Event, now: Instant) {
        let counters = &self.books.counters;
        let conn = self.conn;
        match event {
            Event::Connection { peer, local } => {
                tracing::debug!(target: "socks4d", conn, %peer, %local, "connection");
            }
            Event::Request {
                command,
                dest,
                user_id,
            } => {
                self.dest = Some(dest.clone());
                self.user_id = user_id.clone();
                tracing::debug!(target: "socks4d", conn, %command, dest, "request");
            }
            Event::Denied { source, .. } => self.source = Some(*source),
            Event::SockUp { dest, source } => {
                self.source = Some(*source);
                self.reply = Some(ReplyCode::Granted);
                counters.reply(ReplyCode::Granted);
                tracing::debug!(target: "socks4d", conn, %dest, "sock_up");
            }
            Event::BindUp { listen } => {
                counters.reply(ReplyCode::Granted);
                tracing::debug!(target: "socks4d", conn, %listen, "bind_up");
            }
            Event::Rejected { code, .. } => {
                self.reply = Some(*code);
                counters.reply(*code);
            }
            Event::SockDown { stats } => {
                self.stats = *stats;
                counters.bytes(stats.client_to_dest, stats.dest_to_client);
            }
            Event::DnsLookup { host, addrs } => {
                tracing::debug!(target: "socks4d", conn, host, ?addrs, "dns_lookup");
            }
            Event::Ident { outcome } => {
                let ident = outcome
                    .as_ref()
                    .map_or_else(|| "no answer".to_owned(), |o| o.to_string());
                tracing::info!(target: "socks4d", conn, ident, "ident");
            }
            Event::Disconnected { reason } => self.closed(*reason, now),
            _ => {}
        }
    }

    fn closed(&self, reason: CloseReason, now: Instant) {
        self.books.counters.outcome(&reason);
        let rule = self.source.map(|s| s.to_string()).unwrap_or_default();
        let reply = self.reply.map_or(0, |c| c.as_u8());
        let duration_ms = now.saturating_duration_since(self.started).as_millis() as u64;
        let user = String::from_utf8_lossy(&self.user_id);
        let dest = self.dest.as_deref().unwrap_or("-");
        tracing::info!(
            target: "socks4d",
            conn = self.conn, listener = %self.listener, client = %self.peer, dest, user = %user,
            rule, reply, outcome = reason.label(), reason = %reason,
            bytes_up = self.stats.client_to_dest, bytes_down = self.stats.dest_to_client,
            duration_ms, "closed"
        );
    }
}
