//! Refused clients cost nothing: a client that no rule could pass, or that
//! the deny list refuses, is turned away at accept (91, before its request
//! is read, before TLS) and never holds one of `max_connections`; an allowed
//! client is served at once while refused ones crowd the server. And with
//! several listeners, a connection accepted just as another listener took
//! the last slot waits for one instead of being dropped without a word.

use socks4_tests::e2e::*;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

socks4_tests::on_every_adapter!(
    refused_clients_hold_no_slot_and_an_allowed_one_is_served_within_a_second,
    a_connection_accepted_as_another_listener_fills_the_cap_is_served,
);

/// Connections open at once in these tests.
const MAX: usize = 16;

fn refused_clients_hold_no_slot_and_an_allowed_one_is_served_within_a_second(bin: &str) {
    let dir = socks4_tests::scratch::dir(&format!("refusals-{bin}"));
    let conf = dir.join("socks4d.toml");
    // 127.0.0.3: no rule can pass it. 127.0.0.4: a rule would, the deny
    // list refuses it.
    std::fs::write(
        &conf,
        "[access]\ndeny = [\"127.0.0.4\"]\nrules = \"\"\"\n\
         pass from 127.0.0.2 to any\npass from 127.0.0.4 to any\n\"\"\"\n",
    )
    .unwrap();
    let max = MAX.to_string();
    let server = Server::start(
        bin,
        &[
            "--config",
            conf.to_str().unwrap(),
            "--max-connections",
            &max,
            "--handshake-timeout",
            "30s",
        ],
    );
    let echo = echo(4);
    // Each refused address opens max_connections idle connections.
    let mut idle = Vec::new();
    for from in [Ipv4Addr::new(127, 0, 0, 3), Ipv4Addr::new(127, 0, 0, 4)] {
        for _ in 0..MAX {
            idle.push(connect_from(from, server.addr));
        }
    }
    // Turned away at once, before their request: a 91 without asking.
    for s in idle.iter_mut().take(2) {
        s.set_read_timeout(Some(STEP)).unwrap();
        let mut reply = [0u8; 8];
        s.read_exact(&mut reply).unwrap();
        assert_eq!(reply[1], 91, "{bin}: {reply:?}");
    }
    // The allowed client is served within a second.
    let started = Instant::now();
    let c = socks_request_on(
        connect_from(Ipv4Addr::new(127, 0, 0, 2), server.addr),
        &connect_to(echo, b""),
        |_| {},
    );
    let took = started.elapsed();
    assert!(granted(&c), "{bin}: {:?}\n{}", c.events, server.log());
    eprintln!(
        "{bin}: allowed client served in {took:?} beside {} refused connections",
        2 * MAX
    );
    assert!(
        took < Duration::from_secs(1),
        "{bin}: the allowed client waited {took:?}"
    );
    // Logged and counted as denials, their requests never read.
    let line = server.wait_for("a refusal at accept", |l| {
        closed(l) && field(l, "outcome") == "denied"
    });
    assert_eq!(field(&line, "dest"), "-", "{bin}: {line}");
    assert_eq!(field(&line, "reply"), "91", "{bin}: {line}");
    assert_eq!(field(&line, "outcome"), "denied", "{bin}: {line}");
    drop(idle);
}

/// The bound addresses of every SOCKS listener, from the log.
fn listeners(server: &Server, n: usize) -> Vec<SocketAddr> {
    server
        .wait_for_n("the listeners", n, |l| {
            says(l, "listening") && field(l, "kind") == "socks"
        })
        .iter()
        .map(|l| field(l, "listen").parse().unwrap())
        .collect()
}

fn a_connection_accepted_as_another_listener_fills_the_cap_is_served(bin: &str) {
    let server = Server::start_with(
        bin,
        &[
            "--listen",
            "127.0.0.1:0",
            "--listen",
            "127.0.0.1:0",
            "--max-connections",
            "1",
        ],
    );
    let addrs = listeners(&server, 2);
    const EACH: usize = 40;
    let echo = echo(4 * EACH);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let proxy = addrs[t % 2];
            std::thread::spawn(move || {
                let mut granted_n = 0;
                for _ in 0..EACH {
                    let mut s = TcpStream::connect_timeout(&proxy, STEP).unwrap();
                    // Three others may be ahead for the one slot: a loaded
                    // machine is slow, but a dropped connection reads EOF
                    // or a reset at once, not a timeout.
                    s.set_read_timeout(Some(STEP * 6)).unwrap();
                    s.write_all(&connect_to(echo, b"").to_vec()).unwrap();
                    let mut reply = [0u8; 8];
                    if s.read_exact(&mut reply).is_ok() && reply[1] == 90 {
                        granted_n += 1;
                    }
                }
                granted_n
            })
        })
        .collect();
    let granted_n: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(
        granted_n,
        4 * EACH,
        "{bin}: some connections were dropped without a reply\n{}",
        server.log()
    );
}
