//! TCP keepalive on every adapter: `ss -tino` (iproute2) shows a keepalive
//! timer on both of the server's sockets of a relay (the client's and the
//! destination's), counting down from `[timeouts] keepalive`; with 0, none.

use socks4_tests::e2e::*;
use std::net::SocketAddr;
use std::process::Command as Process;

socks4_tests::on_every_adapter!(both_sockets_of_a_relay_have_keepalive_timers);

/// The `timer:(...)` of the TCP socket from `local` to `peer`, as `ss -tino`
/// shows it (`None`: no timer); panics when there is no such socket.
fn timer(local: SocketAddr, peer: SocketAddr) -> Option<String> {
    timer_where(|l, p| l == local.to_string() && p == peer.to_string())
}

/// The `timer:(...)` of the one TCP socket whose local and peer addresses
/// `wanted` picks.
fn timer_where(wanted: impl Fn(&str, &str) -> bool) -> Option<String> {
    let out = Process::new("ss")
        .arg("-tino")
        .output()
        .expect("ss (iproute2)");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.len() >= 5 && wanted(cols[3], cols[4])
        })
        .unwrap_or_else(|| panic!("no such socket in:\n{text}"));
    let start = line.find("timer:(")?;
    let rest = &line[start + "timer:(".len()..];
    Some(rest[..rest.find(')').unwrap()].to_owned())
}

/// The socket's timer once it is keepalive's: right after traffic the
/// retransmission timer (`on`) may run until the last bytes are
/// acknowledged. Polls `ss` for at most [`STEP`].
fn keepalive_timer(socket: impl Fn() -> Option<String>) -> String {
    let deadline = std::time::Instant::now() + STEP;
    loop {
        let now = socket();
        match now {
            Some(t) if t.starts_with("keepalive,") => return t,
            _ if std::time::Instant::now() > deadline => panic!("no keepalive timer: {now:?}"),
            _ => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
}

/// The socket's timer once no retransmission timer (`on`) runs: `None`
/// when it has none. Polls `ss` for at most [`STEP`].
fn settled_timer(socket: impl Fn() -> Option<String>) -> Option<String> {
    let deadline = std::time::Instant::now() + STEP;
    loop {
        let now = socket();
        if !now.as_deref().is_some_and(|t| t.starts_with("on,"))
            || std::time::Instant::now() > deadline
        {
            return now;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The seconds left of a `keepalive,29sec,0` timer.
fn keepalive_secs(timer: &str) -> u64 {
    let parts: Vec<&str> = timer.split(',').collect();
    assert_eq!(parts[0], "keepalive", "{timer}");
    let left = parts[1];
    let (mins, secs) = match left.split_once("min") {
        Some((m, s)) => (m.parse::<u64>().unwrap(), s),
        None => (0, left),
    };
    let secs = secs.trim_end_matches("sec");
    let secs = match secs.split_once('.') {
        Some((whole, _)) => whole,
        None => secs,
    };
    mins * 60
        + if secs.is_empty() {
            0
        } else {
            secs.parse::<u64>().unwrap()
        }
}

fn both_sockets_of_a_relay_have_keepalive_timers(bin: &str) {
    let server = Server::start(bin, &["--keepalive", "40s"]);
    let echo = echo(4);
    let c = socks_request(server.addr, &connect_to(echo, b""), |_| {});
    assert!(granted(&c), "{bin}: {:?}", c.events);
    let mut stream = c.stream;
    assert_eq!(echo_through(&mut stream, b"ping"), b"ping");
    let client = stream.local_addr().unwrap();
    // The server's side of the client's connection.
    let timer_client = keepalive_timer(|| timer(server.addr, client));
    let left = keepalive_secs(&timer_client);
    assert!((1..=40).contains(&left), "{bin}: {timer_client}");
    // The server's connection to the destination: the only one whose peer
    // is the echo (the test's own connection goes to the server).
    let timer_dest = keepalive_timer(|| timer_where(|_, p| p == echo.to_string()));
    let left = keepalive_secs(&timer_dest);
    assert!((1..=40).contains(&left), "{bin}: {timer_dest}");
    // The test's own sockets have none: the timers are the server's.
    assert_eq!(settled_timer(|| timer(client, server.addr)), None, "{bin}");

    // Off: no timer on the server's sockets.
    let off = Server::start(bin, &["--keepalive", "0"]);
    let c = socks_request(off.addr, &connect_to(echo, b""), |_| {});
    assert!(granted(&c), "{bin}: {:?}", c.events);
    let mut stream = c.stream;
    assert_eq!(echo_through(&mut stream, b"ping"), b"ping");
    let client = stream.local_addr().unwrap();
    assert_eq!(settled_timer(|| timer(off.addr, client)), None, "{bin}");
}
