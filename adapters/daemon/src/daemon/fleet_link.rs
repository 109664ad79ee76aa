//! [`FleetLink`]: what the daemon and its connections share with the fleet
//! task (`crate::fleet`) when `[fleet]` is set. Connections ask it for a
//! fleet-wide rate decision and wait for the answer at most `[fleet]
//! timeout`; run-time list changes and parents marked down or up are
//! queued for Redis; the task reports
//! here whether Redis is up, its round-trip time, the instances it saw and
//! the count of each operation, for `ctl fleet` and the metrics.
//!
//! The link never waits: a question asked while Redis is down, or while the
//! queue is full, is answered "unavailable" at once, and the caller decides
//! as `[fleet] on_error` says.
//!
//! **Granting ahead.** The link keeps, per client, the count Redis last
//! answered for its window (and when), plus the requests granted ahead
//! since. While that sum stays below the limit less a headroom
//! ([`ahead_headroom`]: 10 % of the limit, at least [`HEADROOM_MIN`]) and
//! the answer is younger than [`FRESH`] (and than the window), a request is
//! granted at once and its script still goes to Redis, pipelined, unwaited
//! for: its answer updates the count. So a client far from its limit waits
//! for no round trip, and one near it waits as without this. The fleet can
//! pass the limit only if, within one answer's age, the other instances
//! grant the client more than the headroom; an ahead-granted request Redis
//! then refuses is counted `overshoot`.

use crate::config::settings::fleet::FleetSettings;
use crate::daemon::runtime_lists::{ListEntry, ListKind};
use socks4_acl::limit::ConnectionRate;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Questions waiting for the fleet task at most; past it, one is answered
/// "unavailable" at once.
pub(crate) const ASK_QUEUE: usize = 4096;

/// List changes waiting for Redis at most (while it is down); past it, a
/// change stays on this instance.
pub(crate) const CHANGE_QUEUE: usize = 1024;

/// The oldest answer from Redis a request may be granted ahead on (and
/// never older than the rate's window).
pub(crate) const FRESH: Duration = Duration::from_secs(1);

/// The smallest headroom below a limit under which requests are granted
/// ahead ([`ahead_headroom`]): with a limit of this or less, every request
/// waits for Redis.
pub(crate) const HEADROOM_MIN: u64 = 64;

/// Clients whose last count is kept for granting ahead at most; past it
/// (after the stale ones are dropped), a new client's requests wait.
pub(crate) const KNOWN_CLIENTS: usize = 4096;

/// The headroom kept below a limit of `count` per window: requests are
/// granted ahead only while the known count stays this far below it (10 %
/// of it, at least [`HEADROOM_MIN`]).
pub(crate) fn ahead_headroom(count: u32) -> u64 {
    (u64::from(count) / 10).max(HEADROOM_MIN)
}

/// A question a connection asks the fleet.
#[derive(Debug)]
pub(crate) struct RateAsk {
    /// The client, as the per-client table keys it.
    pub(crate) client: String,
    /// The rate to hold it to.
    pub(crate) rate: ConnectionRate,
    /// Where the answer goes: granted or not (nobody waits for a request
    /// granted ahead).
    pub(crate) reply: async_channel::Sender<bool>,
    /// Granted ahead: the script only counts it.
    pub(crate) ahead: bool,
}

/// How a question was taken.
#[derive(Debug)]
pub(crate) enum Asked {
    /// Granted at once (far below the limit); Redis counts it later.
    Ahead,
    /// The answer comes here.
    Wait(async_channel::Receiver<bool>),
}

/// What Redis last said of a client's window.
#[derive(Debug, Clone, Copy)]
struct Known {
    /// The rate it was asked under.
    rate: ConnectionRate,
    /// The requests in the window, as Redis last answered.
    count: u64,
    /// When that answer came.
    at: Instant,
    /// Requests granted ahead whose scripts Redis has not answered yet.
    in_flight: u64,
}

/// A change to the fleet's shared state, to write to Redis.
#[derive(Debug, Clone)]
pub(crate) enum SharedChange {
    /// A run-time list entry added or renewed.
    Set(ListKind, ListEntry),
    /// A run-time list entry deleted.
    Del(ListKind, String),
    /// A parent (as `ctl parents` names it) marked down: until then, in
    /// milliseconds since the Unix epoch, with this backoff (ms).
    ParentDown(String, u64, u64),
    /// A parent that worked again.
    ParentUp(String),
}

/// An instance of the fleet, as its last heartbeat said.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct InstanceSeen {
    /// Its `[fleet] name`.
    pub(crate) name: String,
    /// Its last heartbeat, in milliseconds since the Unix epoch.
    pub(crate) seen_ms: u64,
    /// Its last Redis round trip, in microseconds.
    pub(crate) rtt_us: u64,
    /// Its runtime and version.
    #[serde(default)]
    pub(crate) version: String,
}

