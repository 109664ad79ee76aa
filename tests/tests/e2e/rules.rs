//! Access rules and lists on every adapter: a SOCKS4a client on the denial
//! list costs no name lookup, and IPv6 spellings of loopback are refused by IPv4
//! and address-class rules alike.

use socks4_proto::{Command, Dest, ReplyCode, Request};
use socks4_tests::e2e::*;

socks4_tests::on_every_adapter!(
    a_denied_socks4a_client_causes_no_lookup,
    ipv6_spellings_of_loopback_are_refused_by_ipv4_and_class_rules,
);

fn a_denied_socks4a_client_causes_no_lookup(bin: &str) {
    let server = Server::start(bin, &["--deny", "127.0.0.0/8"]);
    let request = Request {
        command: Command::Connect,
        dest: Dest::Domain("localhost", 80),
        user_id: b"",
    };
    let c = socks_request(server.addr, &request, |_| {});
    assert_eq!(rejected_with(&c), Some(ReplyCode::Rejected), "{bin}");
    let line = server.wait_for("the refusal", closed);
    assert_eq!(field(&line, "outcome"), "denied", "{bin}: {line}");
    assert_eq!(
        server.count(|l| says(l, "dns_lookup")),
        0,
        "{bin}\n{}",
        server.log()
    );
}

fn write_config(path: &std::path::Path, rules: &str) {
    std::fs::write(path, format!("[access]\nrules = \"\"\"\n{rules}\n\"\"\"\n")).unwrap();
}

fn ipv6_spellings_of_loopback_are_refused_by_ipv4_and_class_rules(bin: &str) {
    for rule in [
        "block from any to 127.0.0.0/8",
        "block from any to loopback",
    ] {
        let dir = socks4_tests::scratch::dir(&format!("v6lo-{bin}"));
        let conf = dir.join("socks4d.toml");
        write_config(&conf, &format!("{rule}\npass from 127.0.0.0/8 to any"));
        let server = Server::start(bin, &["--config", conf.to_str().unwrap()]);
        for host in ["::1", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", "127.0.0.1"] {
            let request = Request {
                command: Command::Connect,
                dest: Dest::Domain(host, 80),
                user_id: b"",
            };
            let c = socks_request(server.addr, &request, |_| {});
            assert_eq!(
                rejected_with(&c),
                Some(ReplyCode::Rejected),
                "{bin}: {host} through `{rule}`: {:?}",
                c.events
            );
        }
        let denied = server.wait_for_n("four refusals", 4, |l| {
            closed(l) && field(l, "outcome") == "denied"
        });
        assert_eq!(denied.len(), 4, "{bin}");
    }
}
