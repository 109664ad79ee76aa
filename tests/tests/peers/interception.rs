//! Transparent (TPROXY) and redirected (REDIRECT) listeners for real, in
//! network namespaces the test makes and removes itself: a client namespace, a
//! router namespace where the server runs (with nftables rules sending the
//! client's TCP traffic to it) and a destination namespace, joined by veth
//! pairs. The router does not forward packets, so the destination exists only
//! behind the proxy. Transfers are checked with SHA-256; a `block` rule on a
//! destination refuses it. Nothing leaves these namespaces.

use socks4_tests::e2e::*;
use socks4_tests::netns::{Netns, Veth};
use std::process::{Command as Process, Stdio};
use std::time::Duration;

socks4_tests::on_every_adapter!(tproxy_and_redirect_reach_a_destination_behind_the_proxy);

/// Three namespaces (client `c`, router `r`, destination `d`) and two veth
/// pairs; all removed on drop, with the processes started in them.
pub(crate) struct Net {
    _veths: [Veth; 2],
    c: Netns,
    r: Netns,
    d: Netns,
}

impl Net {
    /// Namespace `role` (`c`, `r` or `d`).
    fn netns(&self, role: char) -> &Netns {
        match role {
            'c' => &self.c,
            'r' => &self.r,
            _ => &self.d,
        }
    }

    pub(crate) fn ns(&self, role: char) -> String {
        self.netns(role).name().to_owned()
    }

    pub(crate) fn new(tag: String) -> Net {
        let [c, r, d] = ['c', 'r', 'd'].map(|role| Netns::new(format!("s4{role}{tag}")));
        let (c0, r0, r1, d0) = (
            format!("{}0", c.name()),
            format!("{}0", r.name()),
            format!("{}1", r.name()),
            format!("{}0", d.name()),
        );
        let veths = [
            Veth::new(&c0, Some(&c), &r0, Some(&r)),
            Veth::new(&r1, Some(&r), &d0, Some(&d)),
        ];
        c.ip(&["addr", "add", "10.77.1.2/24", "dev", &c0]);
        r.ip(&["addr", "add", "10.77.1.1/24", "dev", &r0]);
        r.ip(&["addr", "add", "10.77.2.1/24", "dev", &r1]);
        d.ip(&["addr", "add", "10.77.2.2/24", "dev", &d0]);
        c.ip(&["route", "add", "default", "via", "10.77.1.1"]);
        d.ip(&["route", "add", "default", "via", "10.77.2.1"]);
        // In the router: TCP to ports 8080 and 8082 goes to the transparent
        // listener (TPROXY), to 8081 to the redirect listener (REDIRECT).
        let rules = format!(
            "table inet s4 {{\n  chain pre {{\n    type filter hook prerouting priority mangle; policy accept;\n    \
             iifname \"{r0}\" tcp dport {{ 8080, 8082 }} tproxy ip to :15080 meta mark set 1 accept\n  }}\n}}\n\
             table ip s4nat {{\n  chain pre {{\n    type nat hook prerouting priority dstnat; policy accept;\n    \
             iifname \"{r0}\" tcp dport 8081 redirect to :15081\n  }}\n}}\n"
        );
        r.nft(
            &rules,
            "TPROXY and REDIRECT (does this kernel have nf_tproxy and nf_nat?)",
        );
        r.ip(&["rule", "add", "fwmark", "1", "lookup", "100"]);
        r.ip(&[
            "route",
            "add",
            "local",
            "0.0.0.0/0",
            "dev",
            "lo",
            "table",
            "100",
        ]);
        Net {
            _veths: veths,
            c,
            r,
            d,
        }
    }

    /// Starts `python3 -c SCRIPT ARGS` in namespace `role`, kept until drop.
    pub(crate) fn spawn(
        &mut self,
        role: char,
        script: &str,
        args: &[&str],
    ) -> std::process::ChildStdout {
        let ns = match role {
            'c' => &mut self.c,
            'r' => &mut self.r,
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
}

/// The destination: sends `size` patterned bytes to each connection (after
/// reading what the client sent first), printing their SHA-256 first.
const SERVE: &str = r#"
import socket, sys, hashlib
host, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, port)); s.listen()
data = bytes((i * 7) % 251 for i in range(size))
print(hashlib.sha256(data).hexdigest(), flush=True)
s.settimeout(60)
for _ in range(8):
    c, _ = s.accept()
    c.settimeout(10)
    c.recv(100)
    c.sendall(data)
    c.close()
