//! Per-client limits on every adapter: bandwidth (server-wide and by rule),
//! connection rate, traffic quota kept across a restart, and bad values refused
//! at start; and the connection caps: a connection over the server-wide cap
//! waits for a slot, one over a client's cap gets 91 at once, and a client that
//! resets its connection during a slow connect frees its slot at once; one
//! client's SOCKS4a lookups stalled on a silent nameserver hold at most
//! `max_lookups_per_client`, so another client's names still resolve. Clients bind
//! 127.0.0.2 and 127.0.0.3 to be two client addresses. Times are asserted with
//! wide margins (lower bounds, ratios), never exactly.

use socks4_proto::ReplyCode;
use socks4_tests::e2e::*;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command as Process;
use std::time::{Duration, Instant};

socks4_tests::on_every_adapter!(
    a_client_bandwidth_is_shared_by_its_relays,
    a_rule_bandwidth_limits_only_the_clients_it_admits,
    the_connection_rate_counts_granted_requests_exactly,
    a_quota_holds_across_a_restart,
    bad_limit_values_are_refused_at_start,
    connections_over_the_cap_wait_for_a_slot,
    a_client_over_its_cap_gets_91_while_another_is_served,
    a_client_that_resets_during_a_slow_connect_frees_its_slot_at_once,
    one_client_cannot_take_every_lookup,
);

const A: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

const B: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

/// A peer that sends each connection `size` bytes, then closes.
fn source(count: usize, size: usize) -> SocketAddr {
    peer(count, move |mut s| {
        let chunk = vec![0x42u8; 64 * 1024];
        let mut left = size;
        while left > 0 {
            let n = left.min(chunk.len());
            if s.write_all(&chunk[..n]).is_err() {
                return;
            }
            left -= n;
        }
    })
}

/// Downloads through `proxy` from `from`; the bytes received.
fn download(proxy: SocketAddr, from: Ipv4Addr, dest: SocketAddr) -> usize {
    let c = socks_request_on(connect_from(from, proxy), &connect_to(dest, b""), |_| {});
    assert!(granted(&c), "{:?}", c.events);
    let mut s = c.stream;
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut got = c.early.len();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return got,
            Ok(n) => got += n,
        }
    }
}

const MIB: usize = 1 << 20;

fn a_client_bandwidth_is_shared_by_its_relays(bin: &str) {
    let server = Server::start(bin, &["--client-bandwidth", "1MiB/s"]);
    let src = source(9, MIB);
    let big = source(1, 2 * MIB);
    let proxy = server.addr;
    let started = Instant::now();
    let eight = std::thread::spawn(move || {
        let handles: Vec<_> = (0..8)
            .map(|_| std::thread::spawn(move || download(proxy, A, src)))
            .collect();
        let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        (total, started.elapsed())
    });
    // Meanwhile another address moves its own 2 MiB at its own 1 MiB/s.
    std::thread::sleep(Duration::from_millis(200));
    let b_started = Instant::now();
    assert_eq!(download(proxy, B, big), 2 * MIB, "{bin}");
    let b_took = b_started.elapsed();
    let (total, a_took) = eight.join().unwrap();
    assert_eq!(total, 8 * MIB, "{bin}");
    // 8 MiB at 1 MiB/s after a one-second burst: about 7 s; never below 5.
    assert!(
        a_took >= Duration::from_secs(5),
        "{bin}: 8 MiB in {a_took:?}"
    );
    assert!(
        a_took <= Duration::from_secs(30),
        "{bin}: 8 MiB in {a_took:?}"
    );
    // 2 MiB: a burst of 1 MiB, then 1 MiB/s: about a second.
    assert!(
        b_took >= Duration::from_millis(700),
        "{bin}: 2 MiB in {b_took:?}"
    );
    assert!(
        b_took <= Duration::from_secs(4),
        "{bin}: 2 MiB in {b_took:?}: held back by the other client?"
    );
}

fn a_rule_bandwidth_limits_only_the_clients_it_admits(bin: &str) {
    let dir = socks4_tests::scratch::dir(&format!("bw-{bin}"));
    let conf = dir.join("socks4d.toml");
    std::fs::write(
        &conf,
        "[access]\nrules = \"\"\"\npass from 127.0.0.2 to any bandwidth 1MiB/s\npass from 127.0.0.0/8 to any\n\"\"\"\n",
    )
    .unwrap();
    let server = Server::start(bin, &["--config", conf.to_str().unwrap()]);
    let slow = source(1, 3 * MIB);
    let fast = source(1, 64 * MIB);
    let proxy = server.addr;
    let a = std::thread::spawn(move || {
        let t = Instant::now();
        let got = download(proxy, A, slow);
        (got, t.elapsed())
    });
    let t = Instant::now();
    assert_eq!(download(proxy, B, fast), 64 * MIB, "{bin}");
    let b_took = t.elapsed();
    let (got, a_took) = a.join().unwrap();
    assert_eq!(got, 3 * MIB, "{bin}");
    assert!(
        a_took >= Duration::from_millis(1700),
        "{bin}: 3 MiB at 1 MiB/s in {a_took:?}"
    );
    assert!(
        b_took < a_took,
        "{bin}: 64 MiB unlimited ({b_took:?}) should beat 3 MiB limited ({a_took:?})"
    );
}

