//! TLS on either side and the dual listener, on every adapter, with
//! certificates from the test's own authority: a real stunnel wrapping a
//! local port into TLS towards `--listen-tls` (curl through it), a client of
//! another authority counted as a failed handshake, client certificates that
//! rules match by name, `--forward-tls` to a TLS echo server (and a refusal
//! when the destination's authority is not trusted), a real OpenSSH server and
//! SOCKS clients sharing one `--dual` port, SIGHUP loading a new
//! certificate while an older relay goes on, and parents over TLS (another of
//! our servers as a `socks4a+tls://` parent, stunnel in front of tinyproxy as
//! an `https://` one, and a parent whose certificate is not trusted).

use socks4_proto::client::{Event, Handshake};
use socks4_proto::{ReplyCode, Request};
use socks4_tests::e2e::*;
use socks4_tests::peers;
use socks4_tests::tls::{self, TestCa};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::process::Command as Process;
use std::time::{Duration, Instant};

socks4_tests::on_every_adapter!(
    stunnel_carries_socks_inside_tls,
    client_certificates_name_the_client_to_rules_and_logs,
    forward_tls_verifies_the_destination,
    ssh_and_socks_share_a_dual_port,
    sighup_loads_a_new_certificate_for_new_connections,
    parents_over_tls,
);

fn dir(bin: &str, what: &str) -> PathBuf {
    let dir = socks4_tests::scratch::fresh(&format!("tls-{what}-{bin}"));
    dir
}

fn p(path: &std::path::Path) -> String {
    path.display().to_string()
}

/// The SOCKS handshake over any stream: the replies, and relayed bytes that
/// came with the last.
fn socks_over(stream: &mut (impl Read + Write), request: &Request<'_>) -> (Vec<Event>, Vec<u8>) {
    let mut h = Handshake::new(request).unwrap();
    stream.write_all(h.poll_transmit().unwrap()).unwrap();
    stream.flush().unwrap();
    let (mut events, mut early, mut buf) = (Vec::new(), Vec::new(), [0u8; 256]);
    while !h.is_finished() {
        let n = match stream.read(&mut buf) {
            Ok(n) if n > 0 => n,
            _ => break,
        };
        let used = h.handle_input(&buf[..n]).expect("well-formed replies");
        early.extend_from_slice(&buf[used..n]);
        while let Some(ev) = h.poll_event() {
            events.push(ev);
        }
    }
    (events, early)
}

fn granted(events: &[Event]) -> bool {
    matches!(events.first(), Some(Event::Granted(_)))
}

fn rejected(events: &[Event]) -> bool {
    matches!(events.first(), Some(Event::Rejected(r)) if r.code == ReplyCode::Rejected)
}

/// `n` bytes that are not all alike, and a checksum of them.
fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

/// Sends `data` and reads the same amount back (an echo through the proxy).
fn echo_through(stream: &mut (impl Read + Write), data: &[u8]) -> Vec<u8> {
    let mut back = vec![0u8; data.len()];
    for chunk in data.chunks(64 * 1024) {
        stream.write_all(chunk).unwrap();
    }
    stream.flush().unwrap();
    stream.read_exact(&mut back).unwrap();
    back
}

