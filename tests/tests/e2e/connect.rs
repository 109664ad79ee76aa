//! CONNECT relays and plain forwarding, on every adapter: clients that send
//! garbage, half a request or a 100 KB user id get 91 or a close while a relay
//! goes on; a client's reset closes both sides at once; an idle relay is closed
//! after the idle timeout; outbound connections leave from the outgoing
//! address; a forward listener relays with half-close; a client that
//! half-closes before its reply (request, data and FIN back to back) still
//! gets the reply and the destination's answer, unless
//! `abort_on_client_close` asks for today's hang-up.

use socks4_proto::client::Event;
use socks4_proto::{Command, Dest, Reply, ReplyCode, Request};
use socks4_tests::e2e::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

socks4_tests::on_every_adapter!(
    bad_clients_get_91_or_a_close_while_others_are_served,
    a_client_reset_closes_both_sides_at_once,
    an_idle_relay_is_closed_after_the_idle_timeout,
    outbound_connections_leave_from_the_outgoing_address,
    a_forward_relays_with_half_close,
    half_close_before_the_reply_is_not_a_hang_up,
    a_socks4a_name_that_cannot_be_a_host_never_reaches_a_parent,
);

fn bad_clients_get_91_or_a_close_while_others_are_served(bin: &str) {
    let server = Server::start(bin, &["--handshake-timeout", "1"]);
    let echo = echo(2);
    // A client in the middle of a relay.
    let good = socks_request(server.addr, &connect_to(echo, b"good"), |_| {});
    assert!(granted(&good), "{bin}");
    let mut good = good.stream;
    let mut ping = |round: u8| {
        good.write_all(&[round]).unwrap();
        let mut b = [0u8; 1];
        good.read_exact(&mut b).unwrap();
        assert_eq!(b[0], round, "{bin}: the relay still works");
    };
    ping(1);

    let expect_91_or_close = |bytes: &[u8], what: &str| {
        let mut s = TcpStream::connect_timeout(&server.addr, STEP).unwrap();
        s.set_read_timeout(Some(STEP)).unwrap();
        let started = std::time::Instant::now();
        let _ = s.write_all(bytes);
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        assert!(
            got.is_empty() || got == Reply::with_code(ReplyCode::Rejected).to_bytes(),
            "{bin} {what}: {got:?}"
        );
        assert!(
            started.elapsed() < STEP,
            "{bin} {what}: answered within the configured time"
        );
        got
    };
    // Malformed: refused at once with 91.
    assert_eq!(
        expect_91_or_close(b"GET / HTTP/1.1\r\n\r\n", "malformed").len(),
        8
    );
    ping(2);
    // Half a request, then silence: 91 after the 1 s handshake timeout.
    assert_eq!(
        expect_91_or_close(b"\x04\x01\x00\x50\x7f", "half request").len(),
        8
    );
    ping(3);
    // A 100 KB user id: refused once past the limit, never buffered.
    let mut huge = b"\x04\x01\x00\x50\x7f\x00\x00\x01".to_vec();
    huge.resize(100 * 1024, b'u');
    expect_91_or_close(&huge, "100 KB user id");
    ping(4);
    server.wait_for("a protocol error", |l| {
        closed(l) && field(l, "outcome") == "protocol_error"
    });
    server.wait_for("a timeout", |l| {
        closed(l) && field(l, "outcome") == "timed_out"
    });
}

/// A target that accepts one connection and never sends or reads; its socket
/// comes back so the test can see when the proxy closes it.
fn silent_target() -> (SocketAddr, std::sync::mpsc::Receiver<TcpStream>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Ok((s, _)) = listener.accept() {
            let _ = tx.send(s);
        }
    });
    (addr, rx)
}

/// Reads from `s` until end of stream or an error; how long that took.
fn closed_within(mut s: TcpStream, limit: std::time::Duration) -> Option<std::time::Duration> {
    let started = std::time::Instant::now();
    s.set_read_timeout(Some(limit)).unwrap();
    let mut b = [0u8; 64];
    loop {
        match s.read(&mut b) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return None
            }
            Err(_) => return Some(started.elapsed()),
        }
    }
}

