//! The log outputs besides standard error, on every adapter: the access log
//! (JSON and text) with its documented fields, apart from the diagnostic log
//! and with a level of its own; the log file, reopened on SIGUSR1 and never
//! opened through a symbolic link. (logrotate and rsyslog themselves are in
//! the peers tier.)

use socks4_tests::e2e::*;
use socks4_tests::log_lines::{text_fields, wait_file_lines, ACCESS_FIELDS};
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

socks4_tests::on_every_adapter!(
    the_json_access_log_has_the_documented_fields,
    the_text_access_log_has_the_documented_fields,
    the_access_log_at_warn_keeps_only_connections_not_granted,
    the_log_file_is_reopened_on_sigusr1,
    a_log_file_is_never_opened_through_a_link,
    check_names_the_log_outputs_and_refuses_bad_ones,
    an_unreachable_syslog_server_costs_lines_not_service,
);

/// A config with the access log at `path` and a rule that denies the port
/// `blocked`; the granted and the denied connection's user ids.
fn config(dir: &Path, access: &str, blocked: u16) -> String {
    let conf = dir.join("socks4d.toml");
    std::fs::write(
        &conf,
        format!(
            "{access}\n[access]\nrules = \"\"\"\nblock from any to any port eq {blocked}\n\
             pass from 127.0.0.0/8 to any\n\"\"\"\n"
        ),
    )
    .unwrap();
    conf.display().to_string()
}

/// One granted connection (5 bytes each way, user `alice`) and one denied
/// (user `mal lory`, to `blocked`), both closed in the diagnostic log.
fn two_connections(server: &Server, blocked: u16, bin: &str) {
    let c = socks_request(server.addr, &connect_to(echo(1), b"alice"), |_| {});
    assert!(granted(&c), "{bin}");
    assert_eq!(round_trip(c.stream, &c.early, b"hello"), b"hello", "{bin}");
    let denied = socks_request(
        server.addr,
        &connect_to(lo(blocked).into(), b"mal lory"),
        |_| {},
    );
    assert!(refused(&denied), "{bin}");
    let closed_lines = server.wait_for_n("two closed lines", 2, closed);
    // The diagnostic log keeps its own lines: no access line in it.
    assert!(
        closed_lines.iter().all(|l| l.get("handshake_ms").is_none()),
        "{bin}: {closed_lines:?}"
    );
    assert!(
        !server.log().contains("socks4d::access"),
        "{bin}: {}",
        server.log()
    );
}

/// A server (with `args`) whose access log, at `access.log` in a fresh
/// folder `name`, has the extra config `keys`, after
/// [`two_connections`]: the server, the access log and the denied port.
fn served_with_access_log(
    bin: &str,
    name: &str,
    keys: &str,
    args: &[&str],
) -> (Server, PathBuf, ClosedPort) {
    let dir = socks4_tests::scratch::fresh(&format!("{name}-{bin}"));
    let access = dir.join("access.log");
    let blocked = ClosedPort::new();
    let keys = format!("access_log = {:?}\n{keys}", access.display().to_string());
    let conf = config(&dir, &keys, blocked.port());
    let mut all = vec!["--config", &conf];
    all.extend_from_slice(args);
    let server = Server::start(bin, &all);
    two_connections(&server, blocked.port(), bin);
    (server, access, blocked)
}

/// Checks the granted and the denied connection's access lines, as field
/// lists (name, value as text).
fn check_access(lines: &[Vec<(String, String)>], blocked: u16, bin: &str) {
    assert_eq!(lines.len(), 2, "{bin}: {lines:?}");
    for line in lines {
        let names: Vec<&str> = line.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ACCESS_FIELDS, "{bin}");
    }
    let get = |line: &Vec<(String, String)>, k: &str| {
        line.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let ok = lines
        .iter()
        .find(|l| get(l, "user") == "alice")
        .expect("alice's line");
    assert_eq!(get(ok, "reply"), "90", "{bin}: {ok:?}");
    assert_eq!(get(ok, "outcome"), "done", "{bin}: {ok:?}");
    assert_eq!(get(ok, "bytes_up"), "5", "{bin}: {ok:?}");
    assert_eq!(get(ok, "bytes_down"), "5", "{bin}: {ok:?}");
    assert_eq!(get(ok, "via"), "direct", "{bin}: {ok:?}");
    assert_eq!(get(ok, "reached"), get(ok, "dest"), "{bin}: {ok:?}");
    assert!(get(ok, "time").ends_with('Z'), "{bin}: {ok:?}");
    let handshake: u64 = get(ok, "handshake_ms").parse().unwrap();
    let duration: u64 = get(ok, "duration_ms").parse().unwrap();
    assert!(handshake <= duration, "{bin}: {ok:?}");
    let no = lines
        .iter()
        .find(|l| get(l, "user") == "mal lory")
        .expect("the denied line");
    assert_eq!(get(no, "reply"), "91", "{bin}: {no:?}");
    assert_eq!(get(no, "outcome"), "denied", "{bin}: {no:?}");
    assert_eq!(
        get(no, "dest"),
        format!("127.0.0.1:{blocked}"),
        "{bin}: {no:?}"
    );
    assert_eq!(get(no, "rule"), "rule 1 (line 1)", "{bin}: {no:?}");
    assert_eq!(get(no, "bytes_up"), "0", "{bin}: {no:?}");
}

