//! `socks4-load`: compares the server binaries side by side on loopback:
//! connections per second, relay throughput and memory per idle relayed
//! connection. Run it in release mode, from the workspace root:
//!
//! ```sh
//! cargo run --release -p socks4-tests --bin socks4-load [SECONDS] [IDLE_CONNECTIONS] [ROUNDS]
//! ```
//!
//! It prints a Markdown table (the README records one). Every byte stays on
//! 127.0.0.1; every phase is bounded in time and count.

use socks4_tests::e2e::{connect_to, peer, socks_request, Server};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const ADAPTERS: &[&str] = &["socks4d-tokio", "socks4d-smol", "socks4d-async-std"];
const CLIENT_THREADS: usize = 4;
const THROUGHPUT_BYTES: usize = 256 << 20;

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let idle: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    // All servers run at once and are measured in interleaved rounds, so that a
    // burst of other load on the machine hits them alike; medians are reported.
    let servers: Vec<(&str, Server)> = ADAPTERS
        .iter()
        .map(|bin| {
            (
                *bin,
                Server::start(bin, &["-qqq", "--max-connections", "100000"]),
            )
        })
        .collect();
    let mut cps = vec![Vec::new(); servers.len()];
    let mut cpu = vec![Vec::new(); servers.len()];
    let mut mbps = vec![Vec::new(); servers.len()];
    for _ in 0..rounds {
        for (i, (_, server)) in servers.iter().enumerate() {
            let before = cpu_micros(server.pid());
            let (rate, count) = connections_per_second(server, Duration::from_secs(seconds));
            cps[i].push(rate);
            cpu[i].push((cpu_micros(server.pid()) - before) as f64 / count.max(1) as f64);
            mbps[i].push(throughput(server));
        }
    }
    println!("Medians of {rounds} interleaved rounds of {seconds} s; {CLIENT_THREADS} client threads; {idle} idle connections.\n");
    println!("| adapter | connections/s | server CPU µs per connection | relay MB/s | KiB per idle relayed connection |");
    println!("| --- | --- | --- | --- | --- |");
    for (i, (bin, server)) in servers.iter().enumerate() {
        let kib = idle_memory(server, idle);
        println!(
            "| {bin} | {:.0} | {:.0} | {:.0} | {kib:.1} |",
            median(&mut cps[i]),
            median(&mut cpu[i]),
            median(&mut mbps[i])
        );
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Full CONNECT handshakes (outbound connect included) per second, from
/// `CLIENT_THREADS` clients in parallel.
fn connections_per_second(server: &Server, duration: Duration) -> (f64, u64) {
    // A destination that accepts and closes at once.
    let target = peer(usize::MAX, drop);
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let proxy = server.addr;
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENT_THREADS)
        .map(|_| {
            let (done, stop) = (done.clone(), stop.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let c = socks_request(proxy, &connect_to(target, b"load"), |_| {});
                    if matches!(
                        c.events.last(),
                        Some(socks4_proto::client::Event::Granted(_))
                    ) {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let count = done.load(Ordering::Relaxed);
    (count as f64 / started.elapsed().as_secs_f64(), count)
}

/// The process's user + system CPU time so far, in microseconds.
fn cpu_micros(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses): utime is the 12th, stime the 13th.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let hz = 100; // USER_HZ on Linux
    ticks * 1_000_000 / hz
}

/// Bytes per second through one relayed connection to a discarding sink.
fn throughput(server: &Server) -> f64 {
    let sink = peer(1, |mut s| {
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        let _ = s.write_all(&total.to_be_bytes());
    });
    let c = socks_request(server.addr, &connect_to(sink, b""), |_| {});
    let mut s = c.stream;
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let chunk = vec![0x5au8; 1 << 16];
    let started = Instant::now();
    for _ in 0..THROUGHPUT_BYTES / chunk.len() {
        s.write_all(&chunk).unwrap();
    }
    s.shutdown(Shutdown::Write).unwrap();
    let mut total = [0u8; 8];
    s.read_exact(&mut total).unwrap();
    assert_eq!(u64::from_be_bytes(total) as usize, THROUGHPUT_BYTES);
    THROUGHPUT_BYTES as f64 / started.elapsed().as_secs_f64() / 1e6
}

/// The server's resident memory growth per idle relayed connection, in KiB.
fn idle_memory(server: &Server, count: usize) -> f64 {
    // A destination that holds its connections open without reading or writing.
    let held = Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    let target = peer(count, move |s| keep.lock().unwrap().push(s));
    thread::sleep(Duration::from_millis(300));
    let before = rss_kib(server.pid());
    let mut clients: Vec<TcpStream> = Vec::with_capacity(count);
    for _ in 0..count {
        let c = socks_request(server.addr, &connect_to(target, b""), |_| {});
        assert!(matches!(
            c.events.last(),
            Some(socks4_proto::client::Event::Granted(_))
        ));
        clients.push(c.stream);
    }
    thread::sleep(Duration::from_millis(500));
    let after = rss_kib(server.pid());
    drop(clients);
    held.lock().unwrap().clear();
    (after.saturating_sub(before)) as f64 / count as f64
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}
