//! The lookup structure behind a [`NetSet`](super::NetSet): the maximal nets
//! of one family as sorted, disjoint ranges of numbers, binary-searched,
//! with a bucket index on the top 16 bits once a set is large.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// An address as a number, with its top 16 bits as a bucket number.
pub(super) trait Key: Copy + Ord {
    fn bucket(self) -> usize;
}

impl Key for u32 {
    fn bucket(self) -> usize {
        (self >> 16) as usize
    }
}

impl Key for u128 {
    fn bucket(self) -> usize {
        (self >> 112) as usize
    }
}

/// Sets with fewer ranges than this are searched without the bucket index.
const INDEX_MIN_RANGES: usize = 256;
const BUCKETS: usize = 1 << 16;

/// Sorted, disjoint inclusive ranges: the maximal members of a laminar family of
/// CIDR nets (any two are nested or disjoint), for binary search.
///
/// Starts and ends are kept apart so that the search touches only the starts. Large
/// sets also keep a bucket index on the top 16 bits of the start (`index[b]` is the
/// first range whose start is in bucket `b` or later), so that a lookup searches
/// one bucket, usually a cache line or two, instead of the whole array.
#[derive(Debug, Clone)]
pub(super) struct Ranges<K> {
    starts: Vec<K>,
    ends: Vec<K>,
    index: Vec<u32>,
}

impl<K> Default for Ranges<K> {
    fn default() -> Self {
        Ranges {
            starts: Vec::new(),
            ends: Vec::new(),
            index: Vec::new(),
        }
    }
}

impl<K: Key> Ranges<K> {
    /// The index of the last range starting at or before `key`, if any.
    pub(super) fn last_at_or_before(&self, key: K) -> Option<usize> {
        if self.index.is_empty() {
            return self.starts.partition_point(|&s| s <= key).checked_sub(1);
        }
        let b = key.bucket();
        let (lo, hi) = (self.index[b] as usize, self.index[b + 1] as usize);
        (lo + self.starts[lo..hi].partition_point(|&s| s <= key)).checked_sub(1)
    }

    pub(super) fn contains(&self, key: K) -> bool {
        self.last_at_or_before(key)
            .is_some_and(|i| self.ends[i] >= key)
    }

    /// Adds a net; nets inside it are no longer maximal.
    pub(super) fn insert(&mut self, (start, end): (K, K)) {
        if self
            .last_at_or_before(start)
            .is_some_and(|i| self.ends[i] >= end)
        {
            return; // nested in a maximal net (CIDR nets never partly overlap)
        }
        let lo = self.starts.partition_point(|&s| s < start);
        let hi = self.starts.partition_point(|&s| s <= end);
        self.starts.splice(lo..hi, [start]);
        self.ends.splice(lo..hi, [end]);
        self.reindex();
    }

    /// Removes a maximal net, putting back the maximal ones of `inside` (the nets
    /// still in the set within it, sorted by start and then widest first).
    pub(super) fn remove(&mut self, (start, end): (K, K), inside: impl Iterator<Item = (K, K)>) {
        let Ok(at) = self.starts.binary_search(&start) else {
            return;
        };
        if self.ends[at] != end {
            return; // not maximal: the lookup structure is unchanged
        }
        let mut replacement = Ranges::default();
        replacement.rebuild(inside);
        self.starts.splice(at..=at, replacement.starts);
        self.ends.splice(at..=at, replacement.ends);
        self.reindex();
    }

    /// Rebuilds from nets sorted by start and then widest first.
    pub(super) fn rebuild(&mut self, all: impl Iterator<Item = (K, K)>) {
        self.starts.clear();
        self.ends.clear();
        for (start, end) in all {
            if self.ends.last().is_none_or(|&last| start > last) {
                self.starts.push(start);
                self.ends.push(end);
            }
        }
        self.reindex();
    }

    /// Recomputes the bucket index: O(buckets + ranges).
    fn reindex(&mut self) {
        self.index.clear();
        if self.starts.len() < INDEX_MIN_RANGES {
            return;
        }
        self.index.resize(BUCKETS + 1, 0);
        for s in &self.starts {
            self.index[s.bucket() + 1] += 1;
        }
        for b in 1..=BUCKETS {
            self.index[b] += self.index[b - 1];
        }
    }

    pub(super) fn len(&self) -> usize {
        self.starts.len()
    }
}

pub(super) fn v4_range(net: &Ipv4Net) -> (u32, u32) {
    (u32::from(net.network()), u32::from(net.broadcast()))
}

pub(super) fn v6_range(net: &Ipv6Net) -> (u128, u128) {
    (u128::from(net.network()), u128::from(net.broadcast()))
}

/// The ranges of the IPv4 nets among `nets`, in order.
pub(super) fn v4_ranges<'a>(
    nets: impl Iterator<Item = &'a IpNet> + 'a,
) -> impl Iterator<Item = (u32, u32)> + 'a {
    nets.filter_map(|n| match n {
        IpNet::V4(n) => Some(v4_range(n)),
        IpNet::V6(_) => None,
    })
}

/// The ranges of the IPv6 nets among `nets`, in order.
pub(super) fn v6_ranges<'a>(
    nets: impl Iterator<Item = &'a IpNet> + 'a,
) -> impl Iterator<Item = (u128, u128)> + 'a {
    nets.filter_map(|n| match n {
        IpNet::V6(n) => Some(v6_range(n)),
        IpNet::V4(_) => None,
    })
}
