//! Routes through parent proxies and plain TCP forwarding, on every adapter:
//! tinyproxy as an HTTP CONNECT parent, Dante as a SOCKS4 parent, another of our
//! servers as a SOCKS4a parent that gets the name unresolved, a parent that is
//! down, the outgoing address, and a checksummed forward with half-close.

use socks4_proto::client::Event;
use socks4_proto::{Command, Dest, ReplyCode, Request};
use socks4_tests::e2e::*;
use socks4_tests::peers;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command as Process;

socks4_tests::on_every_adapter!(
    routes_through_tinyproxy_and_a_parent_that_is_down,
    routes_through_dante_as_a_socks4_parent,
    a_socks4a_parent_gets_the_name_unresolved,
    outbound_connections_leave_from_the_outgoing_address,
    a_forward_relays_with_half_close,
);

fn routes_through_tinyproxy_and_a_parent_that_is_down(bin: &str) {
    let tiny = peers::tinyproxy();
    let web = http(1, "fetched through tinyproxy");
    let closed = ClosedPort::new();
    let down = closed.port();
    let conf = rules_config(
        &format!("chain-tiny-{bin}"),
        &format!(
            "pass from 127.0.0.0/8 to any\nroute to any port eq {} via http://{}\nroute to any via http://127.0.0.1:{down}",
            web.port(),
            tiny.addr
        ),
    );
    let server = Server::start(bin, &["--config", &conf]);
    let (ok, body) = curl_socks4a(server.addr, web.port());
    assert!(ok, "{bin}: {body}\n{}", server.log());
    assert_eq!(body, "fetched through tinyproxy", "{bin}");
    let line = server.wait_for("the routed relay", |l| says(l, "closed"));
    assert_eq!(
        field(&line, "via"),
        format!("http://{}", tiny.addr),
        "{bin}: {line}"
    );
    // Through a parent that is down: 91, and the log says why.
    let other = echo(1);
    let c = socks_request(server.addr, &connect_to(other, b""), |_| {});
    assert!(
        matches!(c.events.last(), Some(Event::Rejected(r)) if r.code == ReplyCode::Rejected),
        "{bin}: {:?}",
        c.events
    );
    server.wait_says("parent failed");
    let lines = server.wait_for_n("two closed lines", 2, |l| says(l, "closed"));
    assert_eq!(
        field(&lines[1], "outcome"),
        "parent_failed",
        "{bin}: {}",
        lines[1]
    );
}

fn routes_through_dante_as_a_socks4_parent(bin: &str) {
    let dante = peers::dante().expect("danted (Debian package dante-server; run .ci/setup)");
    let web = http(1, "fetched through Dante");
    let conf = rules_config(
        &format!("chain-dante-{bin}"),
        &format!(
            "pass from 127.0.0.0/8 to any\nroute to any via socks4://{}",
            dante.addr
        ),
    );
    let server = Server::start(bin, &["--config", &conf]);
    // A 4a name: resolved here, then sent to Dante as an IPv4 address.
    let (ok, body) = curl_socks4a(server.addr, web.port());
    assert!(ok, "{bin}: {body}\n{}", server.log());
    assert_eq!(body, "fetched through Dante", "{bin}");
    server.wait_says("dns_lookup");
    let line = server.wait_for("the routed relay", |l| says(l, "closed"));
    assert_eq!(
        field(&line, "via"),
        format!("socks4://{}", dante.addr),
        "{bin}: {line}"
    );
}

fn a_socks4a_parent_gets_the_name_unresolved(bin: &str) {
    let parent = Server::start(bin, &[]);
    let web = http(1, "fetched through our own parent");
    let conf = rules_config(
        &format!("chain-own-{bin}"),
        &format!(
            "pass from 127.0.0.0/8 to any\nroute to .localhost via socks4a://{} user chained\nroute to localhost via socks4a://{} user chained",
            parent.addr, parent.addr
        ),
    );
    let server = Server::start(bin, &["--config", &conf]);
    let (ok, body) = curl_socks4a(server.addr, web.port());
    assert!(ok, "{bin}: {body}\n{}\n{}", server.log(), parent.log());
    assert_eq!(body, "fetched through our own parent", "{bin}");
    // The parent resolved the name; this server did not.
    let lookup = parent.wait_says("dns_lookup");
    assert_eq!(field(&lookup, "host"), "localhost", "{bin}: {lookup}");
    let parent_line = parent.wait_for("the parent's relay", |l| says(l, "closed"));
    assert_eq!(
        field(&parent_line, "dest"),
        format!("localhost:{}", web.port()),
        "{bin}"
    );
    assert_eq!(
        field(&parent_line, "user"),
        "chained",
        "{bin}: the route's user id"
    );
    server.wait_for("the child's relay", |l| says(l, "closed"));
    assert_eq!(
        server.count(|l| says(l, "dns_lookup")),
        0,
        "{bin}\n{}",
        server.log()
    );
    // ctl-style explanation of the route is in --check and ctl; --check shows it.
    let (status, out, _) = run(
        Process::new(server_binary(bin)).args(["--check", "--config", &conf]),
        b"",
    );
    assert!(
        status.success()
            && String::from_utf8_lossy(&out).contains("to localhost via socks4a://chained@"),
        "{bin}: {}",
        String::from_utf8_lossy(&out)
    );
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
