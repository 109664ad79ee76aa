//! What an operator does to a running server, on every adapter: SIGHUP
//! reloads a good file and keeps the old rules on a broken one (command-line
//! flags stay on top), SIGTERM lets a transfer in flight finish intact and
//! cuts the relays still open when the grace period ends, the
//! control socket and `ctl` change the lists, systemd's readiness, reload and
//! stop notifications (`NOTIFY_SOCKET`), the pid file, and `--version`
//! naming the commit a bug report is about. (Prometheus, socket
//! activation and the privilege drop need a peer program or root: they are in
//! `tests/tests/peers/operations.rs`.) Live control, `ctl conns`, `ctl
//! kill` and run-time lists that last, is in `live_control`; listeners and
//! caps a reload changes in `reload_listeners`; TCP keepalive timers (seen
//! with `ss`) in `keepalive`; the binary upgrade that hands the listeners to
//! a new process (`ctl upgrade`) in `upgrade`.

mod keepalive;
pub(crate) mod live_control;
mod reload_listeners;
mod upgrade;

use socks4_proto::ReplyCode;
use socks4_tests::e2e::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command as Process;

socks4_tests::on_every_adapter!(
    sighup_reloads_good_files_and_keeps_old_rules_on_broken_ones,
    sighup_keeps_command_line_flags_on_top,
    sigterm_lets_a_transfer_in_flight_finish_intact,
    relays_still_open_when_the_grace_period_ends_are_cut,
    the_control_socket_changes_the_lists,
    readiness_reload_and_stop_are_notified,
    the_pid_file_is_written_and_removed,
    a_failed_ctl_reload_is_logged_as_a_failed_sighup_is,
    the_version_names_the_git_commit,
);

fn write_config(path: &std::path::Path, rules: &str) {
    std::fs::write(path, format!("[access]\nrules = \"\"\"\n{rules}\n\"\"\"\n")).unwrap();
}

fn sighup_reloads_good_files_and_keeps_old_rules_on_broken_ones(bin: &str) {
    let dir = socks4_tests::scratch::dir(&format!("hup-{bin}"));
    let conf = dir.join("socks4d.toml");
    write_config(&conf, "pass from 127.0.0.0/8 to any");
    let server = Server::start(bin, &["--config", conf.to_str().unwrap()]);
    let echo = echo(8);
    let try_connect = || socks_request(server.addr, &connect_to(echo, b""), |_| {});
    assert!(granted(&try_connect()), "{bin}: allowed at first");

    write_config(
        &conf,
        &format!(
            "block from any to any port eq {} reply 91\npass from 127.0.0.0/8 to any",
            echo.port()
        ),
    );
    assert!(says(&server.reload(), "configuration reloaded"), "{bin}");
    assert_eq!(
        rejected_with(&try_connect()),
        Some(ReplyCode::Rejected),
        "{bin}: new rules apply"
    );

    std::fs::write(&conf, "[access]\nrules = \"pass frm nowhere\"\n").unwrap();
    let failed = server.reload();
    assert!(
        says(&failed, "reload failed, keeping the old configuration"),
        "{bin}: {failed}"
    );
    assert!(
        field(&failed, "error").contains("line 2, column 15"),
        "{bin}: the error says where\n{}",
        server.log()
    );
    assert_eq!(
        rejected_with(&try_connect()),
        Some(ReplyCode::Rejected),
        "{bin}: old rules stay"
    );
}

