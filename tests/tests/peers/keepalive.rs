//! TCP keepalive for real: a destination in a network namespace the test
//! makes (joined to the server's by a veth pair, names unique to the test
//! process and adapter, removed at the end) vanishes without a FIN or a
//! reset (nftables drops everything that reaches it); the relay ends within
//! `[timeouts] keepalive` and its probes, not the idle timeout.

use socks4_tests::e2e::*;
use socks4_tests::netns::{sh, Netns, Veth};
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

socks4_tests::on_every_adapter!(a_vanished_destination_ends_the_relay_within_keepalive);

/// A destination namespace joined to this one by a veth pair (`10.66.N.1`
/// here, `10.66.N.2` there), with a TCP echo server on port 9000 inside;
/// all removed on drop.
struct Destination {
    /// Removed first: deleting this end deletes the pair (the namespace's
    /// deletion would too, but only once sockets still in it are gone).
    _veth: Veth,
    ns: Netns,
}

/// Echoes each connection, one thread each.
const ECHO: &str = r#"
import socket, sys, threading
s = socket.socket()
s.bind((sys.argv[1], 9000))
s.listen(8)
def serve(c):
    while True:
        d = c.recv(65536)
        if not d:
            break
        c.sendall(d)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

impl Destination {
    fn new(tag: &str, subnet: u8) -> Destination {
        let mut ns = Netns::new(format!("s4k{tag}{}", std::process::id()));
        let (here, there) = (format!("{}h", ns.name()), format!("{}t", ns.name()));
        let veth = Veth::new(&here, None, &there, Some(&ns));
        let (a, b) = (format!("10.66.{subnet}.1"), format!("10.66.{subnet}.2"));
        sh(&["ip", "addr", "add", &format!("{a}/24"), "dev", &here]);
        ns.ip(&["addr", "add", &format!("{b}/24"), "dev", &there]);
        let echo = ns
            .exec("python3")
            .args(["-c", ECHO, &b])
            .stdin(Stdio::null())
            .spawn()
            .expect("python3");
        ns.keep(echo);
        Destination { _veth: veth, ns }
    }

    /// Drops every packet that reaches the namespace: the destination is
    /// gone without a word.
    fn vanish(&self) {
        let rules = "table inet vanish {\n chain input { type filter hook input priority 0; policy drop; }\n chain output { type filter hook output priority 0; policy drop; }\n}\n";
        self.ns.nft(rules, "dropping everything");
    }
}

fn a_vanished_destination_ends_the_relay_within_keepalive(bin: &str) {
    let (tag, subnet) = match bin {
        "socks4d-tokio" => ("t", 1),
        "socks4d-smol" => ("s", 2),
        _ => ("a", 3),
    };
    let dest = Destination::new(tag, subnet);
    let echo: SocketAddr = format!("10.66.{subnet}.2:9000").parse().unwrap();
    // The echo is up once it answers.
    let deadline = Instant::now() + STEP;
    while TcpStream::connect_timeout(&echo, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "the echo did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let server = Server::start(
        bin,
        &[
            "--keepalive",
            "2s",
            "--idle-timeout",
            "1h",
            "--allow",
            "127.0.0.0/8",
        ],
    );
    let c = socks_request(server.addr, &connect_to(echo, b""), |_| {});
    assert!(granted(&c), "{bin}: {:?}\n{}", c.events, server.log());
    let mut stream = c.stream;
    assert_eq!(echo_through(&mut stream, b"ping"), b"ping", "{bin}");

    dest.vanish();
    let vanished = Instant::now();
    // 2 s idle, then 4 probes 1 s apart: about 6 s; the idle timeout is an
    // hour away.
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buf = [0u8; 16];
    let read = stream.read(&mut buf);
    let took = vanished.elapsed();
    assert!(
        matches!(read, Ok(0) | Err(_)) && read.as_ref().map_or(true, |n| *n == 0),
        "{bin}: the relay did not end: {read:?}"
    );
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(15),
        "{bin}: the relay ended after {took:?}\n{}",
        server.log()
    );
    let closed = server.wait_for("the relay's end", closed);
    assert_ne!(field(&closed, "outcome"), "idle_timeout", "{bin}");
    eprintln!(
        "{bin}: ended after {took:?}, outcome {}",
        field(&closed, "outcome")
    );
}
