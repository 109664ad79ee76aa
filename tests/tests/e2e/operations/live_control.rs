//! Live control by identity (issue 29), on every adapter: `ctl conns` lists
//! the connections open (identities, destinations, growing byte counts),
//! also as JSON; `ctl kill` ends one connection, or a client address's,
//! within a second while the others stream on intact; `ctl deny add ... for`
//! lasts through a reload and a restart (the state file) until it expires.

use socks4_tests::e2e::*;
use socks4_tests::tls;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command as Process;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

socks4_tests::on_every_adapter!(
    conns_lists_every_connection_and_kill_ends_the_chosen_ones,
    run_time_denials_last_through_reload_and_restart_until_they_expire,
    every_ctl_command_answers_json,
);

pub(crate) fn ctl(bin: &str, socket: &Path, words: &[&str]) -> (bool, String, String) {
    let (status, out, err) = run(
        Process::new(server_binary(bin))
            .arg("ctl")
            .arg("--socket")
            .arg(socket)
            .args(words),
        b"",
    );
    (
        status.success(),
        String::from_utf8_lossy(&out).into_owned(),
        err,
    )
}

/// A client streaming through the proxy: it writes a chunk, reads the echo
/// back and checks it, until told to stop or the stream ends.
struct Streamer {
    moved: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    /// When and how it ended on its own (`None` while streaming or stopped).
    ended: Arc<Mutex<Option<(Instant, String)>>>,
    thread: Option<JoinHandle<()>>,
}

impl Streamer {
    fn start(mut stream: impl Read + Write + Send + 'static, seed: u8) -> Streamer {
        let moved = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let ended = Arc::new(Mutex::new(None));
        let (m, s, e) = (moved.clone(), stop.clone(), ended.clone());
        let thread = thread::spawn(move || {
            let chunk: Vec<u8> = (0..8192u32)
                .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
                .collect();
            let mut back = vec![0u8; chunk.len()];
            let deadline = Instant::now() + Duration::from_secs(60);
            while !s.load(Ordering::SeqCst) && Instant::now() < deadline {
                let step = stream
                    .write_all(&chunk)
                    .and_then(|()| stream.flush())
                    .and_then(|()| stream.read_exact(&mut back));
                match step {
                    Ok(()) if back == chunk => {
                        m.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                    }
                    Ok(()) => {
                        *e.lock().unwrap() = Some((Instant::now(), "corrupted".into()));
                        return;
                    }
                    Err(err) => {
                        *e.lock().unwrap() = Some((Instant::now(), err.to_string()));
                        return;
                    }
                }
                thread::sleep(Duration::from_millis(20));
            }
        });
        Streamer {
            moved,
            stop,
            ended,
            thread: Some(thread),
        }
    }

    fn moved(&self) -> u64 {
        self.moved.load(Ordering::SeqCst)
    }

    fn ended(&self) -> Option<(Instant, String)> {
        self.ended.lock().unwrap().clone()
    }

