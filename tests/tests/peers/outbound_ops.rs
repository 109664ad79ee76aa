//! The resolver and the connect attempts as the operator sees them, in the
//! namespace of [`dns_ns`](super::dns_ns) (dnsmasq as the nameserver with its
//! query log, `[::1]:8080` blackholed): the metrics
//! `socks4_resolver_cache_total{result}` and
//! `socks4_connect_attempts_total{family,result}`, `ctl resolve NAME` (what
//! the cache holds, with the TTL left, without asking dnsmasq) and `ctl
//! cache flush [NAME]` (after which dnsmasq is asked again).

use super::dns_ns::{config, ctl, sample, Ns};
use socks4_tests::e2e::*;

socks4_tests::on_every_adapter!(the_resolver_and_the_attempts_seen_from_outside);

/// How long dnsmasq's answers live, in seconds.
const TTL: u32 = 60;

/// The TTL of a `ctl resolve` line (`... ttl=Ns`).
fn ttl(line: &str) -> u64 {
    let secs = line.rsplit("ttl=").next().unwrap_or("");
    secs.trim_end_matches('s').parse().unwrap_or(u64::MAX)
}

fn the_resolver_and_the_attempts_seen_from_outside(bin: &str) {
    // Answers live 60 s: on a loaded machine the four requests and the
    // reads below can take longer than the usual 5 s, and an answer that
    // expired midway would count as stale.
    let ns = Ns::with_ttl(&format!("o{}", &bin[bin.len() - 3..]), TTL);
    let socket = ns.dir.join("ctl.sock");
    let top = format!(
        "control_socket = \"{}\"\nmetrics_listen = \"127.0.0.1:0\"",
        socket.display()
    );
    let conf = config(&ns, "ops", &top, "", "");
    let server = Server::start_in_netns(&ns.name, bin, &["--config", &conf]);
    let metrics = field(&server.wait_says("serving metrics"), "metrics");
    // he.test (AAAA ::1, blackholed; A 127.0.0.1) twice, c.test (A only;
    // its AAAA is NODATA, cached for the SOA's negative TTL) twice.
    assert_eq!(
        ns.socks4a_n(server.addr, "he.test", 2).0,
        ["ok"; 2],
        "{bin}"
    );
    assert_eq!(ns.socks4a_n(server.addr, "c.test", 2).0, ["ok"; 2], "{bin}");
    server.wait_for_n("four closed lines", 4, closed);
    let page = ns.get(&format!("http://{metrics}/metrics"));
    let cache = |r: &str| {
        sample(
            &page,
            "socks4_resolver_cache_total",
            &format!("result=\"{r}\""),
        )
    };
    // A miss per name and type the first time; then hits, and the cached
    // NODATA.
    assert_eq!(cache("miss"), Some(4), "{bin}\n{page}");
    assert_eq!(cache("hit"), Some(3), "{bin}");
    assert_eq!(cache("negative"), Some(1), "{bin}");
    assert_eq!(cache("stale"), Some(0), "{bin}");
    let attempts = |f: &str, r: &str| {
        sample(
            &page,
            "socks4_connect_attempts_total",
            &format!("family=\"{f}\",result=\"{r}\""),
        )
    };
    // IPv4 won every time; the blackholed IPv6 attempt of he.test was still
    // running when it did, and was closed.
    assert_eq!(attempts("ipv4", "won"), Some(4), "{bin}\n{page}");
    assert_eq!(attempts("ipv6", "lost"), Some(2), "{bin}");
    assert_eq!(attempts("ipv6", "won"), Some(0), "{bin}");
    assert_eq!(attempts("ipv6", "timeout"), Some(0), "{bin}");

    // ctl resolve: what the cache holds, with the TTL left (at most TTL).
    let out = ctl(bin, &socket, &["resolve", "he.test"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{bin}: {out}");
    assert!(
        lines[0].starts_with("he.test A 127.0.0.1 ttl="),
        "{bin}: {out}"
    );
    assert!(
        lines[1].starts_with("he.test AAAA ::1 ttl="),
        "{bin}: {out}"
    );
    assert!(
        lines.iter().all(|l| ttl(l) <= u64::from(TTL)),
        "{bin}: {out}"
    );
    let out = ctl(bin, &socket, &["resolve", "C.Test."]);
    assert!(out.contains("c.test AAAA NODATA ttl="), "{bin}: {out}");
    // A name not cached is said to be so, and dnsmasq is not asked.
    let out = ctl(bin, &socket, &["resolve", "never.test"]);
    assert!(out.starts_with("never.test: not cached"), "{bin}: {out}");
    assert_eq!(ns.queries("A", "never.test"), 0, "{bin}");
    assert_eq!(ns.queries("AAAA", "never.test"), 0, "{bin}");

    // ctl cache flush NAME: that name's answers go, and it is asked again.
    let out = ctl(bin, &socket, &["cache", "flush", "he.test"]);
    assert_eq!(out, "2 cached answers of he.test flushed\n", "{bin}");
    let out = ctl(bin, &socket, &["resolve", "he.test"]);
    assert!(out.starts_with("he.test: not cached"), "{bin}: {out}");
    assert_eq!(ns.queries("A", "he.test"), 1, "{bin}");
    assert_eq!(ns.socks4a(server.addr, "he.test").0, "ok", "{bin}");
    assert_eq!(ns.queries("A", "he.test"), 2, "{bin}: asked again");
    // ctl cache flush: everything goes (he.test's two, c.test's two).
    let out = ctl(bin, &socket, &["cache", "flush"]);
    assert_eq!(out, "4 cached answers flushed\n", "{bin}");
    let out = ctl(bin, &socket, &["resolve", "c.test"]);
    assert!(out.starts_with("c.test: not cached"), "{bin}: {out}");
}
