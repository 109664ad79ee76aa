//! The log lines an operator relies on, on every adapter: a user id with a
//! newline stays one line, a log reader that stops reading does not stop the
//! server, a rule with `log` is logged under `-q`, the closed line names the
//! rule when the connect fails, and the parent and its answer when a parent
//! refused.
//!
//! Where the lines go (the log file and its reopening, syslog, the access
//! log) is in `outputs`.

mod outputs;

use socks4_proto::ReplyCode;
use socks4_tests::e2e::*;
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

socks4_tests::on_every_adapter!(
    a_user_id_with_a_newline_makes_one_log_line,
    a_stuck_log_reader_does_not_stop_serving,
    a_rule_with_log_is_logged_under_quiet,
    the_closed_line_names_the_rule_when_the_connect_fails,
    the_closed_line_names_the_parent_and_its_answer,
);

fn a_user_id_with_a_newline_makes_one_log_line(bin: &str) {
    // A rule that must read the request to refuse it (a source refused
    // whatever it asks is refused at accept, before its user id is read).
    let conf = rules_config(&format!("newline-{bin}"), "pass from any to 192.0.2.0/24");
    let server = Server::start(bin, &["--config", &conf, "--log-format", "text"]);
    let forged = b"x\n1999-01-01T00:00:00Z  INFO socks4d: forged line \"quoted\"";
    let c = socks_request(server.addr, &connect_to(echo(1), forged), |_| {});
    assert_eq!(rejected_with(&c), Some(ReplyCode::Rejected), "{bin}");
    let deadline = std::time::Instant::now() + STEP;
    while !server.log().contains(" closed ") {
        assert!(
            std::time::Instant::now() < deadline,
            "{bin}: no closed line\n{}",
            server.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let log = server.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("forged line")).collect();
    assert_eq!(lines.len(), 1, "{bin}: {log}");
    assert!(
        lines[0].contains(" INFO socks4d: closed "),
        "{bin}: {}",
        lines[0]
    );
    assert!(
        lines[0]
            .contains(r#"user="x\n1999-01-01T00:00:00Z  INFO socks4d: forged line \"quoted\"""#),
        "{bin}: {}",
        lines[0]
    );
    assert!(lines[0].contains("outcome=denied"), "{bin}: {}", lines[0]);
}

fn a_stuck_log_reader_does_not_stop_serving(bin: &str) {
    // Standard error is a pipe that nobody reads, and every connection logs
    // several lines (debug level).
    let mut child = Process::new(server_binary(bin))
        .args(["--listen", "127.0.0.1:0", "-v", "--max-connections", "4096"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Nobody reads the log, so the bound port comes from /proc.
    let addr = wait_listening(child.id(), bin);
    let target = echo(2000);
    for i in 0..2000 {
        let c = socks_request(addr, &connect_to(target, b"someone"), |_| {});
        assert!(
            granted(&c),
            "{bin}: connection {i} not served: {:?}",
            c.events
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn temp_dir(what: &str, bin: &str) -> std::path::PathBuf {
    let dir = socks4_tests::scratch::fresh(&format!("{what}-{bin}"));
    dir
}

fn a_rule_with_log_is_logged_under_quiet(bin: &str) {
    let dir = temp_dir("rulelog", bin);
    let conf = dir.join("socks4d.toml");
    let echo = echo(1);
    std::fs::write(
        &conf,
        format!(
            "[access]\nrules = \"\"\"\nblock from any to any port eq {} log\npass from 127.0.0.0/8 to any\n\"\"\"\n",
            echo.port()
        ),
    )
    .unwrap();
    // -q: warnings only. RUST_LOG is not set for this one.
    let mut cmd = Process::new(server_binary(bin));
    cmd.args(["-q", "--log-format", "json", "--config"])
        .arg(&conf)
        .stderr(Stdio::piped())
        .stdout(Stdio::null());
    // Port 0: under -q the listening line is not logged, so the bound port is
    // read from /proc (a port picked beforehand could be taken meanwhile).
    cmd.args(["--listen", "127.0.0.1:0"]);
    let mut child = cmd.spawn().unwrap();
    let proxy = wait_listening(child.id(), bin);
    let c = socks_request(proxy, &connect_to(echo, b"logged"), |_| {});
    // A graceful stop writes out the log queue before the process exits.
    let stopped = Process::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success(), "{bin}");
    let deadline = Instant::now() + STEP;
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        rejected_with(&c),
        Some(ReplyCode::Rejected),
        "{bin}: {:?}\n{log}",
        c.events
    );
    let line = log
        .lines()
        .find(|l| l.contains("rule decided"))
        .unwrap_or_else(|| panic!("{bin}: no rule line under -q:\n{log}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["level"], "WARN", "{bin}: {line}");
    assert_eq!(v["decision"], "block", "{bin}: {line}");
    assert_eq!(v["user"], "logged", "{bin}: {line}");
    assert!(
        v["rule"].as_str().unwrap().starts_with("rule 1"),
        "{bin}: {line}"
    );
}

fn the_closed_line_names_the_rule_when_the_connect_fails(bin: &str) {
    let server = Server::start(bin, &[]);
    let closed = ClosedPort::new();
    let closed_port = closed.port();
    let c = socks_request(
        server.addr,
        &connect_to(format!("127.0.0.1:{closed_port}").parse().unwrap(), b""),
        |_| {},
    );
    assert_eq!(rejected_with(&c), Some(ReplyCode::Rejected), "{bin}");
    let line = server.wait_for("the closed line", |l| says(l, "closed"));
    assert_eq!(field(&line, "outcome"), "connect_failed", "{bin}: {line}");
    assert!(field(&line, "rule").starts_with("rule 1"), "{bin}: {line}");
}

fn the_closed_line_names_the_parent_and_its_answer(bin: &str) {
    // A parent HTTP proxy that refuses every CONNECT.
    let parent = peer(1, |mut s| {
        use std::io::{BufRead, Write};
        let mut reader = std::io::BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
            line.clear();
        }
        let _ = s.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
    });
    let conf = rules_config(
        &format!("parent-403-{bin}"),
        &format!("pass from 127.0.0.0/8 to any\nroute to any via http://{parent}"),
    );
    let server = Server::start(bin, &["--config", &conf]);
    let c = socks_request(server.addr, &connect_to(echo(1), b""), |_| {});
    assert_eq!(rejected_with(&c), Some(ReplyCode::Rejected), "{bin}");
    let line = server.wait_for("the closed line", closed);
    assert_eq!(
        field(&line, "via"),
        format!("http://{parent}"),
        "{bin}: {line}"
    );
    assert_eq!(field(&line, "outcome"), "parent_failed", "{bin}: {line}");
    assert_eq!(
        field(&line, "reason"),
        "answered 403 Forbidden",
        "{bin}: {line}"
    );
}
