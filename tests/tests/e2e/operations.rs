//! What an operator does to a running server, on every adapter: SIGHUP
//! reloads a good file and keeps the old rules on a broken one (command-line
//! flags stay on top), SIGTERM lets a transfer in flight finish intact, the
//! control socket and `ctl` change the lists, systemd's readiness, reload and
//! stop notifications (`NOTIFY_SOCKET`), and the pid file. (Prometheus, socket
//! activation and the privilege drop need a peer program or root: they are in
//! `tests/tests/peers/operations.rs`.)

use socks4_proto::ReplyCode;
use socks4_tests::e2e::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command as Process;

socks4_tests::on_every_adapter!(
    sighup_reloads_good_files_and_keeps_old_rules_on_broken_ones,
    sighup_keeps_command_line_flags_on_top,
    sigterm_lets_a_transfer_in_flight_finish_intact,
    the_control_socket_changes_the_lists,
    readiness_reload_and_stop_are_notified,
    the_pid_file_is_written_and_removed,
    durations_too_large_for_the_clock_are_config_errors,
    parent_passwords_are_never_printed,
    root_file_operations_never_follow_symlinks,
    reload_is_never_half_applied_in_silence,
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
    server.signal("HUP");
    server.wait_says("configuration reloaded");
    assert_eq!(
        rejected_with(&try_connect()),
        Some(ReplyCode::Rejected),
        "{bin}: new rules apply"
    );

    std::fs::write(&conf, "[access]\nrules = \"pass frm nowhere\"\n").unwrap();
    server.signal("HUP");
    let failed = server.wait_says("reload failed, keeping the old configuration");
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
    server.signal("HUP");
    server.wait_says("configuration reloaded");
    let c = socks_request(server.addr, &connect_to(echo, b""), |_| {});
    assert!(
        granted(&c),
        "{bin}: --ident off still wins after SIGHUP: {:?}\n{}",
        c.events,
        server.log()
    );
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

/// A duration no clock can add (`300000000000y`) is a config error for
/// every duration flag and key, never a panic when a connection comes; the
/// longest one accepted serves a client as usual.
fn durations_too_large_for_the_clock_are_config_errors(bin: &str) {
    let flags = [
        "--handshake-timeout",
        "--resolve-timeout",
        "--ident-timeout",
        "--connect-timeout",
        "--bind-timeout",
        "--idle-timeout",
        "--dual-timeout",
        "--shutdown-grace",
    ];
    for flag in flags {
        let (status, _, err) = run(
            Process::new(server_binary(bin)).args([flag, "300000000000y", "--check"]),
            b"",
        );
        assert!(
            !status.success(),
            "{bin}: {flag} 300000000000y was accepted"
        );
        assert!(err.contains("300000000000y"), "{bin}: {flag}: {err}");
    }
    let dir = socks4_tests::scratch::dir(&format!("durations-{bin}"));
    let conf = dir.join("socks4d.toml");
    std::fs::write(&conf, "[timeouts]\nidle = \"300000000000y\"\n").unwrap();
    let (status, _, err) = run(
        Process::new(server_binary(bin)).args(["--config", conf.to_str().unwrap()]),
        b"",
    );
    assert!(
        !status.success(),
        "{bin}: a file with idle = 300000000000y started"
    );
    assert!(err.contains("idle"), "{bin}: {err}");
    // The longest accepted, everywhere at once: a client is served.
    let mut args = vec!["--check"];
    for flag in flags {
        args.extend([flag, "31y"]);
    }
    let (status, _, err) = run(Process::new(server_binary(bin)).args(&args), b"");
    assert!(status.success(), "{bin}: {err}");
    args.remove(0);
    // The dual timeout must stay below the handshake's, and a listener
    // must be named for it; leave it out of the running server.
    let at = args.iter().position(|a| *a == "--dual-timeout").unwrap();
    args.drain(at..at + 2);
    let server = Server::start(bin, &args);
    let c = socks_request(server.addr, &connect_to(echo(1), b""), |_| {});
    assert!(granted(&c), "{bin}: {:?}\n{}", c.events, server.log());
    assert_eq!(round_trip(c.stream, &c.early, b"far"), b"far", "{bin}");
}

/// A parent's password reaches the parent only: `--check`, `ctl check`, an
/// error about a URL that does not parse and the log lines of a request
/// through the parent all show `***`.
fn parent_passwords_are_never_printed(bin: &str) {
    const SECRET: &str = "s3cr3t-pw";
    let dir = temp_dir("passwords", bin);
    let down = ClosedPort::new();
    let conf = dir.join("socks4d.toml");
    write_config(
        &conf,
        &format!(
            "pass from 127.0.0.0/8 to any\nroute to any via http://user:{SECRET}@127.0.0.1:{}",
            down.port()
        ),
    );
    let conf_s = conf.to_str().unwrap();
    let (status, out, err) = run(
        Process::new(server_binary(bin)).args(["--config", conf_s, "--check"]),
        b"",
    );
    let out = String::from_utf8_lossy(&out);
    assert!(status.success(), "{bin}: {err}");
    assert!(out.contains("http://user:***@127.0.0.1:"), "{bin}: {out}");
    assert!(
        !out.contains(SECRET) && !err.contains(SECRET),
        "{bin}: {out}{err}"
    );
    // A URL that does not parse (no port): the error hides it too.
    let bad = dir.join("bad.toml");
    write_config(
        &bad,
        &format!("route to any via http://user:{SECRET}@127.0.0.1"),
    );
    let (status, _, err) = run(
        Process::new(server_binary(bin)).args(["--config", bad.to_str().unwrap(), "--check"]),
        b"",
    );
    assert!(!status.success(), "{bin}");
    assert!(err.contains("parent proxy URL"), "{bin}: {err}");
    assert!(!err.contains(SECRET), "{bin}: {err}");
    // ctl check, and a request through the parent (which is down).
    let socket = dir.join("control.sock");
    let server = Server::start(
        bin,
        &[
            "--config",
            conf_s,
            "--control-socket",
            socket.to_str().unwrap(),
        ],
    );
    let (ok, out, err) = ctl(bin, &socket, &["check", "127.0.0.1", "to", "10.0.0.1:80"]);
    assert!(ok, "{bin}: {err}");
    assert!(out.contains("http://user:***@"), "{bin}: {out}");
    assert!(!out.contains(SECRET), "{bin}: {out}");
    let c = socks_request(server.addr, &connect_to(echo(1), b""), |_| {});
    assert!(refused(&c), "{bin}: {:?}", c.events);
    server.wait_for("the closed line", closed);
    assert!(!server.log().contains(SECRET), "{bin}: {}", server.log());
}

/// The pid file and the control socket, which a server run as root writes
/// in directories others may write: a symbolic link at either path is
/// never followed (the file it names stays as it was) and the server does
/// not start; a regular file at the control socket's path is not removed;
/// a stale pid file is replaced by a new one, mode 0644.
fn root_file_operations_never_follow_symlinks(bin: &str) {
    use std::os::unix::fs::{symlink, PermissionsExt};
    let dir = temp_dir("symlinks", bin);
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let start = |args: &[&str]| {
        let mut all = vec!["--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        run(Process::new(server_binary(bin)).args(&all), b"")
    };
    let pid_link = dir.join("link.pid");
    symlink(&victim, &pid_link).unwrap();
    let (status, _, err) = start(&["--pid-file", pid_link.to_str().unwrap()]);
    assert!(!status.success(), "{bin}: started with a pid file link");
    assert!(err.contains("symbolic link"), "{bin}: {err}");
    let sock_link = dir.join("link.sock");
    symlink(&victim, &sock_link).unwrap();
    let (status, _, err) = start(&["--control-socket", sock_link.to_str().unwrap()]);
    assert!(
        !status.success(),
        "{bin}: started with a control socket link"
    );
    assert!(err.contains("not a socket"), "{bin}: {err}");
    let (status, _, err) = start(&["--control-socket", victim.to_str().unwrap()]);
    assert!(
        !status.success(),
        "{bin}: replaced a regular file with its socket"
    );
    assert!(err.contains("not a socket"), "{bin}: {err}");
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "precious\n",
        "{bin}"
    );
    assert!(std::fs::symlink_metadata(&pid_link)
        .unwrap()
        .file_type()
        .is_symlink());
    // A stale pid file is replaced: this server's id, mode 0644.
    let stale = dir.join("stale.pid");
    std::fs::write(&stale, "1\n").unwrap();
    std::fs::set_permissions(&stale, std::fs::Permissions::from_mode(0o666)).unwrap();
    let server = Server::start(bin, &["--pid-file", stale.to_str().unwrap()]);
    let text = std::fs::read_to_string(&stale).unwrap();
    assert_eq!(text.trim(), server.pid().to_string(), "{bin}");
    let mode = std::fs::metadata(&stale).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o644, "{bin}: mode {mode:o}");
}

