//! What every connection's outbound side shares: the parents' health and
//! open connections ([`ParentBook`]), the resolver's cache and the queries
//! in flight ([`ResolverState`]), and the counters of connect attempts and
//! cache results. The decisions are socks4-proto's sans-IO machines
//! ([`socks4_proto::health`], [`socks4_proto::dns_cache`]); this file keeps
//! their state behind locks and reads no clock (time is an argument).
//!
//! Bounds: one parent entry (and one round-robin turn per route) for each
//! parent the current policy's routes name, plus those still used by
//! connections that started under an older policy, until [`ParentBook::prune`]
//! (after every policy change, and once a minute) drops them; the cache by
//! `[resolver] cache_entries`; the flights by the lookups running
//! (`max_lookups`).

use crate::config::outbound::Outbound;
use socks4_acl::{Balance, Parent};
use socks4_proto::dns_cache::{Answer, DnsCache, Key};
use socks4_proto::health::{self, Health, HealthConfig};
use socks4_proto::server::ResolveError;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Connect times kept per parent for its median.
const CONNECT_TIMES: usize = 64;

/// How an attempt ended, as counted: `won`, `error`, `timeout`, `lost`.
pub(crate) const ATTEMPT_RESULTS: [&str; 4] = ["won", "error", "timeout", "lost"];

/// The resolver's cache results, as counted: `hit`, `miss`, `stale`,
/// `negative` (a cached NXDOMAIN or NODATA).
pub(crate) const CACHE_RESULTS: [&str; 4] = ["hit", "miss", "stale", "negative"];

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn index_of(list: &[&str], label: &str) -> usize {
    list.iter().position(|l| *l == label).unwrap_or(0)
}

/// One parent's books.
#[derive(Debug, Default)]
struct ParentEntry {
    health: Health,
    open: usize,
    attempts: [u64; ATTEMPT_RESULTS.len()],
    connect_times: VecDeque<Duration>,
}

/// One parent as `ctl parents` and the metrics show it.
#[derive(Debug, Clone)]
pub(crate) struct ParentView {
    /// The parent (password hidden).
    pub(crate) parent: String,
    /// Whether it is marked down, and until when.
    pub(crate) down_for: Option<Duration>,
    /// Consecutive failures.
    pub(crate) failures: u32,
    /// The last failure and how long ago.
    pub(crate) last_error: Option<(String, Duration)>,
    /// Connections open through it.
    pub(crate) open: usize,
    /// Attempts by [`ATTEMPT_RESULTS`].
    pub(crate) attempts: [u64; ATTEMPT_RESULTS.len()],
    /// The median of its recent connect times.
    pub(crate) median_connect: Option<Duration>,
}

/// Every parent's health and open connections, shared by all connections.
#[derive(Debug)]
pub(crate) struct ParentBook {
    cfg: HealthConfig,
    parents: Mutex<HashMap<String, ParentEntry>>,
    /// Round-robin turns per route: of its parents (keyed by their URLs)
    /// and of its `source` addresses (keyed by `source ADDR,...`).
    turns: Mutex<HashMap<String, usize>>,
}

/// A connection open through a parent: counted until dropped.
#[derive(Debug)]
pub(crate) struct ParentOpen {
    book: Arc<ParentBook>,
    key: String,
}

impl Drop for ParentOpen {
    fn drop(&mut self) {
        if let Some(e) = lock(&self.book.parents).get_mut(&self.key) {
            e.open = e.open.saturating_sub(1);
        }
    }
}

impl ParentBook {
    pub(crate) fn new(cfg: HealthConfig) -> ParentBook {
        ParentBook {
            cfg,
            parents: Mutex::new(HashMap::new()),
            turns: Mutex::new(HashMap::new()),
        }
    }

