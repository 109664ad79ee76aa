//! Behind a load balancer and across processes, on every adapter: a real
//! HAProxy sending PROXY protocol v2 and v1 (the client's address is what the
//! rules, logs and events see), its health checks, headers from untrusted
//! sources, truncated, oversized and garbage headers, two processes sharing a
//! port with `--reuse-port`, and BIND on `--bind-address`.

use socks4_proto::client::Event;
use socks4_proto::{Command, Dest, Reply, Request};
use socks4_tests::e2e::*;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

socks4_tests::on_every_adapter!(
    haproxy_names_the_real_client,
    bad_and_untrusted_headers_are_closed,
    two_processes_share_a_port,
    bind_listens_on_the_bind_address,
);

/// HAProxy with two frontends for `server`: `v2` (send-proxy-v2, with health
/// checks that send the header too) and `v1` (send-proxy).
fn haproxy(bin: &str, server: SocketAddr) -> (ChildGuard, SocketAddr, SocketAddr) {
    let (v2, v1) = (free_port(), free_port());
    let dir = socks4_tests::scratch::dir(&format!("haproxy-{bin}"));
    let cfg = dir.join("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "global\n  maxconn 200\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n\
             frontend fe_v2\n  bind 127.0.0.1:{v2}\n  default_backend be_v2\n\
             backend be_v2\n  server socks {server} send-proxy-v2 check check-send-proxy inter 200ms\n\
             frontend fe_v1\n  bind 127.0.0.1:{v1}\n  default_backend be_v1\n\
             backend be_v1\n  server socks {server} send-proxy\n"
        ),
    )
    .unwrap();
    let child = Process::new("haproxy")
        .args(["-db", "-f"])
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("haproxy (run .ci/setup to install it)");
    let h = ChildGuard(child);
    let deadline = Instant::now() + STEP;
    for port in [v2, v1] {
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "haproxy did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    (
        h,
        SocketAddr::from(([127, 0, 0, 1], v2)),
        SocketAddr::from(([127, 0, 0, 1], v1)),
    )
}

fn proxy_count(text: &str, result: &str) -> u64 {
    text.lines()
        .find(|l| {
            l.starts_with(&format!(
                "socks4_proxy_headers_total{{result=\"{result}\"}}"
            ))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn haproxy_names_the_real_client(bin: &str) {
    let conf = rules_config(
        &format!("lb-haproxy-{bin}"),
        "block from 127.0.0.7 to any\npass from 127.0.0.0/8 to any",
    );
    let server = Server::start(
        bin,
        &[
            "--config",
            &conf,
            "--proxy-protocol",
            "any",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    );
    let (_haproxy, v2, v1) = haproxy(bin, server.addr);
    let echo = echo(4);
    for front in [v2, v1] {
        // 127.0.0.7 is refused by its rule: the server saw the real client.
        let s = connect_from(Ipv4Addr::new(127, 0, 0, 7), front);
        let c = socks_request_on(s, &connect_to(echo, b""), |_| {});
        assert!(refused(&c), "{front}: {:?}\n{}", c.events, server.log());
        // 127.0.0.8 is served.
        let s = connect_from(Ipv4Addr::new(127, 0, 0, 8), front);
        let c = socks_request_on(s, &connect_to(echo, b""), |_| {});
        assert!(granted(&c), "{front}: {:?}\n{}", c.events, server.log());
        assert_eq!(round_trip(c.stream, &c.early, b"hello"), b"hello");
    }
    let closed = server.wait_for_n("four closed lines of clients", 4, |l| {
        says(l, "closed") && field(l, "dest").starts_with("127.0.0.1:")
    });
    let clients: Vec<String> = closed.iter().map(|l| field(l, "client")).collect();
    assert_eq!(
        clients
            .iter()
            .filter(|c| c.starts_with("127.0.0.7:"))
            .count(),
        2,
        "{clients:?}"
    );
    assert_eq!(
        clients
            .iter()
            .filter(|c| c.starts_with("127.0.0.8:"))
            .count(),
        2,
        "{clients:?}"
    );
    // The connection events name the clients too, never HAProxy's address.
    let events = server.count(|l| {
        says(l, "connection")
            && (field(l, "peer").starts_with("127.0.0.7:")
                || field(l, "peer").starts_with("127.0.0.8:"))
    });
    assert_eq!(events, 4, "{}", server.log());
    // HAProxy's health checks (a LOCAL header, then a close) are no failure.
    let deadline = Instant::now() + STEP;
    loop {
        let text = server.metrics();
        // Checks come every 200 ms, with a LOCAL header.
        if proxy_count(&text, "local") >= 2 {
            assert_eq!(proxy_count(&text, "invalid"), 0, "{text}");
            assert!(proxy_count(&text, "proxied") >= 4, "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "no health check seen:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn bad_and_untrusted_headers_are_closed(bin: &str) {
    let server = Server::start(
        bin,
        &["--proxy-protocol", "v1", "--handshake-timeout", "1s"],
    );
    let echo = echo(1);
    let header = |client: &str| format!("PROXY TCP4 {client} 127.0.0.1 40000 1080\r\n");
    let closed_within = |mut s: TcpStream, limit: Duration| {
        s.set_read_timeout(Some(STEP)).unwrap();
        let started = Instant::now();
        let mut buf = [0u8; 16];
        let r = s.read(&mut buf);
        assert!(matches!(r, Ok(0) | Err(_)), "the server answered: {r:?}");
        let took = started.elapsed();
        assert!(took < limit, "closed after {took:?}");
    };
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

    // A header from outside proxy_protocol_from: closed, and logged.
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

fn bind_listens_on_the_bind_address(bin: &str) {
    let server = Server::start(bin, &["--bind-address", "127.0.0.5"]);
    let request = Request {
        command: Command::Bind,
        dest: Dest::Addr(lo(21)),
        user_id: b"",
    };
    let mut app: Option<TcpStream> = None;
    let client = socks_request(server.addr, &request, |listen: &Reply| {
        let addr = listen.bind_address(Ipv4Addr::LOCALHOST);
        assert_eq!(*addr.ip(), Ipv4Addr::new(127, 0, 0, 5));
        let mut s = TcpStream::connect_timeout(&SocketAddr::V4(addr), STEP).unwrap();
        s.write_all(b"hello from the peer").unwrap();
        app = Some(s);
    });
    assert!(
        matches!(
            client.events.as_slice(),
            [Event::BindListening(_), Event::Granted(_)]
        ),
        "{:?}\n{}",
        client.events,
        server.log()
    );
    let mut got = client.early.clone();
    let mut stream = client.stream;
    stream.set_read_timeout(Some(STEP)).unwrap();
    while got.len() < 19 {
        let mut b = [0u8; 64];
        let n = stream.read(&mut b).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&b[..n]);
    }
    assert_eq!(got, b"hello from the peer");
    drop(app);
}
