//! Routes through parent proxies, on every adapter, fetched with curl:
//! tinyproxy as an HTTP CONNECT parent and a parent that is down, Dante as a
//! SOCKS4 parent, another of our servers as a SOCKS4a parent that gets the name
//! unresolved, and parents over TLS (another of our servers as a
//! `socks4a+tls://` parent, stunnel in front of tinyproxy as an `https://` one,
//! and a parent whose certificate is not trusted).

use socks4_proto::client::Event;
use socks4_proto::ReplyCode;
use socks4_tests::e2e::*;
use socks4_tests::peers;
use socks4_tests::tls::TestCa;
use std::path::PathBuf;
use std::process::Command as Process;

socks4_tests::on_every_adapter!(
    routes_through_tinyproxy_and_a_parent_that_is_down,
    routes_through_dante_as_a_socks4_parent,
    a_socks4a_parent_gets_the_name_unresolved,
    parents_over_tls,
);

fn routes_through_tinyproxy_and_a_parent_that_is_down(bin: &str) {
    let tiny = peers::tinyproxy();
    let web = http(1, "fetched through tinyproxy");
    let closed = ClosedPort::new();
    let down = closed.port();
    let conf = rules_config(
        &format!("chain-tiny-{bin}"),
        &format!(
            "pass from 127.0.0.0/8 to any\nroute to any port eq {} via http://{}\nroute to any via http://127.0.0.1:{down}",
            web.port(),
            tiny.addr
        ),
    );
    let server = Server::start(bin, &["--config", &conf]);
    let (ok, body) = curl_socks4a(server.addr, web.port());
    assert!(ok, "{bin}: {body}\n{}", server.log());
    assert_eq!(body, "fetched through tinyproxy", "{bin}");
    let line = server.wait_for("the routed relay", |l| says(l, "closed"));
    assert_eq!(
        field(&line, "via"),
        format!("http://{}", tiny.addr),
        "{bin}: {line}"
    );
    // Through a parent that is down: 91, and the log says why.
    let other = echo(1);
    let c = socks_request(server.addr, &connect_to(other, b""), |_| {});
    assert!(
        matches!(c.events.last(), Some(Event::Rejected(r)) if r.code == ReplyCode::Rejected),
        "{bin}: {:?}",
        c.events
    );
    server.wait_says("parent failed");
    let lines = server.wait_for_n("two closed lines", 2, |l| says(l, "closed"));
    assert_eq!(
        field(&lines[1], "outcome"),
        "parent_failed",
        "{bin}: {}",
        lines[1]
    );
}

fn routes_through_dante_as_a_socks4_parent(bin: &str) {
    let dante = peers::dante().expect("danted (Debian package dante-server; run .ci/setup)");
    let web = http(1, "fetched through Dante");
    let conf = rules_config(
        &format!("chain-dante-{bin}"),
        &format!(
            "pass from 127.0.0.0/8 to any\nroute to any via socks4://{}",
            dante.addr
        ),
    );
    let server = Server::start(bin, &["--config", &conf]);
    // A 4a name: resolved here, then sent to Dante as an IPv4 address.
    let (ok, body) = curl_socks4a(server.addr, web.port());
    assert!(ok, "{bin}: {body}\n{}", server.log());
    assert_eq!(body, "fetched through Dante", "{bin}");
    server.wait_says("dns_lookup");
    let line = server.wait_for("the routed relay", |l| says(l, "closed"));
    assert_eq!(
        field(&line, "via"),
        format!("socks4://{}", dante.addr),
        "{bin}: {line}"
    );
}