/// SIGHUP and `ctl reload` apply what can apply (here `proxy_protocol_from`:
/// a balancer refused before is served after) and name what needs a
/// restart in one warning line (here `max_connections` and `[limits]
/// relay_pipes`), never leaving a key at its old value in silence. (That
/// every key is in one list or the other is a unit test of
/// `config::settings::reload`.)
fn reload_is_never_half_applied_in_silence(bin: &str) {
    let dir = temp_dir("reload-keys", bin);
    let conf = dir.join("socks4d.toml");
    let socket = dir.join("control.sock");
    let write = |from: &str, extra: &str| {
        std::fs::write(
            &conf,
            format!("proxy_protocol = \"v1\"\nproxy_protocol_from = [\"{from}\"]\n{extra}"),
        )
        .unwrap();
    };
    write("10.0.0.0/8", "");
    let server = Server::start(
        bin,
        &[
            "--config",
            conf.to_str().unwrap(),
            "--control-socket",
            socket.to_str().unwrap(),
        ],
    );
    let echo = echo(2);
    let header = format!(
        "PROXY TCP4 127.0.0.9 127.0.0.1 40000 {}\r\n",
        server.addr.port()
    );
    let through_balancer = || {
        let mut s = TcpStream::connect_timeout(&server.addr, STEP).unwrap();
        s.write_all(header.as_bytes()).unwrap();
        socks_request_on(s, &connect_to(echo, b""), |_| {})
    };
    // Not trusted yet: closed without a reply.
    let mut s = TcpStream::connect_timeout(&server.addr, STEP).unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    let mut bytes = header.clone().into_bytes();
    bytes.extend_from_slice(&connect_to(echo, b"").to_vec());
    let _ = s.write_all(&bytes);
    let mut reply = [0u8; 8];
    assert!(
        matches!(s.read(&mut reply), Ok(0) | Err(_)),
        "{bin}: 127.0.0.1 is not trusted yet"
    );
    write(
        "127.0.0.0/8",
        "max_connections = 7\n[limits]\nrelay_pipes = 3\n",
    );
    server.signal("HUP");
    let line = server.wait_for("the restart warning", |l| {
        field(l, "message").starts_with("restart needed for:")
    });
    assert_eq!(
        field(&line, "message"),
        "restart needed for: max_connections, limits.relay_pipes",
        "{bin}"
    );
    server.wait_says("configuration reloaded");
    let c = through_balancer();
    assert!(granted(&c), "{bin}: {:?}\n{}", c.events, server.log());
    // ctl reload says the same.
    let (ok, out, err) = ctl(bin, &socket, &["reload"]);
    assert!(ok, "{bin}: {err}");
    assert!(
        out.contains("restart needed for: max_connections, limits.relay_pipes"),
        "{bin}: {out}"
    );
    // Back to what runs: nothing to name.
    write("127.0.0.0/8", "");
    let (ok, out, _) = ctl(bin, &socket, &["reload"]);
    assert!(ok && !out.contains("restart"), "{bin}: {out}");
}
