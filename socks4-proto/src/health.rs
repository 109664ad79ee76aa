//! Parents that are watched, without IO: each parent's health from the
//! outcomes of the connections through it (passive checks), and the order a
//! route's parents are tried in.
//!
//! - [`Health`]: `max_failures` consecutive failures mark a parent down for a
//!   backoff that starts at one second and doubles on each further failure
//!   (a failed retry after the backoff) up to `max_backoff`; any success
//!   marks it up and forgets the backoff.
//! - [`order`]: the parents that are up, in the route's [`Balance`] order,
//!   then, only when none is up, all of them in the route's order (a route
//!   whose every parent is down is tried anyway).
//!
//! Time is an argument; the caller keeps one [`Health`] per parent, shared by
//! its connections.

use socks4_acl::Balance;
use std::time::{Duration, Instant};

/// The first backoff of a parent marked down.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// How health is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HealthConfig {
    /// Consecutive failures that mark a parent down (at least 1).
    pub max_failures: u32,
    /// The longest backoff.
    pub max_backoff: Duration,
}

impl Default for HealthConfig {
    /// 3 failures, 5 minutes.
    fn default() -> Self {
        HealthConfig {
            max_failures: 3,
            max_backoff: Duration::from_secs(300),
        }
    }
}

/// One parent's health.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// Consecutive failures.
    pub failures: u32,
    /// Down until then (after it, the next request tries the parent again).
    pub down_until: Option<Instant>,
    /// The backoff the last marking down used.
    pub backoff: Option<Duration>,
    /// The last failure: what, and when.
    pub last_error: Option<(String, Instant)>,
}

impl Health {
    /// Whether requests at `now` should try the parent.
    pub fn is_up(&self, now: Instant) -> bool {
        self.down_until.is_none_or(|t| now >= t)
    }

    /// Whether the parent is marked down (whether or not its backoff is
    /// over): what `socks4_parent_up` shows as 0.
    pub fn is_marked_down(&self) -> bool {
        self.down_until.is_some()
    }

    /// A connection through the parent worked.
    pub fn record_success(&mut self) {
        self.failures = 0;
        self.down_until = None;
        self.backoff = None;
    }

    /// A connection through the parent failed at `now` (`why` for the
    /// operator). Returns true when this marks the parent down.
    pub fn record_failure(&mut self, cfg: &HealthConfig, why: String, now: Instant) -> bool {
        self.failures = self.failures.saturating_add(1);
        self.last_error = Some((why, now));
        if self.failures < cfg.max_failures.max(1) {
            return false;
        }
        let backoff = match self.backoff {
            // Still down, and a request tried it anyway (every parent down):
            // the backoff stands.
            Some(b) if !self.is_up(now) => b,
            Some(b) => (b * 2).min(cfg.max_backoff),
            None => FIRST_BACKOFF.min(cfg.max_backoff),
        };
        let newly = self.down_until.is_none();
        self.backoff = Some(backoff);
        self.down_until = Some(now + backoff);
        newly
    }
}

