//! Sniffing on a redirect listener for real (issue 30), in the namespaces of
//! `interception` (client, router, destination; the router does not
//! forward, so the destination exists only behind the proxy), with an
//! nftables `redirect` of TCP ports 80, 443 and 22 to the redirect
//! listener: `curl https://name.test` (the ClientHello's SNI) and `curl
//! http://name.test` (the Host header), name.test given to curl with
//! `--resolve`. A rule `block to .name.test` refuses both (without sniffing
//! both would pass: the listener knows the address only); a `route to
//! .name.test via socks4a://PARENT` hands our own server, as the parent, the
//! name with the original port (its log shows it), and the bodies arrive
//! intact. A server-first protocol (an SSH-like banner) still works through
//! the redirect listener after the sniff timeout.

use super::interception::Net;
use socks4_tests::e2e::*;
use socks4_tests::netns::sh;
use std::process::Command as Process;

socks4_tests::on_every_adapter!(names_sniffed_on_a_redirect_listener);

/// The destination's HTTP (or, with `tls`, HTTPS) server: answers each
/// request with `body`; prints `ready` once listening.
const WEB: &str = r#"
import socket, ssl, sys
host, port, tls, body = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].encode()
ctx = None
if tls != "-":
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tls + ".pem", tls + ".key")
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, port)); s.listen()
print("ready", flush=True)
s.settimeout(120)
for _ in range(8):
    c, _ = s.accept()
    c.settimeout(10)
    try:
        if ctx:
            c = ctx.wrap_socket(c, server_side=True)
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = c.recv(4096)
            if not d:
                break
            buf += d
        c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    except Exception:
        pass
    c.close()
"#;

/// An SSH-like server: its banner first, then an echo of what comes.
const BANNER: &str = r#"
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen()
print("ready", flush=True)
s.settimeout(120)
for _ in range(4):
    c, _ = s.accept()
    c.settimeout(10)
    try:
        c.sendall(b"SSH-2.0-banner\r\n")
        c.sendall(c.recv(100))
    except Exception:
        pass
    c.close()
"#;

/// The banner's client: reads the banner without a word first, then says
/// its own; prints both lines it read, or `failed ERROR`.
const BANNER_CLIENT: &str = r#"
import socket, sys
try:
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
    banner = c.recv(100)
    c.sendall(b"SSH-2.0-client\r\n")
    back = c.recv(100)
    print(banner.decode().strip(), back.decode().strip())
except Exception as e:
    print("failed", type(e).__name__)
"#;

/// `curl` in the client's namespace, with name.test at the destination:
/// its exit status and what it printed.
fn curl(net: &Net, url: &str, port: u16) -> (bool, String) {
    let resolve = format!("name.test:{port}:10.77.2.2");
    let (status, out, _) = run(
        Process::new("ip").args([
            "netns",
            "exec",
            &net.ns('c'),
            "curl",
            "-sk",
            "--max-time",
            "10",
            "--resolve",
            &resolve,
            url,
        ]),
        b"",
    );
    (status.success(), String::from_utf8_lossy(&out).into_owned())
}

fn banner(net: &Net) -> String {
    let (_, out, _) = run(
        Process::new("ip").args([
            "netns",
            "exec",
            &net.ns('c'),
            "python3",
            "-c",
            BANNER_CLIENT,
            "10.77.2.2",
            "22",
        ]),
        b"",
    );
    String::from_utf8_lossy(&out).trim().to_owned()
}

/// The server in the router's namespace with `rules`, a redirect listener
/// on 15081, and `extra` arguments.
fn router_server(net: &Net, bin: &str, dir: &std::path::Path, rules: &str) -> Server {
    let conf = dir.join("socks4d.toml");
    std::fs::write(
        &conf,
        format!("[access]\nrules = \"\"\"\n{rules}\n\"\"\"\n"),
    )
    .unwrap();
    Server::start_in_netns(
        &net.ns('r'),
        bin,
        &[
            "--listen",
            "127.0.0.1:1080",
            "--redirect",
            "0.0.0.0:15081",
            "--config",
            conf.to_str().unwrap(),
            "--allow-root",
        ],
    )
}

