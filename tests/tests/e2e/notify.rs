//! Notifications from rules with `notify`, on every adapter: the command runs
//! with the request's details as environment variables and JSON on standard
//! input (never a shell, never argv), a client's user id reaches it byte for
//! byte and runs nothing, a flood is suppressed and summed up while another
//! address still notifies, a command that hangs is killed and reaped without
//! delaying anyone, and bad `[notify]` configurations are refused with their
//! line and column (at start, and on SIGHUP with the old configuration kept).

use socks4_proto::client::Event;
use socks4_tests::e2e::*;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::{Duration, Instant};

socks4_tests::on_every_adapter!(
    rules_run_the_command_with_the_request,
    client_bytes_never_reach_a_shell,
    a_flood_is_suppressed_and_summed_up,
    a_slow_command_is_killed_and_never_in_the_way,
    notification_commands_leave_no_orphans,
    client_caused_log_lines_have_a_budget,
    bad_notify_configs_are_refused_with_line_and_column,
);

fn dir(bin: &str, what: &str) -> PathBuf {
    let dir = socks4_tests::scratch::fresh(&format!("notify-{what}-{bin}"));
    std::fs::create_dir_all(dir.join("records")).unwrap();
    dir
}

/// A notification command that keeps each run's environment (`env -0`) and
/// standard input as a record in the folder it is given.
fn recorder(dir: &Path) -> PathBuf {
    let script = dir.join("record.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nd=\"$1\"; n=\"$d/.$$\"\nenv -0 > \"$n.env\"\ncat > \"$d/$$.stdin\"\nmv \"$n.env\" \"$d/$$.env\"\n",
    )
    .unwrap();
    make_executable(&script);
    script
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// One run of the command: its SOCKS4_* variables (values as bytes) and
/// standard input.
#[derive(Debug)]
struct Record {
    env: BTreeMap<String, Vec<u8>>,
    stdin: serde_json::Value,
}

impl Record {
    fn var(&self, name: &str) -> String {
        String::from_utf8_lossy(self.env.get(name).map_or(&[][..], |v| v)).into_owned()
    }
}

fn records(dir: &Path) -> Vec<Record> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir.join("records")).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "env")
            || path.file_name().unwrap().to_string_lossy().starts_with('.')
        {
            continue;
        }
        let raw = std::fs::read(&path).unwrap();
        let env = raw
            .split(|b| *b == 0)
            .filter(|v| v.starts_with(b"SOCKS4_"))
            .map(|v| {
                let eq = v.iter().position(|b| *b == b'=').unwrap();
                (
                    String::from_utf8(v[..eq].to_vec()).unwrap(),
                    v[eq + 1..].to_vec(),
                )
            })
            .collect();
        let stdin = std::fs::read_to_string(path.with_extension("stdin")).unwrap_or_default();
        out.push(Record {
            env,
            stdin: serde_json::from_str(&stdin).unwrap_or(serde_json::Value::Null),
        });
    }
    out
}

