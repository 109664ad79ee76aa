//! Limits per identity (issue 29, `[limits] key`) on every adapter. With
//! `key = "cert"`: one certificate over two client addresses has one
//! bandwidth budget, two certificates from one address two (throughput
//! measured after the first second's burst, within 15% of the limit); the
//! per-client connection cap counts a certificate's connections from every
//! address, and a connection's place leaves its address once admitted.
//! With `key = "ident"`: the cap counts the user identd confirmed (a stub
//! identd on 127.0.0.2 and 127.0.0.3), never a user id identd denies; and
//! `key = "ident"` without `ident = "require"` is refused at start.
//! `ctl clients` shows the keys. Certificates come from the test's own
//! authorities; clients bind 127.0.0.2, .3 and .4 to be several addresses.

use socks4_proto::client::Event;
use socks4_proto::ReplyCode;
use socks4_tests::e2e::*;
use socks4_tests::tls::{tls_server, TlsClient};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command as Process;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

socks4_tests::on_every_adapter!(
    a_certificate_has_one_bandwidth_budget_over_its_addresses,
    the_connection_cap_counts_a_certificate_over_its_addresses,
    the_connection_cap_counts_the_user_identd_confirms,
    a_key_of_ident_needs_ident_require,
);

const A: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const B: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
const C: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 4);

/// `ctl clients --json`, by client.
fn clients(bin: &str, socket: &Path) -> HashMap<String, serde_json::Value> {
    let (status, out, err) = run(
        Process::new(server_binary(bin))
            .args(["ctl", "--socket"])
            .arg(socket)
            .args(["clients", "--json"]),
        b"",
    );
    assert!(status.success(), "{err}");
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out).unwrap();
    list.into_iter()
        .map(|c| (c["client"].as_str().unwrap().to_owned(), c))
        .collect()
}

/// A peer that sends each of `count` connections bytes until it closes
/// (at most 64 MiB, for at most a minute).
fn endless_source(count: usize) -> SocketAddr {
    peer(count, |mut s| {
        let chunk = vec![0x5au8; 64 * 1024];
        let until = Instant::now() + Duration::from_secs(60);
        for _ in 0..1024 {
            if Instant::now() > until || s.write_all(&chunk).is_err() {
                return;
            }
        }
    })
}

