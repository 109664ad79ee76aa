//! Per-client bookkeeping: what each client ([`ClientKey`]: an address, or
//! with `[limits] key` a verified identity) holds now (connections,
//! BIND listeners, name lookups) and has done (bytes, refusals, granted
//! requests in the rate window), with the limits on it: connection, BIND and
//! lookup caps, connection rate, bandwidth, traffic quota. A client is an
//! IPv4 address, or an IPv6 /64 (one site's hosts share it, as IPv4 hosts
//! behind NAT share an address).
//!
//! The table is bounded ([`ClientLimits::tracked`] addresses, whatever limits
//! are on): beyond it, the least recently seen address that holds nothing
//! (no connection, BIND listener or lookup) is forgotten, rate window and
//! all. Addresses that hold something are kept (their number is bounded by
//! `max_connections`) and stay out of the eviction order, so that making room
//! costs the same however many clients there are. Quota usage is not in the
//! entries: it lives in the [`QuotaBook`], which eviction does not touch.
//! Sharded by address so that connections of different clients rarely meet
//! on a lock.

pub use crate::limits::client_key::{ClientKey, LimitKey};
use crate::limits::meter::{unix_now, Meter, Pacer};
use crate::limits::quota_book::QuotaBook;
use socks4_acl::limit::{Bandwidth, ConnectionRate, Period, Quota, RateWindow};
use socks4_acl::{Source, Verdict};
use socks4_proto::server::Limit;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

/// How many shards the table has.
const SHARDS: usize = 16;

/// The limits on one client and the table's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientLimits {
    /// Connections one client may have open (handshakes and relays).
    pub max_connections: usize,
    /// BIND listeners one client may have open.
    pub max_binds: usize,
    /// SOCKS4a name lookups one client may have running; more wait.
    pub max_lookups: usize,
    /// Client addresses remembered (and clients' quota usage kept).
    pub tracked: usize,
    /// Each direction of a client's relays together, unless a rule says.
    pub bandwidth: Option<Bandwidth>,
    /// Granted requests a client may make in a sliding window.
    pub rate: Option<ConnectionRate>,
    /// A client's traffic per calendar period, unless a rule says.
    pub quota: Option<Quota>,
    /// What the limits key on: the address, or a verified identity
    /// ([`LimitKey`]).
    pub key: LimitKey,
}

impl ClientLimits {
    /// Caps only (no bandwidth, rate or quota; lookups unlimited).
    pub fn caps(max_connections: usize, max_binds: usize, tracked: usize) -> ClientLimits {
        ClientLimits {
            max_connections,
            max_binds,
            max_lookups: usize::MAX,
            tracked,
            bandwidth: None,
            rate: None,
            quota: None,
            key: LimitKey::Address,
        }
    }
}

/// What one client holds and has done.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientStats {
    /// Connections open now.
    pub active: u64,
    /// BIND listeners open now.
    pub binds: u64,
    /// Connections accepted.
    pub connections: u64,
    /// Bytes relayed from the client.
    pub bytes_up: u64,
    /// Bytes relayed to the client.
    pub bytes_down: u64,
    /// Requests or connections refused by a per-client limit, by limit label.
    pub limited: BTreeMap<&'static str, u64>,
    /// Traffic in the current quota periods, by period name.
    pub quota_used: BTreeMap<&'static str, u64>,
}

#[derive(Debug, Default)]
struct Entry {
    stats: ClientStats,
    /// When it was last seen (a sequence number); its place in the eviction
    /// order while it holds nothing.
    seen: u64,
    /// Granted requests in the connection rate's window.
    rate: RateWindow,
    /// Name lookups running now.
    lookups: usize,
    /// Bandwidth buckets, by the rule that set the bandwidth (`None`: the
    /// server-wide one), while a relay uses them.
    pacers: Vec<(Option<Source>, Arc<Pacer>)>,
}

impl Entry {
    /// Holds something that eviction must not drop: a connection, a BIND
    /// listener or a lookup (whose counts would be lost).
    fn holds(&self) -> bool {
        self.stats.active > 0 || self.stats.binds > 0 || self.lookups > 0
    }
}

