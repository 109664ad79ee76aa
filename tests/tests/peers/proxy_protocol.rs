//! The PROXY protocol behind a real HAProxy, on every adapter: v2 and v1
//! headers name the real client to the rules, the logs and the events, and
//! HAProxy's health checks (a LOCAL header, then a close) count as no failure.

use socks4_tests::e2e::*;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

socks4_tests::on_every_adapter!(haproxy_names_the_real_client);

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
            "--proxy-protocol-from",
            "127.0.0.1",
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
    // (127.0.0.7's are refused by their source alone, before their request
    // is read: their closed lines name no destination.)
    let closed = server.wait_for_n("four closed lines of clients", 4, |l| {
        says(l, "closed")
            && (field(l, "client").starts_with("127.0.0.7:")
                || field(l, "client").starts_with("127.0.0.8:"))
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
