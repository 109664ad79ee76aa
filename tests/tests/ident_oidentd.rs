//! socks4-ident against a real identd: oidentd on 127.0.0.1:113, which `.ci/setup`
//! installs and starts. A live loopback connection is made here, and its owner is
//! asked for through the sans-IO client driven by a few lines of std IO.

use socks4_ident::{Comparison, ErrorCode, IdentClient, Outcome, Query};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

const IDENTD: &str = "127.0.0.1:113";
const TIMEOUT: Duration = Duration::from_secs(10);

fn ask(query: Query) -> Outcome {
    let addr: SocketAddr = IDENTD.parse().unwrap();
    let mut s = TcpStream::connect_timeout(&addr, TIMEOUT).unwrap_or_else(|e| {
        panic!("identd at {IDENTD} ({e}): run `bash .ci/setup` to install and start oidentd")
    });
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
    let outcome = ask(query);
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
    let outcome = ask(query);
    assert_eq!(outcome, Outcome::Error(ErrorCode::NoUser));
    assert_eq!(outcome.compare(b"root"), Comparison::Unavailable);
}