fn stunnel_carries_socks_inside_tls(bin: &str) {
    let dir = dir(bin, "stunnel");
    let ca = TestCa::new(&dir, "test-ca");
    let cert = ca.issue("server", "socks4d", &["localhost", "127.0.0.1"]);
    let server = Server::start_with(
        bin,
        &[
            "--listen-tls",
            "127.0.0.1:0",
            "--tls-cert",
            &p(&cert.cert),
            "--tls-key",
            &p(&cert.key),
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    );
    let tls_addr = server.listener("tls");
    // Only the TLS listener: naming one replaces the default SOCKS listener.
    assert_eq!(
        server.count(|l| says(l, "listening")),
        1,
        "{}",
        server.log()
    );
    let stunnel = peers::stunnel_client(tls_addr, &ca.cert, "localhost");
    let web = http(1, "fetched inside TLS");
    let (ok, out) = curl_socks4a(stunnel.addr, web.port());
    assert!(ok && out == "fetched inside TLS", "{out}\n{}", server.log());
    server.wait_for("the closed line of the relay", |l| {
        says(l, "closed") && field(l, "outcome") == "done"
    });

    // A client that trusts another authority refuses our certificate: its
    // handshake fails, the server counts it and serves the next client.
    let other = TestCa::new(&dir, "other-ca");
    let refused = tls::connect(tls_addr, tls::client_config(&other.cert, None), "localhost");
    assert!(
        refused.is_err(),
        "a client of another CA finished its handshake"
    );
    let line = server.wait_for("the failed handshake's closed line", |l| {
        says(l, "closed") && field(l, "outcome") == "tls_failed"
    });
    assert!(
        field(&line, "reason").contains("TLS handshake failed"),
        "{line}"
    );
    let text = server.metrics();
    assert!(
        text.lines()
            .any(|l| l.starts_with("socks4_tls_failures_total{")
                && l.contains("side=\"client\"")
                && l.ends_with(" 1")),
        "{text}"
    );
    let web = http(1, "still serving");
    let (ok, out) = curl_socks4a(stunnel.addr, web.port());
    assert!(ok && out == "still serving", "{out}");
}

fn client_certificates_name_the_client_to_rules_and_logs(bin: &str) {
    let dir = dir(bin, "mtls");
    let ca = TestCa::new(&dir, "test-ca");
    let cert = ca.issue("server", "socks4d", &["localhost"]);
    let clients = TestCa::new(&dir, "client-ca");
    let alice = clients.issue("alice", "alice", &[]);
    let mallory = clients.issue("mallory", "mallory", &[]);
    let conf = dir.join("socks4d.toml");
    std::fs::write(
        &conf,
        "[access]\nrules = \"\"\"\nblock from any to any cert mallory\n\
         pass from 127.0.0.0/8 to any cert alice,bob\n\"\"\"\n",
    )
    .unwrap();
    let server = Server::start_with(
        bin,
        &[
            "--config",
            &p(&conf),
            "--listen-tls",
            "127.0.0.1:0",
            "--tls-cert",
            &p(&cert.cert),
            "--tls-key",
            &p(&cert.key),
            "--tls-client-ca",
            &p(&clients.cert),
        ],
    );
    let addr = server.listener("tls");
    let echo = echo(1);

    // alice: served, and named in the closed line.
    let mut tls = tls::connect(
        addr,
        tls::client_config(&ca.cert, Some(&alice)),
        "localhost",
    )
    .expect("alice's handshake");
    let (events, early) = socks_over(&mut tls, &connect_to(echo, b""));
    assert!(granted(&events), "{events:?}\n{}", server.log());
    assert!(early.is_empty());
    let data = payload(200_000);
    assert_eq!(checksum(&echo_through(&mut tls, &data)), checksum(&data));
    drop(tls);
    let line = server.wait_for("alice's closed line", |l| {
        says(l, "closed") && field(l, "cert") == "alice"
    });
    assert_eq!(field(&line, "reply"), "90", "{line}");

    // mallory: the block rule answers 91.
    let mut tls = tls::connect(
        addr,
        tls::client_config(&ca.cert, Some(&mallory)),
        "localhost",
    )
    .expect("mallory's handshake");
    let (events, _) = socks_over(&mut tls, &connect_to(echo, b""));
    assert!(rejected(&events), "{events:?}");
    let line = server.wait_for("mallory's closed line", |l| {
        says(l, "closed") && field(l, "cert") == "mallory"
    });
    assert_eq!(field(&line, "outcome"), "denied", "{line}");
    assert!(field(&line, "rule").contains("rule 1"), "{line}");

    // No certificate: the handshake fails (in TLS 1.3 the client learns it
    // from the server's alert, on its first read).
    let attempt = tls::connect(addr, tls::client_config(&ca.cert, None), "localhost");
    if let Ok(mut tls) = attempt {
        let _ = tls.write_all(&connect_to(echo, b"").to_vec());
        let mut buf = [0u8; 8];
        assert!(
            !matches!(tls.read(&mut buf), Ok(n) if n > 0),
            "a client without a certificate got an answer"
        );
    }
    let line = server.wait_for("the anonymous client's closed line", |l| {
        says(l, "closed") && field(l, "outcome") == "tls_failed"
    });
    assert!(
        field(&line, "reason").contains("no client certificate"),
        "{line}"
    );
    assert_eq!(field(&line, "cert"), "-", "{line}");
}

fn forward_tls_verifies_the_destination(bin: &str) {
    let dir = dir(bin, "forward");
    let ca = TestCa::new(&dir, "test-ca");
    let dest_cert = ca.issue("dest", "echo", &["localhost"]);
    let echo = tls::echo_server(&dest_cert, 1);
    let forward = format!("127.0.0.1:0=localhost:{}", echo.port());
    let server = Server::start_with(bin, &["--forward-tls", &forward, "--tls-ca", &p(&ca.cert)]);
    let addr = server.listener("forward_tls");
    let mut plain = TcpStream::connect_timeout(&addr, STEP).unwrap();
    plain.set_read_timeout(Some(STEP)).unwrap();
    let data = payload(1 << 20);
    let back = {
        let writer = plain.try_clone().unwrap();
        let sent = data.clone();
        let t = std::thread::spawn(move || {
            let mut w = writer;
            w.write_all(&sent).unwrap();
            w.shutdown(Shutdown::Write).unwrap();
        });
        let mut back = Vec::new();
        plain.read_to_end(&mut back).unwrap();
        t.join().unwrap();
        back
    };
    assert_eq!(back.len(), data.len(), "{}", server.log());
    assert_eq!(checksum(&back), checksum(&data));
    server.wait_for("the forward's closed line", |l| {
        says(l, "closed") && field(l, "outcome") == "done"
    });

    // Trusting only another authority: the connection is closed, and the log
    // says the certificate was not trusted.
    let other = TestCa::new(&dir, "other-ca");
    let echo = tls::echo_server(&dest_cert, 1);
    let forward = format!("127.0.0.1:0=localhost:{}", echo.port());
    let server = Server::start_with(
        bin,
        &["--forward-tls", &forward, "--tls-ca", &p(&other.cert)],
    );
    let addr = server.listener("forward_tls");
    let mut plain = TcpStream::connect_timeout(&addr, STEP).unwrap();
    plain.set_read_timeout(Some(STEP)).unwrap();
    let _ = plain.write_all(b"hello");
    let mut buf = [0u8; 16];
    assert!(
        !matches!(plain.read(&mut buf), Ok(n) if n > 0),
        "data came back through an untrusted destination"
    );
    let line = server.wait_says("TLS with the destination failed");
    let error = field(&line, "error");
    assert!(
        error.contains("invalid peer certificate") && error.contains("UnknownIssuer"),
        "{line}"
    );
    server.wait_for("the refused forward's closed line", |l| {
        says(l, "closed") && field(l, "outcome") == "connect_failed"
    });
}

fn ssh_and_socks_share_a_dual_port(bin: &str) {
    let dir = dir(bin, "dual");
    let (sshd, key) = peers::sshd(&dir.join("ssh"));
    let ca = TestCa::new(&dir, "test-ca");
    let cert = ca.issue("server", "socks4d", &["localhost"]);
    let dual = format!("127.0.0.1:0={}", sshd.addr);
    let server = Server::start_with(
        bin,
        &[
            "--dual",
            &dual,
            "--dual-timeout",
            "500ms",
            "--tls-cert",
            &p(&cert.cert),
            "--tls-key",
            &p(&cert.key),
        ],
    );
    let addr = server.listener("dual");

    // A real ssh client speaks first ("SSH-2.0-..."): relayed to sshd.
    let user = String::from_utf8(Process::new("id").arg("-un").output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_owned();
    let (status, out, err) = run(
        Process::new("ssh").args([
            "-p",
            &addr.port().to_string(),
            "-i",
            &p(&key),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=10",
            &format!("{user}@127.0.0.1"),
            "echo through-the-dual-port",
        ]),
        b"",
    );
    assert!(
        status.success() && String::from_utf8_lossy(&out).trim() == "through-the-dual-port",
        "ssh: {status} {err}\n{}",
        server.log()
    );

    // A SOCKS client on the same port.
    let web = http(1, "socks on the dual port");
    let (ok, out) = curl_socks4a(addr, web.port());
    assert!(ok && out == "socks on the dual port", "{out}");

    // SOCKS inside TLS on the same port.
    let echo = echo(1);
    let mut tls = tls::connect(addr, tls::client_config(&ca.cert, None), "localhost")
        .expect("TLS on the dual port");
    let (events, _) = socks_over(&mut tls, &connect_to(echo, b""));
    assert!(granted(&events), "{events:?}");
    assert_eq!(echo_through(&mut tls, b"inside TLS"), b"inside TLS");
    drop(tls);

    // A silent client reaches the SSH server's banner after the timeout.
    let started = Instant::now();
    let mut silent = TcpStream::connect_timeout(&addr, STEP).unwrap();
    silent.set_read_timeout(Some(STEP)).unwrap();
    let mut banner = [0u8; 8];
    silent.read_exact(&mut banner).unwrap();
    assert_eq!(&banner, b"SSH-2.0-");
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "the banner came before the dual timeout"
    );
    drop(silent);
    drop(sshd);
}

fn sighup_loads_a_new_certificate_for_new_connections(bin: &str) {
    let dir = dir(bin, "sighup");
    let ca = TestCa::new(&dir, "test-ca");
    let first = ca.issue("first", "socks4d", &["localhost"]);
    let second = ca.issue("second", "socks4d", &["localhost"]);
    // The config names fixed paths; the test swaps the files behind them.
    let (cert, key) = (dir.join("live.pem"), dir.join("live.key"));
    std::fs::copy(&first.cert, &cert).unwrap();
    std::fs::copy(&first.key, &key).unwrap();
    let conf = dir.join("socks4d.toml");
    std::fs::write(
        &conf,
        format!(
            "listen_tls = [\"127.0.0.1:0\"]\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
            p(&cert),
            p(&key)
        ),
    )
    .unwrap();
    let server = Server::start_with(bin, &["--config", &p(&conf)]);
    let addr = server.listener("tls");
    let client = tls::client_config(&ca.cert, None);
    let presented = |t: &tls::TlsClient| t.conn.peer_certificates().unwrap()[0].to_vec();

    // A relay opened with the first certificate.
    let echo = echo(1);
    let mut old = tls::connect(addr, client.clone(), "localhost").unwrap();
    assert_eq!(presented(&old), first.der);
    let (events, _) = socks_over(&mut old, &connect_to(echo, b""));
    assert!(granted(&events), "{events:?}");
    assert_eq!(echo_through(&mut old, b"before"), b"before");

    // A broken file: the reload is refused, the first certificate stays.
    std::fs::write(&cert, "not a certificate").unwrap();
    server.signal("HUP");
    server.wait_says("reload failed, keeping the old configuration");
    let t = tls::connect(addr, client.clone(), "localhost").unwrap();
    assert_eq!(presented(&t), first.der);
    drop(t);

    // The second certificate: new connections see it.
    std::fs::copy(&second.cert, &cert).unwrap();
    std::fs::copy(&second.key, &key).unwrap();
    server.signal("HUP");
    server.wait_says("configuration reloaded");
    let t = tls::connect(addr, client, "localhost").unwrap();
    assert_eq!(presented(&t), second.der);
    drop(t);

    // The relay opened before goes on.
    assert_eq!(echo_through(&mut old, b"after"), b"after");
}

fn parents_over_tls(bin: &str) {
    let dir = dir(bin, "parents");
    let ca = TestCa::new(&dir, "test-ca");
    let cert = ca.issue("parent", "parent", &["localhost"]);
    let other = TestCa::new(&dir, "other-ca");
    let untrusted = other.issue("untrusted", "parent", &["localhost"]);
    let tls_args = |c: &tls::Issued| {
        vec![
            "--listen-tls".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--tls-cert".to_owned(),
            p(&c.cert),
            "--tls-key".to_owned(),
            p(&c.key),
        ]
    };
    let args = tls_args(&cert);
    let socks_parent =
        Server::start_with(bin, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let socks_parent_addr = socks_parent.listener("tls");
    let args = tls_args(&untrusted);
    let bad_parent = Server::start_with(bin, &args.iter().map(String::as_str).collect::<Vec<_>>());
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
