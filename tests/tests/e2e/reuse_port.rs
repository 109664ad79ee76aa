//! `--reuse-port` on every adapter: two processes share a port and both
//! serve; when the first stops, its relays finish in its grace period and new
//! connections all go to the second. Clients that keep connecting while the
//! first stops are all served: it drains its accept queue before closing.

use socks4_tests::e2e::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

socks4_tests::on_every_adapter!(
    two_processes_share_a_port,
    a_stopping_process_serves_its_queued_clients
);

fn two_processes_share_a_port(bin: &str) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let args = [
        "--listen",
        listen.as_str(),
        "--reuse-port",
        "--shutdown-grace",
        "20s",
    ];
    let mut first = Server::start_with(bin, &args);
    let second = Server::start_with(bin, &args);
    let addr = first.addr;
    let echo = echo(400);
    for _ in 0..200 {
        let c = socks_request(addr, &connect_to(echo, b""), |_| {});
        assert!(granted(&c));
        assert_eq!(round_trip(c.stream, &c.early, b"x"), b"x");
    }
    let done = |s: &Server| s.count(|l| says(l, "closed") && field(l, "outcome") == "done");
    let deadline = Instant::now() + STEP;
    while done(&first) + done(&second) < 200 {
        assert!(
            Instant::now() < deadline,
            "{} + {}",
            done(&first),
            done(&second)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        done(&first) > 0 && done(&second) > 0,
        "both processes serve: {} and {}",
        done(&first),
        done(&second)
    );
    // Relays open on both; the first process stops: its own relays finish
    // in its grace period and the second's go on; new connections all go to
    // the second.
    let mut open = Vec::new();
    for _ in 0..20 {
        let c = socks_request(addr, &connect_to(echo, b""), |_| {});
        assert!(granted(&c));
        open.push(c.stream);
    }
    first.signal("TERM");
    first.wait_says("shutting down: no new connections, relays may finish");
    for (i, s) in open.iter_mut().enumerate() {
        s.set_read_timeout(Some(STEP)).unwrap();
        let msg = format!("still here {i}");
        s.write_all(msg.as_bytes()).unwrap();
        let mut back = vec![0u8; msg.len()];
        s.read_exact(&mut back).unwrap();
        assert_eq!(back, msg.as_bytes());
    }
    for _ in 0..50 {
        let c = socks_request(addr, &connect_to(echo, b""), |_| {});
        assert!(
            granted(&c),
            "a connection was lost after the first process stopped"
        );
        assert_eq!(round_trip(c.stream, &c.early, b"y"), b"y");
    }
    drop(open);
    assert!(first.wait_exit(STEP * 3).is_some_and(|s| s.success()));
}

/// Clients that keep connecting while one of two processes sharing a port
/// stops: the stopping one drains its accept queue before its listener
/// closes, so no connection is reset or refused; each is served by one
/// process or the other.
fn a_stopping_process_serves_its_queued_clients(bin: &str) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let args = [
        "--listen",
        listen.as_str(),
        "--reuse-port",
        "--shutdown-grace",
        "20s",
    ];
    let mut first = Server::start_with(bin, &args);
    let second = Server::start_with(bin, &args);
    let addr = first.addr;
    let echo = echo(100_000);
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let (mut served, mut failed) = (0usize, Vec::new());
                let deadline = Instant::now() + STEP * 2;
                // Bounded: until told to stop, at most 20,000 connections or
                // two steps.
                while !stop.load(Ordering::SeqCst) && served + failed.len() < 20_000 {
                    assert!(Instant::now() < deadline, "the client loop ran too long");
                    match relay_once(addr, echo) {
                        Ok(()) => served += 1,
                        Err(e) => failed.push(e),
                    }
                }
                (served, failed)
            })
        })
        .collect();
    // Clients are flowing through both processes; then the first stops.
    let both = |s: &Server| s.count(|l| says(l, "closed") && field(l, "outcome") == "done");
    let deadline = Instant::now() + STEP;
    while both(&first) < 20 || both(&second) < 20 {
        assert!(Instant::now() < deadline, "both processes serve");
        std::thread::sleep(Duration::from_millis(20));
    }
    first.signal("TERM");
    first.wait_says("shutting down: no new connections, relays may finish");
    let status = first.wait_exit(STEP * 3);
    // A while longer on the second alone.
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    let (mut served, mut failed) = (0, Vec::new());
    for c in clients {
        let (s, f) = c.join().unwrap();
        served += s;
        failed.extend(f);
    }
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert!(
        failed.is_empty(),
        "{} of {} failed: {:?}",
        failed.len(),
        served + failed.len(),
        &failed[..failed.len().min(5)]
    );
    let closed = first.wait_says("listener closed");
    assert!(served > 100, "{served}");
    eprintln!(
        "served {served}; the first drained {}",
        field(&closed, "drained")
    );
}

/// One client: connects through `proxy` to `echo`, and a byte goes there and
/// back. Any failure (refused, reset, no grant, wrong bytes) is an error.
fn relay_once(proxy: SocketAddr, echo: SocketAddr) -> Result<(), String> {
    let mut s = TcpStream::connect_timeout(&proxy, STEP).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(STEP)).map_err(|e| e.to_string())?;
    let SocketAddr::V4(to) = echo else {
        unreachable!("loopback v4")
    };
    let mut request = vec![4, 1];
    request.extend_from_slice(&to.port().to_be_bytes());
    request.extend_from_slice(&to.ip().octets());
    request.push(0);
    request.push(b'x');
    s.write_all(&request).map_err(|e| format!("request: {e}"))?;
    let mut reply = [0u8; 9];
    s.read_exact(&mut reply)
        .map_err(|e| format!("reply: {e}"))?;
    match reply {
        [0, 90, .., b'x'] => Ok(()),
        other => Err(format!("reply {other:?}")),
    }
}
