//! The log outputs with the programs that read them, on every adapter: log
//! files opened as root before the privilege drop and given to the user; a
//! real logrotate run (its `postrotate` sends SIGUSR1) rotates `log_file`
//! while a client keeps connecting, and every connection's `closed` line is
//! in exactly one file; a real rsyslogd, started by the test on a loopback
//! port, receives the log and the access log over `udp:` and `tcp:` as RFC
//! 5424 messages, JSON and text (written back with
//! `RSYSLOG_SyslogProtocol23Format` and checked field by field).

use socks4_tests::e2e::*;
use socks4_tests::log_lines::{text_fields, wait_lines, Rfc5424, ACCESS_FIELDS};
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

socks4_tests::on_every_adapter!(
    log_files_are_opened_as_root_and_given_to_the_user,
    logrotate_rotates_the_log_file_under_load_without_losing_a_line,
    rsyslog_receives_the_logs_as_rfc5424_over_udp_and_tcp,
);

/// The most connections the client makes while logrotate runs.
const MAX_CONNECTIONS: usize = 20_000;

/// The server `bin` on a port of its own with `args`, standard error
/// ignored (its log goes elsewhere); its address from /proc.
fn start(bin: &str, args: &[&str]) -> (ChildGuard, std::net::SocketAddr) {
    let mut child = Process::new(server_binary(bin))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = socks4_tests::log_lines::wait_server(&mut child, bin);
    (ChildGuard(child), addr)
}

