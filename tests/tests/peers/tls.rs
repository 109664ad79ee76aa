//! TLS with real peers, on every adapter, with certificates from the test's
//! own authority: a real stunnel wrapping a local port into TLS towards
//! `--listen-tls` (curl through it) and a client of another authority counted
//! as a failed handshake; a real OpenSSH server, SOCKS and SOCKS inside TLS
//! sharing one `--dual` port.

use socks4_proto::client::Event;
use socks4_tests::e2e::*;
use socks4_tests::peers;
use socks4_tests::tls::{self, TestCa};
use std::io::Read;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command as Process;
use std::time::{Duration, Instant};

socks4_tests::on_every_adapter!(
    stunnel_carries_socks_inside_tls,
    ssh_and_socks_share_a_dual_port,
);

fn dir(bin: &str, what: &str) -> PathBuf {
    let dir = socks4_tests::scratch::fresh(&format!("tls-{what}-{bin}"));
    dir
}

fn p(path: &std::path::Path) -> String {
    path.display().to_string()
}

fn granted(events: &[Event]) -> bool {
    matches!(events.first(), Some(Event::Granted(_)))
}

fn stunnel_carries_socks_inside_tls(bin: &str) {
    let dir = dir(bin, "stunnel");
    let ca = TestCa::new(&dir, "test-ca");
    let cert = ca.issue("server", "socks4d", &["localhost", "127.0.0.1"]);
    let mut args = cert.listen_tls_args();
    args.extend(["--metrics-listen", "127.0.0.1:0"]);
    let server = Server::start_with(bin, &args);
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
