//! A fleet: three of our servers on different ports sharing one
//! redis-server (started by each test on a free loopback port, without
//! persistence, stopped by PID): run-time lists, connection rates and quota
//! usage decided as one, and every instance serving on its own while Redis
//! is away (`docs/fleet.md`).

use super::dns_ns::{ctl, sample};
use socks4_tests::e2e::*;
use socks4_tests::peers::redis_server;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

socks4_tests::on_every_adapter!(
    a_denial_reaches_every_instance_and_its_expiry_lifts_it_everywhere,
    without_redis_every_instance_serves_and_the_fleet_converges_when_it_is_back,
    a_connection_rate_is_counted_across_the_fleet,
    far_below_a_fleet_rate_requests_are_granted_ahead_within_the_bound,
    a_quota_is_shared_by_the_fleet_and_survives_restarts,
    a_parent_one_instance_marks_down_is_down_for_all,
    a_fleet_on_rediss_shares_its_lists_over_tls,
    a_fleet_on_rediss_with_the_wrong_authority_stays_down_and_serves,
);

const MIB: u64 = 1 << 20;

/// One instance of the fleet: the server and its control socket.
struct Instance {
    server: Server,
    socket: PathBuf,
}

/// Starts instance `name` of a fleet on Redis at `redis`, with `limits` in
/// `[limits]` (and any section after them), a control socket and a metrics
/// listener.
fn instance(bin: &str, test: &str, name: &str, redis: u16, limits: &str) -> Instance {
    let url = format!("redis://127.0.0.1:{redis}/0");
    instance_at(bin, test, name, &url, limits, "")
}

/// Instance `name` of a fleet on Redis at `url`, with `limits` in
/// `[limits]` and `more` after `[fleet]` (another section).
fn instance_at(bin: &str, test: &str, name: &str, url: &str, limits: &str, more: &str) -> Instance {
    let dir = socks4_tests::scratch::fresh(&format!("fleet-{test}-{name}-{bin}"));
    let socket = dir.join("ctl.sock");
    let conf = dir.join("socks4d.toml");
    std::fs::write(
        &conf,
        format!(
            "listen = [\"127.0.0.1:0\"]\ncontrol_socket = \"{}\"\nmetrics_listen = \"127.0.0.1:0\"\n\
             [limits]\n{limits}\n\
             [fleet]\nredis = \"{url}\"\nname = \"{name}\"\nprefix = \"t-{test}\"\n{more}",
            socket.display()
        ),
    )
    .unwrap();
    let server = Server::start_with(bin, &["--config", &conf.display().to_string()]);
    Instance { server, socket }
}

/// Three instances named `i1`..`i3`, each connected to Redis.
fn fleet(bin: &str, test: &str, redis: u16, limits: &str) -> Vec<Instance> {
    let all: Vec<Instance> = (1..=3)
        .map(|i| instance(bin, test, &format!("i{i}"), redis, limits))
        .collect();
    for i in &all {
        wait_up(bin, i, true);
    }
    all
}

/// `socks4_fleet_up` of an instance's metrics.
fn fleet_up(i: &Instance) -> Option<u64> {
    i.server
        .metrics()
        .lines()
        .find_map(|l| l.strip_prefix("socks4_fleet_up "))
        .and_then(|v| v.trim().parse().ok())
}

