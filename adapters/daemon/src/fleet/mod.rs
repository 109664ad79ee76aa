//! The fleet task: with `[fleet]`, one task per instance holds a connection
//! to Redis and does everything the instance shares with the others
//! (`docs/fleet.md`):
//!
//! - **connection rates**: the questions connections ask through the
//!   daemon's [`FleetLink`] are answered by a Lua script (a sliding window
//!   of the granted requests' times, on Redis's clock), one per request,
//!   pipelined with whatever else is waiting; the script returns the
//!   window's count, which lets the link grant a client's requests ahead
//!   while far below the limit (`FleetLink::ask_rate`);
//! - **run-time lists**: `ctl deny|exempt add|del` changes are written to
//!   two hashes and a version counter; every [`POLL`] the task reads the
//!   version and, when it moved, loads both lists in full and lays them
//!   over the policy (so a change reaches every instance within about
//!   [`POLL`] and a round trip); an instance that starts or reconnects
//!   loads them in full, after pushing the changes it made while Redis was
//!   down; when Redis holds no lists of the fleet, or lists born after those
//!   the instance knew (`P:lists:born`: a new fleet, or a Redis that
//!   restarted without its data), each instance writes its own there;
//! - **heartbeat**: every [`HEARTBEAT`] the instance writes its name, the
//!   time and its round-trip time, and reads the others' (`ctl fleet`);
//! - **parents' health**: a parent this instance marks down is written
//!   with the end of its backoff; every [`POLL`] the others read them and
//!   mark it down too until then (one that works again is taken out);
//! - **quota usage**: with the heartbeat, and soon after a relay under a
//!   quota ends (at most every [`FLUSH_EVERY`]), the bytes moved since the
//!   last batch are added to per-client, per-period counters, whose totals come
//!   back (`quota.rs`).
//!
//! Redis is asked one pipeline at a time; a pipeline that takes longer than
//! [`PIPELINE_DEADLINE`] or fails drops the connection, marks the fleet
//! down (`socks4_fleet_up` 0, a warning) and the task reconnects with a
//! backoff doubling from [`BACKOFF`]`.0` to [`BACKOFF`]`.1`. While it is
//! down, connections decide at once, as `[fleet] on_error` says.
//!
//! Redis keys, under `[fleet] prefix` (`P`): `P:rate:CLIENT` (a sorted set
//! of granted requests), `P:lists:deny` and `P:lists:exempt` (hashes: net
//! to the entry as JSON), `P:lists:version` (a counter), `P:instances` (a
//! hash: name to heartbeat as JSON), `P:lists:born` (the lists' birth
//! mark), `P:parents` (a hash: parent to the end
//! of its backoff and the backoff, in ms), `P:quota:PERIOD:N:CLIENT` (bytes in
//! period number N, expiring an hour after it ends).

mod quota;
mod redis;

use crate::daemon::fleet_link::{FleetLink, InstanceSeen, RateAsk, SharedChange};
use crate::daemon::runtime_lists::{ListEntry, ListKind, RuntimeLists};
use crate::daemon::Daemon;
use crate::runtime::{later, Runtime};
use futures_lite::future::FutureExt;
use redis::{cmd, int, pairs, Command, Redis};
use redis_protocol::resp2::types::OwnedFrame;
use std::io;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often the list version is read.
pub(crate) const POLL: Duration = Duration::from_millis(250);

/// How often the instance writes its heartbeat and reads the others'.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(1);

/// An instance whose heartbeat is older than this is taken out of
/// `P:instances` by the next instance that reads it.
pub(crate) const FORGET_AFTER: Duration = Duration::from_secs(60);

/// The first and the longest pause before reconnecting.
pub(crate) const BACKOFF: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_secs(5));

/// The longest one pipeline (or a connect) may take before the connection
/// is dropped and Redis counted as down. Requests never wait this long:
/// each waits at most `[fleet] timeout`.
pub(crate) const PIPELINE_DEADLINE: Duration = Duration::from_secs(1);

