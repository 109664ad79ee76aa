//! Operations with real programs or root, on every adapter: Prometheus
//! scraping the metrics (promtool checking them first), socket activation with
//! `systemd-socket-activate` (curl through it; and an inherited socket beyond
//! loopback refused as a bound one would be), the privilege drop after
//! binding (as root), and, as root, `--check` and the start refusing a
//! public listener without a user.

use socks4_tests::e2e::*;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

socks4_tests::on_every_adapter!(
    prometheus_scrapes_the_metrics,
    socket_activation_with_systemd_socket_activate,
    socket_activated_listeners_get_the_open_proxy_and_root_checks,
    privileges_are_dropped_after_binding,
    as_root_a_public_listener_without_a_user_is_refused_by_check_and_start,
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

/// A network namespace of a test's own with its loopback up, removed when
/// dropped.
struct Netns(String);

impl Netns {
    fn new(name: &str) -> Netns {
        let ip = |args: &[&str]| {
            let ok = Process::new("ip").args(args).status().unwrap().success();
            assert!(ok, "ip {args:?}");
        };
        let _ = Process::new("ip")
            .args(["netns", "del", name])
            .stderr(Stdio::null())
            .status();
        ip(&["netns", "add", name]);
        let netns = Netns(name.to_owned());
        ip(&["netns", "exec", name, "ip", "link", "set", "lo", "up"]);
        netns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Process::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// A socket systemd passes that listens beyond loopback gets the checks a
/// bound one gets: refused when no rule passes a client from outside
/// loopback, and refused as root without `--user` (this test runs as
/// root, as CI does). In a network namespace of the test's own, where
/// `0.0.0.0` may be bound, removed at the end.
fn socket_activated_listeners_get_the_open_proxy_and_root_checks(bin: &str) {
    let root = Process::new("id").arg("-u").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&root.stdout).trim(),
        "0",
        "runs as root"
    );
    let netns = Netns::new(&format!("socks4-sa-{}-{}", std::process::id(), bin.len()));
    let ns = netns.0.clone();
    let cases: [(&[&str], &str); 2] = [
        (&[], "refusing to listen on 0.0.0.0:1080"),
        (&["--allow", "10.0.0.0/8"], "refusing to run as root"),
    ];
    for (extra, refusal) in cases {
        let mut child = Process::new("ip")
            .args([
                "netns",
                "exec",
                &ns,
                "systemd-socket-activate",
                "-l",
                "0.0.0.0:1080",
            ])
            .arg(server_binary(bin))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("systemd-socket-activate (Debian package systemd; run .ci/setup)");
        // The first connection starts the server on the inherited socket.
        let deadline = Instant::now() + STEP;
        loop {
            let knock = Process::new("ip")
                .args(["netns", "exec", &ns, "bash", "-c"])
                .arg("exec 3<>/dev/tcp/127.0.0.1/1080")
                .stderr(Stdio::null())
                .status()
                .unwrap();
            if knock.success() {
                break;
            }
            assert!(Instant::now() < deadline, "{bin}: nothing listens in {ns}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let deadline = Instant::now() + STEP;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{bin}: still serving an inherited 0.0.0.0:1080 ({extra:?})");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert!(!status.success(), "{bin}: {err}");
        assert!(err.contains(refusal), "{bin}: {extra:?}: {err}");
    }
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

fn as_root_a_public_listener_without_a_user_is_refused_by_check_and_start(bin: &str) {
    assert!(
        running_as_root(),
        "this test runs as root (as CI does): root is what is refused"
    );
    let public = ["--listen", "0.0.0.0:0", "--allow", "192.168.1.0/24"];
    for extra in [&["--check"][..], &[][..]] {
        let args = [&public[..], extra].concat();
        let (status, out, err) = run_binary(bin, &args);
        assert_eq!(status.code(), Some(2), "{bin} {extra:?}: {out}\n{err}");
        assert!(
            err.contains("refusing to run as root with a listener beyond loopback"),
            "{bin} {extra:?}: {err}"
        );
    }
    // With a user to switch to, or --allow-root, the same check passes.
    for extra in [&["--user", "nobody"][..], &["--allow-root"][..]] {
        let args = [&public[..], extra, &["--check"][..]].concat();
        let (status, out, err) = run_binary(bin, &args);
        assert!(status.success(), "{bin} {extra:?}: {out}\n{err}");
    }
}