"#;

/// The client: connects, says hello, reads to the end; prints the length and
/// SHA-256, or `failed ERROR`.
const FETCH: &str = r#"
import socket, sys, hashlib
try:
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
    c.sendall(b"hello\n")
    buf = b""
    while True:
        d = c.recv(65536)
        if not d:
            break
        buf += d
    print(len(buf), hashlib.sha256(buf).hexdigest())
except Exception as e:
    print("failed", type(e).__name__)
"#;

fn fetch(net: &Net, port: u16, timeout: &str) -> String {
    let (status, out, err) = run(
        Process::new("ip").args([
            "netns",
            "exec",
            &net.ns('c'),
            "python3",
            "-c",
            FETCH,
            "10.77.2.2",
            &port.to_string(),
            timeout,
        ]),
        b"",
    );
    assert!(status.success(), "{err}");
    String::from_utf8_lossy(&out).trim().to_owned()
}

fn tproxy_and_redirect_reach_a_destination_behind_the_proxy(bin: &str) {
    let index = ["socks4d-tokio", "socks4d-smol", "socks4d-async-std"]
        .iter()
        .position(|b| *b == bin)
        .unwrap_or(9);
    let mut net = Net::new(format!("{}{index}", std::process::id() % 10_000));
    const SIZE: usize = 1_000_000;
    let mut sums = Vec::new();
    for port in ["8080", "8081", "8082"] {
        let out = net.spawn('d', SERVE, &["10.77.2.2", port, &SIZE.to_string()]);
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line).unwrap();
        sums.push(line.trim().to_owned());
    }
    // Without the proxy the destination cannot be reached: the router does
    // not forward.
    assert!(
        fetch(&net, 8080, "1").starts_with("failed"),
        "{bin}: reachable without the proxy"
    );
    let dir = socks4_tests::scratch::dir(&format!("intercept-{bin}"));
    let conf = dir.join("socks4d.toml");
    std::fs::write(
        &conf,
        "[access]\nrules = \"\"\"\nblock from any to 10.77.2.2 port eq 8082\npass from 10.77.1.0/24 to any\npass from 127.0.0.0/8 to any\n\"\"\"\n",
    )
    .unwrap();
    let server = Server::start_in_netns(
        &net.ns('r'),
        bin,
        &[
            "--listen",
            "127.0.0.1:1080",
            "--transparent",
            "0.0.0.0:15080",
            "--redirect",
            "0.0.0.0:15081",
            "--config",
            conf.to_str().unwrap(),
            "--allow-root",
        ],
    );
    let expected = |i: usize| format!("{SIZE} {}", sums[i]);
    assert_eq!(
        fetch(&net, 8080, "10"),
        expected(0),
        "{bin}: TPROXY\n{}",
        server.log()
    );
    assert_eq!(
        fetch(&net, 8081, "10"),
        expected(1),
        "{bin}: REDIRECT\n{}",
        server.log()
    ); // A blocked destination: refused (closed, nothing relayed; the client's
       // unread hello may turn the close into a reset).
    let blocked = fetch(&net, 8082, "10");
    let empty = "0 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    assert!(
        blocked == empty || blocked == "failed ConnectionResetError",
        "{bin}: {blocked}"
    );
    let lines = server.wait_for_n("three closed lines", 3, |l| says(l, "closed"));
    let outcomes: Vec<String> = lines.iter().map(|l| field(l, "outcome")).collect();
    assert_eq!(
        outcomes.iter().filter(|o| *o == "done").count(),
        2,
        "{bin}: {outcomes:?}"
    );
    assert!(
        outcomes.contains(&"denied".to_owned()),
        "{bin}: {outcomes:?}"
    );
    assert!(
        lines.iter().any(|l| field(l, "dest") == "10.77.2.2:8081"),
        "{bin}: the redirected connection's original destination\n{}",
        server.log()
    );
    std::thread::sleep(Duration::from_millis(50));
}