/// The daemon's end of the fleet.
#[derive(Debug)]
pub(crate) struct FleetLink {
    /// `[fleet]`.
    pub(crate) settings: FleetSettings,
    asks: (
        async_channel::Sender<RateAsk>,
        async_channel::Receiver<RateAsk>,
    ),
    changes: (
        async_channel::Sender<SharedChange>,
        async_channel::Receiver<SharedChange>,
    ),
    /// Nudges for a quota batch (a relay with a quota ended).
    flush: (async_channel::Sender<()>, async_channel::Receiver<()>),
    up: AtomicBool,
    rtt_us: AtomicU64,
    instances: Mutex<Vec<InstanceSeen>>,
    ops: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// Per client, what Redis last said of its window (granting ahead).
    known: Mutex<HashMap<String, Known>>,
}

impl FleetLink {
    /// A link for `settings`, down until the task connects.
    pub(crate) fn new(settings: FleetSettings) -> FleetLink {
        FleetLink {
            settings,
            asks: async_channel::bounded(ASK_QUEUE),
            changes: async_channel::bounded(CHANGE_QUEUE),
            flush: async_channel::bounded(1),
            up: AtomicBool::new(false),
            rtt_us: AtomicU64::new(0),
            instances: Mutex::new(Vec::new()),
            ops: Mutex::new(BTreeMap::new()),
            known: Mutex::new(HashMap::new()),
        }
    }

    /// Asks whether `client` may have one more request under `rate`
    /// fleet-wide, at `now`: granted ahead (far below the limit, see the
    /// module's docs), the answer's receiver, or `None` at once when Redis
    /// is down or the queue is full.
    pub(crate) fn ask_rate(
        &self,
        client: String,
        rate: ConnectionRate,
        now: Instant,
    ) -> Option<Asked> {
        if !self.is_up() {
            self.count("rate", "down");
            return None;
        }
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        let ahead = known.get(&client).is_some_and(|k| {
            k.rate == rate
                && now.saturating_duration_since(k.at) < FRESH.min(rate.window)
                && k.count + k.in_flight + 1 + ahead_headroom(rate.count) <= u64::from(rate.count)
        });
        let (reply, answer) = async_channel::bounded(1);
        match self.asks.0.try_send(RateAsk {
            client: client.clone(),
            rate,
            reply,
            ahead,
        }) {
            Ok(()) if ahead => {
                if let Some(k) = known.get_mut(&client) {
                    k.in_flight += 1;
                }
                drop(known);
                self.count("rate", "ahead");
                Some(Asked::Ahead)
            }
            Ok(()) => Some(Asked::Wait(answer)),
            Err(_) => {
                drop(known);
                self.count("rate", "full");
                None
            }
        }
    }

