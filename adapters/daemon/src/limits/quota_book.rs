//! Quota usage, kept apart from the per-client table's entries: each client's
//! traffic in the current calendar period of each kind a quota uses. The
//! client table forgets idle addresses as others arrive; this book does not
//! forget usage when that happens, so a client cannot reset its quota by
//! having its entry pushed out (by its own or anyone's address churn, refused
//! connections included). The state file saves and restores this book.
//!
//! Bounded: at most twice [`QuotaBook::capacity`] records (plus those a
//! running relay holds, which `max_connections` bounds). A new record beyond
//! the capacity replaces one whose period is over or that holds nothing;
//! only past twice the capacity, the smallest of a few records sampled in
//! turn, so that making room never scans the whole book and never drops more
//! usage than a sampled minimum.
//! Sharded by client so that relays of different clients rarely meet on a
//! lock.

use crate::limits::client_key::ClientKey;
use crate::limits::meter::Usage;
use socks4_acl::limit::Period;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// How many shards the book has.
const SHARDS: usize = 16;

/// The fewest records the book keeps before making room, whatever
/// `tracked_clients` says (a record is a few dozen bytes: a small client
/// table does not make quota usage easy to push out).
pub const MIN_QUOTA_RECORDS: usize = 4096;

/// How many records are looked at to make room for a new one.
const EVICTION_SAMPLE: usize = 8;

#[derive(Debug, Default)]
struct Shard {
    records: Vec<((ClientKey, Period), Arc<Usage>)>,
    index: HashMap<(ClientKey, Period), usize>,
    /// Where the next eviction sample starts.
    cursor: usize,
}

impl Shard {
    fn remove_at(&mut self, i: usize) {
        let (key, _) = self.records.swap_remove(i);
        self.index.remove(&key);
        if let Some((moved, _)) = self.records.get(i) {
            self.index.insert(moved.clone(), i);
        }
    }

    /// Makes room for one record: drops one that is worth nothing (its
    /// period over, or nothing used, and no relay holding it), else, when
    /// `usage_too`, the smallest of a sample that no relay holds. `false`
    /// when nothing was dropped.
    fn make_room(&mut self, unix: u64, usage_too: bool) -> bool {
        let n = self.records.len();
        let mut smallest: Option<(usize, u64)> = None;
        for step in 0..EVICTION_SAMPLE.min(n) {
            let i = (self.cursor + step) % n;
            let usage = &self.records[i].1;
            if Arc::strong_count(usage) > 1 {
                continue; // a relay counts against it now
            }
            let used = usage.used(unix);
            if used == 0 {
                smallest = Some((i, 0));
                break;
            }
            if smallest.is_none_or(|(_, u)| used < u) {
                smallest = Some((i, used));
            }
        }
        self.cursor = (self.cursor + EVICTION_SAMPLE) % n.max(1);
        match smallest {
            Some((i, used)) if used == 0 || usage_too => {
                self.remove_at(i);
                true
            }
            _ => false,
        }
    }
}

/// Every client's traffic in its quota periods.
#[derive(Debug)]
pub struct QuotaBook {
    shards: Vec<Mutex<Shard>>,
    capacity: AtomicUsize,
    hasher: std::collections::hash_map::RandomState,
}

impl QuotaBook {
    /// An empty book keeping `capacity` records (at least
    /// [`MIN_QUOTA_RECORDS`]) before it makes room.
    pub fn new(capacity: usize) -> QuotaBook {
        QuotaBook {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            capacity: AtomicUsize::new(capacity.max(MIN_QUOTA_RECORDS)),
            hasher: Default::default(),
        }
    }

    /// The records it keeps before it makes room (see the module's docs).
    pub fn capacity(&self) -> usize {
        self.capacity.load(Ordering::Relaxed)
    }

    /// Changes the capacity (a reload); records beyond it go as new ones
    /// arrive.
    pub fn set_capacity(&self, capacity: usize) {
        self.capacity
            .store(capacity.max(MIN_QUOTA_RECORDS), Ordering::Relaxed);
    }