/// The shortest time between two quota batches sent because relays ended
/// (the heartbeat's every second sends one anyway).
pub(crate) const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// Questions answered in one pipeline at most.
const BATCH: usize = 256;

/// How long the scripts of requests granted ahead wait for others to share
/// their pipeline (nobody waits for their answers; a request that waits for
/// its answer ends the gathering at once): one pipeline per this time
/// instead of one per request for a client that opens connections one
/// after another. The count the link knows ages by as much, within the
/// headroom.
pub(crate) const AHEAD_GATHER: Duration = Duration::from_millis(5);

/// The sliding window of a connection rate, on Redis's clock: drops the
/// times out of the window, and grants (adds the time, returns the count in
/// the window with it, at least 1) when fewer than the count are left, else
/// returns minus the count in the window (0 or less). KEYS[1] the client's
/// key; ARGV: the count, the window in ms, a unique member.
const RATE_SCRIPT: &str = "\
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if n >= tonumber(ARGV[1]) then return -n end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return n + 1";

/// Answers a question with the rate script's `reply` at `now` (a request
/// granted ahead only updates the count the link knows).
fn answer(link: &FleetLink, ask: RateAsk, reply: Option<OwnedFrame>, now: Instant) {
    let n = reply.as_ref().and_then(int);
    link.heard(&ask, n.map(i64::unsigned_abs), now);
    match n {
        Some(n) => {
            let granted = n > 0;
            link.count(
                "rate",
                match (granted, ask.ahead) {
                    (true, _) => "ok",
                    (false, false) => "refused",
                    (false, true) => "overshoot",
                },
            );
            if !ask.ahead {
                let _ = ask.reply.try_send(granted);
            }
        }
        None => link.count("rate", "error"),
    }
}

/// Milliseconds since the Unix epoch.
fn unix_ms() -> u64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Runs the fleet task until shutdown, when the daemon has `[fleet]`.
pub(crate) async fn run<R: Runtime>(rt: R, daemon: Daemon) {
    let Some(link) = daemon.fleet() else {
        return;
    };
    let settings = link.settings.clone();
    quota::all_told(daemon.clients());
    tracing::info!(target: "socks4d", redis = %settings.redis, name = settings.name.as_str(), "fleet: joining");
    let mut backoff = BACKOFF.0;
    let mut task = Task {
        rt: rt.clone(),
        daemon: daemon.clone(),
        version: None,
        beat: None,
        flushed: None,
        next_member: 0,
        born: None,
        pending: Vec::new(),
    };
    while !daemon.is_shutting_down() {
        let deadline = later(rt.now(), PIPELINE_DEADLINE);
        let stop = async {
            daemon.shutdown_requested().await;
            Err(io::Error::other("shutting down"))
        };
        // `[tls] ca` as the last reload left it: read at each connection.
        let tls = daemon.current().tls.client.clone();
        match Redis::connect(&rt, &settings, tls, deadline).or(stop).await {
            Ok(redis) => {
                link.count("connect", "ok");
                if link.set_up(true) {
                    tracing::info!(target: "socks4d", redis = %settings.redis, "fleet: connected to Redis: shared state in use");
                }
                backoff = BACKOFF.0;
                task.version = None;
                task.beat = None;
                let e = task.session(redis).await;
                if daemon.is_shutting_down() {
                    break;
                }
                if link.set_up(false) {
                    tracing::warn!(target: "socks4d", redis = %settings.redis, error = %e, "fleet: lost Redis; serving on local state");
                }
            }
            Err(_) if daemon.is_shutting_down() => break,
            Err(e) => {
                link.count("connect", "error");
                if link.set_up(false) {
                    tracing::warn!(target: "socks4d", redis = %settings.redis, error = %e, "fleet: Redis unreachable; serving on local state");
                } else {
                    tracing::debug!(target: "socks4d", error = %e, ?backoff, "fleet: reconnect failed");
                }
            }
        }
        let wake = later(rt.now(), backoff);
        rt.sleep_until(wake)
            .or(async { daemon.shutdown_requested().await })
            .await;
        backoff = (backoff * 2).min(BACKOFF.1);
    }
    link.set_up(false);
}