/// Stops the server by PID with SIGTERM (its queues are written out) and
/// waits for it, at most [`STEP`].
fn stop(server: &mut ChildGuard, bin: &str) {
    let pid = server.0.id().to_string();
    assert!(Process::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + STEP;
    while server.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "{bin} did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `closed` lines' user ids in `lines` (JSON), each once per line.
fn closed_users(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(closed)
        .map(|l| field(&l, "user"))
        .collect()
}

fn logrotate_rotates_the_log_file_under_load_without_losing_a_line(bin: &str) {
    let dir = socks4_tests::scratch::fresh(&format!("logrotate-{bin}"));
    let log = dir.join("socks4d.log");
    let (mut server, addr) = start(
        bin,
        &[
            "--log-file",
            &log.display().to_string(),
            "--log-format",
            "json",
        ],
    );
    let conf = dir.join("logrotate.conf");
    std::fs::write(
        &conf,
        format!(
            "{} {{\n    rotate 20\n    missingok\n    nocompress\n    create 0640\n    \
             postrotate\n        kill -USR1 {}\n    endscript\n}}\n",
            log.display(),
            server.0.id()
        ),
    )
    .unwrap();
    let stop_client = Arc::new(AtomicBool::new(false));
    let client = connect_in_a_loop(addr, stop_client.clone());
    for round in 0..3 {
        std::thread::sleep(Duration::from_millis(300));
        let state = dir.join("logrotate.state");
        let out = Process::new("logrotate")
            .arg("-f")
            .arg("-s")
            .arg(&state)
            .arg(&conf)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{bin}: logrotate round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    stop_client.store(true, Ordering::Relaxed);
    let made = client.join().expect("the client");
    let files: Vec<PathBuf> = std::iter::once(log.clone())
        .chain((1..=3).map(|n| dir.join(format!("socks4d.log.{n}"))))
        .collect();
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    wait_lines(&paths, STEP * 3, |l| closed_users(l).len() >= made);
    stop(&mut server, bin);
    check_rotated(&files, made, bin);
}

/// A client that connects through `proxy` in a loop (user ids `c0`, `c1`,
/// ...) until `stop` (at least 50 times, at most [`MAX_CONNECTIONS`]);
/// how many connections it made.
fn connect_in_a_loop(
    proxy: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<usize> {
    let target = echo(MAX_CONNECTIONS);
    std::thread::spawn(move || {
        let mut made = 0;
        while made < MAX_CONNECTIONS && (made < 50 || !stop.load(Ordering::Relaxed)) {
            let user = format!("c{made}");
            let c = socks_request(proxy, &connect_to(target, user.as_bytes()), |_| {});
            assert!(granted(&c), "connection {made} not granted");
            assert_eq!(round_trip(c.stream, &c.early, b"z"), b"z");
            made += 1;
        }
        made
    })
}

/// Every line of the rotated `files` whole, every file with connections in
/// it, and the `made` connections' `closed` lines each exactly once.
fn check_rotated(files: &[PathBuf], made: usize, bin: &str) {
    let mut all = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{bin}: {}: {e}", path.display()));
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        // Every line whole: no line torn between two files.
        for line in &lines {
            serde_json::from_str::<serde_json::Value>(line)
                .unwrap_or_else(|e| panic!("{bin}: {}: {e}: {line:?}", path.display()));
        }
        assert!(
            !closed_users(&lines).is_empty(),
            "{bin}: {} has no connection: not every rotation happened under load \
             ({made} connections)",
            path.display()
        );
        all.extend(lines);
    }
    let mut users = closed_users(&all);
    users.sort();
    let mut expected: Vec<String> = (0..made).map(|i| format!("c{i}")).collect();
    expected.sort();
    // Each connection's closed line exactly once across the files.
    assert_eq!(users, expected, "{bin}: {made} connections");
    let reopened = all
        .iter()
        .filter(|l| l.contains("\"log file reopened\""))
        .count();
    assert_eq!(reopened, files.len() - 1, "{bin}");
}

fn log_files_are_opened_as_root_and_given_to_the_user(bin: &str) {
    assert!(running_as_root(), "this test runs as root (as CI does)");
    // A folder only root may write: the files are opened before the drop.
    let dir = socks4_tests::scratch::fresh(&format!("logowner-{bin}"));
    let log = dir.join("socks4d.log");
    let access = dir.join("access.log");
    let (log_arg, access_arg) = (log.display().to_string(), access.display().to_string());
    let args = [
        "--user",
        "nobody",
        "--log-file",
        &log_arg,
        "--access-log",
        &access_arg,
    ];
    let (server, addr) = start(bin, &args);
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.0.id())).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        !uid.split_whitespace().skip(1).any(|id| id == "0"),
        "{bin}: {uid}"
    );
    let nobody = Process::new("id").args(["-u", "nobody"]).output().unwrap();
    let nobody: u32 = String::from_utf8_lossy(&nobody.stdout)
        .trim()
        .parse()
        .unwrap();
    for path in [&log, &access] {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).unwrap();
        assert_eq!(meta.uid(), nobody, "{bin}: {}", path.display());
        assert_eq!(meta.mode() & 0o777, 0o640, "{bin}: {}", path.display());
    }
    let echo = echo(2);
    let c = socks_request(addr, &connect_to(echo, b"first"), |_| {});
    assert_eq!(round_trip(c.stream, &c.early, b"1"), b"1", "{bin}");
    // The user reopens the files it was given.
    let usr1 = || {
        let pid = server.0.id().to_string();
        assert!(Process::new("kill")
            .args(["-USR1", &pid])
            .status()
            .unwrap()
            .success());
    };
    usr1();
    let reopened = wait_lines(&[&log], STEP, |l| {
        l.iter().filter(|l| l.contains("log file reopened")).count() >= 2
    });
    assert!(
        reopened.iter().any(|l| l.contains(&access_arg)),
        "{bin}: {reopened:?}"
    );
    // Moved away with nothing in its place, in a folder the user may not
    // write: the reopen fails, is logged, and lines go on to the old file.
    let moved = dir.join("socks4d.log.1");
    std::fs::rename(&log, &moved).unwrap();
    usr1();
    let c = socks_request(addr, &connect_to(echo, b"second"), |_| {});
    assert_eq!(round_trip(c.stream, &c.early, b"2"), b"2", "{bin}");
    let old = wait_lines(&[&moved], STEP, |l| {
        l.iter()
            .any(|l| l.contains("closed") && l.contains("second"))
    });
    assert!(
        old.iter().any(|l| l.contains("cannot reopen a log file")),
        "{bin}: {old:?}"
    );
    assert!(!log.exists(), "{bin}: created by the user in root's folder");
}

