//! `--check` predicts the start, on every adapter: it exits 2 for what the
//! start would stop on (a user or group that does not exist, switching users
//! without root, a TLS file missing or unreadable, a pid file's or control
//! socket's folder missing, a port below 1024 without privilege), and the
//! start stops on the same with the same words; `--strict` exits 1 for a
//! policy that surprises (everyone in any spelling on a public listener,
//! nothing passes) and for a descriptor limit too low for `max_connections`;
//! the start raises its soft descriptor limit, logs the warnings, prints an
//! error once and leaves no pid file behind. And errors that say what to
//! do: a listen address without its IP answers "expected IP:PORT, e.g.
//! 127.0.0.1:1080" (on the command line and in the file); `listen = "ADDR"`
//! is a list of one; a key written in the wrong section names the one it
//! belongs in; a path given on the command line is relative to the current
//! folder, one in the file to the file's. (Root with a public listener and
//! no user: `tests/tests/peers/operations.rs`, as root.)

use socks4_tests::e2e::*;
use std::process::Command as Process;

socks4_tests::on_every_adapter!(
    check_exits_2_for_what_the_start_would_stop_on,
    the_start_stops_on_the_same_with_the_same_words,
    switching_users_needs_root_and_to_oneself_is_a_no_op,
    tls_files_missing_or_unreadable_are_errors,
    a_port_below_1024_without_privilege_names_the_three_ways,
    strict_exits_1_for_everyone_in_any_spelling_on_a_public_listener,
    a_policy_that_passes_nothing_is_a_warning_at_check_and_at_start,
    a_low_descriptor_limit_names_the_limit_needed,
    the_start_raises_the_soft_descriptor_limit,
    the_pid_file_is_gone_after_a_failed_start,
    a_start_error_is_printed_once,
    a_listen_address_without_its_ip_says_what_is_expected,
    listen_as_one_string_is_a_list_of_one,
    a_key_in_the_wrong_section_names_its_own,
    command_line_paths_are_relative_to_the_current_folder,
);

/// Exit status 2, and standard error says `what`.
fn fails_with(bin: &str, args: &[&str], what: &str) -> String {
    let (status, out, err) = run_binary(bin, args);
    assert_eq!(
        status.code(),
        Some(2),
        "{bin} {args:?}: {status}\n{out}\n{err}"
    );
    assert!(
        err.contains(what),
        "{bin} {args:?}: wanted {what:?} in:\n{err}"
    );
    err
}

fn check_exits_2_for_what_the_start_would_stop_on(bin: &str) {
    let dir = socks4_tests::scratch::dir(&format!("preflight-{bin}"));
    let missing = dir.join("no-such-folder");
    let pid = missing.join("socks4d.pid");
    let ctl = missing.join("control.sock");
    let user = ["--user", "no-such-user-here", "--check"];
    fails_with(bin, &user, "no user named no-such-user-here");
    let group = ["--user", "root", "--group", "no-such-group-here", "--check"];
    fails_with(bin, &group, "no group named no-such-group-here");
    fails_with(bin, &["--group", "root", "--check"], "needs user");
    let pid_args = ["--pid-file", pid.to_str().unwrap(), "--check"];
    let err = fails_with(bin, &pid_args, "does not exist");
    assert!(err.contains(missing.to_str().unwrap()), "{bin}: {err}");
    let ctl_args = ["--control-socket", ctl.to_str().unwrap(), "--check"];
    fails_with(bin, &ctl_args, "control socket");
    // And without them, the same check passes.
    let (status, out, err) = run_binary(bin, &["--check", "--strict"]);
    assert!(status.success(), "{bin}: {status}\n{out}\n{err}");
}

fn the_start_stops_on_the_same_with_the_same_words(bin: &str) {
    let dir = socks4_tests::scratch::dir(&format!("preflight-start-{bin}"));
    let pid = dir.join("no-such-folder").join("socks4d.pid");
    let pid = pid.to_str().unwrap();
    let check = fails_with(bin, &["--pid-file", pid, "--check"], "does not exist");
    let start = fails_with(
        bin,
        &["--pid-file", pid, "--listen", "127.0.0.1:0"],
        "does not exist",
    );
    let said = |text: &str| {
        text.lines()
            .find(|l| l.contains("does not exist"))
            .map(|l| {
                l[l.find("pid file").unwrap()..]
                    .trim_end_matches('"')
                    .to_owned()
            })
            .unwrap()
    };
    assert_eq!(said(&check), said(&start), "{bin}: the same words");
}

