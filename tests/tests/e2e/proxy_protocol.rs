//! The PROXY protocol on every adapter, without a balancer: truncated,
//! oversized and garbage headers and a v2 header on a v1 listener are closed
//! (each reason logged) while a good header is served as the client it names,
//! and a header from outside `proxy_protocol_from` is closed; a listener
//! that requires a header does not start, nor pass `--check`, unless
//! `proxy_protocol_from` names who may send one. (Behind a real HAProxy:
//! `tests/tests/peers/proxy_protocol.rs`.)

use socks4_tests::e2e::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command as Process;
use std::time::{Duration, Instant};

socks4_tests::on_every_adapter!(
    bad_and_untrusted_headers_are_closed,
    a_header_from_outside_the_balancers_is_closed,
    proxy_headers_have_no_default_trust,
);

/// Asserts that the server closes `s` without an answer within `limit`.
fn closed_within(mut s: TcpStream, limit: Duration) {
    s.set_read_timeout(Some(STEP)).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let r = s.read(&mut buf);
    assert!(matches!(r, Ok(0) | Err(_)), "the server answered: {r:?}");
    let took = started.elapsed();
    assert!(took < limit, "closed after {took:?}");
}

fn bad_and_untrusted_headers_are_closed(bin: &str) {
    let server = Server::start(
        bin,
        &[
            "--proxy-protocol",
            "v1",
            "--proxy-protocol-from",
            "127.0.0.0/8",
            "--handshake-timeout",
            "1s",
        ],
    );
    let echo = echo(1);
    let header = |client: &str| format!("PROXY TCP4 {client} 127.0.0.1 40000 1080\r\n");
    // Truncated: closed at the handshake timeout.
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(b"PROXY TCP4 192.0.2.7").unwrap();
    closed_within(s, Duration::from_secs(5));
    // Oversized and garbage: closed at once.
    let mut s = TcpStream::connect(server.addr).unwrap();
    let mut long = b"PROXY TCP4 ".to_vec();
    long.extend(std::iter::repeat_n(b'9', 300));
    s.write_all(&long).unwrap();
    closed_within(s, Duration::from_secs(1));
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(&connect_to(echo, b"").to_vec()).unwrap();
    closed_within(s, Duration::from_secs(1));
    // A v2 header on a v1 listener.
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c")
        .unwrap();
    closed_within(s, Duration::from_secs(1));
    // Meanwhile a good header and request are served, as the named client.
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(header("192.0.2.55").as_bytes()).unwrap();
    let c = socks_request_on(s, &connect_to(echo, b""), |_| {});
    // 192.0.2.55 is not a loopback client: the default policy refuses it.
    assert!(refused(&c), "{:?}", c.events);
    let line = server.wait_for("the named client's closed line", |l| says(l, "closed"));
    assert!(field(&line, "client").starts_with("192.0.2.55:"), "{line}");
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(header("127.0.0.9").as_bytes()).unwrap();
    let c = socks_request_on(s, &connect_to(echo, b""), |_| {});
    assert!(granted(&c), "{:?}", c.events);
    assert_eq!(round_trip(c.stream, &c.early, b"ok"), b"ok");
    let reasons: Vec<String> = server
        .lines()
        .iter()
        .filter(|l| says(l, "closed: no valid PROXY header"))
        .map(|l| field(l, "reason"))
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("no complete PROXY header in time")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("too long")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("not a PROXY protocol header")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.contains("v2")), "{reasons:?}");
}

/// A header from outside `proxy_protocol_from`: closed, and logged.
fn a_header_from_outside_the_balancers_is_closed(bin: &str) {
    let header = |client: &str| format!("PROXY TCP4 {client} 127.0.0.1 40000 1080\r\n");
    let server = Server::start(
        bin,
        &[
            "--proxy-protocol",
            "any",
            "--proxy-protocol-from",
            "10.0.0.0/8",
        ],
    );
    let mut s = TcpStream::connect(server.addr).unwrap();
    let _ = s.write_all(header("192.0.2.7").as_bytes());
    closed_within(s, Duration::from_secs(2));
    server.wait_says(
        "connection to a PROXY protocol listener from outside proxy_protocol_from: closed",
    );
}

/// Without `proxy_protocol_from`, a listener that requires a PROXY header
/// (the SOCKS listeners', or any kind's in `[proxy_protocol_listeners]`)
/// refuses to start and fails `--check`, naming the listener and the key;
/// any local process could otherwise claim any client address.
fn proxy_headers_have_no_default_trust(bin: &str) {
    let dir = socks4_tests::scratch::fresh(&format!("pp-trust-{bin}"));
    let port = free_port();
    let conf = dir.join("socks4d.toml");
    std::fs::write(
        &conf,
        format!(
            "listen = [\"127.0.0.1:{port}\"]\n\
             [proxy_protocol_listeners]\n\"127.0.0.1:{port}\" = \"v2\"\n"
        ),
    )
    .unwrap();
    let conf = conf.display().to_string();
    let listen = format!("127.0.0.1:{port}");
    let cases: [&[&str]; 4] = [
        &["--listen", &listen, "--proxy-protocol", "v1"],
        &["--listen", &listen, "--proxy-protocol", "any", "--check"],
        &["--config", &conf],
        &["--config", &conf, "--check"],
    ];
    for args in cases {
        let (status, _, err) = run(Process::new(server_binary(bin)).args(args), b"");
        assert!(!status.success(), "{args:?} started: {err}");
        assert!(
            err.contains("proxy_protocol_from is not set"),
            "{args:?}: {err}"
        );
        assert!(
            err.contains(&format!("listener {listen}")),
            "{args:?}: {err}"
        );
    }
    // Named explicitly, the same configurations pass.
    for args in [cases[1], cases[3]] {
        let mut args = args.to_vec();
        args.extend(["--proxy-protocol-from", "127.0.0.1"]);
        let (status, out, err) = run(Process::new(server_binary(bin)).args(&args), b"");
        assert!(status.success(), "{args:?}: {err}");
        assert!(
            String::from_utf8_lossy(&out).contains("PROXY protocol"),
            "{args:?}"
        );
    }
}
