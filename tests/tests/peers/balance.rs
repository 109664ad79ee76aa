//! A route's parents seen from both ends: two of our servers as SOCKS4
//! parents on loopback, and a server routing through them, each parent
//! counting the connections it carried (its `closed` lines). Round-robin
//! alternates, least-connections sends new connections to the parent with
//! fewer open, and a parent that was down is used again once it is back and
//! its backoff has passed, as `ctl parents` and the metrics say.

use super::dns_ns::{ctl, sample};
use socks4_tests::e2e::*;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

socks4_tests::on_every_adapter!(
    round_robin_alternates_between_two_parents,
    least_connections_prefers_the_parent_with_fewer_open,
    a_parent_that_was_down_is_used_again_after_its_backoff,
);

/// A server routing everything through `route`'s parents, with a control
/// socket, a metrics listener and `[parents] parents`; its control socket.
fn child(bin: &str, name: &str, route: &str, parents: &str) -> (Server, PathBuf) {
    let dir = socks4_tests::scratch::fresh(name);
    let socket = dir.join("ctl.sock");
    let conf = dir.join("socks4d.toml");
    std::fs::write(
        &conf,
        format!(
            "listen = [\"127.0.0.1:0\"]\ncontrol_socket = \"{}\"\nmetrics_listen = \"127.0.0.1:0\"\n\
             [parents]\n{parents}\n[access]\nrules = \"\"\"\npass from 127.0.0.0/8 to any\n{route}\n\"\"\"\n",
            socket.display()
        ),
    )
    .unwrap();
    let server = Server::start_with(bin, &["--config", &conf.display().to_string()]);
    (server, socket)
}

/// One CONNECT to `dest` through `proxy`, granted and echoed; the stream,
/// still open.
fn through(proxy: SocketAddr, dest: SocketAddr) -> std::net::TcpStream {
    let mut c = socks_request(proxy, &connect_to(dest, b""), |_| {});
    assert!(granted(&c), "{:?}", c.events);
    assert_eq!(echo_through(&mut c.stream, b"hi"), b"hi");
    c.stream
}

/// The `ctl parents` line of `parent`.
fn parent_line(bin: &str, socket: &std::path::Path, parent: SocketAddr) -> String {
    let out = ctl(bin, socket, &["parents"]);
    out.lines()
        .find(|l| l.starts_with(&format!("socks4://{parent} ")))
        .unwrap_or_else(|| panic!("{bin}: {parent} not in\n{out}"))
        .to_owned()
}

