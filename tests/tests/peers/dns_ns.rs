//! A network namespace for the outbound tests (`eyeballs`, `outbound_ops`):
//! loopback only, nftables dropping SYNs to `[::1]:8080` and to `127.0.0.9`
//! (blackholes), python3 serving the destination on 127.0.0.1:8080, and
//! dnsmasq from Debian as the nameserver on 127.0.0.1:5353 with its query
//! log; servers run inside it (`ip netns exec`). The namespace and every
//! process in it go when the value is dropped, failed test or not.

use socks4_proto::{Command, Dest, Request};
use socks4_tests::e2e::*;
use socks4_tests::netns::Netns;
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

/// The destination port, its blackholed twin and dnsmasq's port.
pub(crate) const WEB: u16 = 8080;
pub(crate) const DNS: u16 = 5353;

/// A namespace with loopback up, TCP SYNs to `[::1]:8080` and to
/// `127.0.0.9` dropped, an echo server on 127.0.0.1:8080 and dnsmasq on
/// 127.0.0.1:5353. Removed (with its processes) on drop.
pub(crate) struct Ns {
    /// The namespace's name (unique per test process and tag).
    pub(crate) name: String,
    /// A scratch folder for its config files and dnsmasq's log.
    pub(crate) dir: std::path::PathBuf,
    /// The namespace, removed on drop with the processes kept in it.
    netns: Netns,
    dnsmasq: Option<std::process::Child>,
    /// The TTL dnsmasq gives its answers, in seconds.
    ttl: u32,
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
    /// Makes the namespace `s4TAGPID` and starts what runs in it, with
    /// answers that live 5 s (tests that wait for expiry rely on it).
    pub(crate) fn new(tag: &str) -> Ns {
        Ns::with_ttl(tag, 5)
    }

    /// Like [`Ns::new`], dnsmasq's answers living `ttl` seconds (a test that
    /// reads the cache on a loaded machine wants them not to expire midway).
    pub(crate) fn with_ttl(tag: &str, ttl: u32) -> Ns {
        let netns = Netns::new(format!("s4{tag}{}", std::process::id()));
        let name = netns.name().to_owned();
        let mut ns = Ns {
            dir: socks4_tests::scratch::fresh(&name),
            name,
            netns,
            dnsmasq: None,
            ttl,
        };
        let rules = format!(
            "table inet s4he {{\n  chain out {{\n    type filter hook output priority 0; policy accept;\n    \
             ip6 daddr ::1 tcp dport {WEB} tcp flags syn drop\n    \
             ip daddr 127.0.0.9 tcp flags syn drop\n  }}\n}}\n"
        );
        ns.netns.nft(&rules, "the blackholes");
        ns.spawn(&["python3", "-c", SERVE, "127.0.0.1", &WEB.to_string()]);
        ns.start_dnsmasq();
        ns
    }

    /// Runs `args` inside the namespace until it is removed.
    pub(crate) fn spawn(&mut self, args: &[&str]) {
        let child = Process::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ip netns exec");
        self.netns.keep(child);
    }

    fn log_path(&self) -> std::path::PathBuf {
        self.dir.join("dnsmasq.log")
    }

    /// dnsmasq answering `he.test` (AAAA ::1, A 127.0.0.1) and `c.test` (A
    /// 127.0.0.1 only), with the namespace's TTL, and, as
    /// the authority for `test` (so that its NXDOMAIN carries an SOA with a
    /// negative TTL), nothing else.
    pub(crate) fn start_dnsmasq(&mut self) {
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
                &format!("--host-record=he.test,127.0.0.1,::1,{}", self.ttl),
                "--host-record=c.test,127.0.0.1",
                "--host-record=ns.test,127.0.0.1",
                "--auth-server=ns.test,lo",
                "--auth-zone=test",
                &format!("--auth-ttl={}", self.ttl),
                &format!("--local-ttl={}", self.ttl),
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

    /// Stops dnsmasq (by PID): no nameserver answers any more.
    pub(crate) fn stop_dnsmasq(&mut self) {
        if let Some(mut c) = self.dnsmasq.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// How many queries of `qtype` for `name` dnsmasq logged.
    pub(crate) fn queries(&self, qtype: &str, name: &str) -> usize {
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
    pub(crate) fn socks4a(&self, proxy: std::net::SocketAddr, host: &str) -> (String, Duration) {
        let (said, took) = self.socks4a_n(proxy, host, 1);
        (said.into_iter().next().unwrap_or_default(), took)
    }

    /// `n` such requests one after another from one process: their answers.
    pub(crate) fn socks4a_n(
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

impl Ns {
    /// `GET url` with curl from inside the namespace: the body.
    pub(crate) fn get(&self, url: &str) -> String {
        let (status, out, err) = run(
            Process::new("ip").args([
                "netns",
                "exec",
                &self.name,
                "curl",
                "-sS",
                "--max-time",
                "10",
                url,
            ]),
            b"",
        );
        assert!(status.success(), "curl {url}: {err}");
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// `bin ctl --socket SOCKET ARGS...`: its output; panics when it fails.
pub(crate) fn ctl(bin: &str, socket: &std::path::Path, args: &[&str]) -> String {
    let (status, out, err) = run(
        Process::new(server_binary(bin))
            .args(["ctl", "--socket", &socket.display().to_string()])
            .args(args),
        b"",
    );
    assert!(status.success(), "{bin} ctl {args:?}: {err}");
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of the sample `name{labels}` (labels as Prometheus writes them,
/// e.g. `result="hit"`) in a metrics page; `None` when absent.
pub(crate) fn sample(page: &str, name: &str, labels: &str) -> Option<u64> {
    let prefix = format!("{name}{{{labels}}} ");
    page.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

impl Drop for Ns {
    fn drop(&mut self) {
        // Then the namespace goes, with the processes kept in it.
        self.stop_dnsmasq();
    }
}

/// A config file: `top` before the sections, `resolver` in `[resolver]`,
/// `rest` sections after it, the policy last.
pub(crate) fn config(ns: &Ns, name: &str, top: &str, resolver: &str, rest: &str) -> String {
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