#[derive(Debug, Default)]
struct Shard {
    entries: HashMap<ClientKey, Entry>,
    /// `seen` → key of the entries that hold nothing, oldest first: the
    /// first is the one to evict.
    order: BTreeMap<u64, ClientKey>,
}

/// The table.
#[derive(Debug)]
pub struct ClientTable {
    shards: Vec<Mutex<Shard>>,
    limits: RwLock<ClientLimits>,
    clock: AtomicU64,
    hasher: std::collections::hash_map::RandomState,
    quota: QuotaBook,
    lookup_done: event_listener::Event,
}

impl ClientTable {
    /// An empty table with these limits.
    pub fn new(limits: ClientLimits) -> ClientTable {
        ClientTable {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            limits: RwLock::new(limits),
            clock: AtomicU64::new(0),
            hasher: Default::default(),
            quota: QuotaBook::new(limits.tracked),
            lookup_done: event_listener::Event::new(),
        }
    }

    /// Replaces the limits (a reload); counts are kept.
    pub fn set_limits(&self, limits: ClientLimits) {
        *self.limits.write().unwrap_or_else(|e| e.into_inner()) = limits;
        self.quota.set_capacity(limits.tracked);
        self.lookup_done.notify(usize::MAX);
    }

    /// The limits now.
    pub fn limits(&self) -> ClientLimits {
        *self.limits.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Clients' quota usage, kept apart from the entries.
    pub fn quota_book(&self) -> &QuotaBook {
        &self.quota
    }

    fn shard(&self, key: &ClientKey) -> &Mutex<Shard> {
        &self.shards[self.hasher.hash_one(key) as usize % SHARDS]
    }

    /// Runs `f` on `key`'s stats (the entry made if new, marked as just seen).
    fn with<T>(&self, key: ClientKey, f: impl FnOnce(&mut ClientStats) -> T) -> T {
        self.with_entry(key, |e| f(&mut e.stats))
    }

    /// Runs `f` on `key`'s entry (made if new, marked as just seen), then
    /// evicts the least recently seen entries that hold nothing beyond the
    /// table's size (each eviction takes the first of the order: no scan).
    fn with_entry<T>(&self, key: ClientKey, f: impl FnOnce(&mut Entry) -> T) -> T {
        let per_shard = (self.limits().tracked / SHARDS).max(1);
        let seen = self.clock.fetch_add(1, Ordering::Relaxed);
        let mut shard = self.shard(&key).lock().unwrap_or_else(|e| e.into_inner());
        let Shard { entries, order } = &mut *shard;
        let entry = entries.entry(key.clone()).or_default();
        order.remove(&entry.seen);
        entry.seen = seen;
        let out = f(entry);
        if !entry.holds() {
            order.insert(seen, key.clone());
        }
        while entries.len() > per_shard {
            let Some((&s, k)) = order.iter().next() else {
                break; // every entry holds a connection: max_connections bounds them
            };
            if *k == key {
                break; // the one just touched is the newest
            }
            let k = k.clone();
            order.remove(&s);
            entries.remove(&k);
        }
        out
    }

    /// A new connection from `key`: counted, or refused when the client holds
    /// as many connections as it may.
    pub fn open(self: &Arc<Self>, key: ClientKey) -> Result<ClientGuard, Limit> {
        self.open_counting(key, true)
    }

    /// [`open`](Self::open); a refusal counted in the client's stats when
    /// `count` (else the caller's books count it).
    fn open_counting(self: &Arc<Self>, key: ClientKey, count: bool) -> Result<ClientGuard, Limit> {
        let max = self.limits().max_connections as u64;
        self.with(key.clone(), |s| {
            if s.active >= max {
                if count {
                    *s.limited.entry(Limit::Connections.label()).or_default() += 1;
                }
                return Err(Limit::Connections);
            }
            s.active += 1;
            s.connections += 1;
            Ok(())
        })?;
        Ok(ClientGuard {
            clients: self.clone(),
            key,
            bind: false,
        })
    }

    /// A BIND listener for `key`: counted, or refused at the client's cap.
    pub fn open_bind(self: &Arc<Self>, key: ClientKey) -> Result<ClientGuard, Limit> {
        let max = self.limits().max_binds as u64;
        self.with(key.clone(), |s| {
            if s.binds >= max {
                // Counted by the connection's books when it is refused.
                return Err(Limit::BindListeners);
            }
            s.binds += 1;
            Ok(())
        })?;
        Ok(ClientGuard {
            clients: self.clone(),
            key,
            bind: true,
        })
    }

    /// A place for one of `key`'s name lookups under its cap, if one is free.
    pub fn try_lookup(self: &Arc<Self>, key: ClientKey) -> Option<LookupPermit> {
        self.try_lookups(key, 1)
    }

    /// `n` places at once for `key`'s questions to nameservers under its
    /// cap (at most the cap: a cap of one lets a two-question lookup run),
    /// if they are free.
    fn try_lookups(self: &Arc<Self>, key: ClientKey, n: usize) -> Option<LookupPermit> {
        let max = self.limits().max_lookups;
        let n = n.clamp(1, max.max(1));
        self.with_entry(key.clone(), |e| {
            (e.lookups + n <= max).then(|| {
                e.lookups += n;
            })
        })?;
        Some(LookupPermit {
            clients: self.clone(),
            key,
            n,
        })
    }

    /// A place for one of `key`'s name lookups under its cap: at once if one
    /// is free, else once one of its lookups ends (so that one client never
    /// holds more than its share of the server's lookups).
    pub async fn lookup(self: &Arc<Self>, key: ClientKey) -> LookupPermit {
        self.lookups(key, 1).await
    }

    /// Like [`ClientTable::lookup`], for a lookup that asks `n` questions
    /// at once (AAAA and A: two), each one of the server's `max_lookups`:
    /// `n` places under the cap, so that the cap bounds the client's share
    /// of the server's questions.
    pub async fn lookups(self: &Arc<Self>, key: ClientKey, n: usize) -> LookupPermit {
        loop {
            let done = self.lookup_done.listen();
            if let Some(permit) = self.try_lookups(key.clone(), n) {
                return permit;
            }
            done.await;
        }
    }

    /// Admits a request the policy passed with `verdict`: the client's
    /// connection rate (the request counted, to be taken back unless it is
    /// granted), its quota, and the meter for its relay (bandwidth, quota);
    /// or the limit that refuses it.
    pub fn admit(
        self: &Arc<Self>,
        key: ClientKey,
        now: Instant,
        verdict: &Verdict,
    ) -> Result<(Option<RateTicket>, Meter), Limit> {
        let limits = self.limits();
        let quota = verdict.quota.or(limits.quota);
        let bandwidth = verdict.bandwidth.or(limits.bandwidth);
        let rule = verdict.bandwidth.map(|_| verdict.source);
        let (ticket, mut meter) = self.with_entry(key.clone(), |e| {
            let mut meter = Meter::default();
            let ticket = match limits.rate {
                Some(rate) => match e.rate.acquire(now, rate) {
                    Some(at) => Some(at),
                    None => return Err(Limit::Rate),
                },
                None => None,
            };
            if let Some(bw) = bandwidth {
                let shared = e
                    .pacers
                    .iter()
                    .find(|(r, p)| *r == rule && p.rate() == bw.bytes_per_second);
                let pacer = match shared {
                    Some((_, p)) => p.clone(),
                    None => {
                        let p = Arc::new(Pacer::new(bw));
                        e.pacers.push((rule, p.clone()));
                        p
                    }
                };
                meter.pacer = Some(pacer);
            }
            Ok((ticket, meter))
        })?;
        let ticket = ticket.map(|at| RateTicket {
            clients: self.clone(),
            key: key.clone(),
            at,
            granted: false,
        });
        // Quota usage is booked only for requests the rate let through (a
        // refused request never makes a record), apart from the entry.
        if let Some(q) = quota {
            let unix = unix_now();
            let usage = self.quota.usage(key, q.period, unix);
            if usage.total(unix) >= q.bytes.0 {
                return Err(Limit::Quota); // the ticket, dropped, is taken back
            }
            meter.quota = Some((usage, q.bytes.0));
        }
        Ok((ticket, meter))
    }

    /// Forgets bandwidth buckets no relay uses any more, and quota records
    /// worth nothing (periodically).
    pub fn tidy(&self) {
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            for e in shard.entries.values_mut() {
                e.pacers.retain(|(_, p)| Arc::strong_count(p) > 1);
            }
        }
        self.quota.tidy(unix_now());
    }

