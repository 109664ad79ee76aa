//! IDENT against a real identd, oidentd (which `.ci/setup` installs; each test
//! starts its own on a free port of 127.0.0.1, and stops it), with the
//! server's `--ident-port` pointing at it. `socks4-ident`'s sans-IO client, driven by a few lines
//! of std IO, asks for the owner of a live loopback connection and of a port
//! pair without one. And every adapter with `--ident require`: the user identd
//! names is granted, another user id or an empty one gets 93, 92 when identd is
//! down; the query leaves from the address the client reached.

use socks4_ident::{Comparison, ErrorCode, IdentClient, Outcome, Query};
use socks4_proto::ReplyCode;
use socks4_tests::e2e::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

socks4_tests::on_every_adapter!(
    ident_require_with_oidentd,
    ident_asks_from_the_address_the_client_reached,
);

const TIMEOUT: Duration = Duration::from_secs(10);

/// Asks the identd at `identd`.
fn ask(identd: SocketAddr, query: Query) -> Outcome {
    let mut s = TcpStream::connect_timeout(&identd, TIMEOUT)
        .unwrap_or_else(|e| panic!("identd at {identd}: {e}"));
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut ident = IdentClient::new(query);
    s.write_all(ident.poll_transmit().unwrap()).unwrap();
    let mut buf = [0u8; 256];
    loop {
        if let Some(outcome) = ident.poll_outcome() {
            return outcome;
        }
        match s
            .read(&mut buf)
            .expect("identd answered within the timeout")
        {
            0 => ident.handle_eof(),
            n => ident.handle_input(&buf[..n]),
        }
    }
}

fn current_user() -> Vec<u8> {
    let out = std::process::Command::new("id")
        .arg("-un")
        .output()
        .expect("id -un");
    assert!(out.status.success());
    out.stdout.trim_ascii().to_vec()
}

#[test]
fn identd_names_the_owner_of_a_live_connection() {
    // The "proxy" listens; the "SOCKS client" connects to it.
    let proxy = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(proxy.local_addr().unwrap()).unwrap();
    let (_accepted, client_addr) = proxy.accept().unwrap();
    assert_eq!(client_addr, client.local_addr().unwrap());

    let query = Query::new(client_addr.port(), proxy.local_addr().unwrap().port());
    let identd = socks4_tests::peers::oidentd();
    let outcome = ask(identd.addr, query);
    let user = current_user();
    let Outcome::UserId(id) = &outcome else {
        panic!("expected USERID, got {outcome:?}")
    };
    assert_eq!(id.user_id, user);
    assert!(!id.opsys.is_empty());
    assert_eq!(outcome.compare(&user), Comparison::Match);
    assert_eq!(outcome.compare(b"somebody-else"), Comparison::Mismatch);
}

#[test]
fn identd_reports_no_user_for_a_port_pair_without_connection() {
    // A port pair with no connection: bind and drop a listener to find free ports.
    let free = |_| {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let query = Query::new(free(0), free(1));
    let identd = socks4_tests::peers::oidentd();
    let outcome = ask(identd.addr, query);
    assert_eq!(outcome, Outcome::Error(ErrorCode::NoUser));
    assert_eq!(outcome.compare(b"root"), Comparison::Unavailable);
}

fn ident_require_with_oidentd(bin: &str) {
    let identd = socks4_tests::peers::oidentd();
    let port = identd.addr.port().to_string();
    let server = Server::start(bin, &["--ident", "require", "--ident-port", &port]);
    let echo = echo(1);
    let me = current_user();
    // identd names the same user as the request: granted and relayed.
    let c = socks_request(server.addr, &connect_to(echo, &me), |_| {});
    assert!(granted(&c), "{bin}: {:?}\n{}", c.events, server.log());
    let mut s = c.stream;
    s.write_all(b"x").unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).unwrap();
    // Another user id than identd reports: 93.
    let c = socks_request(server.addr, &connect_to(echo, b"not-the-owner"), |_| {});
    assert_eq!(
        rejected_with(&c),
        Some(ReplyCode::IdentMismatch),
        "{bin}: {:?}",
        c.events
    );
    // An empty user id matches nobody: 93.
    let c = socks_request(server.addr, &connect_to(echo, b""), |_| {});
    assert_eq!(rejected_with(&c), Some(ReplyCode::IdentMismatch), "{bin}");
    drop(server);

    // identd down (nothing listens on the configured port): 92.
    let closed = ClosedPort::new();
    let closed_port = closed.port().to_string();
    let server = Server::start(bin, &["--ident", "require", "--ident-port", &closed_port]);
    let c = socks_request(server.addr, &connect_to(echo, &me), |_| {});
    assert_eq!(
        rejected_with(&c),
        Some(ReplyCode::IdentUnreachable),
        "{bin}: {:?}",
        c.events
    );
}

fn ident_asks_from_the_address_the_client_reached(bin: &str) {
    // The proxy listens on 127.0.0.2; the client connects from 127.0.0.1. oidentd
    // only finds the connection when the query comes from 127.0.0.2 (it matches
    // the querier's address), which the OS would not pick by itself.
    let identd = socks4_tests::peers::oidentd();
    let port = identd.addr.port().to_string();
    let args = ["--ident", "require", "--ident-port", &port];
    let server = Server::start_on(bin, "127.0.0.2", &args);
    let echo = echo(1);
    let c = socks_request(server.addr, &connect_to(echo, &current_user()), |_| {});
    assert!(granted(&c), "{bin}: {:?}\n{}", c.events, server.log());
}
