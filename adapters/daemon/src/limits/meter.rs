//! What a limited relay may move, chunk by chunk: the bandwidth its client's
//! relays share ([`Pacer`]: a token bucket per direction) and the traffic quota
//! it counts against ([`Usage`]: bytes of the current calendar period). A relay
//! without limits has no [`Meter`] and pays nothing for any of this.
//!
//! Bytes are reserved before they move and what did not move is given back, so
//! that relays running at once can together pass neither the rate nor the
//! quota.

use socks4_acl::limit::{Bandwidth, Period, TokenBucket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Which way a relay moves bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// From the client.
    Up,
    /// To the client.
    Down,
}

/// One client's bandwidth: a token bucket each direction, shared by the
/// client's relays that the same rule (or the server-wide limit) admitted.
#[derive(Debug)]
pub struct Pacer {
    up: Mutex<TokenBucket>,
    down: Mutex<TokenBucket>,
}

impl Pacer {
    /// Full buckets for `rate`.
    pub fn new(rate: Bandwidth) -> Pacer {
        Pacer {
            up: Mutex::new(TokenBucket::new(rate)),
            down: Mutex::new(TokenBucket::new(rate)),
        }
    }

    fn bucket(&self, way: Way) -> std::sync::MutexGuard<'_, TokenBucket> {
        match way {
            Way::Up => &self.up,
            Way::Down => &self.down,
        }
        .lock()
        .unwrap_or_else(|e| e.into_inner())
    }

    /// The rate.
    pub fn rate(&self) -> u64 {
        self.bucket(Way::Up).rate()
    }
}

/// The seconds since the Unix epoch now (the wall clock: quota periods are
/// calendar periods).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One client's traffic in the current period of one kind. With a fleet,
/// also what the rest of the fleet used (as last heard from Redis) and how
/// much of this instance's own usage Redis has been told.
#[derive(Debug)]
pub struct Usage {
    period: Period,
    index: AtomicU64,
    used: AtomicU64,
    /// The other instances' bytes in this period, as last heard.
    others: AtomicU64,
    /// This instance's bytes the fleet has been told of.
    pushed: AtomicU64,
}

impl Usage {
    /// Usage for `period`, `used` bytes so far in period number `index`.
    pub fn new(period: Period, index: u64, used: u64) -> Usage {
        Usage {
            period,
            index: AtomicU64::new(index),
            used: AtomicU64::new(used),
            others: AtomicU64::new(0),
            pushed: AtomicU64::new(0),
        }
    }

    /// Starts a new period when the calendar says so.
    fn roll(&self, unix_secs: u64) {
        let now = self.period.index(unix_secs);
        let was = self.index.load(Ordering::Acquire);
        if now > was
            && self
                .index
                .compare_exchange(was, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.used.store(0, Ordering::Release);
            self.others.store(0, Ordering::Release);
            self.pushed.store(0, Ordering::Release);
        }
    }

    /// Bytes used in the current period by this instance and, as last
    /// heard, by the rest of its fleet (without a fleet: [`Usage::used`]).
    pub fn total(&self, unix_secs: u64) -> u64 {
        self.roll(unix_secs);
        self.used
            .load(Ordering::Acquire)
            .saturating_add(self.others.load(Ordering::Acquire))
    }

    /// The period kind and number, and the bytes this instance used in it
    /// that its fleet has not been told of yet.
    pub fn unpushed(&self, unix_secs: u64) -> (Period, u64, u64) {
        self.roll(unix_secs);
        let used = self.used.load(Ordering::Acquire);
        let pushed = self.pushed.load(Ordering::Acquire);
        (
            self.period,
            self.index.load(Ordering::Acquire),
            used.saturating_sub(pushed),
        )
    }