fn a_socks4a_parent_gets_the_name_unresolved(bin: &str) {
    let parent = Server::start(bin, &[]);
    let web = http(1, "fetched through our own parent");
    let conf = rules_config(
        &format!("chain-own-{bin}"),
        &format!(
            "pass from 127.0.0.0/8 to any\nroute to .localhost via socks4a://{} user chained\nroute to localhost via socks4a://{} user chained",
            parent.addr, parent.addr
        ),
    );
    let server = Server::start(bin, &["--config", &conf]);
    let (ok, body) = curl_socks4a(server.addr, web.port());
    assert!(ok, "{bin}: {body}\n{}\n{}", server.log(), parent.log());
    assert_eq!(body, "fetched through our own parent", "{bin}");
    // The parent resolved the name; this server did not.
    let lookup = parent.wait_says("dns_lookup");
    assert_eq!(field(&lookup, "host"), "localhost", "{bin}: {lookup}");
    let parent_line = parent.wait_for("the parent's relay", |l| says(l, "closed"));
    assert_eq!(
        field(&parent_line, "dest"),
        format!("localhost:{}", web.port()),
        "{bin}"
    );
    assert_eq!(
        field(&parent_line, "user"),
        "chained",
        "{bin}: the route's user id"
    );
    server.wait_for("the child's relay", |l| says(l, "closed"));
    assert_eq!(
        server.count(|l| says(l, "dns_lookup")),
        0,
        "{bin}\n{}",
        server.log()
    );
    // ctl-style explanation of the route is in --check and ctl; --check shows it.
    let (status, out, _) = run(
        Process::new(server_binary(bin)).args(["--check", "--config", &conf]),
        b"",
    );
    assert!(
        status.success()
            && String::from_utf8_lossy(&out).contains("to localhost via socks4a://chained@"),
        "{bin}: {}",
        String::from_utf8_lossy(&out)
    );
}

fn dir(bin: &str, what: &str) -> PathBuf {
    let dir = socks4_tests::scratch::fresh(&format!("tls-{what}-{bin}"));
    dir
}

fn p(path: &std::path::Path) -> String {
    path.display().to_string()
}

fn parents_over_tls(bin: &str) {
    let dir = dir(bin, "parents");
    let ca = TestCa::new(&dir, "test-ca");
    let cert = ca.issue("parent", "parent", &["localhost"]);
    let other = TestCa::new(&dir, "other-ca");
    let untrusted = other.issue("untrusted", "parent", &["localhost"]);
    let socks_parent = Server::start_with(bin, &cert.listen_tls_args());
    let socks_parent_addr = socks_parent.listener("tls");
    let bad_parent = Server::start_with(bin, &untrusted.listen_tls_args());
    let bad_parent_addr = bad_parent.listener("tls");
    let tiny = peers::tinyproxy();
    let https_parent = peers::stunnel_server(tiny.addr, &cert.cert, &cert.key);

    let (web1, web2, web3) = (
        http(1, "through a socks4a+tls parent"),
        http(1, "through an https parent"),
        free_port(),
    );
    let conf = dir.join("socks4d.toml");
    std::fs::write(
        &conf,
        format!(
            "[tls]\nca = \"{}\"\n[access]\nrules = \"\"\"\npass from 127.0.0.0/8 to any\n\
             route to any port eq {} via socks4a+tls://localhost:{}\n\
             route to any port eq {} via https://localhost:{}\n\
             route to any port eq {web3} via socks4+tls://localhost:{}\n\"\"\"\n",
            p(&ca.cert),
            web1.port(),
            socks_parent_addr.port(),
            web2.port(),
            https_parent.addr.port(),
            bad_parent_addr.port(),
        ),
    )
    .unwrap();
    let server = Server::start(bin, &["--config", &p(&conf)]);

    // SOCKS4a inside TLS: the parent gets the name unresolved.
    let (ok, out) = curl_socks4a(server.addr, web1.port());
    assert!(
        ok && out == "through a socks4a+tls parent",
        "{out}\n{}",
        server.log()
    );
    let line = server.wait_for("the first routed relay", |l| says(l, "closed"));
    assert_eq!(
        field(&line, "via"),
        format!("socks4a+tls://localhost:{}", socks_parent_addr.port()),
        "{line}"
    );
    let parent_line = socks_parent.wait_for("the parent's closed line", |l| says(l, "closed"));
    assert_eq!(
        field(&parent_line, "dest"),
        format!("localhost:{}", web1.port()),
        "{parent_line}"
    );

    // HTTP CONNECT inside TLS (stunnel in front of tinyproxy).
    let (ok, out) = curl_socks4a(server.addr, web2.port());
    assert!(
        ok && out == "through an https parent",
        "{out}\n{}",
        server.log()
    );

    // A parent whose certificate another authority signed: 91, the log says
    // why, and the failure is counted as the parent's.
    let (ok, _) = curl_socks4a(server.addr, web3);
    assert!(!ok, "a request went through an untrusted parent");
    let line = server.wait_says("parent failed");
    assert!(
        field(&line, "error").contains("invalid peer certificate"),
        "{line}"
    );
    let lines = server.wait_for_n("three closed lines", 3, |l| says(l, "closed"));
    assert_eq!(field(&lines[2], "outcome"), "parent_failed", "{}", lines[2]);
}