    /// The order to try `parents` (a route's, in its order) in at `now`.
    pub(crate) fn order(&self, parents: &[&Parent], balance: Balance, now: Instant) -> Vec<usize> {
        let keys: Vec<String> = parents.iter().map(|p| p.to_string()).collect();
        let turn = if balance == Balance::RoundRobin {
            let mut turns = lock(&self.turns);
            let t = turns.entry(keys.join(",")).or_default();
            *t = t.wrapping_add(1);
            *t - 1
        } else {
            0
        };
        let mut book = lock(&self.parents);
        for k in &keys {
            book.entry(k.clone()).or_default();
        }
        let healths: Vec<&Health> = keys.iter().map(|k| &book[k].health).collect();
        let open: Vec<usize> = keys.iter().map(|k| book[k].open).collect();
        health::order(&healths, balance, turn, &open, now)
    }

    /// The turn of a route's `source ADDR[,ADDR...]` list (`key`, the clause
    /// as written) for one more connection: 0, 1, 2... per list.
    pub(crate) fn source_turn(&self, key: &str) -> usize {
        let mut turns = lock(&self.turns);
        let t = turns.entry(key.to_owned()).or_default();
        *t = t.wrapping_add(1);
        *t - 1
    }

    /// An attempt through `parent` ended (`result` one of
    /// [`ATTEMPT_RESULTS`]) at `now`, after `took`; `error` says why it
    /// failed. A `lost` attempt says nothing of the parent's health. Returns
    /// whether this marked the parent down.
    pub(crate) fn record(
        &self,
        parent: &Parent,
        result: &str,
        error: Option<String>,
        took: Duration,
        now: Instant,
    ) -> bool {
        let mut book = lock(&self.parents);
        let e = book.entry(parent.to_string()).or_default();
        e.attempts[index_of(&ATTEMPT_RESULTS, result)] += 1;
        match result {
            "won" => {
                e.health.record_success();
                if e.connect_times.len() == CONNECT_TIMES {
                    e.connect_times.pop_front();
                }
                e.connect_times.push_back(took);
                false
            }
            "lost" => false,
            _ => {
                e.health
                    .record_failure(&self.cfg, error.unwrap_or_else(|| result.to_owned()), now)
            }
        }
    }

    /// `parent`'s health now, if the book has it.
    pub(crate) fn health(&self, parent: &Parent) -> Option<Health> {
        lock(&self.parents)
            .get(&parent.to_string())
            .map(|e| e.health.clone())
    }

    /// Another instance of the fleet marked the parent named `key` down
    /// until `until` with `backoff`: it is down here too, until then (a
    /// later local marking stands).
    pub(crate) fn down_elsewhere(
        &self,
        key: &str,
        until: Instant,
        backoff: Duration,
        now: Instant,
    ) {
        let mut book = lock(&self.parents);
        // Pruned with the others when no route of this instance names it.
        let e = book.entry(key.to_owned()).or_default();
        if e.health.down_until.is_none_or(|t| t < until) {
            e.health.down_until = Some(until);
            e.health.backoff = Some(backoff);
            e.health.failures = e.health.failures.max(self.cfg.max_failures);
            e.health.last_error =
                Some(("marked down by another instance of the fleet".into(), now));
        }
    }

    /// Counts a connection open through `parent` until the guard drops.
    pub(crate) fn opened(self: &Arc<Self>, parent: &Parent) -> ParentOpen {
        let key = parent.to_string();
        lock(&self.parents).entry(key.clone()).or_default().open += 1;
        ParentOpen {
            book: self.clone(),
            key,
        }
    }

