//! Happy Eyeballs, parents that are watched and the own caching resolver,
//! for real: a network namespace the test makes (loopback only) where
//! nftables drops SYNs to one address (a blackhole), dnsmasq from Debian is
//! the nameserver on a loopback port with its query log, python3 serves the
//! destination, and the server runs inside it (`ip netns exec`). The
//! namespace and every process in it go when the test ends, failed or not.

use socks4_proto::{Command, Dest, Request};
use socks4_tests::e2e::*;
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

socks4_tests::on_every_adapter!(
    a_blackholed_ipv6_address_loses_to_ipv4_and_answers_are_cached,
    a_blackholed_parent_is_skipped_while_down,
);

/// The destination port, its blackholed twin and dnsmasq's port.
const WEB: u16 = 8080;
const DNS: u16 = 5353;

/// Runs a command; panics with its output when it fails.
fn sh(args: &[&str]) {
    let (status, out, err) = run(Process::new(args[0]).args(&args[1..]), b"");
    assert!(
        status.success(),
        "{args:?} failed: {err}{}",
        String::from_utf8_lossy(&out)
    );
}

/// A namespace with loopback up, TCP SYNs to `[::1]:8080` and to
/// `127.0.0.9` dropped, an echo server on 127.0.0.1:8080 and dnsmasq on
/// 127.0.0.1:5353. Removed (with its processes) on drop.
struct Ns {
    name: String,
    dir: std::path::PathBuf,
    children: Vec<std::process::Child>,
    dnsmasq: Option<std::process::Child>,
}

/// Serves each connection: reads a line, answers `ok` and closes.
const SERVE: &str = r#"
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(128)
s.settimeout(120)
def one(c):
    c.settimeout(10)
    try:
        c.recv(100); c.sendall(b"ok\n")
    finally:
        c.close()
for _ in range(500):
    c, _ = s.accept()
    threading.Thread(target=one, args=(c,)).start()
"#;

impl Ns {
    fn new(tag: &str) -> Ns {
        let name = format!("s4{tag}{}", std::process::id());
        let _ = Process::new("ip")
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        sh(&["ip", "netns", "add", &name]);
        let mut ns = Ns {
            dir: socks4_tests::scratch::fresh(&name),
            name,
            children: Vec::new(),
            dnsmasq: None,
        };
        sh(&["ip", "-n", &ns.name, "link", "set", "lo", "up"]);
        let rules = format!(
            "table inet s4he {{\n  chain out {{\n    type filter hook output priority 0; policy accept;\n    \
             ip6 daddr ::1 tcp dport {WEB} tcp flags syn drop\n    \
             ip daddr 127.0.0.9 tcp flags syn drop\n  }}\n}}\n"
        );
        let (status, out, err) = run(
            Process::new("ip").args(["netns", "exec", &ns.name, "nft", "-f", "-"]),
            rules.as_bytes(),
        );
        assert!(
            status.success(),
            "nftables (run .ci/setup): {err}{}",
            String::from_utf8_lossy(&out)
        );
        ns.spawn(&["python3", "-c", SERVE, "127.0.0.1", &WEB.to_string()]);
        ns.start_dnsmasq();
        ns
    }

    fn spawn(&mut self, args: &[&str]) {
        let child = Process::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ip netns exec");
        self.children.push(child);
    }

    fn log_path(&self) -> std::path::PathBuf {
        self.dir.join("dnsmasq.log")
    }