fn sighup_keeps_command_line_flags_on_top(bin: &str) {
    // The file asks for IDENT from a port where no identd listens (every
    // request would get 92); the command line turns IDENT off, before and after
    // a reload.
    let dir = socks4_tests::scratch::dir(&format!("hup-cli-{bin}"));
    let conf = dir.join("socks4d.toml");
    let closed = ClosedPort::new();
    let closed_port = closed.port();
    std::fs::write(
        &conf,
        format!("ident = \"require\"\nident_port = {closed_port}\n"),
    )
    .unwrap();
    let server = Server::start(bin, &["--config", conf.to_str().unwrap(), "--ident", "off"]);
    let echo = echo(2);
    let c = socks_request(server.addr, &connect_to(echo, b""), |_| {});
    assert!(granted(&c), "{bin}: {:?}\n{}", c.events, server.log());
    assert!(says(&server.reload(), "configuration reloaded"), "{bin}");
    let c = socks_request(server.addr, &connect_to(echo, b""), |_| {});
    assert!(
        granted(&c),
        "{bin}: --ident off still wins after SIGHUP: {:?}\n{}",
        c.events,
        server.log()
    );
}

/// Idle relays still open when the shutdown grace period ends are closed
/// then (each relay waits on one listener, woken for a kill or this cut),
/// logged with the outcome `shutdown`, and the server exits.
fn relays_still_open_when_the_grace_period_ends_are_cut(bin: &str) {
    let mut server = Server::start(bin, &["--shutdown-grace", "1"]);
    let echo = echo(3);
    let mut relays: Vec<TcpStream> = (0..3)
        .map(|_| {
            let c = socks_request(server.addr, &connect_to(echo, b""), |_| {});
            assert!(granted(&c), "{bin}: {:?}\n{}", c.events, server.log());
            let mut s = c.stream;
            assert_eq!(echo_through(&mut s, b"relaying"), b"relaying", "{bin}");
            s
        })
        .collect();
    let asked = std::time::Instant::now();
    server.signal("TERM");
    server.wait_says("grace period over, closing relays");
    for s in &mut relays {
        s.set_read_timeout(Some(STEP)).unwrap();
        let mut b = [0u8; 8];
        let read = s.read(&mut b);
        let timed_out = read.as_ref().is_err_and(|e| {
            matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            )
        });
        assert!(
            matches!(read, Ok(0) | Err(_)) && !timed_out,
            "{bin}: a cut relay is closed: {read:?}"
        );
    }
    assert!(
        asked.elapsed() < STEP,
        "{bin}: cut at the grace period's end"
    );
    let cut = server.wait_for_n("the cut relays' closed lines", 3, |l| {
        closed(l) && field(l, "outcome") == "shutdown"
    });
    assert_eq!(cut.len(), 3, "{bin}: {cut:?}");
    let status = server
        .wait_exit(STEP)
        .unwrap_or_else(|| panic!("{bin} did not exit:\n{}", server.log()));
    assert!(status.success(), "{bin}: {status:?}\n{}", server.log());
}

