//! Exits per route (issue 30), for real, in two network namespaces the test
//! makes and removes itself: ours, where the server runs, and the
//! destination's, joined by two veth pairs. The destination tells each
//! connection the address it came from (its `getpeername`). Checked: `source
//! ADDR` leaves from that address, `source ADDR,ADDR` takes them in turn,
//! `source PREFIX random` takes a different address inside the prefix for
//! each connection (IPv6, the prefix routed locally), `mark 0x10` is counted
//! by an nftables rule on `meta mark 0x10`, `interface NAME` leaves by the
//! named link (the destination sees that link's address), the connection
//! toward a parent leaves by the route's exit too, and `ctl check`
//! shows the exit. Nothing leaves these namespaces.

use socks4_tests::e2e::*;
use socks4_tests::netns::{sh, Netns, Veth};
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv6Addr};
use std::process::{Command as Process, Stdio};

socks4_tests::on_every_adapter!(each_route_leaves_by_its_exit);

/// Two namespaces, ours (`p`) and the destination's (`d`), two veth pairs
/// between them; removed on drop (their nftables tables with them), with
/// the processes started in them.
struct Net {
    _veths: [Veth; 2],
    p: Netns,
    d: Netns,
}

impl Net {
    fn ns(&self, role: char) -> String {
        match role {
            'p' => self.p.name(),
            _ => self.d.name(),
        }
        .to_owned()
    }

    /// Our end of link `n` (0 or 1).
    fn link(&self, n: u8) -> String {
        format!("{}{n}", self.p.name())
    }

    fn new(tag: String) -> Net {
        let [p, d] = ['p', 'd'].map(|role| Netns::new(format!("s4x{role}{tag}")));
        let (p0, p1) = (format!("{}0", p.name()), format!("{}1", p.name()));
        let (d0, d1) = (format!("{}0", d.name()), format!("{}1", d.name()));
        let veths = [
            Veth::new(&p0, Some(&p), &d0, Some(&d)),
            Veth::new(&p1, Some(&p), &d1, Some(&d)),
        ];
        // Link 0: three IPv4 addresses and one IPv6 address on our side.
        for a in ["10.78.1.1/24", "10.78.1.11/24", "10.78.1.12/24"] {
            p.ip(&["addr", "add", a, "dev", &p0]);
        }
        p.ip(&["-6", "addr", "add", "fd78:1::1/64", "dev", &p0, "nodad"]);
        d.ip(&["addr", "add", "10.78.1.2/24", "dev", &d0]);
        d.ip(&["-6", "addr", "add", "fd78:1::2/64", "dev", &d0, "nodad"]);
        // Link 1.
        p.ip(&["addr", "add", "10.78.2.1/24", "dev", &p1]);
        d.ip(&["addr", "add", "10.78.2.2/24", "dev", &d1]);
        let net = Net {
            _veths: veths,
            p,
            d,
        };
        net.routes();
        net
    }

    /// The routes, the reverse path filter and the nftables counter.
    fn routes(&self) {
        let (p, d) = (self.ns('p'), self.ns('d'));
        let (p0, p1) = (self.link(0), self.link(1));
        let d0 = format!("{d}0");
        // 10.78.9.9, the destination's, is reachable by both links; the
        // route by link 0 is preferred.
        self.d.ip(&["addr", "add", "10.78.9.9/32", "dev", "lo"]);
        self.p.ip(&[
            "route",
            "add",
            "10.78.9.9",
            "via",
            "10.78.1.2",
            "dev",
            &p0,
            "metric",
            "10",
        ]);
        self.p.ip(&[
            "route",
            "add",
            "10.78.9.9",
            "via",
            "10.78.2.2",
            "dev",
            &p1,
            "metric",
            "20",
        ]);
        // The random sources' prefix: local to us (the setup docs/policy.md
        // shows), routed to us by the destination.
        self.p
            .ip(&["-6", "route", "add", "local", "fd78:99::/64", "dev", "lo"]);
        self.d.ip(&[
            "-6",
            "route",
            "add",
            "fd78:99::/64",
            "via",
            "fd78:1::1",
            "dev",
            &d0,
        ]);
        // Answers by link 1 to a destination routed by link 0: no strict
        // reverse path filter.
        for key in ["all", "default", p1.as_str()] {
            sh(&[
                "ip",
                "netns",
                "exec",
                &p,
                "sysctl",
                "-qw",
                &format!("net.ipv4.conf.{key}.rp_filter=0"),
            ]);
        }
        self.counter();
    }