fn the_json_access_log_has_the_documented_fields(bin: &str) {
    let (_server, access, blocked) = served_with_access_log(
        bin,
        "access-json",
        "access_log_format = \"json\"",
        &["--log-format", "json"],
    );
    let raw = wait_file_lines(&access, |l| l.len() >= 2);
    let lines: Vec<Vec<(String, String)>> = raw
        .iter()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{bin}: {e}: {l}"));
            let obj = v.as_object().unwrap();
            // Numbers are numbers.
            for k in [
                "conn",
                "reply",
                "bytes_up",
                "bytes_down",
                "handshake_ms",
                "duration_ms",
            ] {
                assert!(obj[k].is_u64(), "{bin}: {k} in {l}");
            }
            // serde_json's map is sorted: the order is read from the text.
            let mut keys: Vec<(usize, String)> = obj
                .keys()
                .map(|k| (l.find(&format!("\"{k}\":")).unwrap(), k.clone()))
                .collect();
            keys.sort();
            keys.into_iter()
                .map(|(_, k)| (k.clone(), field(&v, &k)))
                .collect()
        })
        .collect();
    check_access(&lines, blocked.port(), bin);
}

fn the_text_access_log_has_the_documented_fields(bin: &str) {
    // Text access lines beside a JSON diagnostic log: each has its format.
    let (_server, access, blocked) = served_with_access_log(
        bin,
        "access-text",
        "access_log_format = \"text\"",
        &["--log-format", "json"],
    );
    let raw = wait_file_lines(&access, |l| l.len() >= 2);
    let lines: Vec<Vec<(String, String)>> = raw
        .iter()
        .map(|l| text_fields(l).unwrap_or_else(|| panic!("{bin}: not key=value: {l}")))
        .collect();
    check_access(&lines, blocked.port(), bin);
}

fn the_access_log_at_warn_keeps_only_connections_not_granted(bin: &str) {
    // No access_log_format: it follows log_format (JSON here).
    let (mut server, access, _blocked) =
        served_with_access_log(bin, "access-warn", "access_log_level = \"warn\"", &[]);
    // A graceful stop writes out every queue.
    server.signal("TERM");
    assert!(server.wait_exit(STEP).is_some(), "{bin}: did not stop");
    let text = std::fs::read_to_string(&access).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{bin}: {text}");
    assert!(lines[0].contains("\"user\":\"mal lory\""), "{bin}: {text}");
}

/// The server `bin` with `args`, its standard error ignored, its listening
/// address read from /proc (its log goes to a file).
fn start_quiet(bin: &str, args: &[&str], stderr: Stdio) -> (ChildGuard, std::net::SocketAddr) {
    let mut child = Process::new(server_binary(bin))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let addr = socks4_tests::log_lines::wait_server(&mut child, bin);
    (ChildGuard(child), addr)
}

fn the_log_file_is_reopened_on_sigusr1(bin: &str) {
    let dir = socks4_tests::scratch::fresh(&format!("logfile-{bin}"));
    let log = dir.join("socks4d.log");
    let moved = dir.join("socks4d.log.1");
    let path = log.display().to_string();
    let (server, addr) = start_quiet(
        bin,
        &["--log-file", &path, "--log-format", "json"],
        Stdio::null(),
    );
    let target = echo(2);
    let c = socks_request(addr, &connect_to(target, b"before"), |_| {});
    assert_eq!(round_trip(c.stream, &c.early, b"x"), b"x", "{bin}");
    let has = |user: &'static str| {
        move |l: &[String]| {
            l.iter()
                .any(|l| l.contains("\"closed\"") && l.contains(user))
        }
    };
    wait_file_lines(&log, has("before"));
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(&log).unwrap().mode() & 0o777,
        0o640,
        "{bin}"
    );
    std::fs::rename(&log, &moved).unwrap();
    let pid = server.0.id().to_string();
    assert!(Process::new("kill")
        .args(["-USR1", &pid])
        .status()
        .unwrap()
        .success());
    let reopened = wait_file_lines(&log, |l| l.iter().any(|l| l.contains("log file reopened")));
    assert!(!reopened.is_empty(), "{bin}: no line in the new file");
    let c = socks_request(addr, &connect_to(target, b"after"), |_| {});
    assert_eq!(round_trip(c.stream, &c.early, b"y"), b"y", "{bin}");
    let new = wait_file_lines(&log, has("after"));
    let old = std::fs::read_to_string(&moved).unwrap();
    assert!(old.contains("\"before\""), "{bin}: {old}");
    assert!(
        !old.contains("\"after\"") && !old.contains("log file reopened"),
        "{bin}: {old}"
    );
    assert!(
        !new.iter().any(|l| l.contains("\"before\"")),
        "{bin}: {new:?}"
    );
    for line in old.lines().chain(new.iter().map(String::as_str)) {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("{bin}: {e}: {line}"));
    }
}