fn switching_users_needs_root_and_to_oneself_is_a_no_op(bin: &str) {
    let me = normal_user_name();
    let other = if me == "root" { "nobody" } else { "root" };
    assert_ne!(me, "root", "{bin}: the server runs as a normal user here");
    let program = server_binary(bin);
    let (status, _, err) = run(
        as_normal_user(&program).args(["--user", other, "--check"]),
        b"",
    );
    assert_eq!(status.code(), Some(2), "{bin}: {err}");
    assert!(
        err.contains("switching to another user needs root"),
        "{bin}: {err}"
    );
    // Switching to oneself: nothing to do, and the server serves.
    let mut cmd = as_normal_user(&program);
    cmd.args([
        "--user",
        &me,
        "--listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
    ]);
    let server = Server::start_command(bin, cmd);
    let c = socks_request(server.addr, &connect_to(echo(1), b""), |_| {});
    assert!(granted(&c), "{bin}: {:?}\n{}", c.events, server.log());
    server.wait_says("already running as the user to switch to");
}

fn tls_files_missing_or_unreadable_are_errors(bin: &str) {
    let dir = socks4_tests::scratch::fresh(&format!("preflight-tls-{bin}"));
    let ca = socks4_tests::tls::TestCa::new(&dir, "preflight-ca");
    let cert = ca.issue("server", "socks4d", &["localhost"]);
    let missing = dir.join("missing.pem");
    let listen = ["--listen-tls", "127.0.0.1:0"];
    let args = |c: &std::path::Path, k: &std::path::Path| {
        let mut a: Vec<String> = listen.iter().map(|s| s.to_string()).collect();
        a.extend([
            "--tls-cert".into(),
            c.display().to_string(),
            "--tls-key".into(),
            k.display().to_string(),
            "--check".into(),
        ]);
        a
    };
    let a = args(&missing, &cert.key);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    fails_with(bin, &a, "missing.pem");
    // Unreadable to the user the server runs as.
    let locked = dir.join("locked.key");
    std::fs::copy(&cert.key, &locked).unwrap();
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    let a = args(&cert.cert, &locked);
    let (status, _, err) = run(as_normal_user(&server_binary(bin)).args(&a), b"");
    assert_eq!(status.code(), Some(2), "{bin}: {err}");
    assert!(
        err.contains("locked.key") && err.contains("ermission denied"),
        "{bin}: {err}"
    );
    // Readable: the same check passes.
    let a = args(&cert.cert, &cert.key);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let (status, out, err) = run_binary(bin, &a);
    assert!(status.success(), "{bin}: {out}\n{err}");
}

fn a_port_below_1024_without_privilege_names_the_three_ways(bin: &str) {
    let start: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        start > 1,
        "this machine lets anyone bind any port (net.ipv4.ip_unprivileged_port_start = {start})"
    );
    let listen = format!("127.0.0.1:{}", (start - 1).min(80));
    for extra in [&["--check"][..], &[][..]] {
        let (status, _, err) = run(
            as_normal_user(&server_binary(bin))
                .args(["--listen", &listen])
                .args(extra),
            b"",
        );
        assert_eq!(status.code(), Some(2), "{bin} {extra:?}: {err}");
        for way in ["--user NAME", "CAP_NET_BIND_SERVICE", "socket unit"] {
            assert!(err.contains(way), "{bin} {extra:?}: no {way:?} in {err}");
        }
    }
}

fn strict_exits_1_for_everyone_in_any_spelling_on_a_public_listener(bin: &str) {
    // --allow-root: as root (CI), root without --user is an error of its
    // own; this is about the warning.
    for (everyone, warning) in [
        ("any", "open proxy: rule 1"),
        ("0.0.0.0/0", "open proxy: rule 1"),
        ("::/0", "open proxy: rule 1"),
        ("::ffff:0:0/96", "open proxy: rule 1"),
        ("10.0.0.0/7", "nearly open proxy"),
    ] {
        let args = [
            "--listen",
            "0.0.0.0:1080",
            "--allow",
            everyone,
            "--allow-root",
            "--check",
            "--strict",
        ];
        let (status, out, err) = run_binary(bin, &args);
        assert_eq!(status.code(), Some(1), "{bin} {everyone}: {out}\n{err}");
        assert!(out.contains(warning), "{bin} {everyone}: {out}");
        // Without --strict, a warning is only a warning.
        let (status, _, _) = run_binary(bin, &args[..args.len() - 1]);
        assert!(status.success(), "{bin} {everyone}");
    }
}

