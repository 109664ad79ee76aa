//! `--reuse-port` on every adapter: two processes share a port and both
//! serve; when the first stops, its relays finish in its grace period and new
//! connections all go to the second. A stopping server drains its accept
//! queue before closing: queued connections are answered, not reset. (Clients
//! that keep connecting while one of two processes stops: the peers tier's
//! `reuse_port_stop`, where the kernel migrates what it would reset.)

use socks4_tests::e2e::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

socks4_tests::on_every_adapter!(
    two_processes_share_a_port,
    queued_connections_are_answered_not_reset
);

/// Connections waiting in a stopping server's accept queue (here: accepting
/// is paused at `max_connections`) are taken from it before the listener
/// closes and answered (a full server refuses them with 91), rather than
/// reset by the close; the open relay finishes in the grace period.
fn queued_connections_are_answered_not_reset(bin: &str) {
    let mut server = Server::start(
        bin,
        &[
            "--max-connections",
            "1",
            "--shutdown-grace",
            "20s",
            "--reuse-port",
        ],
    );
    let echo = echo(4);
    let first = socks_request(server.addr, &connect_to(echo, b""), |_| {});
    assert!(granted(&first), "{bin}: {:?}", first.events);
    let mut relay = first.stream;
    // Five more complete their handshake and send a request: they wait in
    // the kernel's accept queue while accepting is paused.
    let mut queued: Vec<TcpStream> = (0..5)
        .map(|_| {
            let mut s = TcpStream::connect_timeout(&server.addr, STEP).unwrap();
            s.write_all(&[4, 1, 0, 7, 127, 0, 0, 1, 0]).unwrap();
            s
        })
        .collect();
    server.wait_says("connection cap reached: accepting paused until a connection closes");
    server.signal("TERM");
    server.wait_says("shutting down: no new connections, relays may finish");
    let closed = server.wait_says("listener closed");
    assert_eq!(field(&closed, "drained"), "5", "{bin}");
    for (i, s) in queued.iter_mut().enumerate() {
        s.set_read_timeout(Some(STEP)).unwrap();
        let mut reply = [0u8; 8];
        let read = s.read_exact(&mut reply);
        assert!(read.is_ok(), "{bin}: queued connection {i}: {read:?}");
        assert_eq!(reply[1], 91, "{bin}: queued connection {i}: {reply:?}");
    }
    assert_eq!(
        echo_through(&mut relay, b"still here"),
        b"still here",
        "{bin}"
    );
    drop(relay);
    assert!(
        server.wait_exit(STEP * 3).is_some_and(|s| s.success()),
        "{bin}"
    );
}

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