fn the_connection_rate_counts_granted_requests_exactly(bin: &str) {
    let dir = socks4_tests::scratch::dir(&format!("rate-{bin}"));
    let socket = dir.join("control.sock");
    let server = Server::start(
        bin,
        &[
            "--client-connection-rate",
            "10/3s",
            "--control-socket",
            socket.to_str().unwrap(),
        ],
    );
    let echo = echo(40);
    let started = Instant::now();
    let mut granted_n = 0;
    let mut refused_n = 0;
    for _ in 0..20 {
        let c = socks_request_on(connect_from(A, server.addr), &connect_to(echo, b""), |_| {});
        if granted(&c) {
            granted_n += 1;
        } else {
            assert_eq!(
                rejected_with(&c),
                Some(ReplyCode::Rejected),
                "{bin}: {:?}",
                c.events
            );
            refused_n += 1;
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{bin}: too slow to test a 3 s window"
    );
    assert_eq!((granted_n, refused_n), (10, 10), "{bin}");
    // Another address is served meanwhile (and moves some bytes).
    let c = socks_request_on(connect_from(B, server.addr), &connect_to(echo, b""), |_| {});
    assert!(granted(&c), "{bin}: {:?}", c.events);
    let mut s = c.stream;
    s.write_all(&[7u8; 1000]).unwrap();
    let mut back = [0u8; 1000];
    s.read_exact(&mut back).unwrap();
    drop(s);
    server.wait_for_n("eleven closed relays", 11, |l| {
        says(l, "closed") && field(l, "outcome") == "done"
    });
    let refused = server.wait_for_n("ten refusals", 10, |l| {
        says(l, "closed") && field(l, "outcome") == "rate_limited"
    });
    assert_eq!(refused.len(), 10, "{bin}");
    // The client table lists both addresses, the one that moved more bytes
    // first, with 127.0.0.2's refusals.
    let (status, out, err) = run(
        Process::new(server_binary(bin))
            .arg("ctl")
            .arg("--socket")
            .arg(&socket)
            .arg("clients"),
        b"",
    );
    let out = String::from_utf8_lossy(&out);
    assert!(status.success(), "{bin}: {err}");
    let lines: Vec<&str> = out.lines().collect();
    let a_line = lines
        .iter()
        .find(|l| l.starts_with("127.0.0.2 "))
        .unwrap_or_else(|| panic!("{bin}: {out}"));
    assert!(a_line.contains("rate:10"), "{bin}: {a_line}");
    assert!(
        lines.iter().any(|l| l.starts_with("127.0.0.3 ")),
        "{bin}: {out}"
    );
    assert!(
        lines[0].starts_with("127.0.0.3 "),
        "{bin}: the one that moved bytes comes first\n{out}"
    );
    // After the window, granted again.
    std::thread::sleep(Duration::from_millis(3200).saturating_sub(started.elapsed()));
    let c = socks_request_on(connect_from(A, server.addr), &connect_to(echo, b""), |_| {});
    assert!(granted(&c), "{bin}: {:?}\n{}", c.events, server.log());
}

fn a_quota_holds_across_a_restart(bin: &str) {
    let dir = socks4_tests::scratch::fresh(&format!("quota-{bin}"));
    let state = dir.join("state.json");
    let args = [
        "--quota",
        "1MiB/day",
        "--state-file",
        state.to_str().unwrap(),
    ];
    let mut server = Server::start(bin, &args);
    // A relay that crosses the quota is cut where it reaches it.
    let src = source(2, 2 * MIB);
    assert_eq!(
        download(server.addr, A, src),
        MIB,
        "{bin}: the relay is cut at the quota"
    );
    let line = server.wait_for("the cut relay", |l| says(l, "closed"));
    assert_eq!(field(&line, "outcome"), "quota", "{bin}: {line}");
    // The next request: 91.
    let echo = echo(4);
    let c = socks_request_on(connect_from(A, server.addr), &connect_to(echo, b""), |_| {});
    assert_eq!(
        rejected_with(&c),
        Some(ReplyCode::Rejected),
        "{bin}: {:?}",
        c.events
    );
    // After a restart with the same state file: still 91; another address is served.
    server.signal("TERM");
    assert!(server.wait_exit(STEP).is_some_and(|s| s.success()), "{bin}");
    let text = std::fs::read_to_string(&state).unwrap();
    assert!(text.contains("127.0.0.2"), "{bin}: {text}");
    let server = Server::start(bin, &args);
    let c = socks_request_on(connect_from(A, server.addr), &connect_to(echo, b""), |_| {});
    assert_eq!(
        rejected_with(&c),
        Some(ReplyCode::Rejected),
        "{bin}: {:?}\n{}",
        c.events,
        server.log()
    );
    let line = server.wait_for("the refusal", |l| says(l, "closed"));
    assert_eq!(field(&line, "outcome"), "quota", "{bin}: {line}");
    let c = socks_request_on(connect_from(B, server.addr), &connect_to(echo, b""), |_| {});
    assert!(granted(&c), "{bin}: {:?}", c.events);
}

fn bad_limit_values_are_refused_at_start(bin: &str) {
    for (flag, value) in [
        ("--client-bandwidth", "1MiB/x"),
        ("--client-connection-rate", "10"),
        ("--quota", "1MiB/fortnight"),
    ] {
        let (status, _, err) = run(
            Process::new(server_binary(bin)).args(["--listen", "127.0.0.1:0", flag, value]),
            b"",
        );
        assert!(!status.success(), "{bin}: {flag} {value} was accepted");
        assert!(err.contains(flag), "{bin}: {err}");
    }
    let dir = socks4_tests::scratch::dir(&format!("badlimits-{bin}"));
    let conf = dir.join("socks4d.toml");
    std::fs::write(
        &conf,
        "[limits]\nmax_user_id = 255\nclient_bandwidth = \"1MiB/x\"\n",
    )
    .unwrap();
    let (status, _, err) = run(
        Process::new(server_binary(bin)).args([
            "--listen",
            "127.0.0.1:0",
            "--config",
            conf.to_str().unwrap(),
        ]),
        b"",
    );
    assert!(!status.success(), "{bin}");
    assert!(
        err.contains("line 3") && err.contains("column"),
        "{bin}: {err}"
    );
}

fn connections_over_the_cap_wait_for_a_slot(bin: &str) {
    let server = Server::start(bin, &["--max-connections", "1", "--handshake-timeout", "5"]);
    // One connection holds the only slot (half a request).
    let mut first = TcpStream::connect_timeout(&server.addr, STEP).unwrap();
    first.write_all(b"\x04\x01").unwrap();
    server.wait_says("connection");
    // The next waits in the listen queue: no reply, no close.
    let target = echo(1);
    let mut second = TcpStream::connect_timeout(&server.addr, STEP).unwrap();
    second.write_all(&connect_to(target, b"").to_vec()).unwrap();
    server.wait_says("connection cap reached: accepting paused until a connection closes");
    second
        .set_read_timeout(Some(std::time::Duration::from_millis(500)))
        .unwrap();
    let mut reply = [0u8; 8];
    assert!(
        second.read_exact(&mut reply).is_err(),
        "{bin}: served past the cap"
    );
    // Once the slot frees, the waiting connection is served.
    drop(first);
    second.set_read_timeout(Some(STEP)).unwrap();
    second.read_exact(&mut reply).unwrap();
    assert_eq!(reply[1], 90, "{bin}: {reply:?}");
}

fn a_client_over_its_cap_gets_91_while_another_is_served(bin: &str) {
    let server = Server::start(bin, &["--max-connections-per-client", "2"]);
    let target = echo(4);
    let a = Ipv4Addr::new(127, 0, 0, 2);
    // Two connections from 127.0.0.2 hold its two slots.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = connect_from(a, server.addr);
        s.write_all(b"\x04\x01").unwrap();
        held.push(s);
    }
    server.wait_for_n("two connections", 2, |l| says(l, "connection"));
    // A third from 127.0.0.2 gets 91 at once.
    let started = std::time::Instant::now();
    let c = socks_request_on(
        connect_from(a, server.addr),
        &connect_to(target, b""),
        |_| {},
    );
    assert_eq!(
        rejected_with(&c),
        Some(ReplyCode::Rejected),
        "{bin}: {:?}",
        c.events
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    let refused = server.wait_says("refused");
    assert_eq!(field(&refused, "limit"), "connections", "{bin}: {refused}");
    // 127.0.0.3 is served meanwhile.
    let b = Ipv4Addr::new(127, 0, 0, 3);
    let c = socks_request_on(
        connect_from(b, server.addr),
        &connect_to(target, b""),
        |_| {},
    );
    assert!(granted(&c), "{bin}: {:?}\n{}", c.events, server.log());
    // A slot freed by 127.0.0.2 is usable at once.
    drop(held.pop());
    let deadline = std::time::Instant::now() + STEP;
    loop {
        let c = socks_request_on(
            connect_from(a, server.addr),
            &connect_to(target, b""),
            |_| {},
        );
        if granted(&c) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{bin}: the slot never freed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn a_client_that_resets_during_a_slow_connect_frees_its_slot_at_once(bin: &str) {
    let server = Server::start(bin, &["--max-connections", "1"]);
    let hole = Blackhole::new();
    // The only slot: a CONNECT to a destination that never answers (the
    // connect timeout is two minutes).
    let mut first = TcpStream::connect_timeout(&server.addr, STEP).unwrap();
    first
        .write_all(&connect_to(hole.addr(), b"gone").to_vec())
        .unwrap();
    server.wait_says("request");
    // A reset (a FIN alone is a half-close, which the relay would pass on).
    socket2::SockRef::from(&first)
        .set_linger(Some(std::time::Duration::ZERO))
        .unwrap();
    drop(first);
    // The server sees the reset, abandons the connect and frees the slot.
    let started = std::time::Instant::now();
    let line = server.wait_for("the abandoned connection", closed);
    assert_eq!(field(&line, "outcome"), "peer_closed", "{bin}: {line}");
    let c = socks_request(server.addr, &connect_to(echo(1), b""), |_| {});
    assert!(granted(&c), "{bin}: {:?}\n{}", c.events, server.log());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{bin}: the slot took {:?} to free",
        started.elapsed()
    );
}

/// A nameserver on loopback UDP for the own resolver: `fast.test` has the
/// address 127.0.0.1 (A; no AAAA), every other name is never answered, as a
/// nameserver that drops queries. It serves until the test process ends.
fn stub_nameserver() -> SocketAddr {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            if let Some(answer) = stub_answer(&buf[..n]) {
                let _ = socket.send_to(&answer, from);
            }
        }
    });
    addr
}

