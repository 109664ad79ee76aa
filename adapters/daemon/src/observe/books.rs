//! Bookkeeping that observes connections: [`Books`] (the counters and the event
//! bus a server shares) and `Observer`, which takes one connection's session
//! events as the driver hands them over and turns them into counts, published
//! events and the connection's one `closed` log line. Nothing here calls back
//! into the driver or the session.

use crate::limits::client_table::{ClientKey, ClientTable};
use crate::limits::log_budget::Throttle;
use crate::observe::counters::Counters;
use crate::observe::events::{DaemonEvent, EventBus};
use socks4_acl::Source;
use socks4_proto::server::{CloseReason, Event, RelayStats, Timer};
use socks4_proto::ReplyCode;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// What every connection reports to: counters, event subscribers, the
/// handshake time histogram, the budget of log lines for refusals, and the
/// notifier.
#[derive(Debug)]
pub struct Books {
    /// The counters.
    pub counters: Counters,
    /// The event bus.
    pub bus: EventBus,
    /// Time from accept to the first reply, in seconds.
    pub handshake: prometheus_client::metrics::histogram::Histogram,
    /// Notifications to the administrator (rules with `notify`).
    pub notifier: Arc<crate::observe::notify::Notifier>,
    refusals: Throttle,
    /// Other lines a client can cause (metrics refusals, untrusted PROXY
    /// headers, accept pauses and failures), under the same budget.
    warnings: Throttle,
}

impl Default for Books {
    fn default() -> Books {
        Books {
            counters: Counters::default(),
            bus: EventBus::default(),
            // 0.1 ms to about 26 s.
            handshake: prometheus_client::metrics::histogram::Histogram::new(
                prometheus_client::metrics::histogram::exponential_buckets(0.0001, 2.0, 19),
            ),
            notifier: Arc::new(crate::observe::notify::Notifier::new(None)),
            refusals: Throttle::new(
                0,
                "refused connections not logged one by one (over the refusal log budget)",
            ),
            warnings: Throttle::new(
                0,
                "warnings clients caused not logged one by one (over the refusal log budget)",
            ),
        }
    }
}

impl Books {
    /// Books that log at most `refusal_lines` refused connections per second
    /// and notify with `notify` (`None`: events and log lines only).
    pub fn new(
        refusal_lines: u32,
        notify: Option<crate::observe::notify::NotifySettings>,
    ) -> Books {
        let books = Books {
            notifier: Arc::new(crate::observe::notify::Notifier::new(notify)),
            ..Books::default()
        };
        books.set_refusal_log_lines(refusal_lines);
        books
    }

    /// Changes the budget of refusal lines per second.
    pub fn set_refusal_log_lines(&self, per_second: u32) {
        self.refusals.set_per_second(per_second);
        self.warnings.set_per_second(per_second);
    }

    /// Whether a warning a client can cause (a refused metrics scrape, an
    /// untrusted PROXY header, an accept pause) may be logged now, within
    /// the refusal budget of its own.
    pub(crate) fn may_log_warning(&self, now: Instant) -> bool {
        self.warnings.allow(now)
    }

    /// Whether a refusal may be logged now; sums up the suppressed ones of a
    /// second that is over.
    pub(crate) fn may_log_refusal(&self, now: Instant) -> bool {
        self.refusals.allow(now)
    }

    /// Sums up suppressed refusal lines of a second that is over (called
    /// periodically, so that a flood that stops is still reported).
    pub fn tick(&self, now: Instant) {
        self.refusals.flush(now);
        self.warnings.flush(now);
        self.notifier.tick(now);
    }
}

