//! The open connections, for `ctl conns` and `ctl kill`: [`ConnTable`] holds
//! one [`ConnEntry`] per connection that took a slot (so it is bounded by
//! `max_connections`), from its start until it ends (a `Listed` handle
//! removes it when dropped). The connection's observer fills it in from the
//! session's events (identity, destination, rule, route), the driver sets
//! its phase, the relay its byte counts as they move; the housekeeping
//! computes each one's rate once a second. Killing an entry wakes its
//! connection, which ends with the outcome `killed`.
//!
//! Times are arguments (the runtime's clock): nothing here reads a clock.

use event_listener::Event as Notify;
use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::{Duration, Instant};

/// A connection's phase, as `ctl conns` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnState {
    /// From accept to the policy's decision (TLS, the request, IDENT).
    #[default]
    Handshake,
    /// The destination's name is being looked up.
    Resolving,
    /// Connecting to the destination or a parent, or waiting for BIND's
    /// inbound connection.
    Connecting,
    /// Bytes move both ways.
    Relaying,
    /// One direction has ended (half-closed); the other still moves.
    Draining,
}

impl ConnState {
    /// Its name in `ctl conns`.
    pub fn name(self) -> &'static str {
        match self {
            ConnState::Handshake => "handshake",
            ConnState::Resolving => "resolving",
            ConnState::Connecting => "connecting",
            ConnState::Relaying => "relaying",
            ConnState::Draining => "draining",
        }
    }
}

/// What is known about one connection: its client, who it says or proves
/// it is, where it goes and how.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConnInfo {
    /// The client's address and port (behind a PROXY header: the one the
    /// header named).
    pub client: Option<SocketAddr>,
    /// The phase.
    pub state: ConnState,
    /// The subject name of the client's verified TLS certificate.
    pub cert: Option<String>,
    /// The request's USERID: a claim, proven by nothing.
    pub user: Option<String>,
    /// What identd answered for the connection (a user id, or its error).
    pub ident: Option<String>,
    /// The destination as asked: a name (SOCKS4a) or an address and port.
    pub dest: Option<String>,
    /// Where `dest`'s name came from when a sniffing listener read it from
    /// the client's first bytes: `sni` or `host`.
    pub sniffed: Option<String>,
    /// The address reached (direct), once connected.
    pub reached: Option<SocketAddr>,
    /// The parent proxy it goes through (passwords hidden), if any.
    pub via: Option<String>,
    /// The rule (or list) that decided.
    pub rule: Option<String>,
}

/// What an entry holds of [`ConnInfo`] while its connection lasts, compact
/// (an idle relay holds it for hours): the rule as the policy's `Source`,
/// formatted only when `ctl conns` asks, and what most connections never set
/// (a certificate, a USERID, identd's answer, a parent, a sniffed name) in
/// one box allocated only when one of them is.
#[derive(Debug, Default)]
pub(crate) struct Known {
    /// The client's address and port.
    pub(crate) client: Option<SocketAddr>,
    /// The phase.
    pub(crate) state: ConnState,
    /// The destination as asked.
    pub(crate) dest: Option<Box<str>>,
    /// The address reached (direct), once connected.
    pub(crate) reached: Option<SocketAddr>,
    /// The rule (or list) that decided.
    pub(crate) rule: Option<socks4_acl::Source>,
    rare: Option<Box<Rare>>,
}

/// The fields of [`Known`] most connections never set.
#[derive(Debug, Default)]
pub(crate) struct Rare {
    /// The subject name of the client's verified TLS certificate.
    pub(crate) cert: Option<String>,
    /// The request's USERID.
    pub(crate) user: Option<String>,
    /// What identd answered.
    pub(crate) ident: Option<String>,
    /// Where `dest`'s name came from when sniffed: `sni` or `host`.
    pub(crate) sniffed: Option<&'static str>,
    /// The parent proxy it goes through (passwords hidden).
    pub(crate) via: Option<String>,
}