    /// Forgets the parents no route of `routes` (the current policy's) names
    /// and that carry no connection, and the round-robin turns of routes
    /// that are gone: what keeps the book bounded by the policy.
    pub(crate) fn prune<'a>(&self, routes: impl IntoIterator<Item = &'a socks4_acl::Route>) {
        let mut named = HashSet::new();
        let mut route_keys = HashSet::new();
        for route in routes {
            if matches!(route.exit.source, socks4_acl::SourceAddr::Rotate(_)) {
                route_keys.insert(route.exit.to_string());
            }
            if let socks4_acl::Target::Via(parents) = &route.target {
                let keys: Vec<String> = parents.iter().map(|p| p.to_string()).collect();
                route_keys.insert(keys.join(","));
                named.extend(keys);
            }
        }
        lock(&self.parents).retain(|k, e| e.open > 0 || named.contains(k));
        lock(&self.turns).retain(|k, _| route_keys.contains(k));
    }

    /// Every parent seen, sorted by name, as at `now`.
    pub(crate) fn view(&self, now: Instant) -> Vec<ParentView> {
        let book = lock(&self.parents);
        let mut out: Vec<ParentView> = book
            .iter()
            .map(|(name, e)| {
                let mut times: Vec<Duration> = e.connect_times.iter().copied().collect();
                times.sort();
                ParentView {
                    parent: name.clone(),
                    down_for: e
                        .health
                        .down_until
                        .map(|t| t.saturating_duration_since(now)),
                    failures: e.health.failures,
                    last_error: e
                        .health
                        .last_error
                        .as_ref()
                        .map(|(why, at)| (why.clone(), now.saturating_duration_since(*at))),
                    open: e.open,
                    attempts: e.attempts,
                    median_connect: times.get(times.len() / 2).copied(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.parent.cmp(&b.parent));
        out
    }
}

/// A query in flight for one name and type: the clients that asked for it
/// while it ran wait for its result instead of asking again.
#[derive(Debug, Default)]
pub(crate) struct Flight {
    /// Notified once the result is in.
    pub(crate) done: event_listener::Event,
    /// The result.
    pub(crate) result: Mutex<Option<Result<Answer, ResolveError>>>,
}

/// The hosts file as last read.
#[derive(Debug, Default)]
pub(crate) struct HostsSnapshot {
    /// When it was last checked for a change.
    pub(crate) checked: Option<Instant>,
    /// Its modification time then.
    pub(crate) modified: Option<std::time::SystemTime>,
    /// Its names (lower case) and their addresses, in file order.
    pub(crate) names: HashMap<String, Vec<IpAddr>>,
}

/// The own resolver's shared state.
#[derive(Debug)]
pub(crate) struct ResolverState {
    /// The answers.
    pub(crate) cache: Mutex<DnsCache>,
    /// The queries in flight.
    pub(crate) flights: Mutex<HashMap<Key, Arc<Flight>>>,
    /// The hosts file.
    pub(crate) hosts: Mutex<HostsSnapshot>,
    cache_results: [AtomicU64; CACHE_RESULTS.len()],
}

impl ResolverState {
    pub(crate) fn new(outbound: &Outbound) -> ResolverState {
        ResolverState {
            cache: Mutex::new(DnsCache::new(outbound.cache)),
            flights: Mutex::new(HashMap::new()),
            hosts: Mutex::new(HostsSnapshot::default()),
            cache_results: Default::default(),
        }
    }

    /// Counts a cache result (one of [`CACHE_RESULTS`]).
    pub(crate) fn count(&self, result: &str) {
        self.cache_results[index_of(&CACHE_RESULTS, result)].fetch_add(1, Relaxed);
    }

    /// The cache results so far, by [`CACHE_RESULTS`].
    pub(crate) fn cache_results(&self) -> [u64; CACHE_RESULTS.len()] {
        std::array::from_fn(|i| self.cache_results[i].load(Relaxed))
    }

    /// The cache, locked.
    pub(crate) fn cache(&self) -> MutexGuard<'_, DnsCache> {
        lock(&self.cache)
    }

    /// The flights, locked.
    pub(crate) fn flights(&self) -> MutexGuard<'_, HashMap<Key, Arc<Flight>>> {
        lock(&self.flights)
    }

    /// What the cache holds for `name` at `now`, as `ctl resolve` shows it:
    /// one line per record type.
    pub(crate) fn cached(&self, name: &str, now: Instant) -> Vec<String> {
        self.cache()
            .entries(name, now)
            .into_iter()
            .map(|e| {
                let what = match &e.answer {
                    Answer::Addrs(a) => {
                        let a: Vec<String> = a.iter().map(|ip| ip.to_string()).collect();
                        a.join(" ")
                    }
                    Answer::NoName => "NXDOMAIN".to_owned(),
                    Answer::NoData => "NODATA".to_owned(),
                };
                let ttl = match e.ttl_left {
                    Some(t) => format!("ttl={}s", t.as_secs()),
                    None => "stale".to_owned(),
                };
                format!("{} {} {what} {ttl}", e.key.name, e.key.rtype.as_str())
            })
            .collect()
    }

    /// The hosts file snapshot, locked.
    pub(crate) fn hosts(&self) -> MutexGuard<'_, HostsSnapshot> {
        lock(&self.hosts)
    }
}