    /// Records Redis's answer to a question at `now`: `count` the requests
    /// in the client's window it reported (`None`: no answer).
    pub(crate) fn heard(&self, ask: &RateAsk, count: Option<u64>, now: Instant) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        let in_flight = match known.get(&ask.client) {
            Some(k) if k.rate == ask.rate => k.in_flight - u64::from(ask.ahead && k.in_flight > 0),
            _ => 0,
        };
        let Some(count) = count else {
            if let Some(k) = known.get_mut(&ask.client) {
                k.in_flight = in_flight;
            }
            return;
        };
        if known.len() >= KNOWN_CLIENTS && !known.contains_key(&ask.client) {
            known.retain(|_, k| now.saturating_duration_since(k.at) < FRESH);
            if known.len() >= KNOWN_CLIENTS {
                return;
            }
        }
        known.insert(
            ask.client.clone(),
            Known {
                rate: ask.rate,
                count,
                at: now,
                in_flight,
            },
        );
    }

    /// Queues a change for Redis (kept while Redis is down, up to
    /// [`CHANGE_QUEUE`]).
    pub(crate) fn changed(&self, change: SharedChange) {
        if self.changes.0.try_send(change).is_err() {
            self.count("lists", "full");
            tracing::warn!(target: "socks4d", "fleet: list change queue full; this change stays on this instance");
        }
    }

    /// A relay under a quota ended: its bytes go to Redis with the next
    /// quota batch, sent soon (nudges while one waits are one).
    pub(crate) fn relay_ended(&self) {
        let _ = self.flush.0.try_send(());
    }

    /// The task's end of the nudges for a quota batch.
    pub(crate) fn flushes(&self) -> &async_channel::Receiver<()> {
        &self.flush.1
    }

    /// The task's end of the questions.
    pub(crate) fn asks(&self) -> &async_channel::Receiver<RateAsk> {
        &self.asks.1
    }

    /// The task's end of the list changes.
    pub(crate) fn changes(&self) -> &async_channel::Receiver<SharedChange> {
        &self.changes.1
    }

    /// Whether Redis answered the last time it was asked.
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Records whether Redis is up; `true` when that changed. Down, the
    /// counts known are forgotten (the scripts in flight are lost).
    pub(crate) fn set_up(&self, up: bool) -> bool {
        if !up {
            self.known.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
        self.up.swap(up, Ordering::Relaxed) != up
    }

    /// The last round trip to Redis, in microseconds.
    pub(crate) fn rtt_us(&self) -> u64 {
        self.rtt_us.load(Ordering::Relaxed)
    }

    /// Records a round trip.
    pub(crate) fn set_rtt_us(&self, us: u64) {
        self.rtt_us.store(us, Ordering::Relaxed);
    }

    /// The instances the last heartbeat saw.
    pub(crate) fn instances(&self) -> Vec<InstanceSeen> {
        self.instances
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Records the instances a heartbeat saw.
    pub(crate) fn set_instances(&self, seen: Vec<InstanceSeen>) {
        *self.instances.lock().unwrap_or_else(|e| e.into_inner()) = seen;
    }

    /// Counts an operation (`rate`, `lists`, `heartbeat`, `connect`) and
    /// its result (`ok`, `refused`, `error`, `timeout`, `down`, `full`,
    /// `ahead`, `overshoot`).
    pub(crate) fn count(&self, op: &'static str, result: &'static str) {
        *self
            .ops
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((op, result))
            .or_default() += 1;
    }

    /// Every operation's count, by operation and result.
    pub(crate) fn ops(&self) -> Vec<((&'static str, &'static str), u64)> {
        let ops = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        ops.iter().map(|(k, v)| (*k, *v)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::options::OnError;

    fn link() -> FleetLink {
        let link = FleetLink::new(FleetSettings {
            redis: "redis://127.0.0.1:6379/0".parse().unwrap(),
            name: "t".into(),
            prefix: "t".into(),
            timeout: Duration::from_millis(50),
            on_error: OnError::Local,
            password_file: None,
        });
        link.set_up(true);
        link
    }

    /// The test's clock, as a runtime's would be: only the origin is read,
    /// every later instant is computed from it.
    struct Clock;

    impl Clock {
        fn now(&self) -> Instant {
            Instant::now()
        }
    }

    fn ask(link: &FleetLink, rate: ConnectionRate, now: Instant) -> (bool, RateAsk) {
        let asked = link.ask_rate("c".into(), rate, now).unwrap();
        let sent = link.asks().try_recv().unwrap();
        (matches!(asked, Asked::Ahead), sent)
    }

    #[test]
    fn far_below_the_limit_requests_are_granted_ahead_near_it_they_wait() {
        let link = link();
        let rate = ConnectionRate {
            count: 1000,
            window: Duration::from_secs(10),
        };
        let t0 = Clock.now();
        // Nothing known: the first waits.
        let (ahead, first) = ask(&link, rate, t0);
        assert!(!ahead && !first.ahead);
        link.heard(&first, Some(800), t0);
        // 800 + in flight + 1 + 100 <= 1000: 100 ahead.
        let mut sent = Vec::new();
        for _ in 0..100 {
            let (ahead, a) = ask(&link, rate, t0);
            assert!(ahead && a.ahead);
            sent.push(a);
        }
        let (ahead, waited) = ask(&link, rate, t0);
        assert!(!ahead, "the headroom is kept");
        // The answers bring the count up; in flight goes down.
        link.heard(&sent[0], Some(801), t0);
        let (ahead, _) = ask(&link, rate, t0);
        assert!(!ahead, "801 + 99 in flight + 1 + 100 > 1000");
        link.heard(&waited, Some(700), t0);
        let (ahead, _) = ask(&link, rate, t0);
        assert!(ahead, "700 + 99 + 1 + 100 <= 1000");
        // A stale answer grants nothing ahead.
        let (ahead, _) = ask(&link, rate, t0 + FRESH);
        assert!(!ahead);
        // Nor does another rate, or a small limit.
        let other = ConnectionRate {
            count: 20,
            window: Duration::from_secs(10),
        };
        let (_, a) = ask(&link, other, t0);
        link.heard(&a, Some(1), t0);
        let (ahead, _) = ask(&link, other, t0);
        assert!(!ahead, "20/10s: every request waits");
        // Redis down: everything known is forgotten.
        link.set_up(false);
        link.set_up(true);
        let (ahead, _) = ask(&link, rate, t0);
        assert!(!ahead);
    }
}