    /// The nftables counter of packets with mark 0x10 to port 9001.
    fn counter(&self) {
        let rules = "table inet s4x {\n  chain out {\n    type filter hook output priority 0; policy accept;\n    \
                     meta mark 0x10 ip daddr 10.78.1.2 tcp dport 9001 counter\n  }\n}\n";
        self.p.nft(rules, "the mark counter");
    }

    /// Starts `python3 -c SCRIPT ARGS` in namespace `role`, kept until drop.
    fn spawn(&mut self, role: char, script: &str, args: &[&str]) -> std::process::ChildStdout {
        let ns = match role {
            'p' => &mut self.p,
            _ => &mut self.d,
        };
        let mut child = ns
            .exec("python3")
            .args(["-c", script])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3");
        let out = child.stdout.take().unwrap();
        ns.keep(child);
        out
    }

    /// The packets the `meta mark 0x10` rule counted.
    fn marked(&self) -> u64 {
        let (status, out, err) = run(
            Process::new("ip").args([
                "netns",
                "exec",
                &self.ns('p'),
                "nft",
                "list",
                "chain",
                "inet",
                "s4x",
                "out",
            ]),
            b"",
        );
        assert!(status.success(), "{err}");
        let text = String::from_utf8_lossy(&out);
        let after = text
            .split("counter packets ")
            .nth(1)
            .unwrap_or_else(|| panic!("no counter in {text}"));
        after
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count in {text}"))
    }
}

/// The destination: on each port given (IPv4 and IPv6), answers each
/// connection with the address it came from and the address it reached,
/// then closes; on port 9003 it is a SOCKS4 parent that grants first.
/// Stops by itself.
const SERVE: &str = r#"
import socket, sys, threading, time
def serve(s, parent):
    for _ in range(64):
        try:
            c, peer = s.accept()
        except OSError:
            return
        if parent:
            # A SOCKS4 parent: reads the request (to its user id's NUL),
            # grants it.
            c.settimeout(10)
            req = b""
            while len(req) < 9 or not req[8:].endswith(b"\0"):
                d = c.recv(512)
                if not d:
                    break
                req += d
            c.sendall(bytes([0, 90, 0, 0, 0, 0, 0, 0]))
        local = c.getsockname()
        plain = lambda a: a[7:] if a.startswith("::ffff:") else a
        c.sendall(("%s %s\n" % (plain(peer[0]), plain(local[0]))).encode())
        c.close()
for port in sys.argv[1:]:
    s = socket.socket(socket.AF_INET6)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", int(port)))
    s.listen(64)
    s.settimeout(120)
    threading.Thread(target=serve, args=(s, port == "9003"), daemon=True).start()
print("ready", flush=True)
time.sleep(120)
"#;

/// Waits until the destination answers on each address, directly.
const PROBE: &str = r#"
import socket, sys, time
for host in ["10.78.1.2", "10.78.9.9", "fd78:1::2"]:
    for i in range(40):
        try:
            socket.create_connection((host, 9000), timeout=2).close()
            break
        except OSError as e:
            if i == 39:
                sys.exit("%s: %s" % (host, e))
            time.sleep(0.5)
"#;

