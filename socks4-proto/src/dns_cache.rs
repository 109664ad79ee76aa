//! A DNS answer cache without IO: answers kept for their TTL (clamped to a
//! floor and a ceiling), negative answers kept for their negative TTL
//! (RFC 2308: only when the answer carried one), expired answers kept a while
//! longer to be served stale when no nameserver answers (RFC 8767), and a
//! bound on the number of entries. Time is an argument; the caller does the
//! queries and decides when a stale answer is served.
//!
//! ```
//! use socks4_proto::dns_cache::{Answer, CacheConfig, DnsCache, Found, Key, RecordType};
//! use std::time::{Duration, Instant};
//! let t0 = Instant::now();
//! let mut cache = DnsCache::new(CacheConfig::default());
//! let key = Key::new("Example.COM.", RecordType::A);
//! assert_eq!(cache.get(&key, t0), Found::Miss);
//! let addrs = Answer::Addrs(vec!["192.0.2.1".parse().unwrap()]);
//! cache.insert(key.clone(), addrs.clone(), Some(Duration::from_secs(60)), t0);
//! assert!(matches!(cache.get(&key, t0), Found::Fresh { .. }));
//! // Past its TTL, within `stale_for`: stale, and worth a refresh.
//! let later = t0 + Duration::from_secs(61);
//! assert_eq!(cache.get(&key, later), Found::Stale { answer: addrs, refresh: true });
//! ```

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// After a refresh of a stale answer failed, the stale answer is served
/// without asking again for this long (RFC 8767's "failure recheck timer").
pub const FAILURE_RECHECK: Duration = Duration::from_secs(30);

/// The record types an address lookup asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordType {
    /// IPv4 addresses.
    A,
    /// IPv6 addresses.
    Aaaa,
}

impl RecordType {
    /// `A` or `AAAA`.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
        }
    }
}

/// A cache key: a name (lower case, without its final dot) and a type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// The name.
    pub name: String,
    /// The type.
    pub rtype: RecordType,
}

impl Key {
    /// The key of `name` (any case, with or without its final dot).
    pub fn new(name: &str, rtype: RecordType) -> Key {
        Key {
            name: normalize(name),
            rtype,
        }
    }
}

/// A name as the cache keeps it: lower case, without its final dot.
pub fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// What a nameserver said about a name and type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Answer {
    /// Addresses of that type.
    Addrs(Vec<IpAddr>),
    /// No such name (NXDOMAIN).
    NoName,
    /// The name exists, without records of that type (NODATA).
    NoData,
}

impl Answer {
    /// Whether this is a negative answer (NXDOMAIN or NODATA).
    pub fn is_negative(&self) -> bool {
        !matches!(self, Answer::Addrs(_))
    }
}

/// What the cache holds for a key at some time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// An answer within its TTL, and how much of it is left.
    Fresh {
        /// The answer.
        answer: Answer,
        /// Its remaining TTL.
        ttl_left: Duration,
    },
    /// An answer past its TTL but within `stale_for`: serve it only when no
    /// nameserver answers. `refresh` is false within [`FAILURE_RECHECK`] of a
    /// failed refresh (serve it without asking).
    Stale {
        /// The answer.
        answer: Answer,
        /// Whether to ask the nameservers first.
        refresh: bool,
    },
    /// Nothing usable.
    Miss,
}

/// How the cache is bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheConfig {
    /// Entries at most; past it, the one closest to being dropped goes.
    pub entries: usize,
    /// Answers are kept at least this long, whatever their TTL.
    pub min_ttl: Duration,
    /// Answers (positive or negative) are kept at most this long.
    pub max_ttl: Duration,
    /// How long past its TTL an answer may still be served stale.
    pub stale_for: Duration,
}

