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

use crate::config::settings::fleet::FleetSettings;
use crate::daemon::runtime_lists::{ListEntry, ListKind};
use socks4_acl::limit::ConnectionRate;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// Questions waiting for the fleet task at most; past it, one is answered
/// "unavailable" at once.
pub(crate) const ASK_QUEUE: usize = 4096;

/// List changes waiting for Redis at most (while it is down); past it, a
/// change stays on this instance.
pub(crate) const CHANGE_QUEUE: usize = 1024;

/// A question a connection asks the fleet.
#[derive(Debug)]
pub(crate) struct RateAsk {
    /// The client, as the per-client table keys it.
    pub(crate) client: String,
    /// The rate to hold it to.
    pub(crate) rate: ConnectionRate,
    /// Where the answer goes: granted or not.
    pub(crate) reply: async_channel::Sender<bool>,
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
        }
    }

    /// Asks whether `client` may have one more request under `rate`
    /// fleet-wide: the answer's receiver, or `None` at once when Redis is
    /// down or the queue is full.
    pub(crate) fn ask_rate(
        &self,
        client: String,
        rate: ConnectionRate,
    ) -> Option<async_channel::Receiver<bool>> {
        if !self.is_up() {
            self.count("rate", "down");
            return None;
        }
        let (reply, answer) = async_channel::bounded(1);
        match self.asks.0.try_send(RateAsk {
            client,
            rate,
            reply,
        }) {
            Ok(()) => Some(answer),
            Err(_) => {
                self.count("rate", "full");
                None
            }
        }
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

    /// Records whether Redis is up; `true` when that changed.
    pub(crate) fn set_up(&self, up: bool) -> bool {
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
    /// its result (`ok`, `refused`, `error`, `timeout`, `down`, `full`).
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
