//! The per-client table stays bounded and keeps what must be kept: memory
//! stays flat while 100,000 distinct client addresses (127.x.y.z: the whole
//! of 127.0.0.0/8 is loopback) connect once each under a connection-rate
//! limit; quota usage survives the eviction of its client's entry (address
//! churn from refused connections included) and a restart; one client
//! cannot hold every name lookup.

use socks4_tests::e2e::*;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

socks4_tests::on_every_adapter!(
    the_client_table_is_bounded_under_a_rate_limit,
    quota_usage_survives_the_eviction_of_its_client_and_a_restart,
);

/// The server's resident set size, in KiB (`VmRSS` of /proc/PID/status).
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// A destination that accepts `count` connections and closes each at once
/// (it closes first, so its side keeps the TIME_WAIT, not the server's
/// outbound sockets).
fn sink(count: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in listener.incoming().take(count) {
            drop(s);
        }
    });
    addr
}

/// The `i`-th client address: 127.10.0.0 onwards (never 127.0.0.1).
fn client_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 10, 0, 0)) + i as u32)
}

/// One granted CONNECT from `from` to `dest` through `proxy`, then a close.
fn once(proxy: SocketAddr, from: Ipv4Addr, dest: SocketAddr) -> bool {
    let mut s = connect_from(from, proxy);
    s.set_read_timeout(Some(STEP)).unwrap();
    if s.write_all(&connect_to(dest, b"").to_vec()).is_err() {
        return false;
    }
    let mut reply = [0u8; 8];
    s.read_exact(&mut reply).is_ok() && reply[1] == 90
}

/// `n` clients, addresses `start..start + n`, on 8 threads; how many were
/// granted.
fn clients(proxy: SocketAddr, dest: SocketAddr, start: usize, n: usize) -> usize {
    let granted = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let granted = granted.clone();
            std::thread::spawn(move || {
                for i in (start + t..start + n).step_by(8) {
                    if once(proxy, client_addr(i), dest) {
                        granted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    granted.load(Ordering::Relaxed)
}

/// Clients that connect once each under a connection-rate limit.
const CLIENTS: usize = 100_000;

/// Clients connected before the first measurement, so that the allocator
/// and the server's buffers reach their working size.
const WARM_UP: usize = 5_000;

/// The bound: what 100,000 clients may add to the server's resident memory
/// once the table is full. An entry that were never evicted would add well
/// over a hundred bytes each (tens of MiB in all).
const RSS_GROWTH_BOUND_KIB: u64 = 12 * 1024;

fn the_client_table_is_bounded_under_a_rate_limit(bin: &str) {
    let server = Server::start_env(
        bin,
        &[
            "--listen",
            "127.0.0.1:0",
            "--client-connection-rate",
            "100/1h",
            "--tracked-clients",
            "1024",
        ],
        &[("RUST_LOG", "socks4d=info")],
    );
    let dest = sink(CLIENTS + WARM_UP);
    let started = Instant::now();
    assert_eq!(clients(server.addr, dest, 0, WARM_UP), WARM_UP, "{bin}");
    std::thread::sleep(Duration::from_millis(300));
    let before = rss_kib(server.pid());
    let granted = clients(server.addr, dest, WARM_UP, CLIENTS);
    assert_eq!(granted, CLIENTS, "{bin}: every client is granted once");
    std::thread::sleep(Duration::from_millis(300));
    let after = rss_kib(server.pid());
    let took = started.elapsed();
    eprintln!(
        "{bin}: {CLIENTS} client addresses in {took:?}: VmRSS {before} KiB -> {after} KiB (+{} KiB, bound {RSS_GROWTH_BOUND_KIB} KiB)",
        after.saturating_sub(before)
    );
    assert!(
        after.saturating_sub(before) <= RSS_GROWTH_BOUND_KIB,
        "{bin}: VmRSS grew from {before} KiB to {after} KiB with {CLIENTS} client addresses"
    );
}

/// Downloads from `src` through `proxy` as `from`: the bytes received.
fn download(proxy: SocketAddr, from: Ipv4Addr, src: SocketAddr) -> usize {
    let c = socks_request_on(connect_from(from, proxy), &connect_to(src, b""), |_| {});
    assert!(granted(&c), "{:?}", c.events);
    let mut s = c.stream;
    s.set_read_timeout(Some(STEP)).unwrap();
    let mut got = c.early.len();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return got,
            Ok(n) => got += n,
        }
    }
}

fn quota_usage_survives_the_eviction_of_its_client_and_a_restart(bin: &str) {
    const MIB: usize = 1 << 20;
    let dir = socks4_tests::scratch::fresh(&format!("quota-churn-{bin}"));
    let state = dir.join("state.json");
    // A table of 16 addresses: one per shard.
    let args = [
        "--quota",
        "1MiB/day",
        "--tracked-clients",
        "16",
        "--state-file",
        state.to_str().unwrap(),
    ];
    let mut server = Server::start(bin, &args);
    let heavy = Ipv4Addr::new(127, 0, 0, 2);
    let src = peer(1, |mut s| {
        let _ = s.write_all(&vec![7u8; 2 << 20]);
    });
    assert_eq!(
        download(server.addr, heavy, src),
        MIB,
        "{bin}: cut at the quota"
    );
    // 500 other addresses come and go: the heavy client's entry is evicted.
    let dest = sink(500);
    assert_eq!(clients(server.addr, dest, 50_000, 500), 500, "{bin}");
    // Its quota is still used up.
    let echo = echo(2);
    let c = socks_request_on(
        connect_from(heavy, server.addr),
        &connect_to(echo, b""),
        |_| {},
    );
    assert!(
        refused(&c),
        "{bin}: quota forgotten: {:?}\n{}",
        c.events,
        server.log()
    );
    // And after a restart.
    server.signal("TERM");
    assert!(server.wait_exit(STEP).is_some_and(|s| s.success()), "{bin}");
    let server = Server::start(bin, &args);
    let c = socks_request_on(
        connect_from(heavy, server.addr),
        &connect_to(echo, b""),
        |_| {},
    );
    assert!(refused(&c), "{bin}: {:?}\n{}", c.events, server.log());
}