/// Reads a relayed stream in a thread, counting the bytes, until dropped.
struct Reader {
    got: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Reader {
    fn start(mut stream: TlsClient) -> Reader {
        let (got, stop) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (g, s) = (got.clone(), stop.clone());
        let thread = thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            let until = Instant::now() + Duration::from_secs(60);
            while !s.load(Ordering::SeqCst) && Instant::now() < until {
                match stream.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        g.fetch_add(n as u64, Ordering::SeqCst);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => return,
                }
            }
        });
        Reader {
            got,
            stop,
            thread: Some(thread),
        }
    }

    fn got(&self) -> u64 {
        self.got.load(Ordering::SeqCst)
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const MIB: f64 = (1 << 20) as f64;

/// alice downloads from 127.0.0.2 and 127.0.0.3 at once, bob and carol
/// from 127.0.0.4, each client's bandwidth 1 MiB/s: after the first
/// second's burst, alice's two relays move 1 MiB/s together (not twice
/// it), bob and carol 1 MiB/s each (not half of it).
fn a_certificate_has_one_bandwidth_budget_over_its_addresses(bin: &str) {
    let s = tls_server(
        bin,
        "key-cert-bw",
        &["--limits-key", "cert", "--client-bandwidth", "1MiB/s"],
    );
    let alice = s.clients.issue("alice", "alice", &[]);
    let bob = s.clients.issue("bob", "bob", &[]);
    let carol = s.clients.issue("carol", "carol", &[]);
    let src = endless_source(4);
    let downloads: Vec<(&'static str, Reader)> = [
        (A, &alice, "alice"),
        (B, &alice, "alice"),
        (C, &bob, "bob"),
        (C, &carol, "carol"),
    ]
    .into_iter()
    .map(|(from, who, name)| {
        let (stream, reply) = s.request(from, who, src);
        assert!(
            matches!(reply, Event::Granted(_)),
            "{bin}: {name}: {reply:?}"
        );
        (name, Reader::start(stream))
    })
    .collect();
    let per_name = |d: &[(&'static str, Reader)]| {
        let mut by: HashMap<&'static str, u64> = HashMap::new();
        for (name, r) in d {
            *by.entry(*name).or_default() += r.got();
        }
        by
    };
    // The bucket starts full (a second's worth): measure after it.
    thread::sleep(Duration::from_millis(1500));
    let (t0, before) = (Instant::now(), per_name(&downloads));
    thread::sleep(Duration::from_secs(3));
    let (t1, after) = (Instant::now(), per_name(&downloads));
    let secs = (t1 - t0).as_secs_f64();
    for name in ["alice", "bob", "carol"] {
        let rate = (after[name] - before[name]) as f64 / secs / MIB;
        assert!(
            (0.85..=1.15).contains(&rate),
            "{bin}: {name} moved {rate:.3} MiB/s, not within 15% of 1 MiB/s ({after:?} - {before:?} in {secs:.2} s)"
        );
    }
    certificates_listed(bin, &s.socket, downloads);
}

/// `ctl clients` while alice's two relays and bob's and carol's run: the
/// certificates hold the connections, their addresses none; once the
/// relays close, their bytes are the certificates'; the text form says
/// `key=cert`.
fn certificates_listed(bin: &str, socket: &Path, downloads: Vec<(&'static str, Reader)>) {
    let table = clients(bin, socket);
    let alice_row = &table["cert:alice"];
    assert_eq!(alice_row["key"], "cert", "{table:?}");
    assert_eq!(alice_row["active"], 2, "{table:?}");
    assert_eq!(table["cert:bob"]["active"], 1, "{table:?}");
    for addr in ["127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        if let Some(row) = table.get(addr) {
            assert_eq!(
                row["active"], 0,
                "{addr} gave its places to the certificates: {table:?}"
            );
            assert_eq!(row["key"], "address", "{table:?}");
        }
    }
    drop(downloads);
    // The relays' bytes count under the certificates, once they close.
    let deadline = Instant::now() + STEP;
    loop {
        let table = clients(bin, socket);
        let down = table["cert:alice"]["bytes_down"].as_u64().unwrap();
        if down > 0 {
            assert_eq!(
                table
                    .get("127.0.0.2")
                    .map_or(0, |r| r["bytes_down"].as_u64().unwrap()),
                0
            );
            break;
        }
        assert!(Instant::now() < deadline, "{bin}: {table:?}");
        thread::sleep(Duration::from_millis(50));
    }
    let (ok, out, _) = {
        let (status, out, err) = run(
            Process::new(server_binary(bin))
                .args(["ctl", "--socket"])
                .arg(socket)
                .arg("clients"),
            b"",
        );
        (
            status.success(),
            String::from_utf8_lossy(&out).into_owned(),
            err,
        )
    };
    assert!(ok, "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("cert:alice ") && l.ends_with(" key=cert")),
        "{bin}: {out}"
    );
}

/// With a cap of two connections per client keyed by certificate: alice's
/// connections from 127.0.0.2 and 127.0.0.3 take both places, a third from
/// 127.0.0.4 gets 91; her connection from 127.0.0.2 no longer counts under
/// that address (two plain clients from it are served); once one of hers
/// closes, she is served again.
fn the_connection_cap_counts_a_certificate_over_its_addresses(bin: &str) {
    let s = tls_server(
        bin,
        "key-cert-cap",
        &["--limits-key", "cert", "--max-connections-per-client", "2"],
    );
    let alice = s.clients.issue("alice", "alice", &[]);
    let dest = echo(8);
    let (first, reply) = s.request(A, &alice, dest);
    assert!(matches!(reply, Event::Granted(_)), "{bin}: {reply:?}");
    let (_second, reply) = s.request(B, &alice, dest);
    assert!(matches!(reply, Event::Granted(_)), "{bin}: {reply:?}");
    let (_third, reply) = s.request(C, &alice, dest);
    assert!(
        matches!(reply, Event::Rejected(r) if r.code == ReplyCode::Rejected),
        "{bin}: {reply:?}"
    );
    let line = s.server.wait_for("the refusal's closed line", |l| {
        closed(l) && field(l, "cert") == "alice" && field(l, "reply") == "91"
    });
    assert_eq!(field(&line, "outcome"), "client_cap", "{bin}: {line}");
    // 127.0.0.2's own places are free: two plain clients from it.
    let plain: Vec<_> = (0..2)
        .map(|_| {
            let c = socks_request_on(
                connect_from(A, s.server.addr),
                &connect_to(dest, b""),
                |_| {},
            );
            assert!(granted(&c), "{bin}: {:?}\n{}", c.events, s.server.log());
            c
        })
        .collect();
    let table = clients(bin, &s.socket);
    assert_eq!(table["cert:alice"]["active"], 2, "{table:?}");
    assert_eq!(
        table["cert:alice"]["limited"]["connections"], 1,
        "{table:?}"
    );
    assert_eq!(table["127.0.0.2"]["active"], 2, "{table:?}");
    drop(first);
    let deadline = Instant::now() + STEP;
    loop {
        let (_again, reply) = s.request(C, &alice, dest);
        if matches!(reply, Event::Granted(_)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{bin}: alice's place never came back"
        );
        thread::sleep(Duration::from_millis(50));
    }
    drop(plain);
}

/// Who identd on each client address says owns a connection, by the
/// client's port.
type Owners = Arc<Mutex<HashMap<u16, &'static str>>>;

/// A stub identd on 127.0.0.2 and 127.0.0.3 (one port, for the server's
/// `ident_port`), answering from `owners` (`NO-USER` for a port it does
/// not know); its port.
fn identd(owners: &Owners) -> u16 {
    for _ in 0..20 {
        let port = free_port_on(A);
        let (Ok(a), Ok(b)) = (TcpListener::bind((A, port)), TcpListener::bind((B, port))) else {
            continue;
        };
        for listener in [a, b] {
            let owners = owners.clone();
            thread::spawn(move || {
                for s in listener.incoming().take(32).flatten() {
                    let owners = owners.clone();
                    thread::spawn(move || answer(s, &owners));
                }
            });
        }
        return port;
    }
    panic!("no port free on both 127.0.0.2 and 127.0.0.3");
}

fn answer(s: TcpStream, owners: &Owners) {
    s.set_read_timeout(Some(STEP)).unwrap();
    let mut line = String::new();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let query = line.trim();
    let theirs: Option<u16> = query.split(',').next().and_then(|p| p.trim().parse().ok());
    let owner = theirs.and_then(|p| owners.lock().unwrap().get(&p).copied());
    let reply = match owner {
        Some(user) => format!("{query} : USERID : UNIX : {user}\r\n"),
        None => format!("{query} : ERROR : NO-USER\r\n"),
    };
    let _ = (&s).write_all(reply.as_bytes());
}

/// A SOCKS request from `from` with `user_id`, identd saying the
/// connection is `owner`'s.
fn request_as(
    owners: &Owners,
    from: Ipv4Addr,
    proxy: SocketAddr,
    dest: SocketAddr,
    user_id: &'static [u8],
    owner: &'static str,
) -> Client {
    let s = connect_from(from, proxy);
    let port = s.local_addr().unwrap().port();
    owners.lock().unwrap().insert(port, owner);
    socks_request_on(s, &connect_to(dest, user_id), |_| {})
}

/// With `key = "ident"` and a cap of one connection per client: dave
/// (confirmed by identd) from 127.0.0.2 holds his place, dave from
/// 127.0.0.3 gets 91, erin from 127.0.0.3 is served; a client that claims
/// to be dave and whom identd names mallory gets 93 and counts as nobody.
fn the_connection_cap_counts_the_user_identd_confirms(bin: &str) {
    let owners: Owners = Default::default();
    let port = identd(&owners).to_string();
    let dir = socks4_tests::scratch::fresh(&format!("key-ident-{bin}"));
    let socket = dir.join("control.sock");
    let server = Server::start(
        bin,
        &[
            "--control-socket",
            socket.to_str().unwrap(),
            "--ident",
            "require",
            "--ident-port",
            &port,
            "--limits-key",
            "ident",
            "--max-connections-per-client",
            "1",
        ],
    );
    let dest = echo(8);
    let dave = request_as(&owners, A, server.addr, dest, b"dave", "dave");
    assert!(granted(&dave), "{bin}: {:?}\n{}", dave.events, server.log());
    let again = request_as(&owners, B, server.addr, dest, b"dave", "dave");
    assert_eq!(
        rejected_with(&again),
        Some(ReplyCode::Rejected),
        "{bin}: {:?}",
        again.events
    );
    // Until its request is admitted a connection counts under its address
    // (cap one): the refused one must be gone before erin's arrives.
    let line = server.wait_for("dave's refusal", |l| {
        closed(l) && field(l, "outcome") == "client_cap"
    });
    assert_eq!(field(&line, "user"), "dave", "{bin}: {line}");
    let erin = request_as(&owners, B, server.addr, dest, b"erin", "erin");
    assert!(granted(&erin), "{bin}: {:?}\n{}", erin.events, server.log());
    let claim = request_as(&owners, B, server.addr, dest, b"dave", "mallory");
    assert_eq!(
        rejected_with(&claim),
        Some(ReplyCode::IdentMismatch),
        "{bin}: {:?}",
        claim.events
    );
    let table = clients(bin, &socket);
    assert_eq!(table["ident:dave"]["key"], "ident", "{table:?}");
    assert_eq!(table["ident:dave"]["active"], 1, "{table:?}");
    assert_eq!(
        table["ident:dave"]["limited"]["connections"], 1,
        "{table:?}"
    );
    assert_eq!(table["ident:erin"]["active"], 1, "{table:?}");
    assert!(!table.contains_key("ident:mallory"), "{table:?}");
    for addr in ["127.0.0.2", "127.0.0.3"] {
        assert_eq!(table[addr]["active"], 0, "{addr}: {table:?}");
    }
    drop((dave, erin));
}

/// `key = "ident"` keys on what only `ident = "require"` confirms: another
/// mode is refused at start, with a message that says what to do.
fn a_key_of_ident_needs_ident_require(bin: &str) {
    for ident in ["off", "log"] {
        let (status, _, err) = run(
            Process::new(server_binary(bin)).args([
                "--listen",
                "127.0.0.1:0",
                "--ident",
                ident,
                "--limits-key",
                "ident",
            ]),
            b"",
        );
        assert!(!status.success(), "{bin}: ident = {ident} was accepted");
        assert!(
            err.contains("key = \"ident\"") && err.contains("ident = \"require\""),
            "{bin}: {err}"
        );
    }
}