fn sigterm_lets_a_transfer_in_flight_finish_intact(bin: &str) {
    let mut server = Server::start(bin, &["--shutdown-grace", "20"]);
    const CHUNKS: usize = 40;
    const CHUNK: usize = 64 * 1024;
    // A source that sends 2.5 MB over about two seconds.
    let source = peer(1, |mut s| {
        for i in 0..CHUNKS {
            let chunk: Vec<u8> = (0..CHUNK).map(|j| ((i * 31 + j * 7) % 256) as u8).collect();
            if s.write_all(&chunk).is_err() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    });
    let expected =
        checksum((0..CHUNKS).flat_map(|i| (0..CHUNK).map(move |j| ((i * 31 + j * 7) % 256) as u8)));
    let c = socks_request(server.addr, &connect_to(source, b""), |_| {});
    assert!(granted(&c), "{bin}");
    let mut stream = c.stream;
    let mut received = c.early;
    let mut buf = vec![0u8; 65536];
    while received.len() < CHUNK {
        let n = stream.read(&mut buf).unwrap();
        received.extend_from_slice(&buf[..n]);
    }
    server.signal("TERM");
    server.wait_says("shutting down: no new connections, relays may finish");
    // No new connections once shutting down.
    let refused = TcpStream::connect_timeout(&server.addr, std::time::Duration::from_secs(1))
        .map(|mut s| {
            s.set_read_timeout(Some(STEP)).unwrap();
            let _ = s.write_all(&connect_to(source, b"").to_vec());
            let mut b = [0u8; 8];
            !matches!(s.read(&mut b), Ok(8))
        })
        .unwrap_or(true);
    assert!(
        refused,
        "{bin}: new connections are not served during shutdown"
    );
    loop {
        let n = stream.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        received.extend_from_slice(&buf[..n]);
    }
    assert_eq!(
        received.len(),
        CHUNKS * CHUNK,
        "{bin}: the whole transfer arrived"
    );
    assert_eq!(
        checksum(received.iter().copied()),
        expected,
        "{bin}: intact"
    );
    drop(stream); // the client's half: the relay is over once both sides are done
    let status = server
        .wait_exit(STEP)
        .unwrap_or_else(|| panic!("{bin} did not exit:\n{}", server.log()));
    assert!(
        status.success(),
        "{bin}: exit status {status:?}\n{}",
        server.log()
    );
}

/// FNV-1a over the bytes.
fn checksum(bytes: impl Iterator<Item = u8>) -> u64 {
    bytes.fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn temp_dir(what: &str, bin: &str) -> std::path::PathBuf {
    let dir = socks4_tests::scratch::fresh(&format!("{what}-{bin}"));
    dir
}

fn ctl(bin: &str, socket: &std::path::Path, words: &[&str]) -> (bool, String, String) {
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

fn the_control_socket_changes_the_lists(bin: &str) {
    let dir = temp_dir("ctl", bin);
    let socket = dir.join("control.sock");
    let server = Server::start(bin, &["--control-socket", socket.to_str().unwrap()]);
    // Only its owner may use it.
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&socket).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "{bin}: mode {mode:o}");
    let echo = echo(4);
    let try_it = || socks_request(server.addr, &connect_to(echo, b""), |_| {});
    assert!(granted(&try_it()), "{bin}");
    // Deny the test client's address: refused with 91.
    let (ok, out, err) = ctl(bin, &socket, &["deny", "add", "127.0.0.1"]);
    assert!(ok, "{bin}: {err}");
    assert!(out.contains("added 127.0.0.1/32"), "{bin}: {out}");
    assert_eq!(rejected_with(&try_it()), Some(ReplyCode::Rejected), "{bin}");
    let (ok, out, _) = ctl(bin, &socket, &["deny", "list"]);
    assert!(ok && out.contains("127.0.0.1/32"), "{bin}: {out}");
    let (ok, out, _) = ctl(bin, &socket, &["check", "127.0.0.1"]);
    assert!(
        ok && out.starts_with("denied: 127.0.0.1/32"),
        "{bin}: {out}"
    );
    // Exempt it: served again; delete both.
    assert!(ctl(bin, &socket, &["exempt", "add", "127.0.0.0/8"]).0);
    assert!(granted(&try_it()), "{bin}");
    assert!(ctl(bin, &socket, &["exempt", "del", "127.0.0.0/8"]).0);
    let (ok, _, err) = ctl(bin, &socket, &["deny", "del", "127.0.0.1"]);
    assert!(ok, "{bin}: {err}");
    assert!(granted(&try_it()), "{bin}");
    // Bad input: a clear error, a non-zero status, nothing changed.
    let (ok, _, err) = ctl(bin, &socket, &["deny", "add", "10.0.0.0/33"]);
    assert!(!ok && err.contains("not a netmask"), "{bin}: {err}");
    let (ok, _, err) = ctl(bin, &socket, &["deny", "del", "192.0.2.0/24"]);
    assert!(
        !ok && err.contains("not on the denial list"),
        "{bin}: {err}"
    );
    let (ok, _, err) = ctl(bin, &socket, &["frobnicate"]);
    assert!(!ok && err.contains("unknown command"), "{bin}: {err}");
    let (ok, out, _) = ctl(bin, &socket, &["deny", "list"]);
    assert!(ok && out.is_empty(), "{bin}: {out}");
    // Counters as JSON.
    let (ok, out, _) = ctl(bin, &socket, &["stats"]);
    let stats: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(ok && stats["replies"]["91"] == 1, "{bin}: {out}");
    // The changes were logged.
    server.wait_says("control: denial added");
    server.wait_says("control: denial deleted");
}

fn readiness_reload_and_stop_are_notified(bin: &str) {
    let dir = temp_dir("notify", bin);
    let path = dir.join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    notify.set_read_timeout(Some(STEP)).unwrap();
    let mut server = Server::start_env(
        bin,
        &["--listen", "127.0.0.1:0"],
        &[("NOTIFY_SOCKET", path.to_str().unwrap())],
    );
    let mut got = Vec::new();
    let next = || {
        let mut buf = [0u8; 512];
        let n = notify.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    got.push(next());
    server.signal("HUP");
    got.push(next());
    got.push(next());
    server.signal("TERM");
    got.push(next());
    assert!(got[0].contains("READY=1"), "{bin}: {got:?}");
    assert!(
        got[1].contains("RELOADING=1") && got[1].contains("MONOTONIC_USEC="),
        "{bin}: {got:?}"
    );
    assert!(got[2].contains("READY=1"), "{bin}: {got:?}");
    assert!(got[3].contains("STOPPING=1"), "{bin}: {got:?}");
    assert!(server.wait_exit(STEP).is_some_and(|s| s.success()), "{bin}");
}

fn the_pid_file_is_written_and_removed(bin: &str) {
    let dir = temp_dir("pid", bin);
    let pid_file = dir.join("socks4d.pid");
    let mut server = Server::start(bin, &["--pid-file", pid_file.to_str().unwrap()]);
    let written = std::fs::read_to_string(&pid_file).unwrap();
    assert_eq!(written.trim(), server.pid().to_string(), "{bin}");
    server.signal("TERM");
    assert!(server.wait_exit(STEP).is_some_and(|s| s.success()), "{bin}");
    assert!(
        !pid_file.exists(),
        "{bin}: the pid file stays after a clean exit"
    );
}

fn a_failed_ctl_reload_is_logged_as_a_failed_sighup_is(bin: &str) {
    let dir = temp_dir("ctl-reload", bin);
    let socket = dir.join("control.sock");
    let conf = dir.join("socks4d.toml");
    write_config(&conf, "pass from 127.0.0.0/8 to any");
    let server = Server::start(
        bin,
        &[
            "--config",
            conf.to_str().unwrap(),
            "--control-socket",
            socket.to_str().unwrap(),
        ],
    );
    std::fs::write(&conf, "[access]\nrules = \"pass frm nowhere\"\n").unwrap();
    let (ok, _, err) = ctl(bin, &socket, &["reload"]);
    assert!(!ok && err.contains("reload failed"), "{bin}: {err}");
    let failed = server.wait_for("a failed reload line", |l| {
        field(l, "message").starts_with("reload failed, keeping the old configuration")
    });
    assert_eq!(field(&failed, "level"), "ERROR", "{bin}: {failed}");
    assert!(
        field(&failed, "error").contains("line 2, column 15"),
        "{bin}: the error says where: {failed}"
    );
}

/// `git ARGS` in the workspace: its output, trimmed.
fn git(args: &[&str]) -> String {
    let out = Process::new("git")
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn the_version_names_the_git_commit(bin: &str) {
    let (status, out, err) = run_binary(bin, &["--version"]);
    assert!(status.success(), "{bin}: {err}");
    let head = git(&["rev-parse", "--short=12", "HEAD"]);
    // The sources the binaries are built from differ from HEAD: "dirty".
    let changes = git(&[
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        "socks4-proto",
        "socks4-acl",
        "socks4-ident",
        "socks4-client",
        "adapters",
        "Cargo.toml",
        "Cargo.lock",
    ]);
    let dirty = if changes.is_empty() { "" } else { ", dirty" };
    assert_eq!(
        out.trim(),
        format!("{bin} {} (commit {head}{dirty})", env!("CARGO_PKG_VERSION")),
        "{bin}"
    );
}
