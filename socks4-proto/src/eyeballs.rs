//! Happy Eyeballs v2 (RFC 8305) without IO: which address to try first, when
//! to start the next attempt, when an attempt has run out of time, and which
//! attempt won. The caller opens and closes the sockets; time is an argument.
//!
//! - [`interleave`] orders a name's addresses (RFC 8305 §4): the preferred
//!   family's first address, then the other family's first, and so on,
//!   alternating; within a family the resolver's order is kept.
//! - [`Race`] runs the attempts (RFC 8305 §5): the first starts at once; the
//!   next starts `attempt_delay` after the previous one started, or at once
//!   when every running attempt has failed; none is cancelled for it. Each
//!   attempt has its own deadline (`attempt_timeout`), after which the caller
//!   abandons it. The first attempt to connect wins; the caller then closes
//!   the others. Without an attempt delay ([`RaceConfig::sequential`]) the
//!   attempts run one at a time: how a route's parents fail over.
//! - Addresses that arrive while the race runs (RFC 8305 §3: the other
//!   family's answer came after connecting started) join it
//!   ([`Race::expect_more`], [`Race::add`], [`Race::no_more`]): they
//!   alternate with the candidates still waiting, the new ones first, and
//!   the race does not fail for want of candidates while more may come.
//! - [`RESOLUTION_DELAY`]: how long the preferred family's answer is waited
//!   for when the other family's came first (RFC 8305 §3).
//!
//! ```
//! use socks4_proto::eyeballs::{Race, RaceConfig, RaceAction, RaceOutcome};
//! use std::time::{Duration, Instant};
//! let t0 = Instant::now();
//! let cfg = RaceConfig::new(Duration::from_millis(250), Duration::from_secs(10));
//! let mut race = Race::new(2, cfg, t0);
//! assert_eq!(race.poll_action(), Some(RaceAction::Start(0)));
//! assert_eq!(race.poll_timeout(), Some(t0 + Duration::from_millis(250)));
//! // The first address is silent: the second starts after the delay.
//! race.handle_timeout(t0 + Duration::from_millis(250));
//! assert_eq!(race.poll_action(), Some(RaceAction::Start(1)));
//! race.handle_connected(1);
//! assert_eq!(race.outcome(), Some(RaceOutcome::Won { index: 1, attempts: 2 }));
//! ```

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// RFC 8305 §3's "Resolution Delay": when the answer of the family not
/// preferred (A, by default) comes first, connecting waits this long for the
/// preferred family's (AAAA) before it starts with what it has. When the
/// preferred family's comes first, connecting starts at once.
pub const RESOLUTION_DELAY: Duration = Duration::from_millis(50);

/// Which address family is tried first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Prefer {
    /// IPv6 first (RFC 8305's default).
    #[default]
    Ipv6,
    /// IPv4 first.
    Ipv4,
    /// The family of the resolver's first address first.
    System,
}

impl Prefer {
    /// Whether IPv6 is the family whose answer is waited for
    /// ([`RESOLUTION_DELAY`]) when the other's comes first: for `Ipv6` and
    /// `System` (RFC 8305's default), not for `Ipv4`.
    pub fn waits_for_ipv6(self) -> bool {
        self != Prefer::Ipv4
    }
}

/// Which address families are used at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Only {
    /// Both.
    #[default]
    Any,
    /// IPv4 only (a host without IPv6).
    Ipv4,
    /// IPv6 only (a host without IPv4).
    Ipv6,
}

impl Only {
    /// Whether `ip` is of a family in use.
    pub fn allows(self, ip: IpAddr) -> bool {
        match self {
            Only::Any => true,
            Only::Ipv4 => ip.is_ipv4(),
            Only::Ipv6 => ip.is_ipv6(),
        }
    }
}

/// The order to try `addrs` in: families alternate, starting with the
/// preferred one (RFC 8305 §4, with a "First Address Family Count" of one);
/// within a family the given order is kept. Repeats are dropped.
pub fn interleave(addrs: &[IpAddr], prefer: Prefer) -> Vec<IpAddr> {
    let mut v6: Vec<IpAddr> = Vec::new();
    let mut v4: Vec<IpAddr> = Vec::new();
    for &a in addrs {
        let list = if a.is_ipv6() { &mut v6 } else { &mut v4 };
        if !list.contains(&a) {
            list.push(a);
        }
    }
    let v6_first = match prefer {
        Prefer::Ipv6 => true,
        Prefer::Ipv4 => false,
        Prefer::System => addrs.first().is_some_and(IpAddr::is_ipv6),
    };
    let (first, second) = if v6_first { (v6, v4) } else { (v4, v6) };
    let mut out = Vec::with_capacity(first.len() + second.len());
    let (mut a, mut b) = (first.into_iter(), second.into_iter());
    loop {
        match (a.next(), b.next()) {
            (None, None) => return out,
            (x, y) => out.extend(x.into_iter().chain(y)),
        }
    }
}