    /// Waits until it has moved more than it has now (within `STEP`).
    fn keeps_moving(&self, what: &str) {
        let from = self.moved();
        let deadline = Instant::now() + STEP;
        while self.moved() <= from + 8192 {
            assert!(self.ended().is_none(), "{what} ended: {:?}", self.ended());
            assert!(Instant::now() < deadline, "{what} stopped moving");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (at most `limit`) until it ended on its own; how long it took.
    fn ends_within(&self, limit: Duration, what: &str) -> Duration {
        let since = Instant::now();
        loop {
            if let Some((at, why)) = self.ended() {
                assert_ne!(why, "corrupted", "{what}");
                return at.saturating_duration_since(since);
            }
            assert!(since.elapsed() < limit, "{what} still streams");
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Streamer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A plain SOCKS client from `from` through `proxy` to `dest`, streaming.
fn plain(from: Ipv4Addr, proxy: SocketAddr, dest: SocketAddr, user: &[u8], seed: u8) -> Streamer {
    let c = socks_request_on(connect_from(from, proxy), &connect_to(dest, user), |_| {});
    assert!(granted(&c), "{:?}", c.events);
    Streamer::start(c.stream, seed)
}

/// The `ctl conns --json` entries.
fn conns_json(bin: &str, socket: &Path, filter: &[&str]) -> Vec<serde_json::Value> {
    let mut words = vec!["conns"];
    words.extend_from_slice(filter);
    words.push("--json");
    let (ok, out, err) = ctl(bin, socket, &words);
    assert!(ok, "{err}");
    serde_json::from_str::<Vec<serde_json::Value>>(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn conns_lists_every_connection_and_kill_ends_the_chosen_ones(bin: &str) {
    let tls_server = tls::tls_server(bin, "conns", &["--metrics-listen", "127.0.0.1:0"]);
    let (server, socket) = (&tls_server.server, &tls_server.socket);
    let alice = tls_server.clients.issue("alice", "alice", &[]);
    let (socks, tls_addr) = (server.listener("socks"), server.listener("tls"));
    let (echo_b, echo_c, echo_a, echo_d) = (echo(1), echo(1), echo(1), echo(1));

    let bob = plain(Ipv4Addr::new(127, 0, 0, 2), socks, echo_b, b"bob", 1);
    let carol = plain(Ipv4Addr::new(127, 0, 0, 3), socks, echo_c, b"", 2);
    let mut tls = tls::connect(
        tls_addr,
        tls::client_config(&tls_server.ca, Some(&alice)),
        "localhost",
    )
    .expect("alice's handshake");
    let (events, _) = socks_over(&mut tls, &connect_to(echo_a, b""));
    assert!(matches!(
        events.last(),
        Some(socks4_proto::client::Event::Granted(_))
    ));
    let alice_s = Streamer::start(tls, 3);
    for (s, who) in [(&bob, "bob"), (&carol, "carol"), (&alice_s, "alice")] {
        s.keeps_moving(who);
    }

    let dests = [echo_b, echo_c, echo_a];
    listed(bin, socket, dests, tls_addr, &alice_s);

    // Kill carol's connection by its id: it ends within a second, the
    // others stream on intact.
    let carol_id = conns_json(bin, socket, &["client", "127.0.0.3"])[0]["id"]
        .as_u64()
        .unwrap()
        .to_string();
    let (ok, out, err) = ctl(bin, socket, &["kill", &carol_id]);
    assert!(ok && out == "killed 1 connection\n", "{out}{err}");
    let took = carol.ends_within(Duration::from_secs(1), "carol");
    assert!(took <= Duration::from_secs(1), "{took:?}");
    let line = server.wait_for("carol's closed line", |l| {
        closed(l) && field(l, "conn") == carol_id
    });
    assert_eq!(field(&line, "outcome"), "killed", "{line}");
    server.wait_for("who killed", |l| {
        says(l, "control: connections killed") && field(l, "by").starts_with("uid ")
    });
    bob.keeps_moving("bob");
    alice_s.keeps_moving("alice");

    // Everything from 127.0.0.2: bob and a second connection of his.
    let bob2 = plain(Ipv4Addr::new(127, 0, 0, 2), socks, echo_d, b"bob", 4);
    bob2.keeps_moving("bob's second");
    let (ok, out, err) = ctl(bin, socket, &["kill", "client", "127.0.0.2", "--json"]);
    assert!(ok, "{err}");
    let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["killed"], 2, "{out}");
    bob.ends_within(Duration::from_secs(1), "bob");
    bob2.ends_within(Duration::from_secs(1), "bob's second");
    alice_s.keeps_moving("alice");
    let left = conns_json(bin, socket, &[]);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["cert"], "alice");
    let metrics = server.metrics();
    assert!(
        metrics.contains("socks4_connections_killed_total 3"),
        "{metrics}"
    );
}

/// `ctl conns` shows bob (to `dests[0]`, user id bob, from 127.0.0.2),
/// carol (`dests[1]`, 127.0.0.3) and alice (`dests[2]`, her certificate,
/// on `tls_addr`), with counts that grow; filtered and sorted as asked.
fn listed(
    bin: &str,
    socket: &Path,
    dests: [SocketAddr; 3],
    tls_addr: SocketAddr,
    alice_s: &Streamer,
) {
    let socket = socket.to_path_buf();
    // All three listed, with their destinations and identities.
    let (ok, text, err) = ctl(bin, &socket, &["conns"]);
    assert!(ok, "{err}");
    assert_eq!(text.lines().count(), 3, "{text}");
    let line_of = |dest: SocketAddr| {
        text.lines()
            .find(|l| l.contains(&format!("dest={dest} ")))
            .unwrap_or_else(|| panic!("no line for {dest}:\n{text}"))
            .to_owned()
    };
    let b = line_of(dests[0]);
    assert!(
        b.contains("client=127.0.0.2:") && b.contains("user=bob(claimed)"),
        "{b}"
    );
    assert!(
        b.contains(&format!("reached={}", dests[0])) && b.contains("state=relaying"),
        "{b}"
    );
    assert!(line_of(dests[1]).contains("client=127.0.0.3:"), "{text}");
    let a = line_of(dests[2]);
    assert!(
        a.contains("cert=alice(verified)") && a.contains(&format!("listener={tls_addr}")),
        "{a}"
    );

    // As JSON, filtered by certificate: alice alone; and the counts grow.
    let only = conns_json(bin, &socket, &["cert", "alice"]);
    assert_eq!(only.len(), 1, "{only:?}");
    assert_eq!(only[0]["cert"], "alice", "{only:?}");
    assert_eq!(only[0]["dest"], dests[2].to_string(), "{only:?}");
    assert_eq!(only[0]["state"], "relaying", "{only:?}");
    let before = only[0]["bytes_up"].as_u64().unwrap();
    alice_s.keeps_moving("alice");
    let after = conns_json(bin, &socket, &["cert", "alice"])[0]["bytes_up"]
        .as_u64()
        .unwrap();
    assert!(after > before, "bytes_up {before} -> {after}");
    let all = conns_json(bin, &socket, &["--sort", "bytes"]);
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(all.windows(2).all(|w| {
        let total = |v: &serde_json::Value| {
            v["bytes_up"].as_u64().unwrap() + v["bytes_down"].as_u64().unwrap()
        };
        total(&w[0]) >= total(&w[1])
    }));
}

/// A CONNECT from `from` through `proxy` to `echo`: whether it was granted.
fn served(from: Ipv4Addr, proxy: SocketAddr, echo: SocketAddr) -> bool {
    granted(&socks_request_on(
        connect_from(from, proxy),
        &connect_to(echo, b""),
        |_| {},
    ))
}

fn run_time_denials_last_through_reload_and_restart_until_they_expire(bin: &str) {
    let dir = socks4_tests::scratch::fresh(&format!("runtime-lists-{bin}"));
    let socket = dir.join("control.sock");
    let state = dir.join("state.json");
    let conf = dir.join("socks4d.toml");
    std::fs::write(&conf, "[access]\ndeny = [\"192.0.2.0/24\"]\n").unwrap();
    let args = [
        "--config",
        conf.to_str().unwrap(),
        "--control-socket",
        socket.to_str().unwrap(),
        "--state-file",
        state.to_str().unwrap(),
    ];
    let mut server = Server::start(bin, &args);
    let echo = echo(16);
    let (banned, other) = (Ipv4Addr::new(127, 0, 0, 3), Ipv4Addr::new(127, 0, 0, 2));
    assert!(served(banned, server.addr, echo));

    // Before asking: the entry cannot expire sooner than 2 s after this.
    let added = Instant::now();
    let (ok, out, err) = ctl(
        bin,
        &socket,
        &[
            "deny",
            "add",
            "127.0.0.3",
            "for",
            "2s",
            "reason",
            "too",
            "many",
            "scans",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("added 127.0.0.3/32"), "{out}");
    assert!(!served(banned, server.addr, echo), "refused at once");
    assert!(served(other, server.addr, echo), "only that address");
    entries_show_their_source(bin, &socket);

    // A reload keeps it.
    let outcome = server.reload();
    assert!(
        says(&outcome, "configuration reloaded"),
        "{bin}: {}",
        server.log()
    );
    assert!(!served(banned, server.addr, echo), "refused after SIGHUP");

    // So does a restart with the state file.
    server.signal("TERM");
    assert!(server.wait_exit(STEP).is_some());
    let server = Server::start(bin, &args);
    server.wait_says("run-time list entries restored");
    let refused_again = !served(banned, server.addr, echo);
    let took = added.elapsed();
    assert!(
        refused_again,
        "served after the restart, {took:?} after the entry was added"
    );

    // Served again once it expired, which the log says.
    let line = server.wait_for("the expiry", |l| {
        field(l, "list") == "deny" && field(l, "net") == "127.0.0.3/32"
    });
    assert!(
        line["message"].as_str().unwrap().contains("expired"),
        "{line}"
    );
    assert!(added.elapsed() >= Duration::from_secs(2));
    assert!(served(banned, server.addr, echo), "served after the expiry");
    assert!(!deny_list(bin, &socket)
        .iter()
        .any(|e| e["net"] == "127.0.0.3/32"));
    // And deleted from the state file too, in time.
    let deadline = Instant::now() + STEP;
    while std::fs::read_to_string(&state)
        .unwrap_or_default()
        .contains("127.0.0.3")
    {
        assert!(
            Instant::now() < deadline,
            "the expired entry stays in the state file"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

fn every_ctl_command_answers_json(bin: &str) {
    let dir = socks4_tests::scratch::fresh(&format!("ctl-json-{bin}"));
    let socket = dir.join("control.sock");
    let server = Server::start(bin, &["--control-socket", socket.to_str().unwrap()]);
    let echo = echo(1);
    assert!(granted(&socks_request(
        server.addr,
        &connect_to(echo, b""),
        |_| {}
    )));
    let commands: &[&[&str]] = &[
        &["stats"],
        &["clients"],
        &["check", "127.0.0.1", "to", "127.0.0.1:80"],
        &["reload"],
        &["parents"],
        &["resolve", "localhost"],
        &["cache", "flush"],
        &["deny", "add", "192.0.2.1", "for", "1h", "reason", "test"],
        &["deny", "list"],
        &["deny", "del", "192.0.2.1"],
        &["exempt", "list"],
        &["conns", "--sort", "age"],
        &["kill", "client", "192.0.2.0/24"],
    ];
    for (i, words) in commands.iter().enumerate() {
        // The flag before the command, or a word after it.
        let args = match i % 2 {
            0 => [&["--json"], *words].concat(),
            _ => [*words, &["--json"]].concat(),
        };
        let (ok, out, err) = ctl(bin, &socket, &args);
        assert!(ok, "{args:?}: {err}");
        let value: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"));
        assert!(value.is_object() || value.is_array(), "{args:?}: {out}");
    }
    let (_, out, _) = ctl(
        bin,
        &socket,
        &["check", "127.0.0.1", "to", "127.0.0.1:80", "--json"],
    );
    let check: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(check["decision"], "pass", "{out}");
    assert_eq!(check["allowed_by_lists"], true, "{out}");
    // Errors keep their exit status.
    let (status, _, err) = run(
        Process::new(server_binary(bin))
            .args(["ctl", "--json", "--socket"])
            .arg(&socket)
            .args(["deny", "del", "192.0.2.9"]),
        b"",
    );
    assert_eq!(status.code(), Some(1), "{err}");
}

/// `ctl deny list --json`.
fn deny_list(bin: &str, socket: &Path) -> Vec<serde_json::Value> {
    let (ok, out, err) = ctl(bin, socket, &["deny", "list", "--json"]);
    assert!(ok, "{err}");
    serde_json::from_str(&out).unwrap()
}

/// The run-time entry for 127.0.0.3 shows its reason, who added it and its
/// expiry; the file's entry is marked as such, and `deny del` leaves it.
fn entries_show_their_source(bin: &str, socket: &Path) {
    let entries = deny_list(bin, socket);
    let entry = entries.iter().find(|e| e["net"] == "127.0.0.3/32").unwrap();
    assert_eq!(entry["source"], "runtime", "{entries:?}");
    assert_eq!(entry["reason"], "too many scans", "{entries:?}");
    assert!(entry["added_by"].as_str().unwrap().starts_with("uid "));
    assert!(entry["expires_at"].is_string(), "{entries:?}");
    let file = entries.iter().find(|e| e["net"] == "192.0.2.0/24").unwrap();
    assert_eq!(file["source"], "file", "{entries:?}");
    // A file entry changes in the file only.
    let (ok, _, err) = ctl(bin, socket, &["deny", "del", "192.0.2.0/24"]);
    assert!(!ok && err.contains("config file"), "{err}");
}