    /// The fleet was told of `told` more bytes of period number `index`, and
    /// its total for the period is `total`: what the others used is the
    /// rest. Nothing when the period has rolled over since.
    pub fn heard(&self, index: u64, told: u64, total: u64) {
        if self.index.load(Ordering::Acquire) != index {
            return;
        }
        let pushed = self.pushed.fetch_add(told, Ordering::AcqRel) + told;
        self.others
            .store(total.saturating_sub(pushed), Ordering::Release);
    }

    /// Counts everything used so far as told to the fleet (usage restored
    /// from the state file, which the fleet holds already).
    pub fn all_told(&self) {
        self.pushed
            .store(self.used.load(Ordering::Acquire), Ordering::Release);
    }

    /// Bytes used in the current period.
    pub fn used(&self, unix_secs: u64) -> u64 {
        self.roll(unix_secs);
        self.used.load(Ordering::Acquire)
    }

    /// Counts `n` more bytes in the current period (restored usage).
    pub fn add(&self, n: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                Some(u.saturating_add(n))
            });
    }

    /// The period kind and number, and the bytes used in it (for the state
    /// file).
    pub fn state(&self) -> (Period, u64, u64) {
        (
            self.period,
            self.index.load(Ordering::Acquire),
            self.used.load(Ordering::Acquire),
        )
    }

    /// Reserves up to `want` bytes under `limit`; how many (0: used up).
    fn reserve(&self, unix_secs: u64, want: u64, limit: u64) -> u64 {
        self.roll(unix_secs);
        let mut got = 0;
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                let others = self.others.load(Ordering::Acquire);
                got = want.min(limit.saturating_sub(u.saturating_add(others)));
                (got > 0).then_some(u + got)
            });
        got
    }

    fn give_back(&self, n: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                Some(u.saturating_sub(n))
            });
    }
}

/// What one relay may move: its client's bandwidth and traffic quota.
#[derive(Debug, Clone, Default)]
pub struct Meter {
    /// The bandwidth, if limited.
    pub pacer: Option<Arc<Pacer>>,
    /// The quota's usage and its size, if limited.
    pub quota: Option<(Arc<Usage>, u64)>,
}

/// How much a direction may move now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowance {
    /// Up to this many bytes (reserved: report what moved with
    /// [`Meter::moved`]).
    Bytes(usize),
    /// Nothing before this time (the bandwidth is spent).
    WaitUntil(Instant),
    /// The quota is used up.
    QuotaReached,
}

/// The smallest chunk worth waking up for when paced.
const PACE_CHUNK: u64 = 16 * 1024;

impl Meter {
    /// Whether it limits anything.
    pub fn is_limited(&self) -> bool {
        self.pacer.is_some() || self.quota.is_some()
    }

    /// How much `way` may move at `now` (up to `want`), reserving it.
    pub fn allow(&self, way: Way, now: Instant, want: usize) -> Allowance {
        let mut n = want as u64;
        let unix = if self.quota.is_some() { unix_now() } else { 0 };
        if let Some((usage, limit)) = &self.quota {
            n = usage.reserve(unix, n, *limit);
            if n == 0 {
                return Allowance::QuotaReached;
            }
        }
        if let Some(pacer) = &self.pacer {
            let mut bucket = pacer.bucket(way);
            let got = bucket.take(now, n);
            if got == 0 {
                let at = bucket.ready_at(now, n.min(PACE_CHUNK));
                drop(bucket);
                if let Some((usage, _)) = &self.quota {
                    usage.give_back(n);
                }
                return Allowance::WaitUntil(at);
            }
            if let Some((usage, _)) = &self.quota {
                usage.give_back(n - got);
            }
            n = got;
        }
        Allowance::Bytes(n as usize)
    }

    /// `moved` of the `allowed` bytes moved: gives the rest back.
    pub fn moved(&self, way: Way, allowed: usize, moved: usize) {
        let unused = allowed.saturating_sub(moved) as u64;
        if unused == 0 {
            return;
        }
        if let Some(pacer) = &self.pacer {
            pacer.bucket(way).give_back(unused);
        }
        if let Some((usage, _)) = &self.quota {
            usage.give_back(unused);
        }
    }
}