fn a_client_reset_closes_both_sides_at_once(bin: &str) {
    let server = Server::start(bin, &[]);
    let (target, accepted) = silent_target();
    let c = socks_request(server.addr, &connect_to(target, b"resetter"), |_| {});
    assert!(granted(&c), "{bin}: {:?}", c.events);
    let dest_side = accepted.recv_timeout(STEP).unwrap();
    // SO_LINGER {on, 0}: close() sends a reset instead of a FIN.
    socket2::SockRef::from(&c.stream)
        .set_linger(Some(std::time::Duration::ZERO))
        .unwrap();
    drop(c.stream);
    let took = closed_within(dest_side, std::time::Duration::from_secs(1));
    assert!(
        took.is_some(),
        "{bin}: the destination side was not closed within a second of the client's reset\n{}",
        server.log()
    );
    let line = server.wait_for("the relay's end", closed);
    assert_eq!(field(&line, "outcome"), "relay_error", "{bin}: {line}");
    assert_eq!(field(&line, "user"), "resetter");
}

fn an_idle_relay_is_closed_after_the_idle_timeout(bin: &str) {
    let server = Server::start(bin, &["--idle-timeout", "1s"]);
    let (target, accepted) = silent_target();
    let c = socks_request(server.addr, &connect_to(target, b""), |_| {});
    assert!(granted(&c), "{bin}: {:?}", c.events);
    let dest_side = accepted.recv_timeout(STEP).unwrap();
    let started = std::time::Instant::now();
    // Traffic resets the timer: a byte at half time keeps it open past 1 s.
    std::thread::sleep(std::time::Duration::from_millis(600));
    let mut client = c.stream;
    client.write_all(b"x").unwrap();
    let client_closed = closed_within(client, STEP).expect("the client side is closed");
    let dest_closed = closed_within(dest_side, STEP).expect("the destination side is closed");
    let total = started.elapsed();
    assert!(
        total >= std::time::Duration::from_millis(1500),
        "{bin}: closed {total:?} after the start, less than 1 s after the last byte"
    );
    assert!(client_closed <= total && dest_closed <= total);
    let line = server.wait_for("the relay's end", closed);
    assert_eq!(field(&line, "outcome"), "idle_timeout", "{bin}: {line}");
    assert_eq!(field(&line, "bytes_up"), "1", "{bin}: {line}");
}

fn outbound_connections_leave_from_the_outgoing_address(bin: &str) {
    let server = Server::start(bin, &["--outgoing-address", "127.0.0.5"]);
    let (tx, rx) = std::sync::mpsc::channel();
    let target = peer(1, move |s: TcpStream| {
        let _ = tx.send(s.peer_addr().unwrap());
    });
    let c = socks_request(server.addr, &connect_to(target, b""), |_| {});
    assert!(
        matches!(c.events.last(), Some(Event::Granted(_))),
        "{bin}: {:?}",
        c.events
    );
    let seen = rx.recv_timeout(STEP).unwrap();
    assert_eq!(seen.ip().to_string(), "127.0.0.5", "{bin}");
}

fn a_forward_relays_with_half_close(bin: &str) {
    let echo = echo_after_eof(1);
    let forward = format!("127.0.0.1:0={echo}");
    let server = Server::start(bin, &["--forward", &forward]);
    let line = server.wait_for("the forward listener", |l| {
        says(l, "listening") && field(l, "kind") == "forward"
    });
    let addr: SocketAddr = field(&line, "listen").parse().unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 13 % 251) as u8).collect();
    let mut s = TcpStream::connect_timeout(&addr, STEP).unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    s.write_all(&data).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut back = Vec::new();
    s.read_to_end(&mut back).unwrap();
    assert_eq!(
        back.len(),
        data.len(),
        "{bin}: the echo answered after the half-close"
    );
    assert!(back == data, "{bin}: intact");
    let closed = server.wait_for("the forward's relay", |l| says(l, "closed"));
    assert_eq!(field(&closed, "dest"), echo.to_string(), "{bin}");
    assert_eq!(field(&closed, "bytes_up"), data.len().to_string(), "{bin}");
    // The request shape a SOCKS client would send is not expected here: a
    // forward listener takes raw bytes.
    let _ = Request {
        command: Command::Connect,
        dest: Dest::Domain("unused", 1),
        user_id: b"",
    };
}