/// The namespaces with the redirect of ports 80, 443 and 22, and the
/// destination's servers there; the scratch folder and the web body.
fn set_up(bin: &str) -> (Net, std::path::PathBuf, String) {
    let index = ["socks4d-tokio", "socks4d-smol", "socks4d-async-std"]
        .iter()
        .position(|b| *b == bin)
        .unwrap_or(9);
    let mut net = Net::new(format!("n{}{index}", std::process::id() % 1000));
    // Ports 80, 443 and 22 from the client go to the redirect listener too.
    let r0 = format!("{}0", net.ns('r'));
    sh(&[
        "ip",
        "netns",
        "exec",
        &net.ns('r'),
        "nft",
        "add",
        "rule",
        "ip",
        "s4nat",
        "pre",
        "iifname",
        &r0,
        "tcp",
        "dport",
        "{ 80, 443, 22 }",
        "redirect",
        "to",
        ":15081",
    ]);
    let dir = socks4_tests::scratch::dir(&format!("sniff-ns-{bin}"));
    let cert = dir.join("web");
    sh(&[
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=name.test",
        "-keyout",
        &format!("{}.key", cert.display()),
        "-out",
        &format!("{}.pem", cert.display()),
    ]);
    let body: String = (0..20_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let cert = cert.display().to_string();
    for (script, args) in [
        (WEB, vec!["10.77.2.2", "80", "-", &body]),
        (WEB, vec!["10.77.2.2", "443", &cert, &body]),
        (BANNER, vec!["10.77.2.2", "22"]),
    ] {
        let out = net.spawn('d', script, &args);
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line).unwrap();
        assert_eq!(line.trim(), "ready", "{bin}: {script}");
    }
    (net, dir, body)
}

/// The rules every server here has, besides its own.
const PASS: &str = "pass from 10.77.1.0/24 to any\npass from 127.0.0.0/8 to any";

fn names_sniffed_on_a_redirect_listener(bin: &str) {
    let (net, dir, body) = set_up(bin);
    refused_by_name(&net, bin, &dir);
    through_a_socks4a_parent(&net, bin, &dir, &body);
}

/// `block to .name.test` refuses https and http; a banner server works.
fn refused_by_name(net: &Net, bin: &str, dir: &std::path::Path) {
    // A rule with a name refuses both: the listener knew the address only.
    let server = router_server(
        net,
        bin,
        dir,
        &format!("block from any to .name.test\n{PASS}"),
    );
    let (ok, out) = curl(net, "https://name.test/", 443);
    assert!(
        !ok && out.is_empty(),
        "{bin}: https passed\n{}",
        server.log()
    );
    let (ok, out) = curl(net, "http://name.test/", 80);
    assert!(
        !ok && out.is_empty(),
        "{bin}: http passed\n{}",
        server.log()
    );
    // A server-first protocol: no name, the address only, after the sniff
    // timeout.
    assert_eq!(
        banner(net),
        "SSH-2.0-banner SSH-2.0-client",
        "{bin}\n{}",
        server.log()
    );
    let lines = server.wait_for_n("three closed lines", 3, closed);
    let seen: Vec<(String, String, String)> = lines
        .iter()
        .map(|l| (field(l, "dest"), field(l, "sniffed"), field(l, "outcome")))
        .collect();
    for want in [
        ("name.test:443", "sni", "denied"),
        ("name.test:80", "host", "denied"),
        ("10.77.2.2:22", "-", "done"),
    ] {
        let want = (want.0.to_owned(), want.1.to_owned(), want.2.to_owned());
        assert!(seen.contains(&want), "{bin}: {want:?} in {seen:?}");
    }
}

/// A `socks4a://` parent gets the name; the bodies arrive intact.
fn through_a_socks4a_parent(net: &Net, bin: &str, dir: &std::path::Path, body: &str) {
    // A socks4a parent (our own server, beside it) gets the name.
    let hosts = dir.join("hosts");
    std::fs::write(&hosts, "10.77.2.2 name.test\n").unwrap();
    let parent = Server::start_in_netns(
        &net.ns('r'),
        bin,
        &[
            "--listen",
            "127.0.0.1:1090",
            "--hosts-file",
            hosts.to_str().unwrap(),
            "--allow-root",
        ],
    );
    let route = "route to .name.test via socks4a://127.0.0.1:1090";
    let server = router_server(net, bin, dir, &format!("{PASS}\n{route}"));
    for (url, port) in [("https://name.test/", 443), ("http://name.test/", 80)] {
        let (ok, out) = curl(net, url, port);
        assert!(ok, "{bin}: {url}\n{}\n{}", server.log(), parent.log());
        assert!(out == body, "{bin}: {url}: {} bytes, not intact", out.len());
    }
    for dest in ["name.test:443", "name.test:80"] {
        parent.wait_for(dest, |l| closed(l) && field(l, "dest") == dest);
        let line = server.wait_for(dest, |l| closed(l) && field(l, "dest") == dest);
        assert_eq!(
            field(&line, "via"),
            "socks4a://127.0.0.1:1090",
            "{bin}: {line}"
        );
    }
}
