//! [`Conn`]: one admitted connection's session together with its bookkeeping.
//! An adapter calls [`Conn::publish`] after every call into the session; the
//! events go to the counters, the event bus and, when the session ends, one log
//! line with client, destination, rule, bytes each way and duration.

use crate::control::Daemon;
use crate::counters::outcome_label;
use crate::events::DaemonEvent;
use socks4_acl::Source;
use socks4_proto::server::{CloseReason, Event, RelayStats, ServerSession};
use socks4_proto::ReplyCode;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

/// An admitted connection: the session an adapter drives, plus bookkeeping.
#[derive(Debug)]
pub struct Conn {
    /// The session machine; drive it, then call [`Conn::publish`].
    pub session: ServerSession,
    daemon: Daemon,
    id: u64,
    listener: usize,
    listener_addr: SocketAddr,
    started: Instant,
    dest: Option<String>,
    user_id: Vec<u8>,
    source: Option<Source>,
    reply: Option<ReplyCode>,
    stats: RelayStats,
    logged: bool,
}

impl Conn {
    pub(crate) fn new(
        daemon: Daemon,
        session: ServerSession,
        id: u64,
        listener: usize,
        listener_addr: SocketAddr,
    ) -> Conn {
        let mut conn = Conn {
            session,
            daemon,
            id,
            listener,
            listener_addr,
            started: Instant::now(),
            dest: None,
            user_id: Vec::new(),
            source: None,
            reply: None,
            stats: RelayStats::default(),
            logged: false,
        };
        conn.publish();
        conn
    }

    /// The connection's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Drains the session's events into counters, subscribers and the log.
    pub fn publish(&mut self) {
        while let Some(event) = self.session.poll_event() {
            self.note(&event);
            let bus = self.daemon.bus();
            if bus.has_subscribers() {
                bus.publish(DaemonEvent {
                    conn: self.id,
                    listener: self.listener_addr,
                    at: SystemTime::now(),
                    event,
                });
            }
        }
    }

    fn note(&mut self, event: &Event) {
        let counters = self.daemon.counters_ref();
        match event {
            Event::Connection { peer, local } => {
                tracing::debug!(target: "socks4d", conn = self.id, %peer, %local, "connection");
            }
            Event::Request {
                command,
                dest,
                user_id,
            } => {
                self.dest = Some(dest.clone());
                self.user_id = user_id.clone();
                tracing::debug!(target: "socks4d", conn = self.id, %command, dest, "request");
            }
            Event::Denied { source, .. } => self.source = Some(*source),
            Event::SockUp { dest, source } => {
                self.source = Some(*source);
                self.reply = Some(ReplyCode::Granted);
                counters.reply(ReplyCode::Granted);
                tracing::debug!(target: "socks4d", conn = self.id, %dest, "sock_up");
            }
            Event::BindUp { listen } => {
                counters.reply(ReplyCode::Granted);
                tracing::debug!(target: "socks4d", conn = self.id, %listen, "bind_up");
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
                tracing::debug!(target: "socks4d", conn = self.id, host, ?addrs, "dns_lookup");
            }
            Event::Ident { outcome } => {
                let ident = outcome
                    .as_ref()
                    .map_or_else(|| "no answer".to_owned(), |o| o.to_string());
                tracing::info!(target: "socks4d", conn = self.id, ident, "ident");
            }
            Event::Disconnected { reason } => self.finish(*reason),
            _ => {}
        }
    }

    fn finish(&mut self, reason: CloseReason) {
        if self.logged {
            return;
        }
        self.logged = true;
        let counters = self.daemon.counters_ref();
        counters.outcome(&reason);
        let rule = self.source.map(|s| s.to_string()).unwrap_or_default();
        let reply = self.reply.map_or(0, |c| c.as_u8());
        let ms = self.started.elapsed().as_millis() as u64;
        let user = String::from_utf8_lossy(&self.user_id);
        let peer = self.session.peer();
        let dest = self.dest.as_deref().unwrap_or("-");
        let outcome = outcome_label(&reason);
        let up = self.stats.client_to_dest;
        let down = self.stats.dest_to_client;
        tracing::info!(
            target: "socks4d",
            conn = self.id, listener = %self.listener_addr, client = %peer, dest, user = %user, rule, reply,
            outcome, reason = %reason, bytes_up = up, bytes_down = down, duration_ms = ms,
            "closed"
        );
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.publish();
        if !self.logged {
            // The adapter dropped the connection before the session closed (an IO
            // error): count and log it as the client going away.
            self.finish(CloseReason::PeerClosed);
        }
        self.daemon.connection_closed(self.listener);
    }
}
