//! `--reuse-port` on every adapter: two processes share a port and both
//! serve; when the first stops, its relays finish in its grace period and new
//! connections all go to the second.

use socks4_tests::e2e::*;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

socks4_tests::on_every_adapter!(two_processes_share_a_port);

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