/// How a [`Race`] times its attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RaceConfig {
    /// After this long the next attempt starts beside the running ones;
    /// `None`: only once the running one failed (one at a time).
    pub attempt_delay: Option<Duration>,
    /// Each attempt's own deadline.
    pub attempt_timeout: Duration,
}

impl RaceConfig {
    /// Attempts that overlap: the next starts `attempt_delay` after the last.
    pub fn new(attempt_delay: Duration, attempt_timeout: Duration) -> RaceConfig {
        RaceConfig {
            attempt_delay: Some(attempt_delay),
            attempt_timeout,
        }
    }

    /// One attempt at a time, each within `attempt_timeout`.
    pub fn sequential(attempt_timeout: Duration) -> RaceConfig {
        RaceConfig {
            attempt_delay: None,
            attempt_timeout,
        }
    }
}

/// What the caller must do for a [`Race`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RaceAction {
    /// Start attempt number `i` (an index into the caller's candidates).
    Start(usize),
    /// Attempt `i` ran out of time: close it (it counts as failed).
    Abandon(usize),
}

/// How a [`Race`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RaceOutcome {
    /// Attempt `index` connected first, after `attempts` were started; the
    /// caller closes every other attempt.
    Won {
        /// The winner.
        index: usize,
        /// How many attempts were started, the winner's included.
        attempts: u32,
    },
    /// Every candidate failed (or there was none).
    Failed {
        /// How many attempts were started.
        attempts: u32,
        /// The last failure's kind.
        last_error: Option<ErrorKind>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    Waiting,
    Running { deadline: Instant },
    Failed,
}

/// One race over `n` candidates: see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Race {
    cfg: RaceConfig,
    attempts: Vec<Attempt>,
    /// The candidates not started yet, in the order to start them.
    waiting: VecDeque<usize>,
    /// How many attempts were started.
    started: u32,
    /// When the next may start while others run.
    next_at: Option<Instant>,
    /// More candidates may still join ([`Race::add`]).
    more_expected: bool,
    actions: VecDeque<RaceAction>,
    outcome: Option<RaceOutcome>,
    last_error: Option<ErrorKind>,
}

impl Race {
    /// A race over `n` candidates, starting at `now`: the first attempt is
    /// asked for at once.
    pub fn new(n: usize, cfg: RaceConfig, now: Instant) -> Race {
        let mut race = Race {
            cfg,
            attempts: vec![Attempt::Waiting; n],
            waiting: (0..n).collect(),
            started: 0,
            next_at: None,
            more_expected: false,
            actions: Default::default(),
            outcome: None,
            last_error: None,
        };
        race.start_next(now);
        race
    }

    /// More candidates may join ([`add`](Self::add)) until
    /// [`no_more`](Self::no_more): until then the race does not fail when
    /// every attempt so far has. Call it right after [`new`](Self::new)
    /// (a race over no candidate has failed already).
    pub fn expect_more(&mut self) {
        self.more_expected = true;
    }

    /// `count` more candidates join, numbered after the ones the race has
    /// (the first is [`len`](Self::len) before the call). They alternate
    /// with the candidates still waiting, the new ones first (RFC 8305 §4: a
    /// late answer is the other family's, and families alternate); the
    /// first of them starts at once when nothing runs or the attempt delay
    /// since the last start is over. Ignored once the race is over.
    pub fn add(&mut self, count: usize, now: Instant) {
        if self.outcome.is_some() || count == 0 {
            return;
        }
        let first = self.attempts.len();
        self.attempts.extend((0..count).map(|_| Attempt::Waiting));
        let old: Vec<usize> = self.waiting.drain(..).collect();
        let mut new = first..first + count;
        let mut old = old.into_iter();
        loop {
            match (new.next(), old.next()) {
                (None, None) => break,
                (x, y) => self.waiting.extend(x.into_iter().chain(y)),
            }
        }
        let delay_over = self.cfg.attempt_delay.is_some() && self.next_at.is_some_and(|t| t <= now);
        if self.running() == 0 || delay_over {
            self.start_next(now);
        }
    }