/// The client, in our namespace: `COUNT` CONNECTs to HOST:PORT through the
/// proxy at 127.0.0.1:1080 (SOCKS4 for an IPv4 address, SOCKS4a for a
/// name); prints each answer, or `refused CODE`, or `failed ERROR`.
const ASK: &str = r#"
import socket, sys, struct
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for _ in range(count):
    try:
        c = socket.create_connection(("127.0.0.1", 1080), timeout=10)
        try:
            dst, name = socket.inet_aton(host), b""
        except OSError:
            dst, name = bytes([0, 0, 0, 1]), host.encode() + b"\0"
        c.sendall(struct.pack(">BBH", 4, 1, port) + dst + b"\0" + name)
        reply = b""
        while len(reply) < 8:
            d = c.recv(8 - len(reply))
            if not d:
                break
            reply += d
        if len(reply) < 8 or reply[1] != 90:
            print("refused", reply[1] if len(reply) > 1 else "eof", flush=True)
            continue
        buf = b""
        while True:
            d = c.recv(4096)
            if not d:
                break
            buf += d
        print(buf.decode().strip(), flush=True)
    except Exception as e:
        print("failed", type(e).__name__, flush=True)
"#;

/// The addresses the destination saw `count` connections to HOST:PORT come
/// from.
fn sources(net: &Net, host: &str, port: u16, count: usize, server: &Server) -> Vec<String> {
    let (status, out, err) = run(
        Process::new("ip").args([
            "netns",
            "exec",
            &net.ns('p'),
            "python3",
            "-c",
            ASK,
            host,
            &port.to_string(),
            &count.to_string(),
        ]),
        b"",
    );
    assert!(status.success(), "{err}");
    let text = String::from_utf8_lossy(&out).into_owned();
    let seen: Vec<String> = text
        .lines()
        .map(|l| l.split(' ').next().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(seen.len(), count, "{host}:{port}: {text}\n{}", server.log());
    for l in text.lines() {
        assert!(
            l.split(' ').count() == 2 && l.split(' ').all(|a| a.parse::<IpAddr>().is_ok()),
            "{host}:{port}: {l}\n{}",
            server.log()
        );
    }
    seen
}

fn each_route_leaves_by_its_exit(bin: &str) {
    let index = ["socks4d-tokio", "socks4d-smol", "socks4d-async-std"]
        .iter()
        .position(|b| *b == bin)
        .unwrap_or(9);
    let mut net = Net::new(format!("{}{index}", std::process::id()));
    let out = net.spawn('d', SERVE, &["9000", "9001", "9002", "9003"]);
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "{bin}: the destination did not start");
    // Both links and both families carry traffic before the server starts
    // (bounded: 40 tries half a second apart).
    let (status, out, err) = run(
        Process::new("ip").args(["netns", "exec", &net.ns('p'), "python3", "-c", PROBE]),
        b"",
    );
    assert!(
        status.success(),
        "{bin}: the destination cannot be reached directly: {err}{}",
        String::from_utf8_lossy(&out)
    );

    let dir = socks4_tests::scratch::dir(&format!("exits-{bin}"));
    let hosts = dir.join("hosts");
    std::fs::write(&hosts, "fd78:1::2 six.test\n").unwrap();
    let conf = dir.join("socks4d.toml");
    let p1 = net.link(1);
    std::fs::write(
        &conf,
        format!(
            "[access]\nrules = \"\"\"\npass from 127.0.0.1 to any\n\
             route to 10.78.1.2 port eq 9001 direct mark 0x10\n\
             route to 10.78.1.2 port eq 9002 direct source 10.78.1.11,10.78.1.12\n\
             route to 10.78.1.2 direct source 10.78.1.11\n\
             route to fd78:1::/64 direct source fd78:99::/64 random\n\
             route to 10.78.9.9 port eq 9000 direct interface {p1}\n\
             route to 192.0.2.99 via socks4://10.78.1.2:9003 source 10.78.1.12\n\
             \"\"\"\n"
        ),
    )
    .unwrap();
    let control = dir.join("control.sock");
    let server = Server::start_in_netns(
        &net.ns('p'),
        bin,
        &[
            "--listen",
            "127.0.0.1:1080",
            "--config",
            conf.to_str().unwrap(),
            "--hosts-file",
            hosts.to_str().unwrap(),
            "--control-socket",
            control.to_str().unwrap(),
            "--allow-root",
        ],
    );

    sources_are_chosen(bin, &net, &server);

    // mark 0x10: counted by the nftables rule; not before.
    assert_eq!(net.marked(), 0, "{bin}: marked packets before");
    let seen = sources(&net, "10.78.1.2", 9001, 2, &server);
    assert_eq!(seen, ["10.78.1.1"; 2], "{bin}: mark: {seen:?}");
    assert!(net.marked() >= 2, "{bin}: marked packets: {}", net.marked());

    // interface: by link 1 (its address seen), where the route table would
    // take link 0 (as it does for port 9001, no route matching).
    let seen = sources(&net, "10.78.9.9", 9000, 2, &server);
    assert_eq!(seen, ["10.78.2.1"; 2], "{bin}: interface\n{}", server.log());
    let seen = sources(&net, "10.78.9.9", 9001, 1, &server);
    assert_eq!(seen, ["10.78.1.1"], "{bin}: without interface");

    // Toward a parent: the route's source too (the parent answers with the
    // address the proxy's connection came from).
    let seen = sources(&net, "192.0.2.99", 80, 2, &server);
    assert_eq!(
        seen,
        ["10.78.1.12"; 2],
        "{bin}: via a parent\n{}",
        server.log()
    );

    ctl_check_shows_the_exit(bin, &control, &p1);
}