/// Waits until `pred` holds for the records (bounded), and returns them.
fn wait_records(dir: &Path, what: &str, pred: impl Fn(&[Record]) -> bool) -> Vec<Record> {
    let deadline = Instant::now() + STEP * 2;
    loop {
        let r = records(dir);
        if pred(&r) {
            return r;
        }
        assert!(Instant::now() < deadline, "{what}: {r:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn config(dir: &Path, notify: &str, rules: &str) -> String {
    let path = dir.join("socks4d.toml");
    std::fs::write(
        &path,
        format!("{notify}\n[access]\nrules = \"\"\"\n{rules}\n\"\"\"\n"),
    )
    .unwrap();
    path.display().to_string()
}

fn notify_section(command: &[&Path], extra: &str) -> String {
    let argv: Vec<String> = command
        .iter()
        .map(|p| format!("\"{}\"", p.display()))
        .collect();
    format!("[notify]\ncommand = [{}]\n{extra}", argv.join(", "))
}

fn rules_run_the_command_with_the_request(bin: &str) {
    let dir = dir(bin, "basic");
    let script = recorder(&dir);
    let blocked = free_port();
    let web = echo(1);
    let conf = config(
        &dir,
        &notify_section(&[&script, &dir.join("records")], ""),
        &format!(
            "block from any to any port eq {blocked} notify\n\
             pass from 127.0.0.0/8 to any port eq {} notify\n\
             pass from 127.0.0.0/8 to any",
            web.port()
        ),
    );
    let server = Server::start(bin, &["--config", &conf]);
    let dest = SocketAddr::from(([127, 0, 0, 1], blocked));
    let mut clients = Vec::new();
    for _ in 0..3 {
        let c = socks_request(server.addr, &connect_to(dest, b"alice"), |_| {});
        assert!(refused(&c), "{:?}", c.events);
        clients.push(c.stream.local_addr().unwrap().to_string());
    }
    let recs = wait_records(&dir, "three denied records", |r| r.len() >= 3);
    assert_eq!(recs.len(), 3);
    for r in &recs {
        assert_eq!(r.var("SOCKS4_EVENT"), "denied");
        assert!(clients.contains(&r.var("SOCKS4_CLIENT")), "{r:?}");
        assert_eq!(r.var("SOCKS4_LISTENER"), server.addr.to_string());
        assert_eq!(r.var("SOCKS4_USER"), "alice");
        assert_eq!(r.var("SOCKS4_DEST"), dest.to_string());
        assert_eq!(r.var("SOCKS4_COMMAND"), "connect");
        assert_eq!(r.var("SOCKS4_REPLY"), "91");
        assert_eq!(
            r.var("SOCKS4_RULE"),
            format!("rule 1 (line 1): block from any to any port eq {blocked} notify")
        );
        assert_eq!(r.stdin["event"], "denied");
        assert_eq!(r.stdin["user"], "alice");
        assert_eq!(r.stdin["reply"], 91);
    }
    // The log line of its own, at warn.
    let line = server.wait_says("notification");
    assert_eq!(field(&line, "target"), "socks4d::notify", "{line}");

    // A pass rule with notify: granted, raised before the connect (no reply
    // variable).
    let c = socks_request(server.addr, &connect_to(web, b"bob"), |_| {});
    assert!(matches!(c.events.last(), Some(Event::Granted(_))));
    let recs = wait_records(&dir, "a granted record", |r| r.len() >= 4);
    let granted: Vec<&Record> = recs
        .iter()
        .filter(|r| r.var("SOCKS4_EVENT") == "granted")
        .collect();
    assert_eq!(granted.len(), 1, "{recs:#?}");
    assert_eq!(granted[0].var("SOCKS4_USER"), "bob");
    assert!(!granted[0].env.contains_key("SOCKS4_REPLY"));
    // A request no notify rule decides raises nothing.
    drop(c);
    let other = echo(1);
    let c = socks_request(server.addr, &connect_to(other, b""), |_| {});
    assert!(matches!(c.events.last(), Some(Event::Granted(_))));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(records(&dir).len(), 4);
}

fn client_bytes_never_reach_a_shell(bin: &str) {
    let dir = dir(bin, "inject");
    let script = recorder(&dir);
    let blocked = free_port();
    let conf = config(
        &dir,
        &notify_section(&[&script, &dir.join("records")], ""),
        "block from any to any notify",
    );
    let server = Server::start(bin, &["--config", &conf]);
    let dest = SocketAddr::from(([127, 0, 0, 1], blocked));
    let p1 = dir.join("P1");
    let p2 = dir.join("P2");
    let injections: Vec<Vec<u8>> = vec![
        format!("x$(touch {});touch {}", p1.display(), p2.display()).into_bytes(),
        format!("`touch {}`\n\"quoted\" 'single'\\ ;|&", p1.display()).into_bytes(),
    ];
    for user in &injections {
        let c = socks_request(server.addr, &connect_to(dest, user), |_| {});
        assert!(refused(&c));
    }
    let recs = wait_records(&dir, "two records", |r| r.len() >= 2);
    let mut users: Vec<Vec<u8>> = recs.iter().map(|r| r.env["SOCKS4_USER"].clone()).collect();
    users.sort();
    let mut sent = injections.clone();
    sent.sort();
    assert_eq!(users, sent, "the user ids arrived byte for byte");
    // The JSON on standard input has them too.
    for r in &recs {
        assert!(sent.contains(&r.stdin["user"].as_str().unwrap().as_bytes().to_vec()));
    }
    std::thread::sleep(Duration::from_millis(300));
    for p in [&p1, &p2, &PathBuf::from("P1"), &PathBuf::from("P2")] {
        assert!(!p.exists(), "{} was created", p.display());
    }
}

fn a_flood_is_suppressed_and_summed_up(bin: &str) {
    let dir = dir(bin, "flood");
    let script = recorder(&dir);
    let blocked = free_port();
    let conf = config(
        &dir,
        &notify_section(&[&script, &dir.join("records")], "rate = \"5/10s\"\n"),
        "block from any to any notify",
    );
    let server = Server::start(bin, &["--config", &conf]);
    let dest = SocketAddr::from(([127, 0, 0, 1], blocked));
    for _ in 0..50 {
        let c = socks_request(server.addr, &connect_to(dest, b"flood"), |_| {});
        assert!(refused(&c));
    }
    // Another address is not held back by the first one's rate.
    let s = connect_from(Ipv4Addr::new(127, 0, 0, 2), server.addr);
    let c = socks_request_on(s, &connect_to(dest, b"other"), |_| {});
    assert!(refused(&c));
    let from = |r: &Record, ip: &str| r.var("SOCKS4_CLIENT").starts_with(&format!("{ip}:"));
    let recs = wait_records(&dir, "a summary of the suppressed notifications", |r| {
        r.iter().any(|r| r.var("SOCKS4_EVENT") == "suppressed")
    });
    let denied_1 = recs
        .iter()
        .filter(|r| r.var("SOCKS4_EVENT") == "denied" && from(r, "127.0.0.1"))
        .count();
    assert_eq!(denied_1, 5, "{recs:#?}");
    let summary: Vec<&Record> = recs
        .iter()
        .filter(|r| r.var("SOCKS4_EVENT") == "suppressed")
        .collect();
    assert_eq!(summary.len(), 1, "{recs:#?}");
    assert!(from(summary[0], "127.0.0.1"), "{:?}", summary[0]);
    assert_eq!(summary[0].var("SOCKS4_SUPPRESSED"), "45");
    assert!(
        recs.iter()
            .any(|r| r.var("SOCKS4_EVENT") == "denied" && from(r, "127.0.0.2")),
        "{recs:#?}"
    );
}

fn a_slow_command_is_killed_and_never_in_the_way(bin: &str) {
    let dir = dir(bin, "slow");
    let script = dir.join("slow.sh");
    std::fs::write(&script, "#!/bin/sh\nexec sleep 30\n").unwrap();
    make_executable(&script);
    let blocked = free_port();
    let web = echo(1);
    let conf = config(
        &dir,
        &notify_section(&[&script], "timeout = 1\nmax_running = 2\n"),
        &format!("block from any to any port eq {blocked} notify\npass from 127.0.0.0/8 to any"),
    );
    let server = Server::start(bin, &["--config", &conf]);
    let dest = SocketAddr::from(([127, 0, 0, 1], blocked));
    // Twenty refusals while the commands hang: each answered at once.
    let started = Instant::now();
    for _ in 0..20 {
        let c = socks_request(server.addr, &connect_to(dest, b""), |_| {});
        assert!(refused(&c));
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "twenty refusals took {took:?} while notification commands hung"
    );
    // A good client is served meanwhile.
    let c = socks_request(server.addr, &connect_to(web, b""), |_| {});
    assert!(matches!(c.events.last(), Some(Event::Granted(_))));
    assert_eq!(round_trip(c.stream, &c.early, b"served"), b"served");
    // The commands (ten, the default rate) run two at a time, each killed
    // after a second; then none is left, not even a zombie.
    server.wait_for("a command killed at its timeout", |l| {
        says(l, "notification command did not succeed") && field(l, "result") == "timed_out"
    });
    let deadline = Instant::now() + STEP * 2;
    loop {
        let children: Vec<u32> = socks4_tests::procfs::tree(server.pid())
            .into_iter()
            .filter(|p| *p != server.pid())
            .collect();
        let killed = server.count(|l| {
            says(l, "notification command did not succeed") && field(l, "result") == "timed_out"
        });
        if children.is_empty() && killed == 10 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "children left: {children:?}, {killed} killed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The processes whose command line holds `marker`.
fn marked(marker: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(marker) {
            pids.push(pid);
        }
    }
    pids
}

/// Notifications so far that ended with `result`, from the metrics.
fn notified(server: &Server, result: &str) -> u64 {
    let wanted = format!("socks4_notifications_total{{result=\"{result}\"}} ");
    server
        .metrics()
        .lines()
        .find_map(|l| l.strip_prefix(&wanted).and_then(|n| n.trim().parse().ok()))
        .unwrap_or(0)
}

/// A command that forks a background job and exits at once, and one that
/// forks and hangs past its timeout: neither leaves a process behind, for
/// each command leads a process group that is killed whole.
fn notification_commands_leave_no_orphans(bin: &str) {
    let dir = dir(bin, "orphans");
    // In the background job's command line, and the prefix of the file it
    // creates once it runs.
    let marker = dir.join(format!("orphan-{}", std::process::id()));
    let marker = marker.display().to_string();
    let job = format!(
        "m='{marker}'\nsh -c 'touch \"$1\"; sleep 60; true' \"$m\" \"$m.$$\" &\n\
         while [ ! -e \"$m.$$\" ]; do sleep 0.05; done\n"
    );
    let quick = dir.join("quick.sh");
    let hangs = dir.join("hangs.sh");
    std::fs::write(&quick, format!("#!/bin/sh\n{job}exit 0\n")).unwrap();
    std::fs::write(&hangs, format!("#!/bin/sh\n{job}sleep 60\n")).unwrap();
    make_executable(&quick);
    make_executable(&hangs);
    let dest = SocketAddr::from(([127, 0, 0, 1], free_port()));
    for (script, ended) in [(&quick, "sent"), (&hangs, "timed_out")] {
        let conf = config(
            &dir,
            &notify_section(&[script], "timeout = 2\n"),
            "block from any to any notify",
        );
        let server = Server::start(bin, &["--config", &conf, "--metrics-listen", "127.0.0.1:0"]);
        let before = std::fs::read_dir(&dir).unwrap().count();
        for _ in 0..3 {
            let c = socks_request(server.addr, &connect_to(dest, b""), |_| {});
            assert!(refused(&c));
        }
        // Three commands ended (exited, or killed at their timeout) and were
        // reaped, each after its background job had started.
        let deadline = Instant::now() + STEP * 2;
        while notified(&server, ended) < 3 {
            assert!(Instant::now() < deadline, "{ended}: {}", server.metrics());
            std::thread::sleep(Duration::from_millis(50));
        }
        let started = std::fs::read_dir(&dir).unwrap().count() - before;
        assert_eq!(
            started,
            3,
            "background jobs started by {}",
            script.display()
        );
        // Then nothing they forked is left.
        std::thread::sleep(Duration::from_millis(300));
        let left = marked(&marker);
        for pid in left.iter().flat_map(|p| socks4_tests::procfs::tree(*p)) {
            let _ = Process::new("kill").args(["-9", &pid.to_string()]).status();
        }
        assert!(
            left.is_empty(),
            "{} left background jobs behind: {left:?}",
            script.display()
        );
    }
}

/// A client's flood of notify-rule refusals writes at most the budget of
/// `notification` lines a second (`refusal_log_lines`), and the rest is
/// summed up, while every notification is still counted.
fn client_caused_log_lines_have_a_budget(bin: &str) {
    let dir = dir(bin, "budget");
    let script = recorder(&dir);
    let conf = config(
        &dir,
        &notify_section(&[&script, &dir.join("records")], "rate = \"1/1m\"\n"),
        "block from any to any notify",
    );
    let server = Server::start(bin, &["--config", &conf, "--refusal-log-lines", "3"]);
    let dest = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let started = Instant::now();
    for _ in 0..40 {
        let c = socks_request(server.addr, &connect_to(dest, b""), |_| {});
        assert!(refused(&c));
    }
    let seconds = started.elapsed().as_secs() as usize + 1;
    server.wait_says("warnings clients caused not logged one by one (over the refusal log budget)");
    let lines = server.count(|l| says(l, "notification"));
    assert!(
        lines <= 3 * seconds,
        "{bin}: {lines} notification lines in {seconds} s with a budget of 3 a second"
    );
    assert!(lines >= 1, "{bin}: no notification line at all");
}

fn bad_notify_configs_are_refused_with_line_and_column(bin: &str) {
    let dir = dir(bin, "bad");
    let start = |conf: &str| {
        run(
            Process::new(server_binary(bin)).args(["--config", conf, "--listen", "127.0.0.1:0"]),
            b"",
        )
    };
    // A command that is not there.
    let conf = config(
        &dir,
        "# alerts\n[notify]\nmax_running = 2\n  command = [\"/nonexistent/socks-alert\"]\n",
        "pass from 127.0.0.0/8 to any notify",
    );
    let (status, _, err) = start(&conf);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains("line 4, column 3") && err.contains("/nonexistent/socks-alert"),
        "{err}"
    );
    // `notify` without a [notify] section: the rule's clause is named.
    let conf = config(
        &dir,
        "",
        "pass from 127.0.0.0/8 to any port eq 80\npass from 127.0.0.0/8 to any  notify",
    );
    let (status, _, err) = start(&conf);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("line 5, column 31"), "{err}");
    assert!(err.contains("[notify]"), "{err}");

    // On SIGHUP a bad command is refused and the old one stays.
    let script = recorder(&dir);
    let records = dir.join("records");
    let good = notify_section(&[&script, &records], "");
    let conf = config(&dir, &good, "block from any to any notify");
    let server = Server::start(bin, &["--config", &conf]);
    config(
        &dir,
        "[notify]\ncommand = [\"/nonexistent/socks-alert\"]\n",
        "block from any to any notify",
    );
    server.signal("HUP");
    let line = server.wait_says("reload failed, keeping the old configuration");
    assert!(field(&line, "error").contains("line 2, column 1"), "{line}");
    let dest = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let c = socks_request(server.addr, &connect_to(dest, b"after"), |_| {});
    assert!(refused(&c));
    wait_records(&dir, "a record from the old command", |r| {
        r.iter().any(|r| r.var("SOCKS4_USER") == "after")
    });
}