    fn shard(&self, key: &ClientKey) -> std::sync::MutexGuard<'_, Shard> {
        self.shards[self.hasher.hash_one(key) as usize % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// `key`'s usage in the current `period` (made, at zero, if new); `unix`
    /// is the wall clock's seconds.
    pub fn usage(&self, key: ClientKey, period: Period, unix: u64) -> Arc<Usage> {
        let per_shard = (self.capacity() / SHARDS).max(1);
        let mut shard = self.shard(&key);
        let record = (key, period);
        if let Some(&i) = shard.index.get(&record) {
            return shard.records[i].1.clone();
        }
        // A new record starts at zero: it pushes out one worth nothing, and
        // pushes out usage only past twice the capacity (so that address
        // churn does not cost a heavy user its count; records worth nothing
        // go every second too, see `tidy`).
        let len = shard.records.len();
        if len >= per_shard {
            shard.make_room(unix, len >= 2 * per_shard);
        }
        let usage = Arc::new(Usage::new(period, period.index(unix), 0));
        let i = shard.records.len();
        shard.records.push((record.clone(), usage.clone()));
        shard.index.insert(record, i);
        usage
    }

    /// Sets `key`'s usage in period number `index` of `period` (from the
    /// state file); a period that is over at `unix` is ignored.
    pub fn restore(&self, key: ClientKey, period: Period, index: u64, used: u64, unix: u64) {
        if index != period.index(unix) {
            return;
        }
        let usage = self.usage(key, period, unix);
        let _ = usage.used(unix); // rolled to the current period
        usage.add(used);
    }

    /// `key`'s bytes in the current period of each kind it has a record of.
    pub fn used_by(&self, key: &ClientKey, unix: u64) -> Vec<(Period, u64)> {
        let shard = self.shard(key);
        Period::ALL
            .into_iter()
            .filter_map(|p| {
                let i = *shard.index.get(&(key.clone(), p))?;
                Some((p, shard.records[i].1.used(unix)))
            })
            .collect()
    }

    /// Every record with bytes used: (client, period, period number, bytes),
    /// sorted, for the state file.
    pub fn all(&self) -> Vec<(ClientKey, Period, u64, u64)> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            for ((key, _), usage) in &shard.records {
                let (period, index, used) = usage.state();
                if used > 0 {
                    out.push((key.clone(), period, index, used));
                }
            }
        }
        out.sort();
        out
    }

    /// Forgets records worth nothing at `unix` (their period is over or
    /// nothing was used) that no relay holds.
    pub fn tidy(&self, unix: u64) {
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            let mut i = 0;
            while i < shard.records.len() {
                let usage = &shard.records[i].1;
                if Arc::strong_count(usage) == 1 && usage.used(unix) == 0 {
                    shard.remove_at(i);
                } else {
                    i += 1;
                }
            }
        }
    }

    /// Every record: the client, its usage, and whether a relay holds it
    /// now (for the fleet's batches).
    pub fn records(&self) -> Vec<(ClientKey, Arc<Usage>, bool)> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            for ((key, _), usage) in &shard.records {
                out.push((key.clone(), usage.clone(), Arc::strong_count(usage) > 1));
            }
        }
        out
    }

    /// How many records it holds.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).records.len())
            .sum()
    }

    /// Whether it holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const NOW: u64 = 1_700_000_000;

    fn key(i: u32) -> ClientKey {
        ClientKey::V4(Ipv4Addr::from(0x0a00_0000 + i))
    }

    #[test]
    fn usage_is_kept_while_other_clients_churn() {
        let book = QuotaBook::new(0);
        let heavy = key(0);
        book.usage(heavy.clone(), Period::Day, NOW).add(5_000_000);
        // Many clients that used little come and go.
        for i in 1..100_000 {
            book.usage(key(i), Period::Day, NOW).add(1);
        }
        let bound = 2 * MIN_QUOTA_RECORDS + SHARDS;
        assert!(book.len() <= bound, "bounded: {}", book.len());
        assert_eq!(
            book.used_by(&heavy, NOW),
            vec![(Period::Day, 5_000_000)],
            "the heavy user's usage survives the churn"
        );
    }

    #[test]
    fn records_held_by_a_relay_stay_and_over_periods_go() {
        let book = QuotaBook::new(0);
        let held = book.usage(key(1), Period::Hour, NOW);
        for i in 2..50_000 {
            book.usage(key(i), Period::Hour, NOW);
        }
        assert!(book.used_by(&key(1), NOW).len() == 1, "held by a relay");
        assert!(
            book.len() <= 2 * MIN_QUOTA_RECORDS + SHARDS,
            "{}",
            book.len()
        );
        drop(held);
        book.restore(key(0), Period::Hour, Period::Hour.index(NOW) - 1, 99, NOW);
        assert!(book.used_by(&key(0), NOW).is_empty(), "an over period");
        book.tidy(NOW);
        assert!(book.is_empty(), "nothing used: nothing kept");
    }
}
