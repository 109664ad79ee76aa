//! Our server binaries as child processes: built on first use, started on a
//! port they choose, their JSON log lines collected and waited for, signalled
//! and killed by PID.

use super::STEP;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command as Process, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// The directory cargo puts this profile's binaries in
/// (`target/<profile>`), found from the running test or binary.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> for tests, target/<profile>/<bin> for binaries.
    let mut dir = exe.parent().unwrap().to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// Runs `cargo build --quiet` on the workspace with `args` (plus `--release`
/// when this is a release build) and fails the test if it fails.
pub fn cargo_build(args: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let mut cmd = Process::new(cargo);
    cmd.args(["build", "--quiet", "--manifest-path", manifest])
        .args(args);
    if target_dir().file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    without_test_env(&mut cmd);
    let status = cmd.status().expect("run cargo build");
    assert!(status.success(), "cargo build {args:?} failed");
}

/// Removes from `cmd`'s environment the variables cargo sets for the test
/// package (CARGO_MANIFEST_DIR, CARGO_PKG_*...), for a nested cargo build:
/// build scripts that watch them (ring's does) would see a change and
/// rebuild half the tree; the nested build gets the environment the outer
/// one had.
pub fn without_test_env(cmd: &mut Process) {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if [
            "CARGO_MANIFEST_",
            "CARGO_PKG_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_TARGET_TMPDIR",
            "CARGO_RUSTC_CURRENT_DIR",
        ]
        .iter()
        .any(|p| key.starts_with(p))
        {
            cmd.env_remove(key.as_ref());
        }
    }
}

/// The path of a workspace binary, built on first use (`cargo build --bin`).
/// A binary `socks4d-X` comes from the package `socks4-X`.
pub fn server_binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|b| b == name) {
        let package = name.replacen("socks4d-", "socks4-", 1);
        cargo_build(&["-p", &package, "--bin", name]);
        built.push(name.to_owned());
    }
    target_dir().join(name)
}

/// One JSON log line of a server.
pub type LogLine = serde_json::Value;