/// `ctl check` shows the exit a request would take.
fn ctl_check_shows_the_exit(bin: &str, control: &std::path::Path, p1: &str) {
    let ctl = |words: &[&str]| {
        let (status, out, err) = run(
            Process::new(server_binary(bin))
                .arg("ctl")
                .arg("--socket")
                .arg(control)
                .args(words),
            b"",
        );
        assert!(status.success(), "{bin}: ctl {words:?}: {err}");
        String::from_utf8_lossy(&out).into_owned()
    };
    let out = ctl(&["check", "127.0.0.1", "to", "10.78.1.2:9002"]);
    assert!(
        out.contains("exit: source 10.78.1.11,10.78.1.12 (one per connection, in turn)"),
        "{bin}: {out}"
    );
    let out = ctl(&["check", "127.0.0.1", "to", "10.78.9.9:9000", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["exit"]["interface"], p1, "{bin}: {out}");
    assert_eq!(v["exit"]["source_kind"], "system", "{bin}: {out}");
    let out = ctl(&["check", "127.0.0.1", "to", "10.78.1.2:9001", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["exit"]["mark"], 16, "{bin}: {out}");
}

/// `source ADDR`, `source ADDR,ADDR` and `source PREFIX random`.
fn sources_are_chosen(bin: &str, net: &Net, server: &Server) {
    // source ADDR: every connection leaves from it (the link's first
    // address otherwise).
    let seen = sources(net, "10.78.1.2", 9000, 3, server);
    assert_eq!(seen, ["10.78.1.11"; 3], "{bin}: source\n{}", server.log());

    // source ADDR,ADDR: in turn, one per connection.
    let seen = sources(net, "10.78.1.2", 9002, 4, server);
    assert!(
        seen.iter().all(|a| a == "10.78.1.11" || a == "10.78.1.12")
            && seen.windows(2).all(|w| w[0] != w[1]),
        "{bin}: source in turn: {seen:?}"
    );

    // source PREFIX random: each connection a different address, all in
    // the prefix.
    let seen = sources(net, "six.test", 9000, 4, server);
    let prefix: Ipv6Addr = "fd78:99::".parse().unwrap();
    for a in &seen {
        let a: Ipv6Addr = a.parse().unwrap_or_else(|_| panic!("{bin}: {a}"));
        assert_eq!(
            a.segments()[..4],
            prefix.segments()[..4],
            "{bin}: {a} is outside fd78:99::/64"
        );
    }
    let mut distinct = seen.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), seen.len(), "{bin}: random sources {seen:?}");
}