    /// No more candidates will join: when nothing runs or waits, the race
    /// has failed.
    pub fn no_more(&mut self, now: Instant) {
        self.more_expected = false;
        if self.running() == 0 && self.waiting.is_empty() {
            self.start_next(now);
        }
    }

    /// How many candidates the race has (those that joined included).
    pub fn len(&self) -> usize {
        self.attempts.len()
    }

    /// Whether the race has no candidate.
    pub fn is_empty(&self) -> bool {
        self.attempts.is_empty()
    }

    fn started(&self) -> u32 {
        self.started
    }

    fn running(&self) -> usize {
        self.attempts
            .iter()
            .filter(|a| matches!(a, Attempt::Running { .. }))
            .count()
    }

    /// Starts the next candidate, or ends the race when none is left and
    /// nothing runs.
    fn start_next(&mut self, now: Instant) {
        if self.outcome.is_some() {
            return;
        }
        if let Some(i) = self.waiting.pop_front() {
            self.started += 1;
            self.attempts[i] = Attempt::Running {
                deadline: now + self.cfg.attempt_timeout,
            };
            self.next_at = self.cfg.attempt_delay.map(|d| now + d);
            self.actions.push_back(RaceAction::Start(i));
        } else if self.running() == 0 && !self.more_expected {
            self.next_at = None;
            self.outcome = Some(RaceOutcome::Failed {
                attempts: self.started(),
                last_error: self.last_error,
            });
        }
    }

    /// Attempt `i` connected. The first to do so wins; later ones are
    /// ignored (the caller closes them).
    pub fn handle_connected(&mut self, i: usize) {
        if self.outcome.is_none() && matches!(self.attempts.get(i), Some(Attempt::Running { .. })) {
            self.outcome = Some(RaceOutcome::Won {
                index: i,
                attempts: self.started(),
            });
            self.actions.clear();
        }
    }

    /// Attempt `i` failed with `kind` at `now`: when nothing else runs, the
    /// next starts at once (RFC 8305 §5).
    pub fn handle_failed(&mut self, i: usize, kind: ErrorKind, now: Instant) {
        if !matches!(self.attempts.get(i), Some(Attempt::Running { .. })) {
            return;
        }
        self.attempts[i] = Attempt::Failed;
        self.last_error = Some(kind);
        if self.running() == 0 {
            self.start_next(now);
        }
    }