/// Whether a process has a UDP socket bound to 127.0.0.1:`port`.
fn udp_bound(port: u16) -> bool {
    let local = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/udp")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(local.as_str()))
}

/// rsyslogd with its own config in `dir`, listening on 127.0.0.1:`port` over
/// `transport` and writing every message to `out` as RFC 5424.
fn rsyslogd(dir: &Path, transport: &str, port: u16, out: &Path) -> ChildGuard {
    let conf = dir.join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            "global(workDirectory=\"{dir}\")\n\
             module(load=\"im{transport}\")\n\
             input(type=\"im{transport}\" address=\"127.0.0.1\" port=\"{port}\")\n\
             *.* action(type=\"omfile\" file=\"{out}\" template=\"RSYSLOG_SyslogProtocol23Format\")\n",
            dir = dir.display(),
            out = out.display()
        ),
    )
    .unwrap();
    let child = Process::new("rsyslogd")
        .arg("-n")
        .arg("-f")
        .arg(&conf)
        .arg("-i")
        .arg(dir.join("rsyslogd.pid"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("rsyslogd (.ci/setup installs rsyslog)");
    let mut guard = ChildGuard(child);
    let deadline = Instant::now() + STEP;
    let tcp = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    loop {
        let up = match transport {
            "tcp" => socks4_tests::procfs::listening_addrs(guard.0.id()).contains(&tcp),
            _ => udp_bound(port),
        };
        if up {
            return guard;
        }
        if let Ok(Some(status)) = guard.0.try_wait() {
            panic!("rsyslogd exited with {status}");
        }
        assert!(
            Instant::now() < deadline,
            "rsyslogd did not start on {transport} {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn rsyslog_receives_the_logs_as_rfc5424_over_udp_and_tcp(bin: &str) {
    // JSON over UDP, text over TCP.
    for (transport, format) in [("udp", "json"), ("tcp", "text")] {
        let (pid, lines) = through_rsyslog(bin, transport, format);
        // Every message rsyslog wrote back is RFC 5424 (rsyslog's own too).
        for line in &lines {
            Rfc5424::parse(line).unwrap_or_else(|e| panic!("{bin} {transport}: {e}"));
        }
        let log = ours(&lines, &pid, "log");
        let access = ours(&lines, &pid, "access");
        assert_eq!(access.len(), 10, "{bin} {transport}: {lines:?}");
        for m in log.iter().chain(&access) {
            check_message(m, bin, transport);
        }
        let mut users: Vec<String> = log
            .iter()
            .map(|m| body(m, bin))
            .filter(closed)
            .map(|l| field(&l, "user"))
            .collect();
        users.sort();
        let mut expected: Vec<String> = (0..10).map(|i| format!("u{i}")).collect();
        expected.sort();
        assert_eq!(users, expected, "{bin} {transport}");
        assert!(
            log.iter().any(|m| says(&body(m, bin), "listening")),
            "{bin} {transport}: {lines:?}"
        );
    }
}

/// The messages of the process `pid` with MSGID `msgid` among `lines`.
fn ours(lines: &[String], pid: &str, msgid: &str) -> Vec<Rfc5424> {
    lines
        .iter()
        .filter_map(|l| Rfc5424::parse(l).ok())
        .filter(|m| m.procid == pid && m.msgid == msgid)
        .collect()
}

/// Ten connections through the server `bin` logging (and access logging)
/// to a fresh rsyslogd over `transport`, as `format`: the server's PID and the lines
/// rsyslogd wrote, once both are stopped.
fn through_rsyslog(bin: &str, transport: &str, format: &str) -> (String, Vec<String>) {
    let dir = socks4_tests::scratch::fresh(&format!("rsyslog-{transport}-{bin}"));
    let out = dir.join("received.log");
    let port = free_port();
    let mut rsyslogd = rsyslogd(&dir, transport, port, &out);
    let target = format!("{transport}:127.0.0.1:{port}");
    let args = [
        "--syslog",
        &target,
        "--access-log",
        "syslog",
        "--log-format",
        format,
    ];
    let (mut server, addr) = start(bin, &args);
    let pid = server.0.id().to_string();
    let echo = echo(10);
    for i in 0..10 {
        let c = socks_request(addr, &connect_to(echo, format!("u{i}").as_bytes()), |_| {});
        assert!(granted(&c), "{bin} {transport}");
        assert_eq!(
            round_trip(c.stream, &c.early, b"abc"),
            b"abc",
            "{bin} {transport}"
        );
    }
    stop(&mut server, bin);
    wait_lines(&[&out], STEP * 2, |l| {
        let closed = ours(l, &pid, "log")
            .iter()
            .filter(|m| m.msg.contains("closed"))
            .count();
        ours(l, &pid, "access").len() >= 10 && closed >= 10
    });
    // rsyslogd stopped, its file is whole (a read while it writes can end
    // in half a line).
    stop(&mut rsyslogd, "rsyslogd");
    let text = std::fs::read_to_string(&out).unwrap();
    (pid, text.lines().map(str::to_owned).collect())
}

/// A message's body as JSON: a JSON line as it is; a text line (`LEVEL
/// TARGET: MESSAGE key=value ...`, no time: the header has it, or an access
/// line's `key=value ...`) as an object of its level, message and fields.
fn body(m: &Rfc5424, bin: &str) -> serde_json::Value {
    if m.msg.starts_with('{') {
        return serde_json::from_str(&m.msg).unwrap_or_else(|e| panic!("{bin}: {e}: {m:?}"));
    }
    let mut object = serde_json::Map::new();
    let fields = if m.msgid == "log" {
        let (level, rest) = m.msg.split_once(' ').expect("a level");
        let (target, rest) = rest.split_once(": ").expect("a target");
        assert!(target.starts_with("socks4d"), "{bin}: {m:?}");
        // The message runs to the first key=value pair.
        let words: Vec<&str> = rest.split(' ').collect();
        let at = words
            .iter()
            .position(|w| w.contains('='))
            .unwrap_or(words.len());
        object.insert("level".into(), level.into());
        object.insert("message".into(), words[..at].join(" ").into());
        words[at..].join(" ")
    } else {
        m.msg.clone()
    };
    let pairs = text_fields(&fields).unwrap_or_else(|| panic!("{bin}: not key=value: {m:?}"));
    for (k, v) in pairs {
        object.insert(k, v.into());
    }
    serde_json::Value::Object(object)
}

/// One of our messages as rsyslogd read it: our APP-NAME, facility daemon,
/// the severity of the line's level; an access line with every documented
/// field.
fn check_message(m: &Rfc5424, bin: &str, transport: &str) {
    // rsyslog read our header: APP-NAME, PROCID and MSGID came through.
    assert_eq!(m.app, bin, "{transport}: {m:?}");
    assert_eq!(m.facility, 3, "{bin} {transport}: daemon: {m:?}");
    let body = body(m, bin);
    if m.msgid == "log" {
        let severity = match field(&body, "level").as_str() {
            "ERROR" => 3,
            "WARN" => 4,
            "INFO" => 6,
            _ => 7,
        };
        assert_eq!(m.severity, severity, "{bin} {transport}: {m:?}");
    } else {
        assert_eq!(
            m.severity, 6,
            "{bin} {transport}: a granted connection: {m:?}"
        );
        let keys: Vec<&str> = ACCESS_FIELDS
            .iter()
            .copied()
            .filter(|k| body.get(*k).is_some())
            .collect();
        assert_eq!(keys, ACCESS_FIELDS, "{bin} {transport}: {m:?}");
        assert_eq!(field(&body, "bytes_up"), "3", "{bin} {transport}: {m:?}");
    }
}