    /// dnsmasq answering `he.test` (AAAA ::1, A 127.0.0.1) and `c.test` (A
    /// 127.0.0.1 only), TTL 5 s, and, as
    /// the authority for `test` (so that its NXDOMAIN carries an SOA with a
    /// negative TTL), nothing else.
    fn start_dnsmasq(&mut self) {
        let log = self.log_path();
        let child = Process::new("ip")
            .args([
                "netns",
                "exec",
                &self.name,
                "dnsmasq",
                "--keep-in-foreground",
            ])
            .args([
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                "--user=root",
                "--pid-file=",
                &format!("--port={DNS}"),
                "--host-record=he.test,127.0.0.1,::1,5",
                "--host-record=c.test,127.0.0.1",
                "--host-record=ns.test,127.0.0.1",
                "--auth-server=ns.test,lo",
                "--auth-zone=test",
                "--auth-ttl=5",
                "--local-ttl=5",
                "--log-queries",
                &format!("--log-facility={}", log.display()),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq (Debian package dnsmasq; run .ci/setup)");
        self.dnsmasq = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("started")) {
            assert!(Instant::now() < deadline, "dnsmasq did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop_dnsmasq(&mut self) {
        if let Some(mut c) = self.dnsmasq.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// How many queries of `qtype` for `name` dnsmasq logged.
    fn queries(&self, qtype: &str, name: &str) -> usize {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        log.lines()
            .filter(|l| {
                // Questions to its authoritative zone are logged as auth[..].
                l.contains(&format!("query[{qtype}] {name} "))
                    || l.contains(&format!("auth[{qtype}] {name} "))
            })
            .count()
    }

    /// A SOCKS4a CONNECT to `host:WEB` through `proxy`, from inside the
    /// namespace: python3's answer (`ok`, or the reply code) and the time it
    /// took.
    fn socks4a(&self, proxy: std::net::SocketAddr, host: &str) -> (String, Duration) {
        let (said, took) = self.socks4a_n(proxy, host, 1);
        (said.into_iter().next().unwrap_or_default(), took)
    }

    /// `n` such requests one after another from one process: their answers.
    fn socks4a_n(
        &self,
        proxy: std::net::SocketAddr,
        host: &str,
        n: usize,
    ) -> (Vec<String>, Duration) {
        let req = Request {
            command: Command::Connect,
            dest: Dest::Domain(host, WEB),
            user_id: b"",
        }
        .to_vec();
        let script = r#"
import socket, sys, time
t0 = time.monotonic()
for _ in range(int(sys.argv[4])):
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
    c.sendall(bytes.fromhex(sys.argv[3]))
    r = b""
    while len(r) < 8:
        d = c.recv(8 - len(r))
        if not d: break
        r += d
    if len(r) == 8 and r[1] == 90:
        c.sendall(b"hi\n"); print(c.recv(100).decode().strip(), flush=True)
    else:
        print("reply", r[1] if len(r) > 1 else "none", flush=True)
    c.close()
print("elapsed", time.monotonic() - t0)
"#;
        let hex: String = req.iter().map(|b| format!("{b:02x}")).collect();
        let started = Instant::now();
        let (_, out, _) = run(
            Process::new("ip").args([
                "netns",
                "exec",
                &self.name,
                "timeout",
                "40",
                "python3",
                "-c",
                script,
                &proxy.ip().to_string(),
                &proxy.port().to_string(),
                &hex,
                &n.to_string(),
            ]),
            b"",
        );
        // The time python measured around the requests (its own start is
        // left out); the wall clock's when it said nothing.
        let mut took = started.elapsed();
        let said = String::from_utf8_lossy(&out)
            .lines()
            .filter(|l| match l.strip_prefix("elapsed ") {
                Some(secs) => {
                    took = secs.parse().map(Duration::from_secs_f64).unwrap_or(took);
                    false
                }
                None => true,
            })
            .map(str::to_owned)
            .collect();
        (said, took)
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        self.stop_dnsmasq();
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Process::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A config file: `top` before the sections, `resolver` in `[resolver]`,
/// `rest` sections after it, the policy last.
fn config(ns: &Ns, name: &str, top: &str, resolver: &str, rest: &str) -> String {
    let path = ns.dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "listen = [\"127.0.0.1:0\"]\n{top}\n[resolver]\n{resolver}\nnameservers = [\"127.0.0.1:{DNS}\"]\nhosts_file = \"{}\"\n{rest}\n[access]\nrules = \"\"\"\npass from 127.0.0.0/8 to any\n\"\"\"\n",
            ns.dir.join("no-hosts").display()
        ),
    )
    .unwrap();
    path.display().to_string()
}

fn a_blackholed_ipv6_address_loses_to_ipv4_and_answers_are_cached(bin: &str) {
    let mut ns = Ns::new(&format!("h{}", &bin[bin.len() - 3..]));
    let conf = config(&ns, "he", "", "", "");
    let server = Server::start_in_netns(&ns.name, bin, &["--config", &conf]);
    // AAAA (::1) is tried first and its SYN dropped; A wins after 250 ms.
    let (said, took) = ns.socks4a(server.addr, "he.test");
    assert_eq!(said, "ok", "{bin}:\n{}", server.log());
    assert!(took < Duration::from_secs(1), "{bin}: took {took:?}");
    let line = server.wait_for("the closed line", closed);
    assert_eq!(field(&line, "reached"), format!("127.0.0.1:{WEB}"), "{bin}");
    assert_eq!(field(&line, "attempts"), "2", "{bin}: {line}");
    // Cached within the TTL: 50 requests for a name, one question per type
    // (its AAAA is NODATA, cached for the SOA's negative TTL).
    let (said, _) = ns.socks4a_n(server.addr, "c.test", 50);
    assert_eq!(said, vec!["ok"; 50], "{bin}");
    assert_eq!(ns.queries("A", "c.test"), 1, "{bin}: one A question");
    assert_eq!(ns.queries("AAAA", "c.test"), 1, "{bin}: one AAAA question");
    // A name that does not exist: NXDOMAIN with an SOA, asked once.
    let (said, _) = ns.socks4a_n(server.addr, "nx.test", 3);
    assert_eq!(said, vec!["reply 91"; 3], "{bin}");
    assert_eq!(
        ns.queries("A", "nx.test"),
        1,
        "{bin}: the NXDOMAIN was cached"
    );
    // After the TTL (5 s), one more question.
    std::thread::sleep(Duration::from_millis(5200));
    assert_eq!(ns.socks4a(server.addr, "c.test").0, "ok", "{bin}");
    assert_eq!(
        ns.queries("A", "c.test"),
        2,
        "{bin}: asked again after the TTL"
    );
    // With dnsmasq gone, the cached name is served stale; an uncached one
    // fails with 91 within the resolve timeout.
    ns.stop_dnsmasq();
    std::thread::sleep(Duration::from_millis(5200));
    let (said, took) = ns.socks4a(server.addr, "c.test");
    assert_eq!(said, "ok", "{bin}: served stale\n{}", server.log());
    assert!(took < Duration::from_secs(3), "{bin}: {took:?}");
    server.wait_says("stale answer served: no nameserver answered in time");
    let (said, took) = ns.socks4a(server.addr, "other.test");
    assert_eq!(said, "reply 91", "{bin}");
    assert!(took < Duration::from_secs(11), "{bin}: {took:?}");
    // prefer_family = "ipv4": the IPv6 address is not tried first.
    let conf = config(&ns, "v4", "", "prefer_family = \"ipv4\"", "");
    ns.start_dnsmasq();
    let v4 = Server::start_in_netns(&ns.name, bin, &["--config", &conf]);
    assert_eq!(ns.socks4a(v4.addr, "he.test").0, "ok", "{bin}");
    let line = v4.wait_for("the closed line", closed);
    assert_eq!(field(&line, "attempts"), "1", "{bin}: {line}");
}

fn a_blackholed_parent_is_skipped_while_down(bin: &str) {
    let ns = Ns::new(&format!("p{}", &bin[bin.len() - 3..]));
    // The second parent: another of our servers, direct.
    let parent_conf = config(&ns, "parent", "", "", "");
    let parent = Server::start_in_netns(&ns.name, bin, &["--config", &parent_conf]);
    let ctl_path = ns.dir.join("ctl.sock");
    let conf = config(
        &ns,
        "child",
        &format!("control_socket = \"{}\"", ctl_path.display()),
        "",
        "[timeouts]\nconnect_attempt = \"2s\"\n[parents]\nmax_failures = 1\nmax_backoff = \"2s\"\n",
    );
    let text = std::fs::read_to_string(&conf).unwrap().replace(
        "pass from 127.0.0.0/8 to any\n",
        &format!(
            "pass from 127.0.0.0/8 to any\nroute to any via socks4a://127.0.0.9:1080, socks4a://{}\n",
            parent.addr
        ),
    );
    std::fs::write(&conf, text).unwrap();
    let server = Server::start_in_netns(&ns.name, bin, &["--config", &conf]);
    // The first parent is a blackhole: the second serves within the attempt
    // deadline and a second.
    let (said, took) = ns.socks4a(server.addr, "c.test");
    assert_eq!(said, "ok", "{bin}:\n{}", server.log());
    assert!(took < Duration::from_secs(3), "{bin}: {took:?}");
    // It is down now: the next request skips it at once.
    let (said, took) = ns.socks4a(server.addr, "c.test");
    assert_eq!(said, "ok", "{bin}");
    assert!(
        took < Duration::from_millis(1500),
        "{bin}: skipped, {took:?}"
    );
    let lines = server.wait_for_n("two closed lines", 2, closed);
    assert_eq!(field(&lines[1], "attempts"), "1", "{bin}: {}", lines[1]);
    let (status, out, err) = run(
        Process::new(server_binary(bin)).args([
            "ctl",
            "--socket",
            &ctl_path.display().to_string(),
            "parents",
        ]),
        b"",
    );
    let out = String::from_utf8_lossy(&out);
    assert!(status.success(), "{bin}: {err}");
    let down = out
        .lines()
        .find(|l| l.contains("127.0.0.9:1080"))
        .unwrap_or_else(|| panic!("{bin}: {out}"));
    assert!(down.contains("down"), "{bin}: {down}");
    assert!(down.contains("timed out"), "{bin}: {down}");
}
