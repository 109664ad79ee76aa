//! TLS on every adapter, with certificates from the test's own authority and
//! rustls clients: client certificates that rules match by name, `--forward-tls`
//! to a TLS echo server (and a refusal when the destination's authority is not
//! trusted), TLS towards a `--forward-tls` destination held through a plain
//! parent and a TLS parent refused at start and on reload, and SIGHUP loading
//! a new certificate for new connections while an older relay goes on, and
//! mebibytes both ways at once through a TLS listener (large TLS reads
//! holding several records, each direction's half-close passed on). (stunnel, OpenSSH and parents over TLS:
//! `tests/tests/peers/tls.rs` and `tests/tests/peers/parents.rs`.)

use socks4_proto::client::Event;
use socks4_proto::ReplyCode;
use socks4_tests::e2e::*;
use socks4_tests::tls::{self, TestCa};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;

socks4_tests::on_every_adapter!(
    client_certificates_name_the_client_to_rules_and_logs,
    forward_tls_verifies_the_destination,
    tls_requested_is_never_sent_in_plaintext,
    sighup_loads_a_new_certificate_for_new_connections,
    a_tls_listener_moves_mebibytes_both_ways_at_once,
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
    let conf = p(&conf);
    let mut args = vec!["--config", &conf];
    args.extend(cert.listen_tls_args());
    let client_ca = p(&clients.cert);
    args.extend(["--tls-client-ca", &client_ca]);
    let server = Server::start_with(bin, &args);
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
    let outcome = server.reload();
    assert!(
        says(&outcome, "configuration reloaded"),
        "{bin}: {}",
        server.log()
    );
    let t = tls::connect(addr, client, "localhost").unwrap();
    assert_eq!(presented(&t), second.der);
    drop(t);

    // The relay opened before goes on.
    assert_eq!(echo_through(&mut old, b"after"), b"after");
}

/// A destination that keeps the first bytes it reads (up to 1 KiB, or what
/// came within two seconds) and hands them over.
fn first_bytes() -> (std::net::SocketAddr, std::sync::mpsc::Receiver<Vec<u8>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        s.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while got.len() < 1024 {
            match s.read(&mut buf) {
                Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
        let _ = tx.send(got);
    });
    (addr, rx)
}

fn forward_through(dir: &std::path::Path, dest_port: u16, parent: &str, ca: &str) -> String {
    let conf = dir.join("forward.toml");
    std::fs::write(
        &conf,
        format!(
            "forward_tls = [\"127.0.0.1:0=localhost:{dest_port}\"]\n\
             [tls]\nca = \"{ca}\"\n\
             [access]\nrules = \"\"\"\npass from 127.0.0.0/8 to any\n\
             route to any via {parent}\n\"\"\"\n"
        ),
    )
    .unwrap();
    p(&conf)
}

/// `--forward-tls` through a SOCKS parent: what reaches the destination is a
/// TLS ClientHello for its host name, never the client's bytes in clear,
/// and the whole path works with the destination's certificate verified.
/// A route through a TLS parent (TLS inside TLS) is refused at start and on
/// reload, naming the listener and the route.
fn tls_requested_is_never_sent_in_plaintext(bin: &str) {
    let dir = dir(bin, "via-parent");
    let ca = TestCa::new(&dir, "test-ca");
    let parent = Server::start(bin, &[]);
    let via = format!("socks4a://{}", parent.addr);
    // Measured: the first bytes at the destination.
    let (dest, seen) = first_bytes();
    let conf = forward_through(&dir, dest.port(), &via, &p(&ca.cert));
    let server = Server::start_with(bin, &["--config", &conf]);
    let addr = server.listener("forward_tls");
    let mut s = TcpStream::connect_timeout(&addr, STEP).unwrap();
    s.write_all(b"plaintext secret").unwrap();
    let got = seen.recv_timeout(STEP).unwrap();
    assert!(
        !got.windows(6).any(|w| w == b"secret"),
        "{bin}: the client's bytes reached the destination in clear: {got:?}"
    );
    assert!(got.len() > 5, "{bin}: {got:?}\n{}", server.log());
    assert_eq!(got[0], 0x16, "{bin}: not a TLS handshake record: {got:?}");
    assert_eq!(got[5], 0x01, "{bin}: not a ClientHello: {got:?}");
    assert!(
        got.windows(9).any(|w| w == b"localhost"),
        "{bin}: no server name in the ClientHello"
    );
    drop(s);
    drop(server);

    // The whole path, the destination's certificate verified through the
    // parent's tunnel.
    let dest_cert = ca.issue("dest", "echo", &["localhost"]);
    let echo = tls::echo_server(&dest_cert, 1);
    let conf = forward_through(&dir, echo.port(), &via, &p(&ca.cert));
    let mut server = Server::start_with(bin, &["--config", &conf]);
    let addr = server.listener("forward_tls");
    let mut s = TcpStream::connect_timeout(&addr, STEP).unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    s.write_all(b"through the parent").unwrap();
    let mut back = [0u8; 18];
    s.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"through the parent", "{bin}");
    drop(s);

    // A TLS parent: refused on reload (the old configuration stays) ...
    let tls_parent = format!("https://localhost:{}", parent.addr.port());
    forward_through(&dir, echo.port(), &tls_parent, &p(&ca.cert));
    server.signal("HUP");
    let line = server.wait_says("reload failed, keeping the old configuration");
    let error = field(&line, "error");
    for part in ["forward_tls listener 127.0.0.1:", "route 1", &tls_parent] {
        assert!(error.contains(part), "{bin}: {part} not in: {error}");
    }
    assert!(server
        .wait_exit(std::time::Duration::from_millis(200))
        .is_none());
    // ... and at start.
    let (status, _, err) = run(
        std::process::Command::new(server_binary(bin)).args(["--config", &conf]),
        b"",
    );
    assert!(!status.success(), "{bin}: started with a TLS parent");
    assert!(
        err.contains("TLS inside") || err.contains("inside TLS"),
        "{bin}: {err}"
    );
    assert!(err.contains(&tls_parent), "{bin}: {err}");
}