/// What the fleet task keeps between pipelines.
struct Task<R: Runtime> {
    rt: R,
    daemon: Daemon,
    /// The list version last loaded (`None`: load them).
    version: Option<Option<i64>>,
    /// When the last heartbeat went.
    beat: Option<Instant>,
    /// When the last quota batch went.
    flushed: Option<Instant>,
    /// Makes each granted request's member unique.
    next_member: u64,
    /// The lists' birth mark in Redis as this instance last saw it (a
    /// Redis that lost its data has none, or another).
    born: Option<Vec<u8>>,
    /// List changes not yet written.
    pending: Vec<SharedChange>,
}

/// What woke the task.
enum Wake {
    Ask(RateAsk),
    Flush,
    Change(SharedChange),
    Tick,
    Stop,
}

impl<R: Runtime> Task<R> {
    fn link(&self) -> &FleetLink {
        self.daemon
            .fleet()
            .expect("the fleet task runs with [fleet]")
    }

    fn key(&self, rest: &str) -> Vec<u8> {
        format!("{}:{rest}", self.link().settings.prefix).into_bytes()
    }

    fn list_key(&self, kind: ListKind) -> Vec<u8> {
        self.key(&format!("lists:{}", kind.name()))
    }

    /// Serves on one connection until it fails (the error) or shutdown.
    async fn session(&mut self, mut redis: Redis<R>) -> io::Error {
        let mut last_poll: Option<Instant> = None;
        loop {
            let link = self.link();
            let due = last_poll.map_or(self.rt.now(), |t| t + POLL);
            let wake = async { link.asks().recv().await.map_or(Wake::Stop, Wake::Ask) }
                .or(async { link.changes().recv().await.map_or(Wake::Stop, Wake::Change) })
                .or(async {
                    link.flushes()
                        .recv()
                        .await
                        .map_or(Wake::Stop, |()| Wake::Flush)
                })
                .or(async {
                    self.rt.sleep_until(due).await;
                    Wake::Tick
                })
                .or(async {
                    self.daemon.shutdown_requested().await;
                    Wake::Stop
                })
                .await;
            let mut asks = Vec::new();
            let mut flush = false;
            match wake {
                Wake::Stop => {
                    let bye = [cmd([
                        b"HDEL",
                        &self.key("instances"),
                        self.link().settings.name.as_bytes(),
                    ])];
                    let _ = redis
                        .call(&bye, later(self.rt.now(), self.link().settings.timeout))
                        .await;
                    return io::Error::other("shutting down");
                }
                Wake::Ask(a) => asks.push(a),
                Wake::Change(c) => self.pending.push(c),
                Wake::Flush => flush = true,
                Wake::Tick => {}
            }
            while asks.len() < BATCH {
                match self.link().asks().try_recv() {
                    Ok(a) => asks.push(a),
                    Err(_) => break,
                }
            }
            if !asks.is_empty() && asks.iter().all(|a| a.ahead) {
                self.gather(&mut asks).await;
            }
            while let Ok(c) = self.link().changes().try_recv() {
                self.pending.push(c);
            }
            let poll = self.version.is_none() || self.rt.now() >= due;
            if poll {
                last_poll = Some(self.rt.now());
            }
            // A quota batch on a relay's end, at most every FLUSH_EVERY.
            let flush = flush
                && self
                    .flushed
                    .is_none_or(|t| self.rt.now() >= t + FLUSH_EVERY);
            if let Err(e) = self.exchange(&mut redis, asks, (poll, flush)).await {
                return e;
            }
        }
    }

