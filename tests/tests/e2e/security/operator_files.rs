//! The administrator's files and commands are trusted, but never turned
//! against the server or its host: a duration too long for the clock is a
//! config error, never a panic; a parent's password is never printed;
//! the pid file and the control socket never follow a symbolic link; and a
//! reload never leaves a key at its old value in silence (every key applies
//! or is named as needing a restart).

use socks4_tests::e2e::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command as Process;

socks4_tests::on_every_adapter!(
    durations_too_large_for_the_clock_are_config_errors,
    parent_passwords_are_never_printed,
    root_file_operations_never_follow_symlinks,
    reload_is_never_half_applied_in_silence,
);

fn write_config(path: &std::path::Path, rules: &str) {
    std::fs::write(path, format!("[access]\nrules = \"\"\"\n{rules}\n\"\"\"\n")).unwrap();
}

fn temp_dir(what: &str, bin: &str) -> std::path::PathBuf {
    socks4_tests::scratch::fresh(&format!("{what}-{bin}"))
}

/// `BINARY ctl --socket SOCKET WORDS...`: whether it succeeded, its output
/// and its errors.
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
/// a balancer refused before is served after, and `max_connections`) and
/// name what needs a restart in one warning line (here `reuse_port` and
/// `[limits] relay_pipes`), never leaving a key at its old value in silence. (That
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
        "max_connections = 7\nreuse_port = true\n[limits]\nrelay_pipes = 3\n",
    );
    assert!(says(&server.reload(), "configuration reloaded"), "{bin}");
    let line = server.wait_for("the restart warning", |l| {
        field(l, "message").starts_with("restart needed for:")
    });
    assert_eq!(
        field(&line, "message"),
        "restart needed for: reuse_port, limits.relay_pipes",
        "{bin}"
    );
    let c = through_balancer();
    assert!(granted(&c), "{bin}: {:?}\n{}", c.events, server.log());
    // ctl reload says the same.
    let (ok, out, err) = ctl(bin, &socket, &["reload"]);
    assert!(ok, "{bin}: {err}");
    assert!(
        out.contains("restart needed for: reuse_port, limits.relay_pipes"),
        "{bin}: {out}"
    );
    // Back to what runs: nothing to name.
    write("127.0.0.0/8", "");
    let (ok, out, _) = ctl(bin, &socket, &["reload"]);
    assert!(ok && !out.contains("restart"), "{bin}: {out}");
}