    /// Time has passed: attempts past their deadline are abandoned, and the
    /// next attempt starts when its delay is over.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.outcome.is_some() {
            return;
        }
        for i in 0..self.attempts.len() {
            if let Attempt::Running { deadline } = self.attempts[i] {
                if deadline <= now {
                    self.attempts[i] = Attempt::Failed;
                    self.last_error = Some(ErrorKind::TimedOut);
                    self.actions.push_back(RaceAction::Abandon(i));
                }
            }
        }
        let delay_over = self.next_at.is_some_and(|t| t <= now);
        if delay_over || self.running() == 0 {
            self.start_next(now);
        }
    }

    /// The next thing to do, in order.
    pub fn poll_action(&mut self) -> Option<RaceAction> {
        self.actions.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.outcome.is_some() {
            return None;
        }
        let deadlines = self.attempts.iter().filter_map(|a| match a {
            Attempt::Running { deadline } => Some(*deadline),
            _ => None,
        });
        let next = self.next_at.filter(|_| !self.waiting.is_empty());
        deadlines.chain(next).min()
    }

    /// How the race ended, once it has.
    pub fn outcome(&self) -> Option<RaceOutcome> {
        self.outcome
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests need a point in time to start from
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn families_alternate_from_the_preferred_one() {
        let addrs = [
            ip("1.1.1.1"),
            ip("1.1.1.2"),
            ip("::1"),
            ip("::2"),
            ip("::3"),
        ];
        assert_eq!(
            interleave(&addrs, Prefer::Ipv6),
            [
                ip("::1"),
                ip("1.1.1.1"),
                ip("::2"),
                ip("1.1.1.2"),
                ip("::3")
            ]
        );
        assert_eq!(
            interleave(&addrs, Prefer::Ipv4),
            [
                ip("1.1.1.1"),
                ip("::1"),
                ip("1.1.1.2"),
                ip("::2"),
                ip("::3")
            ]
        );
        assert_eq!(interleave(&addrs, Prefer::System)[0], ip("1.1.1.1"));
    }

    #[test]
    fn a_failure_starts_the_next_at_once() {
        let t0 = Instant::now();
        let cfg = RaceConfig::new(Duration::from_millis(250), Duration::from_secs(10));
        let mut r = Race::new(3, cfg, t0);
        assert_eq!(r.poll_action(), Some(RaceAction::Start(0)));
        r.handle_failed(
            0,
            ErrorKind::ConnectionRefused,
            t0 + Duration::from_millis(5),
        );
        assert_eq!(r.poll_action(), Some(RaceAction::Start(1)));
        r.handle_failed(
            1,
            ErrorKind::ConnectionRefused,
            t0 + Duration::from_millis(6),
        );
        r.handle_failed(
            2,
            ErrorKind::ConnectionRefused,
            t0 + Duration::from_millis(7),
        );
        assert_eq!(r.poll_action(), Some(RaceAction::Start(2)));
        r.handle_failed(
            2,
            ErrorKind::ConnectionRefused,
            t0 + Duration::from_millis(7),
        );
        assert_eq!(
            r.outcome(),
            Some(RaceOutcome::Failed {
                attempts: 3,
                last_error: Some(ErrorKind::ConnectionRefused)
            })
        );
        assert_eq!(r.poll_timeout(), None);
    }

    #[test]
    fn sequential_attempts_wait_for_the_deadline() {
        let t0 = Instant::now();
        let mut r = Race::new(2, RaceConfig::sequential(Duration::from_secs(10)), t0);
        assert_eq!(r.poll_action(), Some(RaceAction::Start(0)));
        assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(10)));
        r.handle_timeout(t0 + Duration::from_secs(5));
        assert_eq!(r.poll_action(), None, "nothing before the deadline");
        r.handle_timeout(t0 + Duration::from_secs(10));
        assert_eq!(r.poll_action(), Some(RaceAction::Abandon(0)));
        assert_eq!(r.poll_action(), Some(RaceAction::Start(1)));
        r.handle_connected(1);
        assert_eq!(
            r.outcome(),
            Some(RaceOutcome::Won {
                index: 1,
                attempts: 2
            })
        );
    }

    #[test]
    fn late_candidates_join_and_alternate_with_the_waiting_ones() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let cfg = RaceConfig::new(Duration::from_millis(250), Duration::from_secs(10));
        // Two IPv6 addresses; the A answer comes 100 ms later with two more.
        let mut r = Race::new(2, cfg, t0);
        r.expect_more();
        assert_eq!(r.poll_action(), Some(RaceAction::Start(0)));
        r.add(2, ms(100));
        assert_eq!(r.len(), 4);
        assert_eq!(r.poll_action(), None, "the attempt delay still runs");
        assert_eq!(r.poll_timeout(), Some(ms(250)));
        r.handle_timeout(ms(250));
        assert_eq!(
            r.poll_action(),
            Some(RaceAction::Start(2)),
            "a new one next"
        );
        r.handle_timeout(ms(500));
        assert_eq!(
            r.poll_action(),
            Some(RaceAction::Start(1)),
            "then an old one"
        );
        r.handle_timeout(ms(750));
        assert_eq!(r.poll_action(), Some(RaceAction::Start(3)));
        r.no_more(ms(760));
        r.handle_connected(3);
        assert_eq!(
            r.outcome(),
            Some(RaceOutcome::Won {
                index: 3,
                attempts: 4
            })
        );
    }

    #[test]
    fn a_race_that_expects_more_waits_for_them_after_failing() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let cfg = RaceConfig::new(Duration::from_millis(250), Duration::from_secs(10));
        let mut r = Race::new(1, cfg, t0);
        r.expect_more();
        assert_eq!(r.poll_action(), Some(RaceAction::Start(0)));
        r.handle_failed(0, ErrorKind::ConnectionRefused, ms(1));
        assert_eq!(r.outcome(), None, "more may come");
        assert_eq!(r.poll_timeout(), None, "nothing to wait for but them");
        // They arrive: the first starts at once, nothing running.
        r.add(1, ms(40));
        assert_eq!(r.poll_action(), Some(RaceAction::Start(1)));
        r.handle_failed(1, ErrorKind::ConnectionRefused, ms(41));
        assert_eq!(r.outcome(), None);
        r.no_more(ms(42));
        assert_eq!(
            r.outcome(),
            Some(RaceOutcome::Failed {
                attempts: 2,
                last_error: Some(ErrorKind::ConnectionRefused)
            })
        );
        // Without any, `no_more` ends it too.
        let mut r = Race::new(1, cfg, t0);
        r.expect_more();
        r.handle_failed(0, ErrorKind::ConnectionRefused, ms(1));
        r.no_more(ms(2));
        assert!(matches!(
            r.outcome(),
            Some(RaceOutcome::Failed { attempts: 1, .. })
        ));
    }

    #[test]
    fn no_candidate_fails_at_once() {
        let r = Race::new(
            0,
            RaceConfig::sequential(Duration::from_secs(1)),
            Instant::now(),
        );
        assert!(matches!(
            r.outcome(),
            Some(RaceOutcome::Failed { attempts: 0, .. })
        ));
    }

    /// What happens to a started attempt, in a property test: it connects
    /// after some time, fails after some time, or stays silent.
    #[derive(Debug, Clone, Copy)]
    enum Fate {
        Connects(u64),
        Fails(u64),
        Silent,
    }

    fn fate() -> impl Strategy<Value = Fate> {
        prop_oneof![
            (0u64..2000).prop_map(Fate::Connects),
            (0u64..2000).prop_map(Fate::Fails),
            Just(Fate::Silent),
        ]
    }

    /// Simulates a race to its end with a fake clock: the outcome, the times
    /// each attempt started (in start order), and the time it ended.
    fn simulate(fates: &[Fate], cfg: RaceConfig) -> (RaceOutcome, Vec<u64>, u64) {
        let (outcome, starts, end, _) = simulate_late(fates, cfg, None);
        (outcome, starts.into_iter().map(|(_, t)| t).collect(), end)
    }

    /// Like [`simulate`], with the last `late.1` of `fates` joining at
    /// `late.0` ms; the starts are `(candidate, time)` in start order, and
    /// last comes how many had started when the late ones joined.
    fn simulate_late(
        fates: &[Fate],
        cfg: RaceConfig,
        late: Option<(u64, usize)>,
    ) -> (RaceOutcome, Vec<(usize, u64)>, u64, Option<usize>) {
        let t0 = Instant::now();
        let ms = |t: Instant| t.duration_since(t0).as_millis() as u64;
        let first = fates.len() - late.map_or(0, |l| l.1);
        let mut race = Race::new(first, cfg, t0);
        let mut late = late;
        if late.is_some() {
            race.expect_more();
        }
        let mut starts = vec![None; fates.len()];
        let mut order = Vec::new();
        let mut joined = None;
        let mut done = vec![false; fates.len()];
        let mut now = t0;
        for _ in 0..10_000 {
            while let Some(a) = race.poll_action() {
                if let RaceAction::Start(i) = a {
                    assert!(starts[i].is_none(), "started twice");
                    assert!(i < race.len(), "a candidate it does not have");
                    starts[i] = Some(ms(now));
                    order.push((i, ms(now)));
                }
            }
            if let Some(o) = race.outcome() {
                return (o, order, ms(now), joined);
            }
            // The late candidates join when their time comes, before
            // anything else that happens then.
            if let Some((at, count)) = late {
                let next_timer = race.poll_timeout().map(ms);
                let next_fate = (0..fates.len())
                    .filter_map(|i| match (starts[i], fates[i], done[i]) {
                        (Some(s), Fate::Connects(d) | Fate::Fails(d), false) => Some(s + d),
                        _ => None,
                    })
                    .min();
                if next_timer.into_iter().chain(next_fate).all(|t| at <= t) {
                    now = now.max(t0 + Duration::from_millis(at));
                    joined = Some(order.len());
                    race.add(count, now);
                    race.no_more(now);
                    late = None;
                    continue;
                }
            }
            // The next event: an attempt's fate or the race's own timer.
            let mut next: Option<(u64, usize, bool)> = None;
            for (i, s) in starts.iter().enumerate() {
                let fate = match fates[i] {
                    Fate::Connects(d) => Some((d, true)),
                    Fate::Fails(d) => Some((d, false)),
                    Fate::Silent => None,
                };
                let (Some(s), Some((d, ok)), false) = (s, fate, done[i]) else {
                    continue;
                };
                let at = s + d;
                if next.is_none_or(|n| at < n.0) {
                    next = Some((at, i, ok));
                }
            }
            let timer = race.poll_timeout().map(ms);
            match (next, timer) {
                (Some((at, i, ok)), t) if t.is_none_or(|t| at < t) => {
                    now = t0 + Duration::from_millis(at);
                    if ok {
                        race.handle_connected(i);
                    } else {
                        race.handle_failed(i, ErrorKind::ConnectionRefused, now);
                    }
                    done[i] = true;
                }
                (_, Some(t)) => {
                    // Attempts the race abandons end here too.
                    now = t0 + Duration::from_millis(t);
                    race.handle_timeout(now);
                }
                (_, None) => panic!("a race that waits for nothing"),
            }
        }
        panic!("a race that does not end");
    }

    proptest! {
        #[test]
        fn interleave_keeps_every_address_once(
            raw in proptest::collection::vec((any::<bool>(), 0u8..8), 0..12),
            prefer in prop_oneof![Just(Prefer::Ipv6), Just(Prefer::Ipv4), Just(Prefer::System)],
        ) {
            let addrs: Vec<IpAddr> = raw.iter().map(|&(v6, n)| if v6 {
                IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, n as u16])
            } else {
                IpAddr::from([192, 0, 2, n])
            }).collect();
            let out = interleave(&addrs, prefer);
            let mut unique = addrs.clone();
            unique.sort();
            unique.dedup();
            let mut sorted = out.clone();
            sorted.sort();
            prop_assert_eq!(sorted, unique);
            // Families alternate while both last.
            let v6 = out.iter().filter(|a| a.is_ipv6()).count();
            let both = 2 * v6.min(out.len() - v6);
            for w in out[..both].windows(2) {
                prop_assert_ne!(w[0].is_ipv6(), w[1].is_ipv6());
            }
            if prefer == Prefer::Ipv6 && v6 > 0 {
                prop_assert!(out[0].is_ipv6());
            }
        }

        #[test]
        fn late_candidates_join_the_race(
            fates in proptest::collection::vec(fate(), 2..7),
            late_count in 1usize..3,
            late_at in 0u64..3000,
            delay in 10u64..500,
            timeout in 100u64..3000,
        ) {
            let late_count = late_count.min(fates.len() - 1);
            let first = fates.len() - late_count;
            let cfg = RaceConfig::new(Duration::from_millis(delay), Duration::from_millis(timeout));
            let (outcome, order, end, joined) =
                simulate_late(&fates, cfg, Some((late_at, late_count)));
            // A late candidate never starts before it joined, and the first
            // start after it joined is a late one.
            for &(i, t) in &order {
                if i >= first {
                    prop_assert!(t >= late_at);
                }
            }
            if let Some(&(i, _)) = joined.and_then(|k| order.get(k)) {
                prop_assert!(i >= first, "an old candidate started before the new ones");
            }
            // Bounded: everything run one after another, after the arrival.
            prop_assert!(end <= late_at + timeout * fates.len() as u64);
            match outcome {
                RaceOutcome::Won { index, attempts } => {
                    prop_assert!(matches!(fates[index], Fate::Connects(_)));
                    prop_assert_eq!(attempts as usize, order.len());
                }
                RaceOutcome::Failed { attempts, .. } => {
                    // Every candidate was tried, the late ones included.
                    prop_assert_eq!(attempts as usize, fates.len());
                }
            }
        }

        #[test]
        fn the_race_ends_within_its_bounds(
            fates in proptest::collection::vec(fate(), 0..6),
            delay in 10u64..500,
            timeout in 100u64..3000,
            overlapping in any::<bool>(),
        ) {
            let cfg = if overlapping {
                RaceConfig::new(Duration::from_millis(delay), Duration::from_millis(timeout))
            } else {
                RaceConfig::sequential(Duration::from_millis(timeout))
            };
            let (outcome, starts, end) = simulate(&fates, cfg);
            // Attempts start in order, never closer than the delay unless
            // the previous one ended first, and never more than the delay
            // apart while one is left to start.
            for w in starts.windows(2) {
                prop_assert!(w[1] >= w[0]);
                if overlapping {
                    prop_assert!(w[1] - w[0] <= delay);
                }
            }
            // No race lasts longer than every attempt run one after another.
            prop_assert!(end <= timeout * fates.len() as u64);
            match outcome {
                RaceOutcome::Won { index, attempts } => {
                    prop_assert!(matches!(fates[index], Fate::Connects(_)));
                    prop_assert_eq!(attempts as usize, starts.len());
                }
                RaceOutcome::Failed { attempts, .. } => {
                    // Every candidate was tried.
                    prop_assert_eq!(attempts as usize, fates.len());
                    for f in &fates {
                        if let Fate::Connects(d) = f {
                            prop_assert!(*d >= timeout, "a connecting attempt lost");
                        }
                    }
                }
            }
        }
    }
}
