//! Clients that keep connecting while one of two `reuse_port` processes
//! stops (SIGTERM): none is reset or refused. The stopping process drains
//! its accept queue before its listener closes; what the kernel hashes to
//! it in the moment between its last accept and its close is moved to the
//! other process by `net.ipv4.tcp_migrate_req = 1` (the setting
//! docs/operations.md recommends), set in a network namespace the test
//! makes for itself (root) and removes at the end.

use socks4_tests::e2e::*;
use std::io::Read;
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

socks4_tests::on_every_adapter!(clients_keep_being_served_while_one_process_stops);

/// Runs a command; panics with its output when it fails.
fn sh(args: &[&str]) {
    let (status, out, err) = run(Process::new(args[0]).args(&args[1..]), b"");
    assert!(
        status.success(),
        "{args:?} failed: {err}{}",
        String::from_utf8_lossy(&out)
    );
}

/// An echo on 127.0.0.1:9000 and four clients looping through the proxy at
/// 127.0.0.1:1080 to it (CONNECT, a byte there and back) until the file
/// argv[1] exists, at most 20,000 connections or 60 s; prints `ok N failed
/// M` and the first errors.
const CLIENTS: &str = r#"
import os, socket, struct, sys, threading, time
e = socket.socket(); e.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
e.bind(("127.0.0.1", 9000)); e.listen(512)
def echo(c):
    while True:
        d = c.recv(65536)
        if not d: break
        c.sendall(d)
def serve():
    while True:
        c, _ = e.accept()
        threading.Thread(target=echo, args=(c,), daemon=True).start()
threading.Thread(target=serve, daemon=True).start()
ok, failed, lock = [0], [], threading.Lock()
end = time.time() + 60
def client():
    while not os.path.exists(sys.argv[1]) and time.time() < end and ok[0] + len(failed) < 20000:
        try:
            c = socket.create_connection(("127.0.0.1", 1080), timeout=10)
            c.sendall(struct.pack(">BBH4s", 4, 1, 9000, socket.inet_aton("127.0.0.1")) + b"\0x")
            r = b""
            while len(r) < 9:
                d = c.recv(9 - len(r))
                if not d: raise Exception("closed after %r" % r)
                r += d
            c.close()
            if r[1] != 90 or r[8:] != b"x": raise Exception("reply %r" % r)
            with lock: ok[0] += 1
        except Exception as x:
            with lock: failed.append(repr(x))
ts = [threading.Thread(target=client) for _ in range(4)]
for t in ts: t.start()
print("started", flush=True)
for t in ts: t.join()
print("ok %d failed %d %s" % (ok[0], len(failed), failed[:5]), flush=True)
"#;

/// The namespace, removed on drop.
struct Ns(String);

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Process::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn clients_keep_being_served_while_one_process_stops(bin: &str) {
    let tag = match bin {
        "socks4d-tokio" => "t",
        "socks4d-smol" => "s",
        _ => "a",
    };
    let ns = Ns(format!("s4r{tag}{}", std::process::id()));
    let _ = Process::new("ip")
        .args(["netns", "del", &ns.0])
        .stderr(Stdio::null())
        .status();
    sh(&["ip", "netns", "add", &ns.0]);
    sh(&["ip", "-n", &ns.0, "link", "set", "lo", "up"]);
    sh(&[
        "ip",
        "netns",
        "exec",
        &ns.0,
        "sysctl",
        "-qw",
        "net.ipv4.tcp_migrate_req=1",
    ]);
    let args = [
        "--listen",
        "127.0.0.1:1080",
        "--reuse-port",
        "--shutdown-grace",
        "20s",
    ];
    let mut first = Server::start_in_netns(&ns.0, bin, &args);
    let second = Server::start_in_netns(&ns.0, bin, &args);
    let dir = socks4_tests::scratch::fresh(&format!("reuse-port-stop-{bin}"));
    let stop = dir.join("stop");
    let mut clients = ChildGuard(
        Process::new("ip")
            .args(["netns", "exec", &ns.0, "python3", "-c", CLIENTS])
            .arg(&stop)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3"),
    );
    // Clients flow through both processes; then the first stops.
    let done = |s: &Server| s.count(|l| closed(l) && field(l, "outcome") == "done");
    let deadline = Instant::now() + STEP * 2;
    while done(&first) < 20 || done(&second) < 20 {
        assert!(Instant::now() < deadline, "{bin}: both processes serve");
        std::thread::sleep(Duration::from_millis(20));
    }
    first.signal("TERM");
    first.wait_says("shutting down: no new connections, relays may finish");
    let status = first.wait_exit(STEP * 3);
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(&stop, b"").unwrap();
    let deadline = Instant::now() + STEP * 2;
    while clients.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "{bin}: the clients did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut out = String::new();
    clients
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(status.is_some_and(|s| s.success()), "{bin}: {status:?}");
    let summary = out.lines().last().unwrap_or_default().to_owned();
    let words: Vec<&str> = summary.split_whitespace().collect();
    assert!(words.len() >= 4 && words[0] == "ok", "{bin}: {out}");
    let (ok, failed): (u64, u64) = (words[1].parse().unwrap(), words[3].parse().unwrap());
    assert_eq!(failed, 0, "{bin}: {summary}");
    assert!(ok > 100, "{bin}: {summary}");
    eprintln!(
        "{bin}: {summary}; the first drained {}",
        field(&first.wait_says("listener closed"), "drained")
    );
}
