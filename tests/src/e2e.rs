//! Helpers for end-to-end tests against the built server binaries: start a server
//! on a free loopback port, loopback peers (echo, HTTP, slow source), and a
//! SOCKS4 client over std sockets. Everything stays on 127.0.0.1 and stops by
//! itself: servers are killed (by PID) when dropped, peers serve a bounded number
//! of connections.

use socks4_proto::client::{Event, Handshake};
use socks4_proto::{Command, Dest, Reply, ReplyCode, Request};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command as Process, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// Makes each scenario (a `fn(binary: &str)` in the calling test file) a test
/// per server binary: `on_tokio::scenario`, `on_smol::scenario`, ... Adding an
/// adapter is one line here.
#[macro_export]
macro_rules! on_every_adapter {
    ($($scenario:ident),* $(,)?) => {
        mod on_tokio { $( #[test] fn $scenario() { super::$scenario("socks4d-tokio") } )* }
        mod on_smol { $( #[test] fn $scenario() { super::$scenario("socks4d-smol") } )* }
        mod on_async_std { $( #[test] fn $scenario() { super::$scenario("socks4d-async-std") } )* }
    };
}

/// How long any single step may take before a test fails.
pub const STEP: Duration = Duration::from_secs(10);

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
    // Cargo runs tests with the test package's own variables set
    // (CARGO_MANIFEST_DIR, CARGO_PKG_*...). Build scripts that watch them
    // (ring's does) would see a change and rebuild half the tree on every
    // test binary; the nested build gets the environment the outer one had.
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
    let status = cmd.status().expect("run cargo build");
    assert!(status.success(), "cargo build {args:?} failed");
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

/// A free loopback port (bound, read, released). Prefer port 0 where the
/// program can report what it bound.
pub fn free_port() -> u16 {
    free_port_on(Ipv4Addr::LOCALHOST)
}

/// Like [`free_port`], on another loopback address. For a program that must be
/// given its port: on an address no other test uses, a port released here
/// cannot be taken meanwhile by another test's listener on 127.0.0.1.
pub fn free_port_on(ip: Ipv4Addr) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (at most [`STEP`]) until the process `pid` listens, and returns its
/// first listening address. For a program started on port 0 that does not say
/// which port it bound; `what` names it in the failure.
pub fn wait_listening(pid: u32, what: &str) -> SocketAddr {
    let deadline = Instant::now() + STEP;
    loop {
        if let Some(addr) = crate::procfs::listening_addrs(pid).first() {
            return *addr;
        }
        assert!(Instant::now() < deadline, "{what} did not start listening");
        thread::sleep(Duration::from_millis(20));
    }
}

/// A loopback port that refuses connections for as long as this value lives:
/// bound (without `SO_REUSEADDR`) but not listening, so no other socket can
/// take it meanwhile and a connect to it is reset. For "the peer is down".
pub struct ClosedPort(socket2::Socket);

impl ClosedPort {
    /// Reserves a port on 127.0.0.1.
    pub fn new() -> ClosedPort {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
            .unwrap();
        ClosedPort(s)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.0.local_addr().unwrap().as_socket().unwrap().port()
    }
}

impl Default for ClosedPort {
    fn default() -> ClosedPort {
        ClosedPort::new()
    }
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
        cmd.env("RUST_LOG", "socks4d=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
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

/// Starts a loopback peer serving up to `count` connections, one thread each,
/// with `handler`. Returns its address.
pub fn peer(count: usize, handler: impl Fn(TcpStream) + Send + Sync + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handler = Arc::new(handler);
    thread::spawn(move || {
        for stream in listener.incoming().take(count).flatten() {
            let h = handler.clone();
            stream.set_read_timeout(Some(STEP)).unwrap();
            thread::spawn(move || h(stream));
        }
    });
    addr
}

/// An echo peer that reads until EOF, then sends everything back and closes: it
/// answers only if the proxy passes on the client's half-close.
pub fn echo_after_eof(count: usize) -> SocketAddr {
    peer(count, |mut s| {
        let mut all = Vec::new();
        if s.read_to_end(&mut all).is_ok() {
            let _ = s.write_all(&all);
        }
    })
}

/// An echo peer that sends back each chunk as it arrives.
pub fn echo(count: usize) -> SocketAddr {
    peer(count, |mut s| {
        let mut buf = [0u8; 16384];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 || s.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    })
}

/// A minimal HTTP/1.0 server answering every request with `body`.
pub fn http(count: usize, body: &'static str) -> SocketAddr {
    peer(count, move |mut s| {
        let mut reader = BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
            line.clear();
        }
        let _ = write!(
            s,
            "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    })
}

/// A loopback address where connections are never accepted: a listener whose
/// accept queue is full, so that the kernel drops further SYNs and a connect
/// hangs until its caller gives up. Held open while the value lives.
pub struct Blackhole {
    listener: socket2::Socket,
    _fillers: Vec<socket2::Socket>,
}

impl Blackhole {
    /// A listener with a backlog of 0, its queue filled by a connection that
    /// is never accepted.
    pub fn new() -> Blackhole {
        use socket2::{Domain, Socket, Type};
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        listener
            .bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
            .unwrap();
        listener.listen(0).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut fillers = Vec::new();
        for _ in 0..2 {
            let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
            s.set_nonblocking(true).unwrap();
            let _ = s.connect(&addr);
            fillers.push(s);
        }
        // Let the first filler's handshake finish and take the one queue slot.
        thread::sleep(Duration::from_millis(100));
        Blackhole {
            listener,
            _fillers: fillers,
        }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap().as_socket().unwrap()
    }
}

impl Default for Blackhole {
    fn default() -> Self {
        Blackhole::new()
    }
}

/// A SOCKS4 client connection through `proxy`, as far as the handshake.
pub struct Client {
    /// The stream (relayed once granted).
    pub stream: TcpStream,
    /// Replies in order.
    pub events: Vec<Event>,
    /// Relayed bytes that came with the last reply.
    pub early: Vec<u8>,
}

/// Whether the proxy's last reply granted the request.
pub fn granted(c: &Client) -> bool {
    matches!(c.events.last(), Some(Event::Granted(_)))
}

/// The code of the proxy's last reply when it refused the request.
pub fn rejected_with(c: &Client) -> Option<ReplyCode> {
    match c.events.last() {
        Some(Event::Rejected(r)) => Some(r.code),
        _ => None,
    }
}

/// Whether the proxy's last reply refused the request with 91.
pub fn refused(c: &Client) -> bool {
    rejected_with(c) == Some(ReplyCode::Rejected)
}

/// Connects to `proxy`, sends `request` and reads replies until the handshake is
/// over (or the proxy closes). `on_listen` runs at a BIND's first reply.
pub fn socks_request(
    proxy: SocketAddr,
    request: &Request<'_>,
    on_listen: impl FnMut(&Reply),
) -> Client {
    let stream = TcpStream::connect_timeout(&proxy, STEP).unwrap();
    socks_request_on(stream, request, on_listen)
}

/// A TCP connection to `to` from the loopback address `from` (so that a test
/// can be several client addresses: 127.0.0.2, 127.0.0.3...).
pub fn connect_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::from((from, 0)).into()).unwrap();
    s.connect_timeout(&to.into(), STEP).unwrap();
    s.into()
}

/// Like [`socks_request`], over a connection already made.
pub fn socks_request_on(
    mut stream: TcpStream,
    request: &Request<'_>,
    mut on_listen: impl FnMut(&Reply),
) -> Client {
    stream.set_read_timeout(Some(STEP)).unwrap();
    let mut h = Handshake::new(request).unwrap();
    stream.write_all(h.poll_transmit().unwrap()).unwrap();
    let (mut events, mut early, mut buf) = (Vec::new(), Vec::new(), [0u8; 256]);
    while !h.is_finished() {
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(_) => break, // reset by the proxy
        };
        if n == 0 {
            break;
        }
        let used = h.handle_input(&buf[..n]).expect("well-formed replies");
        early.extend_from_slice(&buf[used..n]);
        while let Some(ev) = h.poll_event() {
            if let Event::BindListening(r) = &ev {
                on_listen(r);
            }
            events.push(ev);
        }
    }
    Client {
        stream,
        events,
        early,
    }
}

/// A CONNECT request to `dest` with `user_id`.
pub fn connect_to(dest: SocketAddr, user_id: &[u8]) -> Request<'_> {
    let SocketAddr::V4(v4) = dest else {
        panic!("IPv4 only")
    };
    Request {
        command: Command::Connect,
        dest: Dest::Addr(v4),
        user_id,
    }
}

/// Sends `data`, half-closes, and reads everything back.
pub fn round_trip(mut stream: TcpStream, early: &[u8], data: &[u8]) -> Vec<u8> {
    stream.write_all(data).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let mut back = early.to_vec();
    stream.read_to_end(&mut back).unwrap();
    back
}

/// The loopback address with a port.
pub fn lo(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)
}

/// Runs a command to completion with a time limit; returns (status, stdout, stderr).
pub fn run(cmd: &mut Process, stdin: &[u8]) -> (ExitStatus, Vec<u8>, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{cmd:?}: {e} (run `bash .ci/setup` to install the test clients)")
        });
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let pid = child.id();
    let watchdog_done = Arc::new(Mutex::new(false));
    let flag = watchdog_done.clone();
    thread::spawn(move || {
        let deadline = Instant::now() + STEP * 3;
        while Instant::now() < deadline {
            if *flag.lock().unwrap() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = Process::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    });
    let out = child.wait_with_output().unwrap();
    *watchdog_done.lock().unwrap() = true;
    writer.join().unwrap();
    (
        out.status,
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Fetches `http://localhost:PORT/` with curl through the SOCKS4a proxy at
/// `proxy` (the name resolved by the proxy): whether curl succeeded, and its
/// output and errors.
pub fn curl_socks4a(proxy: SocketAddr, port: u16) -> (bool, String) {
    let url = format!("http://localhost:{port}/");
    let (status, out, err) = run(
        Process::new("curl").args([
            "-sS",
            "--max-time",
            "10",
            "--socks4a",
            &proxy.to_string(),
            &url,
        ]),
        b"",
    );
    (
        status.success(),
        format!("{}{err}", String::from_utf8_lossy(&out)),
    )
}

/// Writes a config file whose only content is `rules` as the access rules,
/// in the scratch directory `name`; its path.
pub fn rules_config(name: &str, rules: &str) -> String {
    let conf = crate::scratch::dir(name).join("socks4d.toml");
    std::fs::write(
        &conf,
        format!("[access]\nrules = \"\"\"\n{rules}\n\"\"\"\n"),
    )
    .unwrap();
    conf.display().to_string()
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