/// A log line's string field (numbers and booleans as text), or "".
pub fn field(line: &LogLine, name: &str) -> String {
    match &line[name] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Whether a log line's message is `message`.
pub fn says(line: &LogLine, message: &str) -> bool {
    line["message"] == message
}

/// Whether a log line is a connection's last, `closed`.
pub fn closed(line: &LogLine) -> bool {
    says(line, "closed")
}

/// A running server process, logging JSON lines on standard error.
pub struct Server {
    child: Child,
    /// The proxy's address (its first listener).
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `binary` on a port of 127.0.0.1 it chooses, with extra `args`,
    /// and waits until it says it listens.
    pub fn start(binary: &str, args: &[&str]) -> Server {
        Server::start_on(binary, "127.0.0.1", args)
    }

    /// Like [`Server::start`], listening on another loopback address.
    pub fn start_on(binary: &str, ip: &str, args: &[&str]) -> Server {
        let listen = format!("{ip}:0");
        let mut all = vec!["--listen", &listen];
        all.extend_from_slice(args);
        Server::start_with(binary, &all)
    }

    /// Starts `binary` with exactly `args` (plus JSON logs at debug level) and
    /// waits until it says it listens.
    pub fn start_with(binary: &str, args: &[&str]) -> Server {
        Server::start_env(binary, args, &[])
    }

    /// Like [`Server::start_with`], with extra environment variables. With
    /// `--log-format` among `args`, that format is kept (and the listening
    /// line is read from text).
    pub fn start_env(binary: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::start_in(None, binary, args, env)
    }

    /// Like [`Server::start_with`], inside the network namespace `netns`
    /// (`ip netns exec`).
    pub fn start_in_netns(netns: &str, binary: &str, args: &[&str]) -> Server {
        Server::start_in(Some(netns), binary, args, &[])
    }

    fn start_in(netns: Option<&str>, binary: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = match netns {
            None => Process::new(server_binary(binary)),
            Some(ns) => {
                let mut c = Process::new("ip");
                c.args(["netns", "exec", ns]).arg(server_binary(binary));
                c
            }
        };
        cmd.args(args);
        if !args.contains(&"--log-format") {
            cmd.args(["--log-format", "json"]);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        Server::start_command(binary, cmd)
    }

    /// Starts `cmd`, a command that runs the server `binary` (through
    /// `setpriv` or a shell, say) with its arguments, JSON logs included, and
    /// waits until it says it listens.
    pub fn start_command(binary: &str, mut cmd: Process) -> Server {
        cmd.env("RUST_LOG", "socks4d=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {binary}: {e}"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut server = Server {
            child,
            addr: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            log,
        };
        let deadline = Instant::now() + STEP;
        loop {
            if let Some(line) = server.lines().iter().find(|l| says(l, "listening")) {
                server.addr = field(line, "listen").parse().unwrap();
                return server;
            }
            let text = server.log();
            if let Some(rest) = text.split(" listening listen=").nth(1) {
                let addr: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
                server.addr = addr.parse().unwrap();
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("{binary} exited with {status}:\n{}", server.log());
            }
            assert!(
                Instant::now() < deadline,
                "{binary} did not start:\n{}",
                server.log()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// The bound address of its listener of `kind` (`socks`, `tls`, `dual`,
    /// `forward_tls`, ...), from its `listening` line.
    pub fn listener(&self, kind: &str) -> SocketAddr {
        let line = self.wait_for(&format!("a {kind} listener"), |l| {
            says(l, "listening") && field(l, "kind") == kind
        });
        field(&line, "listen").parse().unwrap()
    }

    /// What the server wrote to standard error so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// The JSON log lines so far (other lines are skipped).
    pub fn lines(&self) -> Vec<LogLine> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// How many log lines so far satisfy `pred`.
    pub fn count(&self, pred: impl Fn(&LogLine) -> bool) -> usize {
        self.lines().iter().filter(|l| pred(l)).count()
    }

    /// Waits until `n` log lines satisfy `pred`, at most [`STEP`]; returns them.
    pub fn wait_for_n(
        &self,
        what: &str,
        n: usize,
        pred: impl Fn(&LogLine) -> bool,
    ) -> Vec<LogLine> {
        let deadline = Instant::now() + STEP;
        loop {
            let found: Vec<LogLine> = self.lines().into_iter().filter(|l| pred(l)).collect();
            if found.len() >= n {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "the log never had {n} of {what}:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until a log line satisfies `pred`, at most [`STEP`]; returns it.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&LogLine) -> bool) -> LogLine {
        self.wait_for_n(what, 1, pred).remove(0)
    }

    /// Waits for a line with this message.
    pub fn wait_says(&self, message: &str) -> LogLine {
        self.wait_for(message, |l| says(l, message))
    }

    /// Reloads the server with SIGHUP and waits (at most [`STEP`]) for
    /// this reload's outcome, the line `configuration reloaded` or `reload
    /// failed, keeping the old configuration`, and returns it (a line of an
    /// earlier reload does not count).
    pub fn reload(&self) -> LogLine {
        let outcome = |l: &LogLine| {
            says(l, "configuration reloaded")
                || says(l, "reload failed, keeping the old configuration")
        };
        let before = self.count(outcome);
        self.signal("HUP");
        self.wait_for_n("the reload's outcome", before + 1, outcome)
            .swap_remove(before)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`HUP`, `TERM`, ...) to the server, by PID.
    pub fn signal(&self, name: &str) {
        let status = Process::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit, at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A child process killed (by PID) and waited for when dropped: a third-party
/// program or an example a test started.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Scrapes the server's metrics listener (started with
    /// `--metrics-listen`): the whole HTTP response.
    pub fn metrics(&self) -> String {
        let addr: SocketAddr = field(&self.wait_says("serving metrics"), "metrics")
            .parse()
            .unwrap();
        let mut s = TcpStream::connect_timeout(&addr, STEP).unwrap();
        s.set_read_timeout(Some(STEP)).unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }
}

/// Whether the tests run as root (as CI does): some scenarios then run the
/// server as a normal user, with [`as_normal_user`].
pub fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

/// A command that runs `program` as a normal user: as it is when the tests
/// run as one, as `nobody` (group `nogroup`, no supplementary groups, no
/// capabilities) when they run as root.
pub fn as_normal_user(program: &std::path::Path) -> Process {
    if running_as_root() {
        let mut cmd = Process::new("setpriv");
        cmd.args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "--inh-caps=-all",
            "--",
        ])
        .arg(program);
        cmd
    } else {
        Process::new(program)
    }
}

/// The user name of whoever [`as_normal_user`] runs programs as.
pub fn normal_user_name() -> String {
    let (status, out, err) = super::run(as_normal_user("id".as_ref()).arg("-un"), b"");
    assert!(status.success(), "id -un: {err}");
    String::from_utf8_lossy(&out).trim().to_owned()
}

/// Runs the server `binary` with `args` to completion (a `--check`, or a
/// start that fails), at most a few [`STEP`]s: its status, standard output
/// and standard error.
pub fn run_binary(binary: &str, args: &[&str]) -> (ExitStatus, String, String) {
    let (status, out, err) = super::run(Process::new(server_binary(binary)).args(args), b"");
    (status, String::from_utf8_lossy(&out).into_owned(), err)
}

/// A `--check` of a documented example, run as the account it is written
/// for: one that switches users (`switches`: `--user`, `user =`) as root
/// when the tests run as root (only root may switch); any other as a normal
/// user ([`as_normal_user`]), since root with a listener beyond loopback and
/// no user is refused. When the tests are not root, an example that switches
/// users is run as it is, and the caller makes it switch to [`own_account`]
/// instead (a switch to oneself does nothing).
pub fn example_command(binary: &str, switches: bool) -> Process {
    if switches {
        Process::new(server_binary(binary))
    } else {
        as_normal_user(&server_binary(binary))
    }
}

/// The user and group the tests run as, when an example that switches users
/// must switch to them instead (the tests are not root); `None` as root.
pub fn own_account() -> Option<(String, String)> {
    if running_as_root() {
        return None;
    }
    let id = |flag: &str| {
        let (status, out, err) = super::run(Process::new("id").arg(flag), b"");
        assert!(status.success(), "id {flag}: {err}");
        String::from_utf8_lossy(&out).trim().to_owned()
    };
    Some((id("-un"), id("-gn")))
}