impl Default for CacheConfig {
    /// 10,000 entries, TTLs clamped to 0 s..1 day, stale for an hour.
    fn default() -> Self {
        CacheConfig {
            entries: 10_000,
            min_ttl: Duration::ZERO,
            max_ttl: Duration::from_secs(86_400),
            stale_for: Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    answer: Answer,
    expires: Instant,
    seq: u64,
    /// Stale answers are served without asking until then.
    recheck_after: Option<Instant>,
}

/// One entry, as [`DnsCache::entries`] shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// Its key.
    pub key: Key,
    /// The answer.
    pub answer: Answer,
    /// Its remaining TTL; `None` once stale.
    pub ttl_left: Option<Duration>,
}

/// The cache: see the [module docs](self).
#[derive(Debug, Clone)]
pub struct DnsCache {
    cfg: CacheConfig,
    map: HashMap<Key, Entry>,
    /// The entries by the time they stop being usable (expiry + stale_for).
    by_end: BTreeMap<(Instant, u64), Key>,
    seq: u64,
}

impl DnsCache {
    /// An empty cache.
    pub fn new(cfg: CacheConfig) -> DnsCache {
        DnsCache {
            cfg,
            map: HashMap::new(),
            by_end: BTreeMap::new(),
            seq: 0,
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &CacheConfig {
        &self.cfg
    }

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn end(&self, e: &Entry) -> Instant {
        e.expires + self.cfg.stale_for
    }

    /// What the cache holds for `key` at `now`. An entry past its stale
    /// window is dropped.
    pub fn get(&mut self, key: &Key, now: Instant) -> Found {
        let Some(e) = self.map.get(key) else {
            return Found::Miss;
        };
        if now < e.expires {
            return Found::Fresh {
                answer: e.answer.clone(),
                ttl_left: e.expires - now,
            };
        }
        if now < self.end(e) {
            return Found::Stale {
                answer: e.answer.clone(),
                refresh: e.recheck_after.is_none_or(|t| now >= t),
            };
        }
        self.remove(key);
        Found::Miss
    }

    /// Keeps `answer` for `key`, got at `now`, for `ttl` clamped to
    /// `min_ttl..=max_ttl`. A negative answer without a TTL (no SOA in it:
    /// RFC 2308 §5) is not kept, and removes nothing.
    pub fn insert(&mut self, key: Key, answer: Answer, ttl: Option<Duration>, now: Instant) {
        let Some(ttl) = ttl else {
            return;
        };
        if self.cfg.entries == 0 {
            return;
        }
        let ttl = ttl.clamp(self.cfg.min_ttl, self.cfg.max_ttl.max(self.cfg.min_ttl));
        self.remove(&key);
        while self.map.len() >= self.cfg.entries {
            let Some((_, oldest)) = self.by_end.pop_first() else {
                break;
            };
            self.map.remove(&oldest);
        }
        self.seq += 1;
        let e = Entry {
            answer,
            expires: now + ttl,
            seq: self.seq,
            recheck_after: None,
        };
        self.by_end.insert((self.end(&e), e.seq), key.clone());
        self.map.insert(key, e);
    }

    /// Refreshing `key`'s stale answer failed at `now` (no nameserver
    /// answered): serve it without asking for [`FAILURE_RECHECK`].
    pub fn refresh_failed(&mut self, key: &Key, now: Instant) {
        if let Some(e) = self.map.get_mut(key) {
            e.recheck_after = Some(now + FAILURE_RECHECK);
        }
    }

    fn remove(&mut self, key: &Key) -> bool {
        match self.map.remove(key) {
            Some(e) => {
                let end = self.end(&e);
                self.by_end.remove(&(end, e.seq));
                true
            }
            None => false,
        }
    }

    /// Forgets every entry (`None`) or those of one name; how many.
    pub fn flush(&mut self, name: Option<&str>) -> usize {
        match name {
            None => {
                let n = self.map.len();
                self.map.clear();
                self.by_end.clear();
                n
            }
            Some(name) => {
                let name = normalize(name);
                [RecordType::A, RecordType::Aaaa]
                    .into_iter()
                    .filter(|&rtype| {
                        self.remove(&Key {
                            name: name.clone(),
                            rtype,
                        })
                    })
                    .count()
            }
        }
    }

    /// What the cache holds for `name` at `now`, both types.
    pub fn entries(&self, name: &str, now: Instant) -> Vec<Shown> {
        let name = normalize(name);
        [RecordType::A, RecordType::Aaaa]
            .into_iter()
            .filter_map(|rtype| {
                let key = Key {
                    name: name.clone(),
                    rtype,
                };
                let e = self.map.get(&key)?;
                (now < self.end(e)).then(|| Shown {
                    key,
                    answer: e.answer.clone(),
                    ttl_left: (now < e.expires).then(|| e.expires - now),
                })
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests need a point in time to start from
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn a(n: u8) -> Answer {
        Answer::Addrs(vec![IpAddr::from([192, 0, 2, n])])
    }

    #[test]
    fn ttls_are_clamped_and_negative_answers_need_one() {
        let t0 = Instant::now();
        let cfg = CacheConfig {
            entries: 10,
            min_ttl: Duration::from_secs(5),
            max_ttl: Duration::from_secs(100),
            stale_for: Duration::from_secs(10),
        };
        let mut c = DnsCache::new(cfg);
        let k = Key::new("a.example", RecordType::A);
        c.insert(k.clone(), a(1), Some(Duration::from_secs(1)), t0);
        assert!(
            matches!(c.get(&k, t0 + Duration::from_secs(4)), Found::Fresh { .. }),
            "min_ttl"
        );
        c.insert(k.clone(), a(1), Some(Duration::from_secs(1000)), t0);
        assert!(
            matches!(
                c.get(&k, t0 + Duration::from_secs(101)),
                Found::Stale { .. }
            ),
            "max_ttl"
        );
        assert_eq!(
            c.get(&k, t0 + Duration::from_secs(110)),
            Found::Miss,
            "past stale_for"
        );
        assert!(c.is_empty());
        let n = Key::new("nx.example", RecordType::A);
        c.insert(n.clone(), Answer::NoName, None, t0);
        assert_eq!(c.get(&n, t0), Found::Miss, "no SOA, not cached");
        c.insert(n.clone(), Answer::NoName, Some(Duration::from_secs(30)), t0);
        assert!(matches!(
            c.get(&n, t0),
            Found::Fresh {
                answer: Answer::NoName,
                ..
            }
        ));
    }

    #[test]
    fn a_failed_refresh_serves_stale_without_asking_for_a_while() {
        let t0 = Instant::now();
        let mut c = DnsCache::new(CacheConfig::default());
        let k = Key::new("a.example", RecordType::Aaaa);
        c.insert(k.clone(), a(1), Some(Duration::from_secs(1)), t0);
        let t1 = t0 + Duration::from_secs(2);
        c.refresh_failed(&k, t1);
        assert_eq!(
            c.get(&k, t1),
            Found::Stale {
                answer: a(1),
                refresh: false
            }
        );
        assert_eq!(
            c.get(&k, t1 + FAILURE_RECHECK),
            Found::Stale {
                answer: a(1),
                refresh: true
            }
        );
    }

    #[test]
    fn flush_and_entries() {
        let t0 = Instant::now();
        let mut c = DnsCache::new(CacheConfig::default());
        c.insert(
            Key::new("A.example.", RecordType::A),
            a(1),
            Some(Duration::from_secs(60)),
            t0,
        );
        c.insert(
            Key::new("a.example", RecordType::Aaaa),
            Answer::NoData,
            Some(Duration::from_secs(9)),
            t0,
        );
        c.insert(
            Key::new("b.example", RecordType::A),
            a(2),
            Some(Duration::from_secs(60)),
            t0,
        );
        let shown = c.entries("a.EXAMPLE", t0 + Duration::from_secs(10));
        assert_eq!(shown.len(), 2);
        assert_eq!(shown[0].ttl_left, Some(Duration::from_secs(50)));
        assert_eq!(shown[1].ttl_left, None, "stale");
        assert_eq!(c.flush(Some("a.example")), 2);
        assert_eq!(c.len(), 1);
        assert_eq!(c.flush(None), 1);
        assert!(c.is_empty());
    }

    proptest! {
        #[test]
        fn the_cache_stays_bounded_and_consistent(
            ops in proptest::collection::vec((0u8..20, 0u64..200, 0u64..100), 0..200),
            entries in 1usize..8,
        ) {
            let t0 = Instant::now();
            let cfg = CacheConfig { entries, stale_for: Duration::from_secs(50), ..CacheConfig::default() };
            let mut c = DnsCache::new(cfg);
            let mut now = t0;
            for (name, ttl, step) in ops {
                now += Duration::from_secs(step);
                let k = Key::new(&format!("n{name}.example"), RecordType::A);
                if ttl % 3 == 0 {
                    let before = c.get(&k, now);
                    if let Found::Fresh { ttl_left, .. } = before {
                        prop_assert!(ttl_left <= cfg.max_ttl);
                    }
                } else {
                    c.insert(k.clone(), a(name), Some(Duration::from_secs(ttl)), now);
                    let fresh = matches!(c.get(&k, now), Found::Fresh { .. });
                    prop_assert_eq!(fresh, ttl > 0, "a new answer is fresh while its TTL lasts");
                }
                prop_assert!(c.len() <= entries);
                prop_assert_eq!(c.len(), c.by_end.len());
            }
        }
    }
}