impl Known {
    /// The rarely set fields, to change (allocated on first use).
    pub(crate) fn rare(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    /// As `ctl conns` shows it.
    fn info(&self) -> ConnInfo {
        let rare = self.rare.as_deref();
        ConnInfo {
            client: self.client,
            state: self.state,
            cert: rare.and_then(|r| r.cert.clone()),
            user: rare.and_then(|r| r.user.clone()),
            ident: rare.and_then(|r| r.ident.clone()),
            dest: self.dest.as_deref().map(str::to_owned),
            sniffed: rare.and_then(|r| r.sniffed).map(str::to_owned),
            reached: self.reached,
            via: rare.and_then(|r| r.via.clone()),
            rule: self.rule.map(|r| r.to_string()),
        }
    }
}

/// One open connection.
#[derive(Debug)]
pub struct ConnEntry {
    id: u64,
    listener: SocketAddr,
    started: Instant,
    info: Mutex<Known>,
    up: AtomicU64,
    down: AtomicU64,
    /// Bytes each way at the last tick, when, and the rate since.
    rate: Mutex<Rate>,
    killed: AtomicBool,
    kill: Notify,
}

#[derive(Debug, Clone, Copy)]
struct Rate {
    at: Instant,
    up: u64,
    down: u64,
    per_second: (u64, u64),
}

impl ConnEntry {
    /// The connection's id (the `conn` of its log lines).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// What is known about it, to change.
    pub(crate) fn info(&self) -> MutexGuard<'_, Known> {
        self.info.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets its phase.
    pub(crate) fn set_state(&self, state: ConnState) {
        self.info().state = state;
    }

    /// The relay's byte counts so far (client to destination, back).
    pub(crate) fn set_bytes(&self, up: u64, down: u64) {
        self.up.store(up, Ordering::Relaxed);
        self.down.store(down, Ordering::Relaxed);
    }

    /// Whether an operator killed it.
    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }

    /// Completes once it is killed (`true`) or `is_cut` says relays are cut
    /// (`false`): a relay waits for both on this one listener, which
    /// [`ConnTable::wake_all`] wakes when relays are cut.
    pub(crate) async fn killed_or_cut(&self, is_cut: impl Fn() -> bool) -> bool {
        let ended = || (self.is_killed() || is_cut()).then(|| self.is_killed());
        loop {
            if let Some(killed) = ended() {
                return killed;
            }
            let listener = self.kill.listen();
            if let Some(killed) = ended() {
                return killed;
            }
            listener.await;
        }
    }

    /// Completes once it is killed before its relay started (a relay sees
    /// the kill itself and reports its bytes): never while it relays.
    ///
    /// Polled whenever its connection wakes: once the relay started, it
    /// drops its listener (an idle relay holds only the relay's own).
    pub(crate) async fn killed_before_relay(&self) {
        let mut listener: Option<event_listener::EventListener> = None;
        std::future::poll_fn(|cx| loop {
            if matches!(self.info().state, ConnState::Relaying | ConnState::Draining) {
                listener = None;
                return Poll::Pending;
            }
            if self.is_killed() {
                return Poll::Ready(());
            }
            match listener.as_mut() {
                None => listener = Some(self.kill.listen()),
                Some(l) => match Pin::new(l).poll(cx) {
                    Poll::Ready(()) => listener = None,
                    Poll::Pending => return Poll::Pending,
                },
            }
        })
        .await
    }

    /// A copy of what is known about it at `now`.
    pub fn view(&self, now: Instant) -> ConnView {
        let rate = *self.rate.lock().unwrap_or_else(|e| e.into_inner());
        ConnView {
            id: self.id,
            listener: self.listener,
            info: self.info().info(),
            age: now.saturating_duration_since(self.started),
            bytes_up: self.up.load(Ordering::Relaxed),
            bytes_down: self.down.load(Ordering::Relaxed),
            rate_up: rate.per_second.0,
            rate_down: rate.per_second.1,
        }
    }
}

/// One connection as `ctl conns` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ConnView {
    /// Its id.
    pub id: u64,
    /// The listener that accepted it.
    pub listener: SocketAddr,
    /// What is known about it.
    #[serde(flatten)]
    pub info: ConnInfo,
    /// Time since it was accepted.
    #[serde(serialize_with = "seconds")]
    pub age: Duration,
    /// Bytes relayed from the client to the destination so far.
    pub bytes_up: u64,
    /// Bytes relayed from the destination to the client so far.
    pub bytes_down: u64,
    /// Bytes per second from the client, over the last second.
    pub rate_up: u64,
    /// Bytes per second to the client, over the last second.
    pub rate_down: u64,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_millis() as f64) / 1000.0)
}

