//! What an operator runs the server with, tested for real on every adapter:
//! Prometheus scraping the metrics, the control socket and `ctl`, systemd
//! socket activation and notifications, privilege drop, the pid file, and the
//! log lines an operator relies on. Third-party programs (prometheus,
//! promtool, systemd-socket-activate) come from `.ci/setup`.

use socks4_proto::ReplyCode;
use socks4_tests::e2e::*;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

socks4_tests::on_every_adapter!(
    prometheus_scrapes_the_metrics,
    the_control_socket_changes_the_lists,
    socket_activation_with_systemd_socket_activate,
    readiness_reload_and_stop_are_notified,
    privileges_are_dropped_after_binding,
    the_pid_file_is_written_and_removed,
    a_rule_with_log_is_logged_under_quiet,
    the_closed_line_names_the_rule_when_the_connect_fails,
);

fn temp_dir(what: &str, bin: &str) -> std::path::PathBuf {
    let dir = socks4_tests::scratch::fresh(&format!("{what}-{bin}"));
    dir
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect_timeout(&addr, STEP).unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    std::io::Write::write_all(
        &mut s,
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn prometheus_scrapes_the_metrics(bin: &str) {
    let server = Server::start(bin, &["--metrics-listen", "127.0.0.1:0"]);
    let metrics: SocketAddr = field(&server.wait_says("serving metrics"), "metrics")
        .parse()
        .unwrap();
    // Connections the counters must show.
    const MADE: u64 = 7;
    let echo = echo(MADE as usize);
    for _ in 0..MADE {
        let c = socks_request(server.addr, &connect_to(echo, b""), |_| {});
        assert!(granted(&c), "{bin}: {:?}", c.events);
    }
    server.wait_for_n("closed lines", MADE as usize, |l| says(l, "closed"));
    // The text passes promtool's checks.
    let response = http_get(metrics, "/metrics");
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    assert!(
        body.contains(&format!(
            "socks4_connections_opened_total{{listener=\"{}\"}} {MADE}",
            server.addr
        )),
        "{bin}: {body}"
    );
    let (status, out, err) = run(
        Process::new("promtool").args(["check", "metrics"]),
        body.as_bytes(),
    );
    assert!(
        status.success(),
        "{bin}: promtool: {err}{} (run .ci/setup to install prometheus)",
        String::from_utf8_lossy(&out)
    );
    // A real Prometheus scrapes it: up == 1 and the opened counter as made.
    let dir = temp_dir("prom", bin);
    let conf = dir.join("prometheus.yml");
    std::fs::write(
        &conf,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: socks4\n    static_configs:\n      - targets: [\"{metrics}\"]\n"
        ),
    )
    .unwrap();
    let prometheus = Process::new("prometheus")
        .arg(format!("--config.file={}", conf.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg("--web.listen-address=127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus (run .ci/setup to install it)");
    let prometheus = ChildGuard(prometheus);
    let web = wait_listening(prometheus.0.id(), "prometheus");
    let query = |q: &str| -> Option<String> {
        let s = TcpStream::connect_timeout(&web, Duration::from_millis(500)).ok()?;
        drop(s);
        let response = http_get(web, &format!("/api/v1/query?query={q}"));
        let body = response.split("\r\n\r\n").nth(1)?.to_owned();
        let v: serde_json::Value = serde_json::from_str(body.trim()).ok()?;
        v["data"]["result"][0]["value"][1]
            .as_str()
            .map(str::to_owned)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let up = query("up");
        let opened = query("socks4_connections_opened_total");
        if up.as_deref() == Some("1") && opened.as_deref() == Some(&MADE.to_string()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{bin}: Prometheus saw up={up:?} opened={opened:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn ctl(bin: &str, socket: &std::path::Path, words: &[&str]) -> (bool, String, String) {
    let (status, out, err) = run(
        Process::new(server_binary(bin))
            .arg("ctl")
            .arg("--socket")
            .arg(socket)
            .args(words),
        b"",
    );
    (
        status.success(),
        String::from_utf8_lossy(&out).into_owned(),
        err,
    )
}

fn the_control_socket_changes_the_lists(bin: &str) {
    let dir = temp_dir("ctl", bin);
    let socket = dir.join("control.sock");
    let server = Server::start(bin, &["--control-socket", socket.to_str().unwrap()]);
    // Only its owner may use it.
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&socket).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "{bin}: mode {mode:o}");
    let echo = echo(4);
    let try_it = || socks_request(server.addr, &connect_to(echo, b""), |_| {});
    assert!(granted(&try_it()), "{bin}");
    // Deny the test client's address: refused with 91.
    let (ok, out, err) = ctl(bin, &socket, &["deny", "add", "127.0.0.1"]);
    assert!(ok, "{bin}: {err}");
    assert!(out.contains("added 127.0.0.1/32"), "{bin}: {out}");
    assert_eq!(rejected_with(&try_it()), Some(ReplyCode::Rejected), "{bin}");
    let (ok, out, _) = ctl(bin, &socket, &["deny", "list"]);
    assert!(ok && out.contains("127.0.0.1/32"), "{bin}: {out}");
    let (ok, out, _) = ctl(bin, &socket, &["check", "127.0.0.1"]);
    assert!(
        ok && out.starts_with("denied: 127.0.0.1/32"),
        "{bin}: {out}"
    );
    // Exempt it: served again; delete both.
    assert!(ctl(bin, &socket, &["exempt", "add", "127.0.0.0/8"]).0);
    assert!(granted(&try_it()), "{bin}");
    assert!(ctl(bin, &socket, &["exempt", "del", "127.0.0.0/8"]).0);
    let (ok, _, err) = ctl(bin, &socket, &["deny", "del", "127.0.0.1"]);
    assert!(ok, "{bin}: {err}");
    assert!(granted(&try_it()), "{bin}");
    // Bad input: a clear error, a non-zero status, nothing changed.
    let (ok, _, err) = ctl(bin, &socket, &["deny", "add", "10.0.0.0/33"]);
    assert!(!ok && err.contains("not a netmask"), "{bin}: {err}");
    let (ok, _, err) = ctl(bin, &socket, &["deny", "del", "192.0.2.0/24"]);
    assert!(
        !ok && err.contains("not on the denial list"),
        "{bin}: {err}"
    );
    let (ok, _, err) = ctl(bin, &socket, &["frobnicate"]);
    assert!(!ok && err.contains("unknown command"), "{bin}: {err}");
    let (ok, out, _) = ctl(bin, &socket, &["deny", "list"]);
    assert!(ok && out.is_empty(), "{bin}: {out}");
    // Counters as JSON.
    let (ok, out, _) = ctl(bin, &socket, &["stats"]);
    let stats: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(ok && stats["replies"]["91"] == 1, "{bin}: {out}");
    // The changes were logged.
    server.wait_says("control: denial added");
    server.wait_says("control: denial deleted");
}

fn socket_activation_with_systemd_socket_activate(bin: &str) {
    // systemd-socket-activate wants a port number (it refuses 0): one on an
    // address of this test's own, one per adapter as they run in parallel
    // (the three binary names differ in length).
    let ip = std::net::Ipv4Addr::new(127, 0, 31, bin.len() as u8);
    let listen = format!("{ip}:{}", free_port_on(ip));
    let child = Process::new("systemd-socket-activate")
        .args(["-l", &listen])
        .arg(server_binary(bin))
        .args(["--log-format", "json"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("systemd-socket-activate (Debian package systemd; run .ci/setup)");
    let _child = ChildGuard(child);
    let proxy: SocketAddr = listen.parse().unwrap();
    // systemd-socket-activate listens at once and starts the server on the
    // first connection, passing it the socket.
    let deadline = Instant::now() + STEP;
    while TcpStream::connect_timeout(&proxy, Duration::from_millis(100)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{bin}: nothing listens on {listen}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let web = http(1, "through an inherited socket");
    let url = format!("http://127.0.0.1:{}/", web.port());
    let (status, out, err) = run(
        Process::new("curl").args(["-sS", "--max-time", "10", "--socks4", &listen, &url]),
        b"",
    );
    assert!(status.success(), "{bin}: curl: {err}");
    assert_eq!(String::from_utf8_lossy(&out), "through an inherited socket");
}

fn readiness_reload_and_stop_are_notified(bin: &str) {
    let dir = temp_dir("notify", bin);
    let path = dir.join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    notify.set_read_timeout(Some(STEP)).unwrap();
    let mut server = Server::start_env(
        bin,
        &["--listen", "127.0.0.1:0"],
        &[("NOTIFY_SOCKET", path.to_str().unwrap())],
    );
    let mut got = Vec::new();
    let next = || {
        let mut buf = [0u8; 512];
        let n = notify.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    got.push(next());
    server.signal("HUP");
    got.push(next());
    got.push(next());
    server.signal("TERM");
    got.push(next());
    assert!(got[0].contains("READY=1"), "{bin}: {got:?}");
    assert!(
        got[1].contains("RELOADING=1") && got[1].contains("MONOTONIC_USEC="),
        "{bin}: {got:?}"
    );
    assert!(got[2].contains("READY=1"), "{bin}: {got:?}");
    assert!(got[3].contains("STOPPING=1"), "{bin}: {got:?}");
    assert!(server.wait_exit(STEP).is_some_and(|s| s.success()), "{bin}");
}

fn privileges_are_dropped_after_binding(bin: &str) {
    let root = Process::new("id").arg("-u").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&root.stdout).trim(),
        "0",
        "this test runs as root (as CI does) to see the drop"
    );
    let server = Server::start(bin, &["--user", "nobody"]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    for line in status
        .lines()
        .filter(|l| l.starts_with("Uid:") || l.starts_with("Gid:"))
    {
        let ids: Vec<u32> = line
            .split_whitespace()
            .skip(1)
            .map(|v| v.parse().unwrap())
            .collect();
        assert!(ids.iter().all(|id| *id != 0), "{bin}: {line}");
    }
    let groups = status.lines().find(|l| l.starts_with("Groups:")).unwrap();
    assert!(
        !groups.split_whitespace().skip(1).any(|g| g == "0"),
        "{bin}: {groups}"
    );
    // And it still serves.
    let c = socks_request(server.addr, &connect_to(echo(1), b""), |_| {});
    assert!(granted(&c), "{bin}: {:?}", c.events);
    // A user that does not exist: the server refuses to start.
    let (status, _, err) = run(
        Process::new(server_binary(bin)).args([
            "--listen",
            "127.0.0.1:0",
            "--user",
            "no-such-user-here",
        ]),
        b"",
    );
    assert!(
        !status.success() && err.contains("no-such-user-here"),
        "{bin}: {err}"
    );
}

fn the_pid_file_is_written_and_removed(bin: &str) {
    let dir = temp_dir("pid", bin);
    let pid_file = dir.join("socks4d.pid");
    let mut server = Server::start(bin, &["--pid-file", pid_file.to_str().unwrap()]);
    let written = std::fs::read_to_string(&pid_file).unwrap();
    assert_eq!(written.trim(), server.pid().to_string(), "{bin}");
    server.signal("TERM");
    assert!(server.wait_exit(STEP).is_some_and(|s| s.success()), "{bin}");
    assert!(
        !pid_file.exists(),
        "{bin}: the pid file stays after a clean exit"
    );
}

fn a_rule_with_log_is_logged_under_quiet(bin: &str) {
    let dir = temp_dir("rulelog", bin);
    let conf = dir.join("socks4d.toml");
    let echo = echo(1);
    std::fs::write(
        &conf,
        format!(
            "[access]\nrules = \"\"\"\nblock from any to any port eq {} log\npass from 127.0.0.0/8 to any\n\"\"\"\n",
            echo.port()
        ),
    )
    .unwrap();
    // -q: warnings only. RUST_LOG is not set for this one.
    let mut cmd = Process::new(server_binary(bin));
    cmd.args(["-q", "--log-format", "json", "--config"])
        .arg(&conf)
        .stderr(Stdio::piped())
        .stdout(Stdio::null());
    // Port 0: under -q the listening line is not logged, so the bound port is
    // read from /proc (a port picked beforehand could be taken meanwhile).
    cmd.args(["--listen", "127.0.0.1:0"]);
    let mut child = cmd.spawn().unwrap();
    let proxy = wait_listening(child.id(), bin);
    let c = socks_request(proxy, &connect_to(echo, b"logged"), |_| {});
    // A graceful stop writes out the log queue before the process exits.
    let stopped = Process::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success(), "{bin}");
    let deadline = Instant::now() + STEP;
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        rejected_with(&c),
        Some(ReplyCode::Rejected),
        "{bin}: {:?}\n{log}",
        c.events
    );
    let line = log
        .lines()
        .find(|l| l.contains("rule decided"))
        .unwrap_or_else(|| panic!("{bin}: no rule line under -q:\n{log}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["level"], "WARN", "{bin}: {line}");
    assert_eq!(v["decision"], "block", "{bin}: {line}");
    assert_eq!(v["user"], "logged", "{bin}: {line}");
    assert!(
        v["rule"].as_str().unwrap().starts_with("rule 1"),
        "{bin}: {line}"
    );
}

fn the_closed_line_names_the_rule_when_the_connect_fails(bin: &str) {
    let server = Server::start(bin, &[]);
    let closed = ClosedPort::new();
    let closed_port = closed.port();
    let c = socks_request(
        server.addr,
        &connect_to(format!("127.0.0.1:{closed_port}").parse().unwrap(), b""),
        |_| {},
    );
    assert_eq!(rejected_with(&c), Some(ReplyCode::Rejected), "{bin}");
    let line = server.wait_for("the closed line", |l| says(l, "closed"));
    assert_eq!(field(&line, "outcome"), "connect_failed", "{bin}: {line}");
    assert!(field(&line, "rule").starts_with("rule 1"), "{bin}: {line}");
}