/// Waits (at most [`STEP`] × 2) until the instance's `socks4_fleet_up` is
/// `up`.
fn wait_up(bin: &str, i: &Instance, up: bool) {
    let deadline = Instant::now() + STEP * 2;
    while fleet_up(i) != Some(u64::from(up)) {
        assert!(
            Instant::now() < deadline,
            "{bin}: socks4_fleet_up never {up}:\n{}",
            i.server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (at most [`STEP`]) until `ctl LIST list` on `i` shows `net`.
fn wait_listed(bin: &str, i: &Instance, list: &str, net: &str) {
    let deadline = Instant::now() + STEP;
    loop {
        let out = ctl(bin, &i.socket, &[list, "list"]);
        if out.contains(net) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{bin}: {net} never on {list}: {out}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One CONNECT to `dest` through `proxy`: whether it was granted.
fn try_connect(proxy: SocketAddr, dest: SocketAddr) -> bool {
    granted(&socks_request(proxy, &connect_to(dest, b""), |_| {}))
}

/// Waits (at most `limit`) until CONNECTs through `proxy` are granted as
/// `want` says; how long that took.
fn wait_granted(
    bin: &str,
    proxy: SocketAddr,
    dest: SocketAddr,
    want: bool,
    limit: Duration,
) -> Duration {
    let start = Instant::now();
    while try_connect(proxy, dest) != want {
        assert!(
            start.elapsed() < limit,
            "{bin}: {proxy} never {} within {limit:?}",
            if want { "granted" } else { "refused" }
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

fn a_denial_reaches_every_instance_and_its_expiry_lifts_it_everywhere(bin: &str) {
    let redis = redis_server(free_port());
    let all = fleet(bin, "deny", redis.addr.port(), "");
    let dest = echo(64);
    for i in &all {
        assert!(try_connect(i.server.addr, dest), "{bin}: granted before");
    }
    let out = ctl(
        bin,
        &all[0].socket,
        &[
            "deny",
            "add",
            "127.0.0.1",
            "for",
            "4s",
            "reason",
            "fleet test",
        ],
    );
    assert!(out.contains("added"), "{bin}: {out}");
    // The instance that added it refuses at once; the others within a
    // second (a poll every 250 ms and a round trip), with room for a
    // loaded machine.
    assert!(!try_connect(all[0].server.addr, dest), "{bin}");
    for i in &all[1..] {
        let took = wait_granted(bin, i.server.addr, dest, false, STEP);
        assert!(
            took < Duration::from_secs(3),
            "{bin}: the denial took {took:?}"
        );
        let list = ctl(bin, &i.socket, &["deny", "list"]);
        assert!(
            list.contains("127.0.0.1/32") && list.contains("fleet test"),
            "{bin}: {list}"
        );
    }
    // Its expiry lifts it on every instance.
    for i in &all {
        wait_granted(bin, i.server.addr, dest, true, STEP);
    }
    // A deletion reaches the others too.
    ctl(bin, &all[1].socket, &["deny", "add", "127.0.0.1"]);
    wait_granted(bin, all[2].server.addr, dest, false, STEP);
    ctl(bin, &all[2].socket, &["deny", "del", "127.0.0.1"]);
    for i in &all {
        wait_granted(bin, i.server.addr, dest, true, STEP);
    }
    // `ctl fleet` lists the three, recently seen.
    let out = ctl(bin, &all[0].socket, &["fleet", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["up"], true, "{bin}: {out}");
    let names: Vec<&str> = v["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["recent"] == true)
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["i1", "i2", "i3"], "{bin}: {out}");
    drop(redis);
}

fn without_redis_every_instance_serves_and_the_fleet_converges_when_it_is_back(bin: &str) {
    let port = free_port();
    let redis = redis_server(port);
    let all = fleet(bin, "down", port, "client_connection_rate = \"1000/10s\"");
    let dest = echo(64);
    // An entry shared before Redis goes away (and comes back empty).
    ctl(bin, &all[1].socket, &["exempt", "add", "10.9.9.9"]);
    wait_listed(bin, &all[2], "exempt", "10.9.9.9/32");
    drop(redis);
    for i in &all {
        wait_up(bin, i, false);
    }
    // Every instance serves on its own state, none waiting on Redis.
    for i in &all {
        for _ in 0..3 {
            let start = Instant::now();
            assert!(
                try_connect(i.server.addr, dest),
                "{bin}: served without Redis"
            );
            // The fleet timeout (50 ms) plus a generous margin for a loaded
            // machine: never the seconds a wait on Redis would take.
            assert!(
                start.elapsed() < Duration::from_secs(1),
                "{bin}: {:?}",
                start.elapsed()
            );
        }
    }
    // A denial added meanwhile stays on its instance...
    ctl(bin, &all[0].socket, &["deny", "add", "127.0.0.1"]);
    assert!(!try_connect(all[0].server.addr, dest), "{bin}");
    assert!(
        try_connect(all[1].server.addr, dest),
        "{bin}: not shared while Redis is down"
    );
    // ...until Redis is back: then it reaches the others.
    let redis = redis_server(port);
    for i in &all {
        wait_up(bin, i, true);
    }
    for i in &all[1..] {
        wait_granted(bin, i.server.addr, dest, false, STEP);
    }
    // Redis came back without its data: the instances wrote theirs again.
    // (Loading Redis's empty lists would have lost it.)
    for i in &all {
        wait_listed(bin, i, "exempt", "10.9.9.9/32");
    }
    // Each connected again.
    for i in &all {
        let page = i.server.metrics();
        let connects = sample(
            &page,
            "socks4_fleet_ops_total",
            "op=\"connect\",result=\"ok\"",
        );
        assert!(connects.is_some_and(|n| n >= 2), "{bin}: {page}");
    }
    drop(redis);
}

fn a_connection_rate_is_counted_across_the_fleet(bin: &str) {
    let redis = redis_server(free_port());
    let all = fleet(
        bin,
        "rate",
        redis.addr.port(),
        "client_connection_rate = \"20/10s\"",
    );
    let dest = echo(64);
    // 20 requests spread over the three: all granted (each instance alone
    // would grant 20).
    for n in 0..20 {
        assert!(
            try_connect(all[n % 3].server.addr, dest),
            "{bin}: request {}",
            n + 1
        );
    }
    // The 21st is refused, whichever instance gets it.
    for i in &all {
        assert!(!try_connect(i.server.addr, dest), "{bin}: the 21st granted");
    }
    let page = all[0].server.metrics();
    assert!(
        sample(
            &page,
            "socks4_fleet_ops_total",
            "op=\"rate\",result=\"refused\""
        )
        .is_some_and(|n| n >= 1),
        "{bin}: {page}"
    );
    drop(redis);
}

/// The sum over `all` of `socks4_fleet_ops_total{op="rate",result}`.
fn rate_ops(all: &[Instance], result: &str) -> u64 {
    let labels = format!("op=\"rate\",result=\"{result}\"");
    all.iter()
        .map(|i| sample(&i.server.metrics(), "socks4_fleet_ops_total", &labels).unwrap_or(0))
        .sum()
}

/// `redis-cli -p PORT ARGS...`'s output, trimmed.
fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = std::process::Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .expect("redis-cli runs");
    assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Waits (at most [`STEP`]) until Redis has answered every rate script of
/// `asked` requests (ahead ones included): `ok`, `refused` and `overshoot`
/// add up to it.
fn wait_answered(bin: &str, all: &[Instance], asked: u64) {
    let deadline = Instant::now() + STEP;
    while rate_ops(all, "ok") + rate_ops(all, "refused") + rate_ops(all, "overshoot") < asked {
        assert!(
            Instant::now() < deadline,
            "{bin}: {asked} scripts never answered: {}",
            all[0].server.metrics()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The rate of the granting-ahead test: `LIMIT` a minute.
const LIMIT: u64 = 200;
/// docs/fleet.md: requests are granted ahead while the count known, the
/// requests in flight and this one stay a headroom (10 %, at least 64)
/// below the limit.
const HEADROOM: u64 = 64;
/// The requests the granting-ahead test makes over the three instances.
const ASKED: u64 = 260;

fn far_below_a_fleet_rate_requests_are_granted_ahead_within_the_bound(bin: &str) {
    let redis = redis_server(free_port());
    let port = redis.addr.port();
    let url = format!("redis://127.0.0.1:{port}/0");
    // A generous timeout: no request is decided locally on a loaded
    // machine, so every grant is Redis's or granted ahead.
    let all: Vec<Instance> = ["i1", "i2", "i3"]
        .iter()
        .map(|n| {
            instance_at(
                bin,
                "ahead",
                n,
                &url,
                &format!("client_connection_rate = \"{LIMIT}/1m\""),
                "timeout = \"5s\"\n",
            )
        })
        .collect();
    for i in &all {
        wait_up(bin, i, true);
    }
    let dest = echo(ASKED as usize + 16);
    // One client, one request at a time, spread over the three: between
    // two answers to one instance the others grant two requests, far below
    // the headroom, so the fleet never passes the limit.
    let granted = (0..ASKED as usize)
        .filter(|n| try_connect(all[n % 3].server.addr, dest))
        .count() as u64;
    wait_answered(bin, &all, ASKED);
    let (ok, refused) = (rate_ops(&all, "ok"), rate_ops(&all, "refused"));
    let (ahead, overshoot) = (rate_ops(&all, "ahead"), rate_ops(&all, "overshoot"));
    let seen = format!("{bin}: granted {granted}, ok {ok}, refused {refused}, ahead {ahead}, overshoot {overshoot}");
    assert_eq!(granted, LIMIT, "{seen}");
    assert_eq!(rate_ops(&all, "timeout"), 0, "{seen}");
    // Far below the limit, requests were granted ahead; near it, none.
    // Each instance grants ahead on the count Redis last answered it, which
    // lags behind the others' grants since (and its scripts wait up to
    // AHEAD_GATHER for company): a few more than LIMIT - HEADROOM may go
    // ahead, never the last of the headroom.
    assert!(ahead > 0, "{seen}");
    assert!(ahead <= LIMIT - HEADROOM / 2, "{seen}");
    assert_eq!(overshoot, 0, "{seen}");
    // A request granted ahead that Redis then grants counts `ok` too:
    // every grant is `ok` or `overshoot`, every refusal `refused`.
    assert_eq!(ok + overshoot, granted, "{seen}");
    assert_eq!(refused, ASKED - granted, "{seen}");
    // Redis's window holds exactly the limit, fleet-wide.
    let key = redis_cli(port, &["--raw", "KEYS", "t-ahead:rate:*"]);
    assert_eq!(key.lines().count(), 1, "{bin}: {key}");
    assert_eq!(
        redis_cli(port, &["ZCARD", &key]),
        LIMIT.to_string(),
        "{bin}"
    );

    granted_past_the_limit_on_a_count_gone_stale(bin, &all, port, &key, dest);
    drop(redis);
}

/// The other instances of a fleet grant the client more than the headroom
/// within the age of the answer one instance knows (written here straight
/// into the window `key` of Redis on `port`, as their scripts would, after
/// `all` answered [`ASKED`] requests under [`LIMIT`]): that instance grants
/// ahead past the limit, and counts it `overshoot`.
fn granted_past_the_limit_on_a_count_gone_stale(
    bin: &str,
    all: &[Instance],
    port: u16,
    key: &str,
    dest: SocketAddr,
) {
    // Bounded attempts: on a loaded machine the answer may age past a
    // second before the window is filled (then nothing is granted ahead).
    let first = &all[0];
    let mut passed = 0;
    for attempt in 0..5 {
        redis_cli(port, &["DEL", key]);
        // Every answer known ages past a second: the next request waits.
        std::thread::sleep(Duration::from_millis(1100));
        let before = (rate_ops(all, "ok"), rate_ops(all, "overshoot"));
        assert!(
            try_connect(first.server.addr, dest),
            "{bin}: attempt {attempt}"
        );
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            .to_string();
        let mut zadd = vec!["ZADD".to_owned(), key.to_owned()];
        for m in 1..LIMIT {
            zadd.extend([now_ms.clone(), format!("other-{m}")]);
        }
        let zadd: Vec<&str> = zadd.iter().map(String::as_str).collect();
        assert_eq!(redis_cli(port, &zadd), (LIMIT - 1).to_string(), "{bin}");
        // The first instance still knows a count of 1: a handful of
        // requests, each granted ahead until Redis's refusal comes back.
        passed = (0..4)
            .filter(|_| try_connect(first.server.addr, dest))
            .count() as u64;
        wait_answered(bin, all, ASKED + 5 * (attempt + 1));
        let overshoot = rate_ops(all, "overshoot") - before.1;
        let seen = format!("{bin}: attempt {attempt}: passed {passed}, overshoot {overshoot}");
        // Every request past the limit is an overshoot, and nothing else.
        assert_eq!(overshoot, passed, "{seen}");
        assert_eq!(rate_ops(all, "ok") - before.0, 1, "{seen}");
        // Redis never counts past the limit: what passed it is on top.
        assert_eq!(
            redis_cli(port, &["ZCARD", key]),
            LIMIT.to_string(),
            "{seen}"
        );
        if passed > 0 {
            break;
        }
    }
    assert!(passed > 0, "{bin}: never granted ahead past the limit");
}

/// Writes through `proxy` to `dest` until the proxy cuts the connection
/// (at most [`STEP`] × 3).
fn push_until_cut(proxy: SocketAddr, dest: SocketAddr) {
    let mut c = socks_request(proxy, &connect_to(dest, b""), |_| {});
    if !granted(&c) {
        return;
    }
    c.stream.set_write_timeout(Some(STEP)).unwrap();
    let chunk = vec![7u8; 64 * 1024];
    let deadline = Instant::now() + STEP * 3;
    while Instant::now() < deadline && c.stream.write_all(&chunk).is_ok() {}
}

/// A sink: reads every connection to its end, counting the bytes.
fn sink(count: usize) -> (SocketAddr, Arc<AtomicU64>) {
    let got = Arc::new(AtomicU64::new(0));
    let counter = got.clone();
    let addr = peer(count, move |mut s: TcpStream| {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            counter.fetch_add(n as u64, Ordering::Relaxed);
        }
    });
    (addr, got)
}

fn a_quota_is_shared_by_the_fleet_and_survives_restarts(bin: &str) {
    let redis = redis_server(free_port());
    // 1 MiB/s per client and instance: one batch interval (a second) is
    // worth about 1 MiB (plus the bucket's second of burst) per instance.
    let limits = "quota = \"10MiB/day\"\nclient_bandwidth = \"1MiB/s\"";
    let all = fleet(bin, "quota", redis.addr.port(), limits);
    let (dest, got) = sink(64);
    std::thread::scope(|s| {
        for i in &all {
            s.spawn(|| push_until_cut(i.server.addr, dest));
        }
    });
    let moved = got.load(Ordering::Relaxed);
    // Cut at the fleet's 10 MiB plus at most about a batch interval's worth
    // per instance: far from the 30 MiB three separate quotas would give.
    assert!(moved >= 9 * MIB, "{bin}: only {moved} bytes");
    assert!(moved < 20 * MIB, "{bin}: {moved} bytes: not shared");
    // Every instance restarted (no state file): the usage is in Redis.
    drop(all);
    let all = fleet(bin, "quota", redis.addr.port(), limits);
    let before = got.load(Ordering::Relaxed);
    for i in &all {
        push_until_cut(i.server.addr, dest);
    }
    let after = got.load(Ordering::Relaxed) - before;
    // At most about a batch interval's worth each (a fresh quota on each
    // would give 30 MiB).
    assert!(
        after < 10 * MIB,
        "{bin}: {after} bytes more after the restart"
    );
    // Cut (or refused) on each: the log says why.
    for i in &all {
        let page = i.server.metrics();
        assert!(
            sample(
                &page,
                "socks4_fleet_ops_total",
                "op=\"quota\",result=\"ok\""
            )
            .is_some_and(|n| n >= 1),
            "{bin}: {page}"
        );
    }
    drop(redis);
}

fn a_parent_one_instance_marks_down_is_down_for_all(bin: &str) {
    let redis = redis_server(free_port());
    let good = Server::start(bin, &[]);
    let dead = ClosedPort::new();
    let dead_url = format!("socks4://127.0.0.1:{}", dead.port());
    let rules = format!(
        "[parents]\nmax_failures = 1\n[access]\nrules = \"\"\"\npass from 127.0.0.0/8 to any\n\
         route to any via {dead_url}, socks4://{}\n\"\"\"",
        good.addr
    );
    let all = fleet(bin, "parents", redis.addr.port(), &rules);
    let dest = echo(16);
    // Instance 1 tries the dead parent first, marks it down, and goes
    // through the other.
    assert!(try_connect(all[0].server.addr, dest), "{bin}");
    let labels = format!("parent=\"{dead_url}\"");
    assert_eq!(
        sample(&all[0].server.metrics(), "socks4_parent_up", &labels),
        Some(0),
        "{bin}"
    );
    // Instances 2 and 3, which never tried it, have it down too.
    for i in &all[1..] {
        let deadline = Instant::now() + STEP;
        while sample(&i.server.metrics(), "socks4_parent_up", &labels) != Some(0) {
            assert!(
                Instant::now() < deadline,
                "{bin}: {dead_url} never down on {}",
                i.server.addr
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = ctl(bin, &i.socket, &["parents"]);
        assert!(
            out.contains("marked down by another instance of the fleet"),
            "{bin}: {out}"
        );
        let attempts = sample(
            &i.server.metrics(),
            "socks4_parent_attempts_total",
            &format!("{labels},result=\"error\""),
        );
        assert_eq!(attempts.unwrap_or(0), 0, "{bin}: tried it itself");
    }
    drop(redis);
}

/// A test authority, a certificate it signed for `localhost` and
/// redis-server taking TLS with it on a free port (the authority's file
/// and the server).
fn redis_over_tls(test: &str, bin: &str) -> (PathBuf, socks4_tests::peers::Peer) {
    let dir = socks4_tests::scratch::fresh(&format!("fleet-{test}-ca-{bin}"));
    let ca = socks4_tests::tls::TestCa::new(&dir, "redis-ca");
    let cert = ca.issue("redis", "localhost", &["localhost", "127.0.0.1", "::1"]);
    let redis = socks4_tests::peers::redis_tls_server(free_port(), &cert.cert, &cert.key, &ca.cert);
    (ca.cert, redis)
}

/// `[tls] ca` naming `ca`.
fn trusting(ca: &std::path::Path) -> String {
    format!("[tls]\nca = \"{}\"\n", ca.display())
}

fn a_fleet_on_rediss_shares_its_lists_over_tls(bin: &str) {
    let (ca, redis) = redis_over_tls("rediss", bin);
    let url = format!("rediss://localhost:{}", redis.addr.port());
    let all: Vec<Instance> = ["i1", "i2"]
        .iter()
        .map(|n| instance_at(bin, "rediss", n, &url, "", &trusting(&ca)))
        .collect();
    for i in &all {
        wait_up(bin, i, true);
    }
    // `ctl fleet` shows Redis up and both instances' heartbeats, which
    // went through TLS.
    let deadline = Instant::now() + STEP;
    loop {
        let out = ctl(bin, &all[0].socket, &["fleet", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let recent = v["instances"]
            .as_array()
            .map(|a| a.iter().filter(|i| i["recent"] == true).count())
            .unwrap_or(0);
        if v["up"] == true && recent == 2 {
            assert!(out.contains("rediss://localhost:"), "{bin}: {out}");
            break;
        }
        assert!(Instant::now() < deadline, "{bin}: {out}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A denial added on one reaches the other through Redis.
    let dest = echo(64);
    assert!(
        try_connect(all[1].server.addr, dest),
        "{bin}: granted before"
    );
    let out = ctl(bin, &all[0].socket, &["deny", "add", "127.0.0.1"]);
    assert!(out.contains("added"), "{bin}: {out}");
    wait_granted(bin, all[1].server.addr, dest, false, STEP);
    drop(redis);
}

fn a_fleet_on_rediss_with_the_wrong_authority_stays_down_and_serves(bin: &str) {
    let (_, redis) = redis_over_tls("rediss-wrong", bin);
    let dir = socks4_tests::scratch::fresh(&format!("fleet-rediss-wrong-other-{bin}"));
    let other = socks4_tests::tls::TestCa::new(&dir, "other-ca");
    let url = format!("rediss://localhost:{}", redis.addr.port());
    let i = instance_at(bin, "rediss-wrong", "i1", &url, "", &trusting(&other.cert));
    // It tries (and fails the certificate check) a few times, never up.
    let deadline = Instant::now() + STEP;
    let failed = |page: &str| {
        sample(
            page,
            "socks4_fleet_ops_total",
            "op=\"connect\",result=\"error\"",
        )
        .unwrap_or(0)
    };
    while failed(&i.server.metrics()) < 2 {
        assert!(Instant::now() < deadline, "{bin}: {}", i.server.metrics());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(fleet_up(&i), Some(0), "{bin}");
    // And it serves on its own.
    let dest = echo(64);
    assert!(try_connect(i.server.addr, dest), "{bin}: refused");
    drop(redis);
}