/// The order to try a route's parents in: indices into `healths` (one per
/// parent, in the route's order). `turn` is the route's round-robin counter
/// (the caller increments it per request), `open` each parent's open
/// connections (for least-connections).
pub fn order(
    healths: &[&Health],
    balance: Balance,
    turn: usize,
    open: &[usize],
    now: Instant,
) -> Vec<usize> {
    let mut up: Vec<usize> = (0..healths.len())
        .filter(|&i| healths[i].is_up(now))
        .collect();
    if up.is_empty() {
        return (0..healths.len()).collect();
    }
    match balance {
        Balance::First => {}
        Balance::RoundRobin => {
            let n = up.len();
            up.rotate_left(turn % n);
        }
        Balance::LeastConnections => {
            up.sort_by_key(|&i| open.get(i).copied().unwrap_or(0));
        }
    }
    up
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests need a point in time to start from
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn failures_mark_down_with_a_doubling_backoff() {
        let cfg = HealthConfig {
            max_failures: 3,
            max_backoff: Duration::from_secs(3),
        };
        let t0 = Instant::now();
        let mut h = Health::default();
        assert!(!h.record_failure(&cfg, "x".into(), t0));
        assert!(!h.record_failure(&cfg, "x".into(), t0));
        assert!(h.is_up(t0));
        assert!(h.record_failure(&cfg, "timed out".into(), t0), "the third");
        assert!(!h.is_up(t0 + Duration::from_millis(999)));
        assert!(
            h.is_up(t0 + Duration::from_secs(1)),
            "backoff over: tried again"
        );
        let t1 = t0 + Duration::from_secs(1);
        h.record_failure(&cfg, "x".into(), t1);
        assert_eq!(h.backoff, Some(Duration::from_secs(2)));
        let t2 = t1 + Duration::from_secs(2);
        h.record_failure(&cfg, "x".into(), t2);
        assert_eq!(h.backoff, Some(Duration::from_secs(3)), "capped");
        h.record_success();
        assert!(h.is_up(t2) && !h.is_marked_down() && h.failures == 0);
        assert_eq!(h.last_error.as_ref().map(|e| e.0.as_str()), Some("x"));
    }

    #[test]
    fn down_parents_are_skipped_unless_all_are() {
        let t0 = Instant::now();
        let up = Health::default();
        let down = Health {
            down_until: Some(t0 + Duration::from_secs(1)),
            ..Health::default()
        };
        assert_eq!(order(&[&down, &up], Balance::First, 0, &[], t0), [1]);
        assert_eq!(order(&[&down, &down], Balance::First, 5, &[], t0), [0, 1]);
        assert_eq!(
            order(&[&up, &up, &up], Balance::RoundRobin, 4, &[], t0),
            [1, 2, 0]
        );
        assert_eq!(
            order(
                &[&up, &up, &up],
                Balance::LeastConnections,
                0,
                &[3, 1, 2],
                t0
            ),
            [1, 2, 0]
        );
    }

    proptest! {
        #[test]
        fn order_is_a_permutation_of_the_parents_up(
            downs in proptest::collection::vec(any::<bool>(), 1..6),
            turn in 0usize..100,
            open in proptest::collection::vec(0usize..10, 6),
            b in 0u8..3,
        ) {
            let t0 = Instant::now();
            let hs: Vec<Health> = downs.iter().map(|&d| Health {
                down_until: d.then(|| t0 + Duration::from_secs(1)),
                ..Health::default()
            }).collect();
            let refs: Vec<&Health> = hs.iter().collect();
            let balance = [Balance::First, Balance::RoundRobin, Balance::LeastConnections][b as usize];
            let out = order(&refs, balance, turn, &open, t0);
            let up: Vec<usize> = (0..hs.len()).filter(|&i| !downs[i]).collect();
            let mut sorted = out.clone();
            sorted.sort();
            if up.is_empty() {
                prop_assert_eq!(out.clone(), (0..hs.len()).collect::<Vec<_>>());
            } else {
                prop_assert_eq!(sorted, up.clone());
            }
            if balance == Balance::RoundRobin && !up.is_empty() {
                prop_assert_eq!(out[0], up[turn % up.len()]);
            }
            if balance == Balance::LeastConnections && !up.is_empty() {
                for w in out.windows(2) {
                    prop_assert!(open[w[0]] <= open[w[1]]);
                }
            }
        }

        #[test]
        fn backoff_stays_within_its_bounds(
            fails in 1usize..30,
            max_failures in 1u32..5,
            cap in 1u64..600,
            step in 0u64..700,
        ) {
            let cfg = HealthConfig { max_failures, max_backoff: Duration::from_secs(cap) };
            let t0 = Instant::now();
            let mut h = Health::default();
            let mut now = t0;
            for n in 1..=fails {
                h.record_failure(&cfg, String::new(), now);
                let marked = n >= max_failures as usize;
                prop_assert_eq!(h.is_marked_down(), marked);
                if let Some(b) = h.backoff {
                    prop_assert!(b >= Duration::from_secs(1).min(cfg.max_backoff));
                    prop_assert!(b <= cfg.max_backoff);
                    prop_assert!(!h.is_up(now));
                }
                now += Duration::from_secs(step);
            }
        }
    }
}