/// The stub's answer to one query, or none for a name it stays silent on.
fn stub_answer(query: &[u8]) -> Option<Vec<u8>> {
    // Header (12 bytes), then one question: labels, a zero, type, class.
    let mut at = 12;
    let mut labels = Vec::new();
    while *query.get(at)? != 0 {
        let len = usize::from(query[at]);
        labels.push(String::from_utf8_lossy(query.get(at + 1..at + 1 + len)?).to_lowercase());
        at += 1 + len;
    }
    let question_end = at + 5;
    let qtype = u16::from_be_bytes([*query.get(at + 1)?, *query.get(at + 2)?]);
    if labels.join(".") != "fast.test" {
        return None;
    }
    let with_a = qtype == 1;
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&query[..2]); // the query's id
    out.extend_from_slice(&[0x81, 0x80, 0, 1, 0, u8::from(with_a), 0, 0, 0, 0]);
    out.extend_from_slice(query.get(12..question_end)?);
    if with_a {
        // The name by pointer to the question, A, IN, TTL 60, 4 bytes.
        out.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
    }
    Some(out)
}

fn one_client_cannot_take_every_lookup(bin: &str) {
    let dns = stub_nameserver();
    let dir = socks4_tests::scratch::fresh(&format!("lookups-{bin}"));
    let conf = dir.join("socks4d.toml");
    std::fs::write(
        &conf,
        format!(
            "[limits]\nmax_lookups = 4\nmax_lookups_per_client = 2\n\n[resolver]\nmode = \"own\"\nnameservers = [\"{dns}\"]\n"
        ),
    )
    .unwrap();
    let server = Server::start(bin, &["--config", conf.to_str().unwrap()]);
    // 127.0.0.2 asks for four names the nameserver never answers: were
    // there no per-client cap, they would hold all four lookups until the
    // resolve timeout (10 s).
    let held: Vec<TcpStream> = (0..4)
        .map(|i| {
            let name = format!("slow{i}.test");
            let req = socks4_proto::Request {
                command: socks4_proto::Command::Connect,
                dest: socks4_proto::Dest::Domain(&name, 80),
                user_id: b"",
            };
            let mut s = connect_from(A, server.addr);
            s.write_all(&req.to_vec()).unwrap();
            s
        })
        .collect();
    server.wait_for_n("the four requests", 4, |l| says(l, "request"));
    // 127.0.0.3's name resolves and its CONNECT is granted meanwhile.
    let target = echo(1);
    let req = socks4_proto::Request {
        command: socks4_proto::Command::Connect,
        dest: socks4_proto::Dest::Domain("fast.test", target.port()),
        user_id: b"",
    };
    let started = Instant::now();
    let c = socks_request_on(connect_from(B, server.addr), &req, |_| {});
    assert!(granted(&c), "{bin}: {:?}\n{}", c.events, server.log());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{bin}: served after {:?}: its lookup waited for 127.0.0.2's",
        started.elapsed()
    );
    drop(held);
}