/// One connection's bookkeeping: what its log line will say.
#[derive(Debug)]
pub(crate) struct Observer {
    books: Arc<Books>,
    clients: Arc<ClientTable>,
    conn: u64,
    listener: SocketAddr,
    peer: SocketAddr,
    started: Instant,
    dest: Option<String>,
    /// What most connections never set, in a box allocated when one of it
    /// is (an idle relay does not hold its room).
    rare: Option<Box<Rare>>,
    source: Option<Source>,
    reply: Option<ReplyCode>,
    stats: RelayStats,
    /// When the first reply went out (the handshake's time).
    replied_at: Option<Instant>,
    /// A relay is counted as open.
    relaying: bool,
    /// The address reached (direct) and how many attempts it took.
    reached: Option<(SocketAddr, u32)>,
    /// Attempts the outbound connection took, until `SockUp` names the address.
    attempts: u32,
    /// The connection's entry among the open ones (`ctl conns`), removed
    /// when the observer is dropped.
    listed: Option<crate::observe::conns::Listed>,
    /// The client its limits and bytes count under, once admission chose
    /// it (`[limits] key`); its address's until then.
    client: Option<ClientKey>,
}

/// What an [`Observer`] holds for few connections.
#[derive(Debug, Default)]
struct Rare {
    /// Where the destination's name came from when it was sniffed from the
    /// client's first bytes (`sni`, `host`).
    sniffed: Option<&'static str>,
    /// The request's USERID (set when not empty).
    user_id: Vec<u8>,
    /// The parent proxy the connection went through (passwords hidden).
    via: Option<String>,
    /// The subject name of the client's verified TLS certificate.
    cert: Option<String>,
    /// What the last parent tried answered, or why it could not be used,
    /// when that ended the connection (the `closed` line's reason).
    parent_failure: Option<String>,
}

impl Observer {
    /// Bookkeeping for connection `conn` from `peer` on `listener`, accepted at
    /// `started` (the runtime's clock).
    pub(crate) fn new(
        books: Arc<Books>,
        clients: Arc<ClientTable>,
        conn: u64,
        listener: SocketAddr,
        peer: SocketAddr,
        started: Instant,
    ) -> Observer {
        Observer {
            books,
            clients,
            conn,
            listener,
            peer,
            started,
            dest: None,
            rare: None,
            source: None,
            reply: None,
            stats: RelayStats::default(),
            replied_at: None,
            relaying: false,
            reached: None,
            attempts: 0,
            listed: None,
            client: None,
        }
    }

    /// The client the connection's refusals and bytes count under from now
    /// on (an identity, with `[limits] key`).
    pub(crate) fn set_client(&mut self, key: ClientKey) {
        self.client = Some(key);
    }