fn a_policy_that_passes_nothing_is_a_warning_at_check_and_at_start(bin: &str) {
    let dir = socks4_tests::scratch::dir(&format!("preflight-block-{bin}"));
    let rules = dir.join("block.rules");
    std::fs::write(&rules, "block from 10.0.0.0/8 to any\n").unwrap();
    let rules = rules.to_str().unwrap();
    let (status, out, err) = run_binary(bin, &["--rules", rules, "--check", "--strict"]);
    assert_eq!(status.code(), Some(1), "{bin}: {out}\n{err}");
    assert!(
        out.contains("warning: no rule passes anything"),
        "{bin}: {out}"
    );
    let server = Server::start(bin, &["--rules", rules]);
    let line = server.wait_says("configuration warning");
    assert!(
        field(&line, "warning").starts_with("no rule passes anything"),
        "{bin}: {line}"
    );
}

/// Runs `bin` with `args` in a shell that first runs `limit` (`ulimit ...`).
fn with_ulimit(bin: &str, limit: &str, args: &str) -> Process {
    let mut cmd = Process::new("sh");
    cmd.arg("-c").arg(format!(
        "{limit} && exec '{}' {args}",
        server_binary(bin).display()
    ));
    cmd
}

fn a_low_descriptor_limit_names_the_limit_needed(bin: &str) {
    let (status, out, err) = run(
        &mut with_ulimit(bin, "ulimit -n 256", "--check --strict"),
        b"",
    );
    let out = String::from_utf8_lossy(&out);
    assert_eq!(status.code(), Some(1), "{bin}: {out}\n{err}");
    // The defaults: 1024 connections and 1024 splice pipes, 2 descriptors
    // each, one listener, 64 for the server itself.
    assert!(
        out.contains("`ulimit -n 4161`") && out.contains("`LimitNOFILE=4161`"),
        "{bin}: {out}"
    );
    // Fewer connections fit.
    let small = "--max-connections 40 --relay-pipes 40 --check --strict";
    let (status, out, err) = run(&mut with_ulimit(bin, "ulimit -n 256", small), b"");
    assert!(
        status.success(),
        "{bin}: {}\n{err}",
        String::from_utf8_lossy(&out)
    );
}

fn the_start_raises_the_soft_descriptor_limit(bin: &str) {
    let hard = std::fs::read_to_string("/proc/self/limits")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4).map(str::to_owned))
        .unwrap();
    assert_ne!(
        hard, "512",
        "{bin}: the hard limit must be above the soft one set here"
    );
    let cmd = with_ulimit(
        bin,
        "ulimit -Sn 512",
        "--listen 127.0.0.1:0 --log-format json",
    );
    let server = Server::start_command(bin, cmd);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        fields[3],
        hard,
        "{bin}: soft limit raised: {line}\n{}",
        server.log()
    );
    let raised = server.wait_says("file descriptor limit raised");
    assert_eq!(field(&raised, "from"), "512", "{bin}: {raised}");
    assert_eq!(field(&raised, "to"), hard, "{bin}: {raised}");
}

fn the_pid_file_is_gone_after_a_failed_start(bin: &str) {
    let dir = socks4_tests::scratch::fresh(&format!("preflight-pid-{bin}"));
    let pid = dir.join("socks4d.pid");
    let pid_arg = pid.to_str().unwrap();
    // A user that does not exist: once, the pid file was written before the
    // switch failed, and stayed.
    let (status, _, err) = run_binary(
        bin,
        &[
            "--pid-file",
            pid_arg,
            "--user",
            "no-such-user-here",
            "--listen",
            "127.0.0.1:0",
        ],
    );
    assert!(!status.success(), "{bin}: {err}");
    assert!(!pid.exists(), "{bin}: the pid file stayed: {err}");
    // A port in use: the bind fails, no pid file.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    let (status, _, err) = run_binary(bin, &["--pid-file", pid_arg, "--listen", &taken]);
    assert_eq!(status.code(), Some(1), "{bin}: {err}");
    assert!(!pid.exists(), "{bin}: the pid file stayed: {err}");
}