    /// Adds to `asks` (all granted ahead) the questions that come within
    /// [`AHEAD_GATHER`], up to [`BATCH`], until one that waits for its
    /// answer comes.
    async fn gather(&self, asks: &mut Vec<RateAsk>) {
        let link = self.link();
        let until = later(self.rt.now(), AHEAD_GATHER);
        while asks.len() < BATCH {
            let next = async { link.asks().recv().await.ok() }
                .or(async {
                    self.rt.sleep_until(until).await;
                    None
                })
                .await;
            let Some(ask) = next else {
                return;
            };
            let waits = !ask.ahead;
            asks.push(ask);
            if waits {
                return;
            }
        }
    }

    /// One pipeline: the questions, the list changes, and (when `poll`)
    /// the list version and the heartbeat; then the lists, if they moved.
    async fn exchange(
        &mut self,
        redis: &mut Redis<R>,
        asks: Vec<RateAsk>,
        (poll, flush): (bool, bool),
    ) -> io::Result<()> {
        let daemon = self.daemon.clone();
        let link = daemon.fleet().expect("the fleet task runs with [fleet]");
        let mut commands = self.rate_commands(&asks);
        let changes = self.pending.len();
        let list_changes = self
            .pending
            .iter()
            .any(|c| matches!(c, SharedChange::Set(..) | SharedChange::Del(..)));
        commands.extend(self.change_commands());
        let beat = poll && self.beat.is_none_or(|t| self.rt.now() >= t + HEARTBEAT);
        if poll {
            commands.push(cmd([b"GET", &self.key("lists:version")]));
            commands.push(cmd([b"HGETALL", &self.key("parents")]));
            commands.push(cmd([b"GET", &self.key("lists:born")]));
        }
        if beat {
            commands.extend(self.beat_commands());
        }
        if beat || flush {
            self.flushed = Some(self.rt.now());
        }
        let (quota_commands, asked) = match beat || flush {
            true => quota::batch(&link.settings.prefix, self.daemon.clients()),
            false => Default::default(),
        };
        commands.extend(quota_commands);
        if commands.is_empty() {
            return Ok(());
        }
        let start = self.rt.now();
        let replies = redis
            .call(&commands, later(start, PIPELINE_DEADLINE))
            .await?;
        let rtt = self.rt.now().saturating_duration_since(start);
        link.set_rtt_us(u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX));
        let mut replies = replies.into_iter();
        let now = self.rt.now();
        for a in asks {
            answer(link, a, replies.next(), now);
        }
        if changes > 0 {
            let written = replies
                .by_ref()
                .take(changes + usize::from(list_changes))
                .collect::<Vec<_>>();
            let failed = written.iter().any(|r| matches!(r, OwnedFrame::Error(_)));
            link.count("lists", if failed { "error" } else { "ok" });
            self.pending.clear();
        }
        if poll {
            self.polled(redis, &mut replies).await?;
        }
        let all = match beat {
            true => {
                let _ = replies.next();
                link.count("heartbeat", "ok");
                replies.next().map(pairs)
            }
            false => None,
        };
        if !asked.is_empty() {
            let ok = quota::heard(asked, &mut replies);
            link.count("quota", if ok { "ok" } else { "error" });
        }
        if let Some(all) = all {
            self.seen(redis, all).await?;
        }
        Ok(())
    }

    /// Takes the poll's answers (the lists' version, the parents marked
    /// down, the lists' birth mark): the lists are loaded when they moved,
    /// and written when Redis lost them.
    async fn polled(
        &mut self,
        redis: &mut Redis<R>,
        replies: &mut impl Iterator<Item = OwnedFrame>,
    ) -> io::Result<()> {
        let mut moved = self.version.is_none();
        let version = replies.next().as_ref().and_then(int);
        let parents = replies.next().map(pairs).unwrap_or_default();
        self.parents_down(parents);
        moved |= self.version != Some(version);
        let born = match replies.next() {
            Some(OwnedFrame::BulkString(b)) => Some(b),
            _ => None,
        };
        match (&self.born, born) {
            (Some(mine), Some(b)) if *mine == b => {
                if moved {
                    self.load(redis, version).await?;
                }
            }
            (None, Some(b)) => {
                self.born = Some(b);
                self.load(redis, version).await?;
            }
            _ => self.lists_lost(redis).await?,
        }
        Ok(())
    }

    /// One rate script per question.
    fn rate_commands(&mut self, asks: &[RateAsk]) -> Vec<Command> {
        let mut commands = Vec::new();
        for a in asks {
            self.next_member += 1;
            let member = format!("{}:{}", self.link().settings.name, self.next_member);
            commands.push(cmd([
                b"EVAL",
                RATE_SCRIPT.as_bytes(),
                b"1",
                &self.key(&format!("rate:{}", a.client)),
                a.rate.count.to_string().as_bytes(),
                a.rate.window.as_millis().max(1).to_string().as_bytes(),
                member.as_bytes(),
            ]));
        }
        commands
    }

    /// One command per pending change, and the lists' version moved when
    /// a list changed.
    fn change_commands(&self) -> Vec<Command> {
        let mut commands: Vec<Command> = self
            .pending
            .iter()
            .map(|c| match c {
                SharedChange::Set(kind, entry) => cmd([
                    b"HSET",
                    &self.list_key(*kind),
                    entry.net.as_bytes(),
                    &serde_json::to_vec(entry).unwrap_or_default(),
                ]),
                SharedChange::Del(kind, net) => {
                    cmd([b"HDEL", &self.list_key(*kind), net.as_bytes()])
                }
                SharedChange::ParentDown(parent, until_ms, backoff_ms) => cmd([
                    b"HSET",
                    &self.key("parents"),
                    parent.as_bytes(),
                    format!("{until_ms} {backoff_ms}").as_bytes(),
                ]),
                SharedChange::ParentUp(parent) => {
                    cmd([b"HDEL", &self.key("parents"), parent.as_bytes()])
                }
            })
            .collect();
        if self
            .pending
            .iter()
            .any(|c| matches!(c, SharedChange::Set(..) | SharedChange::Del(..)))
        {
            commands.push(cmd([b"INCR", &self.key("lists:version")]));
        }
        commands
    }

    /// The heartbeat: this instance's, then every instance's.
    fn beat_commands(&mut self) -> Vec<Command> {
        let link = self.link();
        let me = InstanceSeen {
            name: link.settings.name.clone(),
            seen_ms: unix_ms(),
            rtt_us: link.rtt_us(),
            version: format!("{} {}", env!("CARGO_PKG_VERSION"), R::NAME),
        };
        let commands = vec![
            cmd([
                b"HSET",
                &self.key("instances"),
                me.name.as_bytes(),
                &serde_json::to_vec(&me).unwrap_or_default(),
            ]),
            cmd([b"HGETALL", &self.key("instances")]),
        ];
        self.beat = Some(self.rt.now());
        commands
    }

    /// Marks down here the parents another instance marked down, until
    /// their backoff ends.
    fn parents_down(&self, parents: Vec<(Vec<u8>, Vec<u8>)>) {
        let now_ms = unix_ms();
        let now = self.rt.now();
        let book = &self.daemon.outbound().parents;
        for (key, value) in parents {
            let text = String::from_utf8_lossy(&value);
            let mut words = text.split(' ').map(|w| w.parse::<u64>().ok());
            let (Some(Some(until)), Some(Some(backoff))) = (words.next(), words.next()) else {
                continue;
            };
            if until > now_ms {
                let left = Duration::from_millis(until - now_ms);
                book.down_elsewhere(
                    &String::from_utf8_lossy(&key),
                    later(now, left),
                    Duration::from_millis(backoff),
                    now,
                );
            }
        }
    }

    /// Redis holds no lists of this fleet, or lists born after those this
    /// instance knew (a new fleet, or a Redis that restarted without its
    /// data): this instance's entries go there (every instance's, so the
    /// lists are their union), and it loads them once they are written.
    async fn lists_lost(&mut self, redis: &mut Redis<R>) -> io::Result<()> {
        self.share_local_lists();
        let id = format!("{}-{}", self.link().settings.name, unix_ms());
        let born = self.key("lists:born");
        let commands = [
            cmd([b"SET", &born, id.as_bytes(), b"NX"]),
            cmd([b"GET", &born]),
        ];
        let replies = redis
            .call(&commands, later(self.rt.now(), PIPELINE_DEADLINE))
            .await?;
        if let Some(OwnedFrame::BulkString(b)) = replies.into_iter().nth(1) {
            self.born = Some(b);
        }
        self.version = None;
        Ok(())
    }

    /// Queues every run-time entry of this instance for Redis.
    fn share_local_lists(&mut self) {
        let lists = self.daemon.runtime_lists();
        let deny = lists
            .deny
            .into_iter()
            .map(|e| SharedChange::Set(ListKind::Deny, e));
        let exempt = lists
            .exempt
            .into_iter()
            .map(|e| SharedChange::Set(ListKind::Exempt, e));
        self.pending.extend(deny.chain(exempt));
    }

    /// Loads both lists in full and lays them over the policy; drops the
    /// expired entries from Redis.
    async fn load(&mut self, redis: &mut Redis<R>, version: Option<i64>) -> io::Result<()> {
        let link = self
            .daemon
            .fleet()
            .expect("the fleet task runs with [fleet]");
        let commands = [
            cmd([b"HGETALL", &self.list_key(ListKind::Deny)]),
            cmd([b"HGETALL", &self.list_key(ListKind::Exempt)]),
        ];
        let mut replies = redis
            .call(&commands, later(self.rt.now(), PIPELINE_DEADLINE))
            .await?
            .into_iter();
        let now = SystemTime::now();
        let unix = crate::daemon::runtime_lists::unix(now);
        let mut lists = RuntimeLists::default();
        let mut expired = Vec::new();
        for kind in [ListKind::Deny, ListKind::Exempt] {
            for (net, json) in replies.next().map(pairs).unwrap_or_default() {
                match serde_json::from_slice::<ListEntry>(&json) {
                    Ok(e) if e.expires_at.is_none_or(|t| t > unix) => match kind {
                        ListKind::Deny => lists.deny.push(e),
                        ListKind::Exempt => lists.exempt.push(e),
                    },
                    _ => expired.push(cmd([b"HDEL", &self.list_key(kind), &net])),
                }
            }
        }
        self.daemon.set_runtime_lists(lists, now);
        link.count("lists", "loaded");
        self.version = Some(version);
        if !expired.is_empty() {
            redis
                .call(&expired, later(self.rt.now(), PIPELINE_DEADLINE))
                .await?;
        }
        Ok(())
    }

    /// Records the instances a heartbeat read, and forgets those silent
    /// for [`FORGET_AFTER`].
    async fn seen(&mut self, redis: &mut Redis<R>, all: Vec<(Vec<u8>, Vec<u8>)>) -> io::Result<()> {
        let link = self
            .daemon
            .fleet()
            .expect("the fleet task runs with [fleet]");
        let now = unix_ms();
        let forget = u64::try_from(FORGET_AFTER.as_millis()).unwrap_or(u64::MAX);
        let mut seen = Vec::new();
        let mut gone = Vec::new();
        for (name, json) in all {
            match serde_json::from_slice::<InstanceSeen>(&json) {
                Ok(i) if now.saturating_sub(i.seen_ms) < forget => seen.push(i),
                _ => gone.push(cmd([b"HDEL", &self.key("instances"), &name])),
            }
        }
        seen.sort_by(|a, b| a.name.cmp(&b.name));
        link.set_instances(seen);
        if !gone.is_empty() {
            redis
                .call(&gone, later(self.rt.now(), PIPELINE_DEADLINE))
                .await?;
        }
        Ok(())
    }
}