    /// Every client's traffic in its quota periods: (client, period, period
    /// number, bytes), for the state file.
    pub fn usage(&self) -> Vec<(ClientKey, Period, u64, u64)> {
        self.quota.all()
    }

    /// Restores a client's traffic in a period (from the state file); a period
    /// that is over is ignored.
    pub fn restore_usage(&self, key: ClientKey, period: Period, index: u64, used: u64) {
        self.quota.restore(key, period, index, used, unix_now());
    }

    /// Counts a refusal of `key` by `limit` decided elsewhere.
    pub fn limited(&self, key: ClientKey, limit: Limit) {
        self.with(key, |s| *s.limited.entry(limit.label()).or_default() += 1);
    }

    /// Adds relayed bytes to `key`'s totals.
    pub fn bytes(&self, key: ClientKey, up: u64, down: u64) {
        self.with(key, |s| {
            s.bytes_up += up;
            s.bytes_down += down;
        });
    }

    /// How many client addresses the table holds now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).entries.len())
            .sum()
    }

    /// Whether the table holds no client.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every tracked client, the largest byte total first.
    pub fn snapshot(&self) -> Vec<(ClientKey, ClientStats)> {
        let unix = unix_now();
        let mut all: Vec<(ClientKey, ClientStats)> = self
            .shards
            .iter()
            .flat_map(|s| {
                let s = s.lock().unwrap_or_else(|e| e.into_inner());
                s.entries
                    .iter()
                    .map(|(k, e)| (k.clone(), e.stats.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        for (key, stats) in &mut all {
            for (period, used) in self.quota.used_by(key, unix) {
                stats.quota_used.insert(period.name(), used);
            }
        }
        all.sort_by(|a, b| {
            (b.1.bytes_up + b.1.bytes_down)
                .cmp(&(a.1.bytes_up + a.1.bytes_down))
                .then(a.0.cmp(&b.0))
        });
        all
    }

    /// One client's entry, if tracked.
    pub fn get(&self, key: ClientKey) -> Option<ClientStats> {
        let shard = self.shard(&key).lock().unwrap_or_else(|e| e.into_inner());
        shard.entries.get(&key).map(|e| e.stats.clone())
    }
}

/// A request counted in its client's connection rate: taken back when
/// dropped, unless [`granted`](RateTicket::granted).
#[derive(Debug)]
pub struct RateTicket {
    clients: Arc<ClientTable>,
    key: ClientKey,
    at: Instant,
    granted: bool,
}

impl RateTicket {
    /// The request was granted: it stays counted.
    pub fn granted(mut self) {
        self.granted = true;
    }
}

impl Drop for RateTicket {
    fn drop(&mut self) {
        if !self.granted {
            let at = self.at;
            self.clients
                .with_entry(self.key.clone(), |e| e.rate.release(at));
        }
    }
}

/// One of a client's name lookups (its places under the cap: one per
/// question it asks at once), counted until dropped.
#[derive(Debug)]
pub struct LookupPermit {
    clients: Arc<ClientTable>,
    key: ClientKey,
    n: usize,
}

impl Drop for LookupPermit {
    fn drop(&mut self) {
        let n = self.n;
        self.clients.with_entry(self.key.clone(), |e| {
            e.lookups = e.lookups.saturating_sub(n)
        });
        self.clients.lookup_done.notify(usize::MAX);
    }
}

/// A connection or BIND listener counted for its client; uncounted on drop.
#[derive(Debug)]
pub struct ClientGuard {
    clients: Arc<ClientTable>,
    key: ClientKey,
    bind: bool,
}

impl ClientGuard {
    /// The client.
    pub fn key(&self) -> &ClientKey {
        &self.key
    }

    /// Counts the connection under `key` instead (an identity its
    /// handshake or identd revealed), under `key`'s cap: `key`'s place is
    /// taken before the old one is given back, so that the connection is
    /// never counted nowhere. On a refusal the old place stays held, and
    /// the refusal is not counted in `key`'s stats (the connection's books
    /// count it when it is refused).
    pub fn rekey(&mut self, key: ClientKey) -> Result<(), Limit> {
        if key == self.key {
            return Ok(());
        }
        let new = if self.bind {
            self.clients.open_bind(key)?
        } else {
            self.clients.open_counting(key, false)?
        };
        // `new` takes the old place's, which it gives back when dropped.
        let old = std::mem::replace(self, new);
        drop(old);
        Ok(())
    }
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        let bind = self.bind;
        self.clients.with(self.key.clone(), |s| {
            if bind {
                s.binds = s.binds.saturating_sub(1);
            } else {
                s.active = s.active.saturating_sub(1);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn table(max: usize, tracked: usize) -> Arc<ClientTable> {
        Arc::new(ClientTable::new(ClientLimits::caps(max, 1, tracked)))
    }

    #[test]
    fn ipv6_clients_are_grouped_by_64() {
        let a = ClientKey::of("2001:db8:1:2::1".parse().unwrap());
        let b = ClientKey::of("2001:db8:1:2:ffff::9".parse().unwrap());
        let c = ClientKey::of("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        assert_eq!(
            ClientKey::of("::ffff:192.0.2.1".parse().unwrap()),
            ClientKey::of("192.0.2.1".parse().unwrap())
        );
    }

    #[test]
    fn caps_hold_and_free_on_drop() {
        let t = table(2, 100);
        let k = ClientKey::of("192.0.2.1".parse().unwrap());
        let g1 = t.open(k.clone()).unwrap();
        let _g2 = t.open(k.clone()).unwrap();
        assert_eq!(t.open(k.clone()).unwrap_err(), Limit::Connections);
        let other = ClientKey::of("192.0.2.2".parse().unwrap());
        assert!(t.open(other).is_ok(), "another client is not affected");
        drop(g1);
        assert!(t.open(k.clone()).is_ok(), "a slot freed at once");
        let b = t.open_bind(k.clone()).unwrap();
        assert_eq!(t.open_bind(k.clone()).unwrap_err(), Limit::BindListeners);
        drop(b);
        assert!(t.open_bind(k.clone()).is_ok());
        let s = t.get(k).unwrap();
        assert_eq!(s.limited.get("connections"), Some(&1));
    }

    #[test]
    fn the_table_forgets_the_oldest_idle_client_beyond_its_size() {
        let t = table(10, SHARDS); // one entry per shard
        let busy = ClientKey::of("192.0.2.1".parse().unwrap());
        let _held = t.open(busy.clone()).unwrap();
        for i in 0..2000u32 {
            t.bytes(ClientKey::V4(Ipv4Addr::from(0x0a00_0000 + i)), 1, 1);
        }
        let all = t.snapshot();
        assert!(all.len() <= 2 * SHARDS, "{}", all.len());
        assert!(t.get(busy).is_some(), "a client holding a connection stays");
    }

    #[test]
    fn a_connection_moves_to_its_identity_under_the_identity_cap() {
        let t = table(1, 100);
        let (a, b) = (
            ClientKey::of("192.0.2.1".parse().unwrap()),
            ClientKey::of("192.0.2.2".parse().unwrap()),
        );
        let alice = ClientKey::Cert("alice".into());
        let mut first = t.open(a.clone()).unwrap();
        first.rekey(alice.clone()).unwrap();
        assert_eq!(first.key(), &alice);
        assert_eq!(
            t.get(a.clone()).unwrap().active,
            0,
            "the address's place given back"
        );
        assert!(t.open(a).is_ok(), "so the address may connect again");
        // Alice from another address: over her cap of one.
        let mut second = t.open(b.clone()).unwrap();
        assert_eq!(second.rekey(alice.clone()), Err(Limit::Connections));
        assert_eq!(second.key(), &b, "still counted under its address");
        assert_eq!(t.get(alice.clone()).unwrap().active, 1);
        drop(first);
        second.rekey(alice.clone()).unwrap();
        assert_eq!(t.get(b).unwrap().active, 0);
        drop(second);
        assert_eq!(t.get(alice).unwrap().active, 0);
    }
}
