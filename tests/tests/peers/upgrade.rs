//! The binary upgrade of a socket-activated server, on every adapter: a
//! server started by `systemd-socket-activate` (its SOCKS listener passed
//! with `LISTEN_FDS`, `listen` not bound) upgrades with `ctl upgrade`; the
//! new process holds and serves that inherited socket (`ss`, curl through
//! it) once the old one exited.

use socks4_tests::e2e::*;
use std::net::{SocketAddr, TcpStream};
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

socks4_tests::on_every_adapter!(a_socket_activated_server_upgrades_with_its_socket);

/// Whether process `pid` runs (a zombie does not count).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'))
    })
}

/// Sends SIGTERM to `pid` (a process this test started, through an
/// upgrade) and waits, at most `STEP`, for it to be gone.
fn stop(pid: u32) {
    let _ = Process::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let deadline = Instant::now() + STEP;
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if alive(pid) {
        let _ = Process::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
}

fn curl_through(listen: &str, bin: &str, body: &'static str) {
    let web = http(1, body);
    let url = format!("http://127.0.0.1:{}/", web.port());
    let (status, out, err) = run(
        Process::new("curl").args(["-sS", "--max-time", "10", "--socks4", listen, &url]),
        b"",
    );
    assert!(status.success(), "{bin}: curl: {err}");
    assert_eq!(String::from_utf8_lossy(&out), body, "{bin}");
}

fn a_socket_activated_server_upgrades_with_its_socket(bin: &str) {
    // An address of this test's own, one per adapter (the binary names
    // differ in length), as in `operations`' socket activation test.
    let ip = std::net::Ipv4Addr::new(127, 0, 32, bin.len() as u8);
    let listen = format!("{ip}:{}", free_port_on(ip));
    let dir = socks4_tests::scratch::fresh(&format!("upgrade-activated-{bin}"));
    let control = dir.join("ctl.sock");
    let child = Process::new("systemd-socket-activate")
        .args(["-l", &listen])
        .arg(server_binary(bin))
        .args(["--log-format", "json", "--shutdown-grace", "5s"])
        .arg("--control-socket")
        .arg(&control)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("systemd-socket-activate (Debian package systemd; run .ci/setup)");
    let mut old = ChildGuard(child);
    let proxy: SocketAddr = listen.parse().unwrap();
    // It starts the server on the first connection.
    let deadline = Instant::now() + STEP;
    while TcpStream::connect_timeout(&proxy, Duration::from_millis(100)).is_err()
        || !control.exists()
    {
        assert!(
            Instant::now() < deadline,
            "{bin}: the server did not start on {listen}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    curl_through(&listen, bin, "before the upgrade");
    let (status, out, err) = run(
        Process::new(server_binary(bin))
            .arg("ctl")
            .arg("--socket")
            .arg(&control)
            .args(["--json", "upgrade"]),
        b"",
    );
    assert!(
        status.success(),
        "{bin}: ctl upgrade: {}{err}",
        String::from_utf8_lossy(&out)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let new = answer["new_pid"].as_u64().unwrap() as u32;
    assert_eq!(
        answer["old_pid"].as_u64(),
        Some(u64::from(old.0.id())),
        "{bin}: {answer}"
    );
    // The old process exits (nothing to drain); the new one holds the socket.
    let deadline = Instant::now() + STEP;
    while old.0.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "{bin}: the old process still runs"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(alive(new), "{bin}: the new process runs");
    curl_through(&listen, bin, "after the upgrade");
    // The new process holds the listening socket.
    let ss = Process::new("ss")
        .args(["-Hltnp", "src", &listen])
        .output()
        .unwrap();
    let ss = String::from_utf8_lossy(&ss.stdout);
    assert!(ss.contains(&format!("pid={new},")), "{bin}: {ss}");
    stop(new);
    assert!(!alive(new), "{bin}: the new process stopped");
}