    /// The rarely set fields, to change (allocated on first use).
    fn rare(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    /// The client the connection counts under.
    fn client_key(&self) -> ClientKey {
        self.client
            .clone()
            .unwrap_or_else(|| ClientKey::of(self.peer.ip()))
    }

    /// Keeps the connection's entry among the open ones up to date (and
    /// listed while the observer lives).
    pub(crate) fn list(&mut self, listed: crate::observe::conns::Listed) {
        self.listed = Some(listed);
    }

    /// The connection's entry among the open ones, if it is listed.
    pub(crate) fn entry(&self) -> Option<&Arc<crate::observe::conns::ConnEntry>> {
        self.listed.as_ref().map(|l| l.entry())
    }

    /// Changes the entry, if listed.
    fn listing(&self, change: impl FnOnce(&mut crate::observe::conns::Known)) {
        if let Some(entry) = self.entry() {
            change(&mut entry.info());
        }
    }

    /// The driver is connecting through `parent` (shown as the route shows
    /// it, passwords hidden): the `closed` line names it, whether it works
    /// or not.
    pub(crate) fn via_parent(&mut self, parent: &socks4_acl::Parent) {
        let rare = self.rare();
        rare.via = Some(parent.to_string());
        rare.parent_failure = None;
        self.listing(|i| i.rare().via = Some(parent.to_string()));
    }

    /// The parent being tried failed: `why` is its answer (`answered 403
    /// Forbidden`, `refused with 91`) or what went wrong reaching it, and
    /// becomes the `closed` line's reason if the connection ends on it.
    pub(crate) fn parent_failed(&mut self, why: String) {
        self.rare().parent_failure = Some(why);
    }

    /// The first reply: the handshake took from accept until now.
    fn replied(&mut self, now: Instant) {
        if self.replied_at.is_none() {
            self.replied_at = Some(now);
            let took = now.saturating_duration_since(self.started);
            self.books.handshake.observe(took.as_secs_f64());
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
        if self.listed.is_some() {
            self.update_listing(event);
        }
        let books = self.books.clone();
        let counters = &books.counters;
        let conn = self.conn;
        match event {
            Event::Connection { peer, local } => {
                tracing::debug!(target: "socks4d", conn, %peer, %local, "connection");
            }
            Event::ClientCertificate { common_name } => {
                self.rare().cert = Some(common_name.clone());
                tracing::debug!(target: "socks4d", conn, cert = common_name, "client certificate");
            }
            Event::Sniffed { name, kind, dest } => {
                self.rare().sniffed = Some(kind.label());
                tracing::debug!(target: "socks4d", conn, name, sniffed = kind.label(), %dest, "sniffed");
            }
            Event::Request {
                command,
                dest,
                user_id,
            } => {
                self.dest = Some(dest.clone());
                if !user_id.is_empty() {
                    self.rare().user_id = user_id.clone();
                }
                tracing::debug!(target: "socks4d", conn, %command, dest, "request");
            }
            Event::Decided { verdict } => self.decided(verdict, now),
            Event::Denied { source, .. } => self.source = Some(*source),
            Event::Notify { .. } => self.notify(event, now),
            Event::Attempts { attempts } => self.attempts = *attempts,
            Event::SockUp { dest, source } => {
                self.reached = Some((*dest, self.attempts.max(1)));
                if let Some(rare) = self.rare.as_deref_mut() {
                    rare.parent_failure = None;
                }
                self.source = Some(*source);
                self.reply = Some(ReplyCode::Granted);
                counters.reply(ReplyCode::Granted);
                counters.relay_opened();
                self.relaying = true;
                self.replied(now);
                tracing::debug!(target: "socks4d", conn, %dest, "sock_up");
            }
            Event::BindUp { listen } => {
                counters.reply(ReplyCode::Granted);
                self.replied(now);
                tracing::debug!(target: "socks4d", conn, %listen, "bind_up");
            }
            Event::Rejected { code, reason } => self.rejected(*code, reason, now),
            Event::SockDown { stats } => self.sock_down(stats),
            Event::Routed { parent, dest } => {
                self.rare().via = Some(parent.to_string());
                tracing::debug!(target: "socks4d", conn, %parent, %dest, "routed");
            }
            Event::DnsLookup { host, addrs } => {
                counters.lookup("ok");
                tracing::debug!(target: "socks4d", conn, host, ?addrs, "dns_lookup");
            }
            Event::LateAddresses { host, addrs } => {
                tracing::debug!(target: "socks4d", conn, host, ?addrs, "dns_late");
            }
            Event::Ident { outcome } => ident(counters, conn, outcome.as_ref()),
            Event::Disconnected { reason } => self.closed(*reason, now),
            _ => {}
        }
    }

    /// What the open connections' list shows of an event.
    fn update_listing(&self, event: &Event) {
        use crate::observe::conns::ConnState;
        self.listing(|i| match event {
            Event::ClientCertificate { common_name } => {
                i.rare().cert = Some(common_name.clone());
            }
            Event::Sniffed { kind, .. } => i.rare().sniffed = Some(kind.label()),
            Event::Request { dest, user_id, .. } => {
                i.dest = Some(dest.as_str().into());
                if !user_id.is_empty() {
                    i.rare().user = Some(String::from_utf8_lossy(user_id).into());
                }
            }
            Event::Decided { verdict } => i.rule = Some(verdict.source),
            Event::Denied { source, .. } => i.rule = Some(*source),
            Event::SockUp { dest, source } => {
                i.reached = Some(*dest).filter(|a| !a.ip().is_unspecified());
                i.rule = Some(*source);
                i.state = ConnState::Relaying;
            }
            Event::Routed { parent, .. } => i.rare().via = Some(parent.to_string()),
            Event::Ident { outcome } => {
                i.rare().ident = Some(match outcome {
                    Some(socks4_ident::Outcome::UserId(u)) => {
                        String::from_utf8_lossy(&u.user_id).into()
                    }
                    Some(other) => format!("({other})"),
                    None => "(no answer)".to_owned(),
                })
            }
            _ => {}
        });
    }

    /// The policy decided: a rule's `log` is logged whatever the verbosity.
    fn decided(&mut self, verdict: &socks4_acl::Verdict, now: Instant) {
        self.source = Some(verdict.source);
        // A flood of blocked requests stays within the refusal budget.
        if verdict.log && (verdict.is_pass() || self.books.may_log_refusal(now)) {
            // A rule's `log`: this decision is logged whatever the
            // verbosity (at warn, which -q keeps).
            let decision = if verdict.is_pass() { "pass" } else { "block" };
            let rare = self.rare.as_deref();
            let user = String::from_utf8_lossy(rare.map_or(&[][..], |r| &r.user_id));
            tracing::warn!(
                target: "socks4d::rule",
                conn = self.conn, client = %self.peer, dest = self.dest.as_deref().unwrap_or("-"),
                user = %user, cert = rare.and_then(|r| r.cert.as_deref()).unwrap_or("-"),
                rule = %verdict.source, decision,
                "rule decided"
            );
        }
    }

    /// A rule with `notify` decided: logged, and the command raised.
    fn notify(&self, event: &Event, now: Instant) {
        let Event::Notify {
            peer,
            reply,
            source,
            rule,
            command,
            dest,
            user_id,
        } = event
        else {
            return;
        };
        let event = if reply.is_some() { "denied" } else { "granted" };
        let rule = format!("{source}: {rule}");
        let user = String::from_utf8_lossy(user_id);
        let command = match command {
            socks4_proto::Command::Connect => "connect",
            socks4_proto::Command::Bind => "bind",
        };
        let reply = reply.map(|c| c.as_u8());
        // Its own target, at warn: kept by -q, and filterable apart; a
        // flood stays within the budget (the command's own rate is
        // `[notify] rate`).
        if self.books.may_log_warning(now) {
            tracing::warn!(
                target: "socks4d::notify",
                conn = self.conn, event, client = %peer, listener = %self.listener, user = %user,
                dest = dest.as_str(), command, rule = rule.as_str(), reply = reply.unwrap_or(0),
                "notification"
            );
        }
        let notice = crate::observe::notify::Notice {
            client: *peer,
            listener: self.listener,
            reply,
            user_id,
            dest,
            command,
            rule,
        };
        self.books.notifier.raise(&notice, now);
    }

    /// A refusal went out: counted by reply, lookup failure and limit.
    fn rejected(&mut self, code: ReplyCode, reason: &CloseReason, now: Instant) {
        let books = self.books.clone();
        let counters = &books.counters;
        self.reply = Some(code);
        counters.reply(code);
        self.replied(now);
        match reason {
            CloseReason::ResolveFailed(e) => counters.lookup(e.label()),
            CloseReason::TimedOut(Timer::Resolve) => counters.lookup("timeout"),
            _ => {}
        }
        if let CloseReason::Limited(limit) = reason {
            counters.limited(*limit);
            self.clients.limited(self.client_key(), *limit);
        }
    }

    /// The relay ended: its bytes go to the counters and the client's books.
    fn sock_down(&mut self, stats: &RelayStats) {
        let counters = &self.books.counters;
        self.stats = *stats;
        if std::mem::take(&mut self.relaying) {
            counters.relay_closed();
        }
        counters.bytes(stats.client_to_dest, stats.dest_to_client);
        let key = self.client_key();
        self.clients
            .bytes(key, stats.client_to_dest, stats.dest_to_client);
    }

    fn closed(&self, reason: CloseReason, now: Instant) {
        self.books.counters.outcome(&reason);
        if let CloseReason::TlsFailed(kind) = reason {
            self.books.counters.tls_failure("client", kind);
        }
        // A refused connection costs a log line only within the budget: a flood
        // of bad clients cannot fill the disk.
        let refused = self.reply != Some(ReplyCode::Granted);
        if refused && !self.books.may_log_refusal(now) {
            return;
        }
        let rule = self.source.map(|s| s.to_string()).unwrap_or_default();
        let reply = self.reply.map_or(0, |c| c.as_u8());
        let duration_ms = now.saturating_duration_since(self.started).as_millis() as u64;
        let rare = self.rare.as_deref();
        let user = String::from_utf8_lossy(rare.map_or(&[][..], |r| &r.user_id));
        let dest = self.dest.as_deref().unwrap_or("-");
        let sniffed = rare.and_then(|r| r.sniffed).unwrap_or("-");
        let via = rare.and_then(|r| r.via.as_deref()).unwrap_or("direct");
        let cert = rare.and_then(|r| r.cert.as_deref()).unwrap_or("-");
        let reached = self
            .reached
            .filter(|(a, _)| !a.ip().is_unspecified())
            .map_or_else(|| "-".to_owned(), |(a, _)| a.to_string());
        let attempts = self.reached.map_or(0, |(_, n)| n);
        let why = match (rare.and_then(|r| r.parent_failure.as_ref()), reason) {
            (Some(answer), CloseReason::ParentFailed(_)) => answer.clone(),
            _ => reason.to_string(),
        };
        tracing::info!(
            target: "socks4d",
            conn = self.conn, listener = %self.listener, client = %self.peer, dest, user = %user,
            cert, rule, via, reached, attempts, reply, outcome = reason.label(), reason = %why,
            bytes_up = self.stats.client_to_dest, bytes_down = self.stats.dest_to_client,
            duration_ms, sniffed, "closed"
        );
        if crate::observe::logging::access_events() {
            let handshake_ms = self.replied_at.map_or(duration_ms, |at| {
                at.saturating_duration_since(self.started).as_millis() as u64
            });
            let line = AccessLine {
                dest,
                user: &user,
                cert,
                rule: &rule,
                via,
                reached: &reached,
                reply,
                outcome: reason.label(),
                reason: &why,
                handshake_ms,
                duration_ms,
                sniffed,
            };
            self.access(&line, refused);
        }
    }

    /// The access log's line (target [`ACCESS_TARGET`]): the `closed` line's
    /// data, in the documented order, at info for a granted connection and
    /// at warn for one that was not.
    ///
    /// [`ACCESS_TARGET`]: crate::observe::logging::ACCESS_TARGET
    fn access(&self, l: &AccessLine<'_>, refused: bool) {
        macro_rules! access {
            ($level:expr) => {
                tracing::event!(
                    target: "socks4d::access", $level,
                    conn = self.conn, listener = %self.listener, client = %self.peer,
                    user = l.user, cert = l.cert, dest = l.dest, reached = l.reached,
                    via = l.via, rule = l.rule, reply = l.reply, outcome = l.outcome,
                    reason = l.reason, bytes_up = self.stats.client_to_dest,
                    bytes_down = self.stats.dest_to_client, handshake_ms = l.handshake_ms,
                    duration_ms = l.duration_ms, sniffed = l.sniffed
                )
            };
        }
        if refused {
            access!(tracing::Level::WARN);
        } else {
            access!(tracing::Level::INFO);
        }
    }
}

/// What a connection's `closed` line says that the access line says too.
struct AccessLine<'a> {
    dest: &'a str,
    user: &'a str,
    cert: &'a str,
    rule: &'a str,
    via: &'a str,
    reached: &'a str,
    reply: u8,
    outcome: &'static str,
    reason: &'a str,
    handshake_ms: u64,
    duration_ms: u64,
    sniffed: &'a str,
}

/// identd answered (or not): counted and logged.
fn ident(
    counters: &crate::observe::counters::Counters,
    conn: u64,
    outcome: Option<&socks4_ident::Outcome>,
) {
    counters.ident(match outcome {
        Some(socks4_ident::Outcome::UserId(_)) => "user",
        Some(_) => "error",
        None => "no_answer",
    });
    let ident = outcome.map_or_else(|| "no answer".to_owned(), |o| o.to_string());
    tracing::info!(target: "socks4d", conn, ident, "ident");
}