/// Waits (at most [`STEP`]) until `ctl parents` shows `open` connections
/// through `parent`.
fn wait_open(bin: &str, socket: &std::path::Path, parent: SocketAddr, open: usize) {
    let deadline = Instant::now() + STEP;
    loop {
        let line = parent_line(bin, socket, parent);
        if line.contains(&format!(" open={open} ")) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{bin}: never open={open}: {line}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn round_robin_alternates_between_two_parents(bin: &str) {
    let (p1, p2) = (Server::start(bin, &[]), Server::start(bin, &[]));
    let route = format!(
        "route to any via socks4://{}, socks4://{} balance round-robin",
        p1.addr, p2.addr
    );
    let (server, _) = child(bin, &format!("rr-{bin}"), &route, "");
    let dest = echo(6);
    for _ in 0..6 {
        drop(through(server.addr, dest));
    }
    let mut lines = server.wait_for_n("six closed lines", 6, closed);
    // Closed lines come in the order the relays end: put them in the order
    // of the requests (connection ids count up).
    lines.sort_by_key(|l| field(l, "conn").parse::<u64>().unwrap_or(u64::MAX));
    let via: Vec<String> = lines.iter().map(|l| field(l, "via")).collect();
    let (v1, v2) = (
        format!("socks4://{}", p1.addr),
        format!("socks4://{}", p2.addr),
    );
    assert_eq!(
        via,
        [&v1, &v2, &v1, &v2, &v1, &v2].map(String::clone),
        "{bin}"
    );
    // Each parent carried three.
    p1.wait_for_n("three closed lines", 3, closed);
    p2.wait_for_n("three closed lines", 3, closed);
    assert_eq!((p1.count(closed), p2.count(closed)), (3, 3), "{bin}");
}

fn least_connections_prefers_the_parent_with_fewer_open(bin: &str) {
    let (p1, p2) = (Server::start(bin, &[]), Server::start(bin, &[]));
    let route = format!(
        "route to any via socks4://{}, socks4://{} balance least-connections",
        p1.addr, p2.addr
    );
    let (server, socket) = child(bin, &format!("lc-{bin}"), &route, "");
    let dest = echo(4);
    // A connection that stays open: through the first parent (a tie).
    let long = through(server.addr, dest);
    wait_open(bin, &socket, p1.addr, 1);
    // While it is open, each new one goes to the second parent (round-robin
    // would alternate), once the one before it has closed.
    for n in 1..=3 {
        drop(through(server.addr, dest));
        server.wait_for_n("the short connection's closed line", n, closed);
        wait_open(bin, &socket, p2.addr, 0);
    }
    p2.wait_for_n("three closed lines", 3, closed);
    assert_eq!((p1.count(closed), p2.count(closed)), (0, 3), "{bin}");
    drop(long);
    p1.wait_for("the long connection's closed line", closed);
    wait_open(bin, &socket, p1.addr, 0);
}

fn a_parent_that_was_down_is_used_again_after_its_backoff(bin: &str) {
    // The first parent's address: nothing listens there yet (refused). An
    // address of its own per adapter, so no other test takes the port.
    let ip = match bin {
        "socks4d-tokio" => "127.0.0.83",
        "socks4d-smol" => "127.0.0.84",
        _ => "127.0.0.85",
    };
    let down: SocketAddr = format!("{ip}:{}", free_port_on(ip.parse().unwrap()))
        .parse()
        .unwrap();
    let p2 = Server::start(bin, &[]);
    let route = format!("route to any via socks4://{down}, socks4://{}", p2.addr);
    let parents = "max_failures = 1\nmax_backoff = \"1s\"";
    let (server, socket) = child(bin, &format!("back-{bin}"), &route, parents);
    let dest = echo(3);
    // Refused, then the second parent: the first is down for 1 s.
    let marked = Instant::now();
    drop(through(server.addr, dest));
    // Skipped while down.
    drop(through(server.addr, dest));
    let lines = server.wait_for_n("two closed lines", 2, closed);
    assert_eq!(field(&lines[0], "attempts"), "2", "{bin}: {}", lines[0]);
    assert_eq!(field(&lines[1], "attempts"), "1", "{bin}: {}", lines[1]);
    assert_eq!(field(&lines[1], "via"), format!("socks4://{}", p2.addr));
    let line = parent_line(bin, &socket, down);
    assert!(line.contains("state=\"down"), "{bin}: {line}");
    assert!(line.contains("failures=1"), "{bin}: {line}");
    assert!(line.contains("refused"), "{bin}: {line}");
    let label = format!("parent=\"socks4://{down}\"");
    let page = server.metrics();
    assert_eq!(sample(&page, "socks4_parent_up", &label), Some(0), "{bin}");
    // It comes back; once the backoff has passed it is used again, first.
    let back = Server::start_with(bin, &["--listen", &down.to_string()]);
    std::thread::sleep(
        (marked + Duration::from_millis(1200)).saturating_duration_since(Instant::now()),
    );
    drop(through(server.addr, dest));
    let lines = server.wait_for_n("three closed lines", 3, closed);
    assert_eq!(field(&lines[2], "via"), format!("socks4://{down}"), "{bin}");
    assert_eq!(field(&lines[2], "attempts"), "1", "{bin}");
    back.wait_for("its closed line", closed);
    let line = parent_line(bin, &socket, down);
    assert!(line.contains("state=\"up\" failures=0"), "{bin}: {line}");
    let page = server.metrics();
    let attempts = |p: &str, r: &str| {
        sample(
            &page,
            "socks4_parent_attempts_total",
            &format!("parent=\"socks4://{p}\",result=\"{r}\""),
        )
    };
    assert_eq!(sample(&page, "socks4_parent_up", &label), Some(1), "{bin}");
    assert_eq!(attempts(&down.to_string(), "error"), Some(1), "{bin}");
    assert_eq!(attempts(&down.to_string(), "won"), Some(1), "{bin}");
    assert_eq!(attempts(&p2.addr.to_string(), "won"), Some(2), "{bin}");
}