/// A destination that sends `down` and then half-closes while it reads what
/// comes to its end; hands over the length and checksum of what it read.
fn send_and_sink(
    down: Vec<u8>,
) -> (
    std::net::SocketAddr,
    std::sync::mpsc::Receiver<(usize, u64)>,
) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok((s, _)) = listener.accept() else {
            return;
        };
        s.set_read_timeout(Some(STEP * 6)).unwrap();
        let mut writer = s.try_clone().unwrap();
        let sender = std::thread::spawn(move || {
            let _ = writer.write_all(&down);
            let _ = writer.shutdown(Shutdown::Write);
        });
        let mut got = Vec::new();
        let _ = (&s).read_to_end(&mut got);
        let _ = sender.join();
        let _ = tx.send((got.len(), checksum(&got)));
    });
    (addr, rx)
}

/// A TLS listener's relay moves several MiB up and down at the same time,
/// every byte intact (checksums both ways), and passes each direction's end
/// on: the client's `close_notify` half-closes the destination while the
/// download goes on, and the destination's FIN reaches the client as
/// `close_notify`.
fn a_tls_listener_moves_mebibytes_both_ways_at_once(bin: &str) {
    let dir = dir(bin, "both-ways");
    let ca = TestCa::new(&dir, "test-ca");
    let cert = ca.issue("server", "socks4d", &["localhost"]);
    let server = Server::start_with(bin, &cert.listen_tls_args());
    let up = payload(6 << 20);
    let down: Vec<u8> = payload((5 << 20) + 4321).iter().map(|b| b ^ 0x5a).collect();
    let (dest, sunk) = send_and_sink(down.clone());
    let mut tls = tls::connect(
        server.listener("tls"),
        tls::client_config(&ca.cert, None),
        "localhost",
    )
    .expect("a TLS handshake");
    tls.sock.set_read_timeout(Some(STEP)).unwrap();
    let (events, early) = socks_over(&mut tls, &connect_to(dest, b""));
    assert!(granted(&events), "{events:?}\n{}", server.log());

    let got = upload_while_downloading(bin, tls, &up, early, &server);
    assert_eq!(got.len(), down.len(), "{bin}: bytes down\n{}", server.log());
    assert_eq!(checksum(&got), checksum(&down), "{bin}: bytes down differ");
    let (len, sum) = sunk.recv_timeout(STEP * 6).expect("the destination's end");
    assert_eq!(len, up.len(), "{bin}: bytes up\n{}", server.log());
    assert_eq!(sum, checksum(&up), "{bin}: bytes up differ");
    let line = server.wait_for("the relay's closed line", |l| says(l, "closed"));
    assert_eq!(field(&line, "outcome"), "done", "{line}");
    assert_eq!(field(&line, "bytes_up"), up.len().to_string(), "{line}");
}

/// Sends `up` through `tls` and then `close_notify` (and a FIN) while it
/// reads what comes back to the peer's end (`close_notify`), on one thread
/// with a non-blocking socket; what came back, after `early`.
fn upload_while_downloading(
    bin: &str,
    tls: tls::TlsClient,
    up: &[u8],
    early: Vec<u8>,
    server: &Server,
) -> Vec<u8> {
    let tls::TlsClient {
        mut conn, mut sock, ..
    } = tls;
    sock.set_nonblocking(true).unwrap();
    let mut got = early;
    let (mut sent, mut closed, mut shut, mut ended) = (0, false, false, false);
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = std::time::Instant::now() + STEP * 6;
    for _ in 0..10_000_000 {
        if ended && shut {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{bin}: stuck at {sent} bytes up, {} down\n{}",
            got.len(),
            server.log()
        );
        let mut progress = false;
        if sent < up.len() {
            let n = conn.writer().write(&up[sent..]).unwrap();
            sent += n;
            progress |= n > 0;
        } else if !closed {
            conn.send_close_notify();
            closed = true;
        }
        while conn.wants_write() {
            match conn.write_tls(&mut sock) {
                Ok(n) => progress |= n > 0,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{bin}: writing: {e}"),
            }
        }
        if closed && !shut && !conn.wants_write() {
            sock.shutdown(Shutdown::Write).unwrap();
            shut = true;
        }
        if !ended {
            match conn.read_tls(&mut sock) {
                Ok(0) => ended = true,
                Ok(_) => progress = true,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{bin}: reading: {e}"),
            }
            conn.process_new_packets()
                .expect("valid TLS from the proxy");
            loop {
                match conn.reader().read(&mut buf) {
                    Ok(0) => {
                        ended = true;
                        break;
                    }
                    Ok(n) => {
                        got.extend_from_slice(&buf[..n]);
                        progress = true;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("{bin}: the download ended without close_notify: {e}"),
                }
            }
        }
        if !progress {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    assert!(ended && shut, "{bin}: the loop ran out");
    got
}