fn a_log_file_is_never_opened_through_a_link(bin: &str) {
    let dir = socks4_tests::scratch::fresh(&format!("loglink-{bin}"));
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let link = dir.join("socks4d.log");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let path = link.display().to_string();
    let (status, _out, err) = run_binary(bin, &["--listen", "127.0.0.1:0", "--log-file", &path]);
    assert_eq!(status.code(), Some(1), "{bin}: {err}");
    assert!(err.contains("symbolic link"), "{bin}: {err}");
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "precious\n",
        "{bin}"
    );
}

fn check_names_the_log_outputs_and_refuses_bad_ones(bin: &str) {
    let dir = socks4_tests::scratch::fresh(&format!("logcheck-{bin}"));
    let log = dir.join("socks4d.log").display().to_string();
    let base = ["--listen", "127.0.0.1:1080", "--check"];
    let outputs = [
        "--log-file",
        &log,
        "--syslog",
        "udp:127.0.0.1:514",
        "--access-log",
        "syslog",
        "--access-log-format",
        "json",
    ];
    let args: Vec<&str> = base.iter().chain(&outputs).copied().collect();
    let (status, out, err) = run_binary(bin, &args);
    assert!(status.success(), "{bin}: {out}{err}");
    for says in [
        format!("log file: {log} (reopened on SIGUSR1)"),
        "syslog: udp:127.0.0.1:514 (RFC 5424)".to_owned(),
        "access log: syslog udp:127.0.0.1:514, json, info".to_owned(),
    ] {
        assert!(out.contains(&says), "{bin}: {says:?} in {out}");
    }
    // Nothing was opened or sent by a check.
    assert!(!Path::new(&log).exists(), "{bin}");
    let (status, _, err) = run_binary(bin, &["--check", "--syslog", "syslog.example:514"]);
    assert_eq!(status.code(), Some(2), "{bin}: {err}");
    assert!(err.contains("udp:HOST:PORT"), "{bin}: {err}");
    let missing = dir.join("no-such-folder/access.log").display().to_string();
    let (status, _, err) = run_binary(bin, &["--check", "--access-log", &missing]);
    assert_eq!(status.code(), Some(2), "{bin}: {err}");
    assert!(
        err.contains("does not exist (config: access_log)") && err.contains("LogsDirectory="),
        "{bin}: {err}"
    );
}

/// The value of the metric `name` in a scrape, 0 when absent.
fn metric(scrape: &str, name: &str) -> u64 {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

fn an_unreachable_syslog_server_costs_lines_not_service(bin: &str) {
    // Nobody listens there: every line for syslog is dropped and counted.
    let nobody = ClosedPort::new();
    let metrics_port = free_port();
    let syslog = format!("tcp:127.0.0.1:{}", nobody.port());
    let metrics = format!("127.0.0.1:{metrics_port}");
    let args = ["--syslog", &syslog, "--metrics-listen", &metrics];
    let (server, _) = start_quiet(bin, &args, Stdio::piped());
    let deadline = Instant::now() + STEP;
    let proxy = loop {
        let addrs = socks4_tests::procfs::listening_addrs(server.0.id());
        if let Some(a) = addrs.iter().find(|a| a.port() != metrics_port) {
            if addrs.len() == 2 {
                break *a;
            }
        }
        assert!(Instant::now() < deadline, "{bin}: not listening");
        std::thread::sleep(Duration::from_millis(20));
    };
    let target = echo(20);
    for i in 0..20 {
        let c = socks_request(proxy, &connect_to(target, b"someone"), |_| {});
        assert!(granted(&c), "{bin}: connection {i}");
        assert_eq!(round_trip(c.stream, &c.early, b"q"), b"q", "{bin}");
    }
    let deadline = Instant::now() + STEP;
    loop {
        let mut s = std::net::TcpStream::connect(&metrics).unwrap();
        std::io::Write::write_all(&mut s, b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut scrape = String::new();
        std::io::Read::read_to_string(&mut s, &mut scrape).unwrap();
        // The listening line and a closed line per connection, at least.
        if metric(&scrape, "socks4_log_lines_dropped_total") >= 21 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{bin}: drops not counted:\n{scrape}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_access_log_fields_are_documented_in_order() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/operations.md"
    ))
    .unwrap();
    let section = doc
        .split("### The access log")
        .nth(1)
        .expect("docs/operations.md has a section \"The access log\"");
    let documented: Vec<&str> = section
        .lines()
        .skip_while(|l| !l.starts_with("| field"))
        .skip(2)
        .take_while(|l| l.starts_with("| `"))
        .filter_map(|l| l.split('`').nth(1))
        .collect();
    assert_eq!(documented, ACCESS_FIELDS);
}