fn a_start_error_is_printed_once(bin: &str) {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    for format in ["text", "json"] {
        let (status, _, err) = run_binary(bin, &["--listen", &taken, "--log-format", format]);
        assert_eq!(status.code(), Some(1), "{bin}: {err}");
        assert_eq!(
            err.matches("Address already in use").count(),
            1,
            "{bin} {format}: {err}"
        );
    }
    // Under -qqq the log shows nothing: the error goes to standard error.
    let (status, _, err) = run_binary(bin, &["--listen", &taken, "-qqq"]);
    assert_eq!(status.code(), Some(1), "{bin}: {err}");
    assert_eq!(
        err.matches("Address already in use").count(),
        1,
        "{bin}: {err}"
    );
}

const EXPECTED: &str = "expected IP:PORT, e.g. 127.0.0.1:1080";

fn a_listen_address_without_its_ip_says_what_is_expected(bin: &str) {
    for bad in ["1080", ":1080", "localhost:1080"] {
        let (status, out, err) = run_binary(bin, &["--listen", bad, "--check"]);
        assert_eq!(status.code(), Some(2), "{bin} {bad}: {out}\n{err}");
        assert!(err.contains(EXPECTED), "{bin} {bad}: {err}");
    }
    let dir = socks4_tests::scratch::dir(&format!("hints-listen-{bin}"));
    let conf = dir.join("socks4d.toml");
    std::fs::write(&conf, "listen = [\"localhost:1080\"]\n").unwrap();
    let (status, _, err) = run_binary(bin, &["--config", conf.to_str().unwrap(), "--check"]);
    assert_eq!(status.code(), Some(2), "{bin}: {err}");
    assert!(
        err.contains(EXPECTED) && err.contains("line 1"),
        "{bin}: {err}"
    );
}

fn listen_as_one_string_is_a_list_of_one(bin: &str) {
    let dir = socks4_tests::scratch::dir(&format!("hints-one-{bin}"));
    let conf = dir.join("socks4d.toml");
    std::fs::write(&conf, "listen = \"127.0.0.1:0\"\n").unwrap();
    let server = Server::start_with(bin, &["--config", conf.to_str().unwrap()]);
    let c = socks_request(server.addr, &connect_to(echo(1), b""), |_| {});
    assert!(granted(&c), "{bin}: {:?}\n{}", c.events, server.log());
}

fn a_key_in_the_wrong_section_names_its_own(bin: &str) {
    let dir = socks4_tests::scratch::dir(&format!("hints-section-{bin}"));
    let conf = dir.join("socks4d.toml");
    for (text, home) in [
        (
            "[access]\nmax_connections_per_client = 3\n",
            "`max_connections_per_client` belongs under [limits]",
        ),
        (
            "[limits]\nlisten = [\"127.0.0.1:1080\"]\n",
            "`listen` belongs at the top of the file, before any [section]",
        ),
    ] {
        std::fs::write(&conf, text).unwrap();
        let (status, _, err) = run_binary(bin, &["--config", conf.to_str().unwrap(), "--check"]);
        assert_eq!(status.code(), Some(2), "{bin}: {err}");
        assert!(err.contains(home), "{bin}: {err}");
    }
}

fn command_line_paths_are_relative_to_the_current_folder(bin: &str) {
    // The config file in one folder, the server started in another: the
    // file's rules file is found beside the file, the command line's in the
    // current folder.
    let dir = socks4_tests::scratch::fresh(&format!("hints-paths-{bin}"));
    let conf_dir = dir.join("etc");
    let here = dir.join("here");
    std::fs::create_dir_all(&conf_dir).unwrap();
    std::fs::create_dir_all(&here).unwrap();
    std::fs::write(
        conf_dir.join("socks4d.toml"),
        "[access]\nrules_file = [\"file.rules\"]\n",
    )
    .unwrap();
    std::fs::write(
        conf_dir.join("file.rules"),
        "pass from 10.1.0.0/16 to any\n",
    )
    .unwrap();
    std::fs::write(here.join("cli.rules"), "pass from 10.2.0.0/16 to any\n").unwrap();
    let (status, out, err) = run(
        Process::new(server_binary(bin)).current_dir(&here).args([
            "--config",
            "../etc/socks4d.toml",
            "--rules",
            "cli.rules",
            "--check",
        ]),
        b"",
    );
    let out = String::from_utf8_lossy(&out);
    assert!(status.success(), "{bin}: {out}\n{err}");
    assert!(
        out.contains("pass from 10.1.0.0/16 to any")
            && out.contains("pass from 10.2.0.0/16 to any"),
        "{bin}: {out}"
    );
}