/// Everything outbound that connections share; on the [`Daemon`](super::Daemon).
#[derive(Debug)]
pub(crate) struct OutboundState {
    /// Parents' health.
    pub(crate) parents: Arc<ParentBook>,
    /// The own resolver's state.
    pub(crate) resolver: ResolverState,
    /// Connect attempts by family (IPv4, IPv6) and [`ATTEMPT_RESULTS`].
    connect_attempts: [[AtomicU64; ATTEMPT_RESULTS.len()]; 2],
    /// The runtime's clock, for the control socket's thread (set by the
    /// server when it starts).
    clock: std::sync::OnceLock<ClockCell>,
}

struct ClockCell(Clock);

impl std::fmt::Debug for ClockCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("runtime clock")
    }
}

/// A runtime's clock.
pub(crate) type Clock = Box<dyn Fn() -> Instant + Send + Sync>;

impl OutboundState {
    pub(crate) fn new(outbound: &Outbound) -> OutboundState {
        OutboundState {
            parents: Arc::new(ParentBook::new(outbound.health)),
            resolver: ResolverState::new(outbound),
            connect_attempts: Default::default(),
            clock: std::sync::OnceLock::new(),
        }
    }

    /// Gives the state the runtime's clock (once; later calls do nothing).
    pub(crate) fn set_clock(&self, clock: Clock) {
        let _ = self.clock.set(ClockCell(clock));
    }

    /// The time by the runtime's clock, once the server set it.
    pub(crate) fn now(&self) -> Option<Instant> {
        self.clock.get().map(|c| (c.0)())
    }

    /// Counts a direct connect attempt to `ip` that ended with `result`.
    pub(crate) fn count_attempt(&self, ip: IpAddr, result: &str) {
        let family = usize::from(ip.is_ipv6());
        self.connect_attempts[family][index_of(&ATTEMPT_RESULTS, result)].fetch_add(1, Relaxed);
    }

    /// Connect attempts so far: `(family, result, count)`.
    pub(crate) fn connect_attempts(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut out = Vec::new();
        for (f, family) in ["ipv4", "ipv6"].into_iter().enumerate() {
            for (r, result) in ATTEMPT_RESULTS.into_iter().enumerate() {
                out.push((family, result, self.connect_attempts[f][r].load(Relaxed)));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(book: &ParentBook) -> Vec<String> {
        let mut names: Vec<String> = lock(&book.parents).keys().cloned().collect();
        names.sort();
        names
    }

    #[test]
    fn parents_no_route_names_are_pruned_unless_in_use() {
        let book = Arc::new(ParentBook::new(HealthConfig::default()));
        let urls = [
            "socks4://10.0.0.1:1080",
            "socks4://10.0.0.2:1080",
            "socks4://10.0.0.3:1080",
        ];
        for url in urls {
            lock(&book.parents).insert(url.to_owned(), ParentEntry::default());
        }
        lock(&book.turns).insert(format!("{},{}", urls[0], urls[1]), 3);
        let b: Parent = urls[1].parse().unwrap();
        let open = book.opened(&b);
        // The policy now names only the third: the first goes; the second
        // stays while a connection runs through it; the old route's turn
        // goes.
        let policy: socks4_acl::Policy = format!("route to any via {}\n", urls[2]).parse().unwrap();
        book.prune(policy.routes.routes());
        assert_eq!(names(&book), &urls[1..]);
        assert!(lock(&book.turns).is_empty());
        drop(open);
        book.prune(policy.routes.routes());
        assert_eq!(names(&book), &urls[2..]);
    }
}
