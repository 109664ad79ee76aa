//! The probes on the metrics listener, on every adapter: `/live` is 200 while
//! the process runs; `/ready` is 200 while serving and 503 at
//! `max_connections` and while draining after SIGTERM; the `health`
//! subcommand (a container's health check) exits 0 on a 200 and 1 otherwise.
//! With `when_full = "refuse"`, a connection past `max_connections` gets its
//! 91 at once.

use socks4_tests::e2e::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command as Process;
use std::time::{Duration, Instant};

socks4_tests::on_every_adapter!(
    live_and_ready_while_serving,
    ready_is_503_at_max_connections,
    ready_is_503_while_draining_and_live_stays_200,
    the_health_subcommand_exits_by_the_status,
    when_full_refuse_answers_91_at_once,
);

/// The metrics listener's address, from the server's log.
fn metrics_addr(server: &Server) -> SocketAddr {
    field(&server.wait_says("serving metrics"), "metrics")
        .parse()
        .unwrap()
}

/// `GET path` on `addr`: the status code and the body.
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, STEP).unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {out:?}"));
    (code, body.to_owned())
}

/// Polls `GET path` until it answers `code` (at most [`STEP`]); its body.
fn wait_status(addr: SocketAddr, path: &str, code: u16) -> String {
    let deadline = Instant::now() + STEP;
    loop {
        let (got, body) = get(addr, path);
        if got == code {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{path} stayed {got} ({body:?}), expected {code}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn live_and_ready_while_serving(bin: &str) {
    let server = Server::start(bin, &["--metrics-listen", "127.0.0.1:0"]);
    let metrics = metrics_addr(&server);
    assert_eq!(get(metrics, "/live"), (200, "live\n".to_owned()), "{bin}");
    assert_eq!(get(metrics, "/ready"), (200, "ready\n".to_owned()), "{bin}");
    let (code, body) = get(metrics, "/nowhere");
    assert_eq!(code, 404, "{bin}");
    assert!(body.contains("/ready"), "{bin}: {body}");
}

fn ready_is_503_at_max_connections(bin: &str) {
    let server = Server::start(
        bin,
        &["--metrics-listen", "127.0.0.1:0", "--max-connections", "2"],
    );
    let metrics = metrics_addr(&server);
    let echo = echo(2);
    let first = socks_request(server.addr, &connect_to(echo, b""), |_| {});
    assert!(granted(&first), "{bin}: {:?}", first.events);
    assert_eq!(get(metrics, "/ready").0, 200, "{bin}: one of two is open");
    let second = socks_request(server.addr, &connect_to(echo, b""), |_| {});
    assert!(granted(&second), "{bin}: {:?}", second.events);
    let body = wait_status(metrics, "/ready", 503);
    assert!(body.starts_with("full"), "{bin}: {body}");
    assert_eq!(get(metrics, "/live").0, 200, "{bin}: full is still alive");
    drop(first);
    wait_status(metrics, "/ready", 200);
}

fn ready_is_503_while_draining_and_live_stays_200(bin: &str) {
    let mut server = Server::start(
        bin,
        &["--metrics-listen", "127.0.0.1:0", "--shutdown-grace", "20"],
    );
    let metrics = metrics_addr(&server);
    let echo = echo(1);
    let c = socks_request(server.addr, &connect_to(echo, b""), |_| {});
    assert!(granted(&c), "{bin}: {:?}", c.events);
    let mut relay = c.stream;
    assert_eq!(get(metrics, "/ready").0, 200, "{bin}");
    server.signal("TERM");
    server.wait_says("shutting down: no new connections, relays may finish");
    let body = wait_status(metrics, "/ready", 503);
    assert!(body.starts_with("draining"), "{bin}: {body}");
    assert_eq!(get(metrics, "/live").0, 200, "{bin}: draining is alive");
    // The relay still works while draining; once it ends, the server exits.
    assert_eq!(
        echo_through(&mut relay, b"still here"),
        b"still here",
        "{bin}"
    );
    drop(relay);
    let status = server
        .wait_exit(STEP)
        .unwrap_or_else(|| panic!("{bin} did not exit:\n{}", server.log()));
    assert!(status.success(), "{bin}: {status:?}\n{}", server.log());
    assert!(
        TcpStream::connect_timeout(&metrics, Duration::from_secs(1)).is_err(),
        "{bin}: the metrics listener closes with the process"
    );
}

fn the_health_subcommand_exits_by_the_status(bin: &str) {
    let server = Server::start(
        bin,
        &["--metrics-listen", "127.0.0.1:0", "--max-connections", "1"],
    );
    let metrics = metrics_addr(&server);
    let health = |path: &str| {
        let url = format!("http://{metrics}{path}");
        let (status, out, err) = run(Process::new(server_binary(bin)).args(["health", &url]), b"");
        (
            status.code(),
            String::from_utf8_lossy(&out).into_owned(),
            err,
        )
    };
    let (code, out, err) = health("/ready");
    assert_eq!(code, Some(0), "{bin}: {out}{err}");
    assert!(
        out.contains(" 200 ") && out.contains("ready"),
        "{bin}: {out}"
    );
    // Full: /ready fails the check, /live passes it.
    let echo = echo(1);
    let held = socks_request(server.addr, &connect_to(echo, b""), |_| {});
    assert!(granted(&held), "{bin}: {:?}", held.events);
    wait_status(metrics, "/ready", 503);
    let (code, out, err) = health("/ready");
    assert_eq!(code, Some(1), "{bin}: {out}{err}");
    assert!(out.contains(" 503 "), "{bin}: {out}");
    assert_eq!(health("/live").0, Some(0), "{bin}");
    // No server there: a failed check, not a hang.
    let closed = ClosedPort::new();
    let url = format!("http://127.0.0.1:{}/live", closed.port());
    let (status, _, err) = run(Process::new(server_binary(bin)).args(["health", &url]), b"");
    assert_eq!(status.code(), Some(1), "{bin}: {err}");
    assert!(err.contains("refused"), "{bin}: {err}");
}

fn when_full_refuse_answers_91_at_once(bin: &str) {
    let server = Server::start(
        bin,
        &[
            "--metrics-listen",
            "127.0.0.1:0",
            "--max-connections",
            "1",
            "--when-full",
            "refuse",
        ],
    );
    let metrics = metrics_addr(&server);
    let echo = echo(2);
    let first = socks_request(server.addr, &connect_to(echo, b""), |_| {});
    assert!(granted(&first), "{bin}: {:?}", first.events);
    let body = wait_status(metrics, "/ready", 503);
    assert!(
        body.starts_with("full") && body.contains("refused"),
        "{bin}: {body}"
    );
    // Past the cap: accepted and refused at once, rather than left waiting
    // in the listen queue.
    let started = Instant::now();
    let second = socks_request(server.addr, &connect_to(echo, b""), |_| {});
    assert!(refused(&second), "{bin}: {:?}", second.events);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{bin}: {:?}",
        started.elapsed()
    );
    let line = server.wait_says("refused: max_connections are open (when_full = refuse)");
    assert_eq!(field(&line, "limit"), "max_connections", "{bin}");
    assert_eq!(field(&line, "reply"), "91", "{bin}");
    // The first relay was never disturbed; once it closes there is room.
    let mut relay = first.stream;
    assert_eq!(echo_through(&mut relay, b"fine"), b"fine", "{bin}");
    drop(relay);
    wait_status(metrics, "/ready", 200);
    let third = socks_request(server.addr, &connect_to(echo, b""), |_| {});
    assert!(granted(&third), "{bin}: {:?}", third.events);
}
