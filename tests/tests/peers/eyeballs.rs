//! Happy Eyeballs, parents that are watched and the own caching resolver,
//! for real, in the network namespace of [`dns_ns`](super::dns_ns): nftables
//! drops SYNs to one address (a blackhole), dnsmasq from Debian is the
//! nameserver with its query log, python3 serves the destination, and the
//! server runs inside it. The namespace and every process in it go when the
//! test ends, failed or not.

use super::dns_ns::{config, ctl, Ns, WEB};
use socks4_tests::e2e::*;
use std::time::Duration;

socks4_tests::on_every_adapter!(
    a_blackholed_ipv6_address_loses_to_ipv4_and_answers_are_cached,
    a_blackholed_parent_is_skipped_while_down,
);

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
        "[timeouts]\nconnect_attempt = \"2s\"\n[parents]\nmax_failures = 1\nmax_backoff = \"30s\"\n",
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
    let out = ctl(bin, &ctl_path, &["parents"]);
    let down = out
        .lines()
        .find(|l| l.contains("127.0.0.9:1080"))
        .unwrap_or_else(|| panic!("{bin}: {out}"));
    assert!(down.contains("down"), "{bin}: {down}");
    // The attempt's deadline and the connect's own timeout both end it at
    // 2 s: either may be the one that tells.
    assert!(
        down.contains("timed out") || down.contains("no answer within 2s"),
        "{bin}: {down}"
    );
}