/// An identd stand-in that accepts and never answers, so that the IDENT
/// phase lasts the whole IDENT timeout: a window in which a request is
/// pending for sure. Returns its port.
fn silent_identd() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().take(8).flatten() {
            held.push(s);
        }
        std::thread::sleep(STEP);
    });
    port
}

/// `printf REQUEST DATA | nc -N`: the request, data and a FIN back to back,
/// sent while the server waits for IDENT (log mode, 1 s timeout). The
/// client still gets its reply and the destination's answer (which comes
/// only after the half-close reached it); with `abort_on_client_close` the
/// request is abandoned instead, as before.
fn half_close_before_the_reply_is_not_a_hang_up(bin: &str) {
    for abort in [false, true] {
        let identd = silent_identd().to_string();
        let mut args = vec!["--ident", "log", "--ident-port", &identd];
        args.extend(["--ident-timeout", "1s"]);
        if abort {
            args.push("--abort-on-client-close");
        }
        let server = Server::start(bin, &args);
        let dest = echo_after_eof(1);
        let mut s = TcpStream::connect_timeout(&server.addr, STEP).unwrap();
        s.set_read_timeout(Some(STEP)).unwrap();
        let mut bytes = connect_to(dest, b"nc").to_vec();
        bytes.extend_from_slice(b"hello after FIN");
        s.write_all(&bytes).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut all = Vec::new();
        let _ = s.read_to_end(&mut all);
        let line = server.wait_for("the closed line", closed);
        if abort {
            assert!(all.is_empty(), "{bin}: answered {all:?}");
            assert_eq!(field(&line, "outcome"), "peer_closed", "{bin}: {line}");
            continue;
        }
        assert!(all.len() >= 8, "{bin}: no reply: {all:?}\n{}", server.log());
        let Ok(socks4_proto::Status::Complete(reply, 8)) = Reply::decode(&all[..8]) else {
            panic!("{bin}: not a reply: {all:?}");
        };
        assert_eq!(reply.code, ReplyCode::Granted, "{bin}");
        assert_eq!(&all[8..], b"hello after FIN", "{bin}: the answer");
        assert_eq!(field(&line, "bytes_up"), "15", "{bin}: {line}");
    }
}

/// A SOCKS4a name with a `:` (which HTTP CONNECT would bracket into an
/// authority of the client's making) or another character no host name
/// has is refused with 91 before the parent sees anything; a good name
/// reaches it as `CONNECT name:port`.
fn a_socks4a_name_that_cannot_be_a_host_never_reaches_a_parent(bin: &str) {
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let parent = peer(8, move |mut s| {
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).unwrap_or(0);
        let _ = tx
            .lock()
            .unwrap()
            .send(String::from_utf8_lossy(&buf[..n]).into_owned());
        let _ = s.write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n");
    });
    let conf = rules_config(
        &format!("names-{bin}"),
        &format!("pass from 127.0.0.0/8 to any\nroute to any via http://{parent}"),
    );
    let server = Server::start(bin, &["--config", &conf]);
    for name in ["a:b", "127.0.0.1:22 HTTP/1.1", "x@y", "evil/../z"] {
        // Written by hand: the client library refuses such names itself.
        let mut s = TcpStream::connect_timeout(&server.addr, STEP).unwrap();
        s.set_read_timeout(Some(STEP)).unwrap();
        let mut bytes = vec![4, 1, 0, 80, 0, 0, 0, 1, 0];
        bytes.extend_from_slice(name.as_bytes());
        bytes.push(0);
        s.write_all(&bytes).unwrap();
        let mut reply = [0u8; 8];
        s.read_exact(&mut reply).unwrap();
        assert_eq!(reply[1], 91, "{bin}: {name}: {reply:?}");
        let seen = rx.recv_timeout(std::time::Duration::from_millis(300));
        assert!(seen.is_err(), "{bin}: the parent saw {seen:?} for {name}");
    }
    let req = Request {
        command: Command::Connect,
        dest: Dest::Domain("good.example", 80),
        user_id: b"",
    };
    let c = socks_request(server.addr, &req, |_| {});
    assert!(refused(&c), "{bin}: the parent answered 403");
    let seen = rx.recv_timeout(STEP).unwrap();
    assert!(
        seen.starts_with("CONNECT good.example:80 "),
        "{bin}: {seen}"
    );
}
