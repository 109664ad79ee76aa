//! A name's answer in two parts, end to end (RFC 8305 §3), in the namespace
//! of [`dns_ns`](super::dns_ns) (`[::1]:8080` blackholed, the destination on
//! 127.0.0.1:8080), with a nameserver of the test's own (python3) that
//! answers one family at once and the other 400 ms later. When AAAA comes
//! first, connecting starts at once and the late IPv4 address joins the
//! race; when A comes first, connecting starts after the resolution delay,
//! without waiting for AAAA.

use super::dns_ns::{config, Ns};
use socks4_tests::e2e::*;
use std::time::{Duration, Instant};

socks4_tests::on_every_adapter!(the_other_family_joins_or_is_not_waited_for);

/// The nameserver's port.
const SLOW_DNS: u16 = 5354;

/// A UDP nameserver on 127.0.0.1:ARGV[1]: `late-a.test` has AAAA ::1 at once
/// and A 127.0.0.1 after 400 ms; `late-aaaa.test` the other way round;
/// anything else NXDOMAIN. Writes ARGV[2] once it listens.
const NAMESERVER: &str = r#"
import socket, struct, sys, threading, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
open(sys.argv[2], "w").close()
def answer(q, peer):
    i, labels = 12, []
    while q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode().lower()); i += q[i] + 1
    qtype = struct.unpack(">H", q[i + 1:i + 3])[0]
    name, question = ".".join(labels), q[12:i + 5]
    rdata, delay = None, 0
    if name in ("late-a.test", "late-aaaa.test") and qtype == 28:
        rdata = socket.inet_pton(socket.AF_INET6, "::1")
        delay = 0.4 if name == "late-aaaa.test" else 0
    elif name in ("late-a.test", "late-aaaa.test") and qtype == 1:
        rdata = socket.inet_pton(socket.AF_INET, "127.0.0.1")
        delay = 0.4 if name == "late-a.test" else 0
    time.sleep(delay)
    flags = 0x8180 if rdata or name.startswith("late-") else 0x8183
    out = q[:2] + struct.pack(">HHHHH", flags, 1, 1 if rdata else 0, 0, 0) + question
    if rdata:
        out += b"\xc0\x0c" + struct.pack(">HHIH", qtype, 1, 60, len(rdata)) + rdata
    s.sendto(out, peer)
for _ in range(1000):
    q, peer = s.recvfrom(512)
    threading.Thread(target=answer, args=(q, peer)).start()
"#;

fn the_other_family_joins_or_is_not_waited_for(bin: &str) {
    let mut ns = Ns::new(&format!("l{}", &bin[bin.len() - 3..]));
    let ready = ns.dir.join("nameserver-ready");
    let (port, flag) = (SLOW_DNS.to_string(), ready.display().to_string());
    ns.spawn(&["python3", "-c", NAMESERVER, &port, &flag]);
    let deadline = Instant::now() + STEP;
    while !ready.exists() {
        assert!(
            Instant::now() < deadline,
            "the test's nameserver did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let conf = config(&ns, "late", "", "", "");
    let text = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(&conf, text.replace("127.0.0.1:5353", "127.0.0.1:5354")).unwrap();
    let server = Server::start_in_netns(&ns.name, bin, &["--config", &conf]);

    // AAAA first: connecting starts with ::1 (blackholed); 127.0.0.1 comes
    // 400 ms later, joins the race and wins. Waiting for the whole answer
    // would have made no difference; taking only the first family would
    // have left the blackhole alone, for `connect_attempt` (10 s).
    let (said, took) = ns.socks4a(server.addr, "late-a.test");
    assert_eq!(said, "ok", "{bin}:\n{}", server.log());
    assert!(took < Duration::from_secs(3), "{bin}: took {took:?}");
    let line = server.wait_for("the closed line", closed);
    assert_eq!(field(&line, "reached"), "127.0.0.1:8080", "{bin}: {line}");
    assert_eq!(field(&line, "attempts"), "2", "{bin}: {line}");
    let late = server.wait_says("dns_late");
    assert!(field(&late, "addrs").contains("127.0.0.1"), "{bin}: {late}");

    // A first: after the resolution delay (50 ms) connecting starts with
    // 127.0.0.1 alone, which wins on the first attempt; had it waited for
    // AAAA (400 ms), ::1 would have been tried first.
    let (said, _) = ns.socks4a(server.addr, "late-aaaa.test");
    assert_eq!(said, "ok", "{bin}:\n{}", server.log());
    let lines = server.wait_for_n("two closed lines", 2, closed);
    assert_eq!(field(&lines[1], "reached"), "127.0.0.1:8080", "{bin}");
    assert_eq!(field(&lines[1], "attempts"), "1", "{bin}: {}", lines[1]);
    // The AAAA answer that came after the connect had won went nowhere.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.count(|l| says(l, "dns_late")), 1, "{bin}");
}