/// Shards of the table: connections opening and closing on many threads
/// seldom wait for one another.
const SHARDS: usize = 16;

/// The open connections (see the [module docs](self)).
#[derive(Debug, Default)]
pub struct ConnTable {
    shards: [Mutex<BTreeMap<u64, Arc<ConnEntry>>>; SHARDS],
    killed: AtomicU64,
}

/// A connection's place in the [`ConnTable`]; dropping it removes the entry.
#[derive(Debug)]
pub(crate) struct Listed {
    table: Arc<ConnTable>,
    entry: Arc<ConnEntry>,
}

impl Listed {
    /// The entry.
    pub(crate) fn entry(&self) -> &Arc<ConnEntry> {
        &self.entry
    }
}

impl Drop for Listed {
    fn drop(&mut self) {
        self.table.shard(self.entry.id).remove(&self.entry.id);
    }
}

impl ConnTable {
    fn shard(&self, id: u64) -> MutexGuard<'_, BTreeMap<u64, Arc<ConnEntry>>> {
        self.shards[(id % SHARDS as u64) as usize]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Lists connection `id`, accepted on `listener` from `client` at `now`,
    /// until the handle returned is dropped.
    pub(crate) fn list(
        self: &Arc<Self>,
        id: u64,
        listener: SocketAddr,
        client: SocketAddr,
        now: Instant,
    ) -> Listed {
        let entry = Arc::new(ConnEntry {
            id,
            listener,
            started: now,
            info: Mutex::new(Known {
                client: Some(client),
                ..Known::default()
            }),
            up: AtomicU64::new(0),
            down: AtomicU64::new(0),
            rate: Mutex::new(Rate {
                at: now,
                up: 0,
                down: 0,
                per_second: (0, 0),
            }),
            killed: AtomicBool::new(false),
            kill: Notify::new(),
        });
        self.shard(id).insert(id, entry.clone());
        Listed {
            table: self.clone(),
            entry,
        }
    }

    /// The connections open now, by id.
    pub fn entries(&self) -> Vec<Arc<ConnEntry>> {
        let mut all: Vec<Arc<ConnEntry>> = (0..SHARDS as u64)
            .flat_map(|i| self.shard(i).values().cloned().collect::<Vec<_>>())
            .collect();
        all.sort_by_key(|e| e.id);
        all
    }

    /// How many connections are listed.
    pub fn len(&self) -> usize {
        (0..SHARDS as u64).map(|i| self.shard(i).len()).sum()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ends these connections at once (outcome `killed`); how many were
    /// still open and not killed already.
    pub fn kill(&self, entries: &[Arc<ConnEntry>]) -> usize {
        let mut n = 0;
        for entry in entries {
            if !entry.killed.swap(true, Ordering::SeqCst) {
                n += 1;
                entry.kill.notify(usize::MAX);
            }
        }
        self.killed.fetch_add(n as u64, Ordering::Relaxed);
        n
    }

    /// Wakes every connection's listener, killing none: relays are cut (the
    /// shutdown's grace period is over) and each relay's
    /// [`killed_or_cut`](ConnEntry::killed_or_cut) finds it out.
    pub(crate) fn wake_all(&self) {
        for i in 0..SHARDS as u64 {
            for entry in self.shard(i).values() {
                entry.kill.notify(usize::MAX);
            }
        }
    }

    /// Connections killed since the start.
    pub fn killed_total(&self) -> u64 {
        self.killed.load(Ordering::Relaxed)
    }

    /// Once a second: each connection's rate over the time since the last
    /// tick.
    pub fn tick(&self, now: Instant) {
        for entry in self.entries() {
            let (up, down) = (
                entry.up.load(Ordering::Relaxed),
                entry.down.load(Ordering::Relaxed),
            );
            let mut rate = entry.rate.lock().unwrap_or_else(|e| e.into_inner());
            let ms = now.saturating_duration_since(rate.at).as_millis() as u64;
            if ms == 0 {
                continue;
            }
            let per = |new: u64, old: u64| new.saturating_sub(old).saturating_mul(1000) / ms;
            *rate = Rate {
                at: now,
                up,
                down,
                per_second: (per(up, rate.up), per(down, rate.down)),
            };
        }
    }
}
