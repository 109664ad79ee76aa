//! A request that would loop back into the server is refused with 91 and
//! the outcome `loop`, whatever the rules say: a CONNECT to one of its own
//! listeners (a SOCKS listener, the metrics listener; a wildcard bind
//! through any local address). Before, one client connection could nest
//! CONNECTs through the server's own port, each holding a slot.

use socks4_proto::ReplyCode;
use socks4_tests::e2e::*;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

socks4_tests::on_every_adapter!(
    a_connect_to_the_server_itself_is_refused_as_a_loop,
    a_connect_to_a_wildcard_listener_through_any_local_address_is_a_loop,
);

/// Asks `proxy` for a CONNECT to `dest` over one connection; the reply code.
fn reply_code(proxy: SocketAddr, dest: SocketAddr) -> u8 {
    let mut s = std::net::TcpStream::connect_timeout(&proxy, STEP).unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    s.write_all(&connect_to(dest, b"").to_vec()).unwrap();
    let mut reply = [0u8; 8];
    s.read_exact(&mut reply).unwrap();
    reply[1]
}

fn a_connect_to_the_server_itself_is_refused_as_a_loop(bin: &str) {
    let rules = rules_config(&format!("loop-{bin}"), "pass from 127.0.0.0/8 to any\n");
    let server = Server::start(
        bin,
        &["--config", &rules, "--metrics-listen", "127.0.0.1:0"],
    );
    // Nested: a CONNECT to the proxy's own address, then another inside it.
    // The first is refused at once, so no slot is held by a second turn.
    let mut s = std::net::TcpStream::connect_timeout(&server.addr, STEP).unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    for _ in 0..50 {
        if s.write_all(&connect_to(server.addr, b"").to_vec()).is_err() {
            break;
        }
    }
    let mut reply = [0u8; 8];
    s.read_exact(&mut reply).unwrap();
    assert_eq!(reply[1], ReplyCode::Rejected.as_u8(), "{bin}: {reply:?}");
    let line = server.wait_for("the refused loop", closed);
    assert_eq!(field(&line, "outcome"), "loop", "{bin}: {line}");
    assert_eq!(field(&line, "reply"), "91", "{bin}: {line}");
    drop(s);
    // The metrics listener is the server's too.
    let metrics: SocketAddr = field(&server.wait_says("serving metrics"), "metrics")
        .parse()
        .unwrap();
    assert_eq!(reply_code(server.addr, metrics), 91, "{bin}");
    let loops = server.wait_for_n("two loops", 2, |l| {
        closed(l) && field(l, "outcome") == "loop"
    });
    assert_eq!(loops.len(), 2, "{bin}");
    // Anything else is served as before.
    assert_eq!(reply_code(server.addr, echo(1)), 90, "{bin}");
    let m = server.metrics();
    assert!(
        m.contains("socks4_closes_total{outcome=\"loop\"} 2"),
        "{bin}: {m}"
    );
}

fn a_connect_to_a_wildcard_listener_through_any_local_address_is_a_loop(bin: &str) {
    // A wildcard bind needs a policy for clients beyond loopback: a
    // documentation net, which never connects.
    let server = Server::start_with(
        bin,
        &[
            "--listen",
            "0.0.0.0:0",
            "--allow",
            "127.0.0.0/8",
            "--allow",
            "192.0.2.0/24",
            "--allow-root",
        ],
    );
    let port = server.addr.port();
    let proxy = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    for ip in [Ipv4Addr::new(127, 0, 0, 1), Ipv4Addr::new(127, 0, 0, 2)] {
        let dest = SocketAddr::V4(SocketAddrV4::new(ip, port));
        assert_eq!(reply_code(proxy, dest), 91, "{bin}: {dest}");
    }
    let loops = server.wait_for_n("two loops", 2, |l| {
        closed(l) && field(l, "outcome") == "loop"
    });
    assert_eq!(loops.len(), 2, "{bin}\n{}", server.log());
}
