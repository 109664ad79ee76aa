//! The operator's interfaces hold their own bounds: the metrics listener has
//! its own connection cap and request timeout (idle scrapers cannot pile
//! up), the control socket a per-request timeout (a client that trickles
//! its request cannot hold the control thread), and the server never deletes
//! a file at the control socket's path that is not a socket. When the
//! descriptors run out (EMFILE), the SOCKS listeners and the control socket
//! pause their accepts rather than spin, and serve again once there is room.

use socks4_tests::e2e::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::process::Command as Process;
use std::time::{Duration, Instant};

socks4_tests::on_every_adapter!(
    the_metrics_listener_has_its_own_cap_and_timeout,
    the_control_socket_times_out_a_trickled_request,
    a_file_at_the_control_socket_path_is_never_deleted,
    descriptors_running_out_pause_accepting_without_spinning,
);

/// Whether the server closes `s` within `limit` (a read sees the end or a
/// reset, not a timeout).
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 1];
    match s.read(&mut buf) {
        Ok(n) => n == 0,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

fn the_metrics_listener_has_its_own_cap_and_timeout(bin: &str) {
    let server = Server::start(
        bin,
        &[
            "--metrics-listen",
            "127.0.0.1:0",
            "--max-metrics-connections",
            "2",
            "--metrics-timeout",
            "1s",
        ],
    );
    let addr: SocketAddr = field(&server.wait_says("serving metrics"), "metrics")
        .parse()
        .unwrap();
    // Two idle scrapers hold the listener's two places.
    let mut idle: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect_timeout(&addr, STEP).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    // A third is closed at once.
    let mut third = TcpStream::connect_timeout(&addr, STEP).unwrap();
    let started = Instant::now();
    assert!(closed_within(&mut third, Duration::from_secs(3)), "{bin}");
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{bin}: the third scraper waited {:?}",
        started.elapsed()
    );
    // The idle ones are closed at the timeout.
    for s in &mut idle {
        let started = Instant::now();
        assert!(closed_within(s, Duration::from_secs(5)), "{bin}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{bin}: an idle scraper kept for {:?}",
            started.elapsed()
        );
    }
    // Then scraping works again.
    assert!(server.metrics().contains("socks4_build_info"), "{bin}");
}

fn the_control_socket_times_out_a_trickled_request(bin: &str) {
    let dir = socks4_tests::scratch::fresh(&format!("ctl-timeout-{bin}"));
    let socket = dir.join("control.sock");
    let server = Server::start(
        bin,
        &[
            "--control-socket",
            socket.to_str().unwrap(),
            "--control-timeout",
            "1s",
        ],
    );
    // A client that sends its request a byte at a time, never finishing it.
    let path = socket.clone();
    let trickler = std::thread::spawn(move || {
        let mut s = UnixStream::connect(&path).unwrap();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(6) {
            if s.write_all(b" ").is_err() {
                return started.elapsed();
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        started.elapsed()
    });
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let (status, out, err) = run(
        Process::new(server_binary(bin))
            .args(["ctl", "--socket"])
            .arg(&socket)
            .arg("stats"),
        b"",
    );
    let took = started.elapsed();
    assert!(status.success(), "{bin}: {err}");
    assert!(String::from_utf8_lossy(&out).contains("opened"), "{bin}");
    assert!(
        took < Duration::from_secs(4),
        "{bin}: ctl waited {took:?} behind a trickling client"
    );
    let cut = trickler.join().unwrap();
    assert!(
        cut < Duration::from_secs(6),
        "{bin}: the trickler was never cut"
    );
    drop(server);
}

fn a_file_at_the_control_socket_path_is_never_deleted(bin: &str) {
    let dir = socks4_tests::scratch::fresh(&format!("ctl-file-{bin}"));
    let path = dir.join("control.sock");
    std::fs::write(&path, "precious").unwrap();
    let (status, _, err) = run(
        Process::new(server_binary(bin)).args([
            "--listen",
            "127.0.0.1:0",
            "--control-socket",
            path.to_str().unwrap(),
        ]),
        b"",
    );
    assert!(!status.success(), "{bin}: started over a regular file");
    assert!(err.contains("not a socket"), "{bin}: {err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious", "{bin}");
}

/// Sets the soft descriptor limit of process `pid` (prlimit, util-linux).
fn set_soft_nofile(pid: u32, soft: usize) {
    let status = Process::new("prlimit")
        .arg("--pid")
        .arg(pid.to_string())
        .arg(format!("--nofile={soft}:"))
        .status()
        .expect("prlimit (util-linux)");
    assert!(status.success(), "prlimit --nofile={soft}:");
}

fn descriptors_running_out_pause_accepting_without_spinning(bin: &str) {
    let dir = socks4_tests::scratch::fresh(&format!("emfile-{bin}"));
    let socket = dir.join("control.sock");
    let server = Server::start(bin, &["--control-socket", socket.to_str().unwrap()]);
    let pid = server.pid();
    let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    // Room for two more descriptors: a few connections are accepted, the
    // rest wait in the queue while every accept fails with EMFILE.
    set_soft_nofile(pid, open + 2);
    let held: Vec<TcpStream> = (0..8)
        .map(|_| TcpStream::connect_timeout(&server.addr, STEP).unwrap())
        .collect();
    let path = socket.clone();
    let ctl = std::thread::spawn(move || UnixStream::connect(&path).ok());
    server.wait_says("accept failed");
    let (cpu_before, started) = (socks4_tests::procfs::cpu(pid), Instant::now());
    std::thread::sleep(Duration::from_secs(2));
    let spent = socks4_tests::procfs::cpu(pid) - cpu_before;
    assert!(
        spent < Duration::from_millis(500),
        "{bin}: {spent:?} of CPU in {:?} with no descriptor to accept with",
        started.elapsed()
    );
    let warnings = server.count(|l| says(l, "accept failed"));
    assert!(warnings <= 20, "{bin}: {warnings} accept warnings in 2 s");
    // Room again: the queued connections are taken, new ones served, and
    // the control socket answers.
    set_soft_nofile(pid, 1024);
    drop(held);
    drop(ctl.join().unwrap());
    let deadline = Instant::now() + STEP;
    loop {
        let c = socks_request(server.addr, &connect_to(echo(1), b""), |_| {});
        if granted(&c) {
            break;
        }
        assert!(Instant::now() < deadline, "{bin}: not served after EMFILE");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, out, err) = run(
        Process::new(server_binary(bin))
            .args(["ctl", "--socket"])
            .arg(&socket)
            .arg("stats"),
        b"",
    );
    assert!(status.success(), "{bin}: ctl after EMFILE: {err}");
    assert!(String::from_utf8_lossy(&out).contains("opened"), "{bin}");
}
