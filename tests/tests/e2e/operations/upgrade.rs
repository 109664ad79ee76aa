//! The binary upgrade without a gap (issue 28), on every adapter: `ctl
//! upgrade` under load (a loop of short connections and 50 checksummed
//! relays streaming) refuses or resets nothing, every relay's bytes arrive
//! intact, the old process drains and exits within the grace, the pid file
//! names the new one, which serves the SOCKS, metrics and control sockets
//! and kept quota usage and a run-time denial; a new process that fails its
//! configuration check, and one that hangs past `[timeouts] upgrade`, leave
//! the old one serving, and `ctl upgrade` fails with the reason (`/ready`
//! says 503 while the upgrade is under way); SIGUSR2 upgrades too, and the
//! new process takes the systemd unit over (`MAINPID=`, `READY=1`) while
//! the old one tells systemd nothing more; every listener kind (but
//! transparent, which needs root) is handed over, as a reload left them.

use super::live_control::ctl;
use socks4_proto::ReplyCode;
use socks4_tests::e2e::*;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

socks4_tests::on_every_adapter!(
    an_upgrade_under_load_drops_nothing_and_keeps_the_books,
    a_new_binary_that_fails_its_check_leaves_the_old_one_serving,
    a_new_binary_that_hangs_is_killed_and_the_old_one_serves_on,
    sigusr2_upgrades_and_systemd_follows_the_new_process,
    every_listener_kind_is_handed_over,
);

/// The client whose quota is used up before the upgrade.
const QUOTA_CLIENT: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// The clients of the short connections and of the streaming relays: not
/// 127.0.0.1, the address the server's own connections to the echo peer
/// leave from (a client whose address and port equal one of those is taken
/// for the server talking to itself, outcome `loop`).
const LOOP_CLIENT: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
const STREAM_CLIENT: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 4);

/// Relays streaming through the upgrade.
const RELAYS: usize = 50;

/// Threads opening short connections in a loop, each one every
/// [`LOOP_PACE`] at most: together 250 a second when the machine keeps up
/// (200 or more is the aim).
const LOOPERS: usize = 5;
const LOOP_PACE: Duration = Duration::from_millis(20);

/// The shutdown grace of the servers here.
const GRACE: Duration = Duration::from_secs(20);

/// A server configuration in `dir`: one SOCKS listener, metrics, control
/// socket, pid file, state file, a 1 MiB quota for [`QUOTA_CLIENT`] only,
/// and `timeouts`, more TOML for `[timeouts]`.
struct Setup {
    dir: PathBuf,
    config: PathBuf,
    control: PathBuf,
    pid_file: PathBuf,
}

impl Setup {
    fn new(name: &str, timeouts: &str) -> Setup {
        let dir = socks4_tests::scratch::fresh(name);
        let setup = Setup {
            config: dir.join("socks4d.toml"),
            control: dir.join("ctl.sock"),
            pid_file: dir.join("socks4d.pid"),
            dir,
        };
        let text = format!(
            r#"listen = ["127.0.0.1:0"]
metrics_listen = "127.0.0.1:0"
control_socket = "{control}"
pid_file = "{pid}"
state_file = "{state}"

[timeouts]
shutdown_grace = "{grace}s"
{timeouts}

[access]
rules = """
pass from {quota}/32 to any quota 1MiB/day
pass from 127.0.0.0/8 to any
"""
"#,
            control = setup.control.display(),
            pid = setup.pid_file.display(),
            state = setup.dir.join("state.json").display(),
            grace = GRACE.as_secs(),
            quota = QUOTA_CLIENT,
        );
        std::fs::write(&setup.config, text).unwrap();
        setup
    }

    fn start(&self, bin: &str) -> Server {
        self.start_env(bin, &[])
    }

    fn start_env(&self, bin: &str, env: &[(&str, &str)]) -> Server {
        Server::start_env(bin, &["--config", self.config.to_str().unwrap()], env)
    }

    /// The process id the pid file names.
    fn pid(&self) -> u32 {
        let text = std::fs::read_to_string(&self.pid_file).unwrap();
        text.trim().parse().unwrap()
    }

    /// An executable script in the scratch directory.
    fn script(&self, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }
}

/// Whether process `pid` runs (a zombie does not count).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'))
    })
}

/// Stops process `pid` (one the test started through an upgrade): TERM,
/// then waits for it to be gone, at most [`STEP`] plus the grace.
fn stop(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let deadline = Instant::now() + STEP + GRACE;
    while alive(pid) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    if alive(pid) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
}

/// Kills, when dropped, the process an upgrade started (whatever the test's
/// outcome).
struct NewProcess(Option<u32>);

impl Drop for NewProcess {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            stop(pid);
        }
    }
}

/// `GET path` on the metrics listener: the status code and the body.
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, STEP).unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    (code, body)
}

fn metrics_addr(server: &Server) -> SocketAddr {
    field(&server.wait_says("serving metrics"), "metrics")
        .parse()
        .unwrap()
}

/// A connection from `from` to `to`.
fn dial(from: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    s.bind(&SocketAddr::from((from, 0)).into())?;
    s.connect_timeout(&to.into(), STEP)?;
    Ok(s.into())
}

/// One short relay through `proxy` to the echo peer: granted, 64 bytes
/// echoed intact; why not otherwise.
fn short_relay(proxy: SocketAddr, echo: SocketAddr, n: u64) -> Result<(), String> {
    let s = dial(LOOP_CLIENT, proxy).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(STEP)).map_err(|e| e.to_string())?;
    let c = socks_request_on(s, &connect_to(echo, b""), |_| {});
    if !granted(&c) {
        return Err(format!("not granted: {:?}", c.events));
    }
    let mut s = c.stream;
    let data: Vec<u8> = (0..64u64).map(|i| (i * 7 + n) as u8).collect();
    s.write_all(&data).map_err(|e| format!("write: {e}"))?;
    let mut back = vec![0u8; data.len()];
    s.read_exact(&mut back).map_err(|e| format!("read: {e}"))?;
    if back != data {
        return Err("corrupted".into());
    }
    Ok(())
}

/// Threads opening short relays in a loop until stopped: how many went
/// through, and every failure.
struct Loop {
    done: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Loop {
    fn start(proxy: SocketAddr, echo: SocketAddr) -> Loop {
        let done = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..LOOPERS)
            .map(|_| {
                let (done, failures, stop) = (done.clone(), failures.clone(), stop.clone());
                thread::spawn(move || {
                    let deadline = Instant::now() + Duration::from_secs(120);
                    let mut n = 0u64;
                    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                        let next = Instant::now() + LOOP_PACE;
                        match short_relay(proxy, echo, n) {
                            Ok(()) => {
                                done.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(e) => failures.lock().unwrap().push(e),
                        }
                        n += 1;
                        thread::sleep(next.saturating_duration_since(Instant::now()));
                    }
                })
            })
            .collect();
        Loop {
            done,
            failures,
            stop,
            threads,
        }
    }

    fn done(&self) -> u64 {
        self.done.load(Ordering::SeqCst)
    }

    /// Stops the threads; the failures.
    fn finish(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
        self.failures.lock().unwrap().clone()
    }
}

/// A relay streaming checksummed chunks to the echo peer and back until
/// stopped; the bytes it moved intact, or why it broke.
struct Streamer {
    stop: Arc<AtomicBool>,
    moved: Arc<AtomicU64>,
    thread: JoinHandle<Result<u64, String>>,
}

impl Streamer {
    fn start(proxy: SocketAddr, echo: SocketAddr, seed: u8) -> Streamer {
        let c = socks_request_on(
            connect_from(STREAM_CLIENT, proxy),
            &connect_to(echo, b""),
            |_| {},
        );
        assert!(granted(&c), "{:?}", c.events);
        let mut s = c.stream;
        let stop = Arc::new(AtomicBool::new(false));
        let moved = Arc::new(AtomicU64::new(0));
        let (st, mv) = (stop.clone(), moved.clone());
        let thread = thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut round = 0u32;
            let mut back = vec![0u8; 4096];
            while !st.load(Ordering::SeqCst) && Instant::now() < deadline {
                let chunk: Vec<u8> = (0..4096u32)
                    .map(|i| (i.wrapping_mul(31) ^ round.wrapping_mul(7)) as u8 ^ seed)
                    .collect();
                s.write_all(&chunk)
                    .and_then(|()| s.read_exact(&mut back))
                    .map_err(|e| format!("relay {seed}, round {round}: {e}"))?;
                if back != chunk {
                    return Err(format!("relay {seed}, round {round}: corrupted"));
                }
                mv.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                round += 1;
                thread::sleep(Duration::from_millis(10));
            }
            Ok(mv.load(Ordering::SeqCst))
        });
        Streamer {
            stop,
            moved,
            thread,
        }
    }

    fn moved(&self) -> u64 {
        self.moved.load(Ordering::SeqCst)
    }

    fn finish(self) -> Result<u64, String> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap()
    }
}

/// Uses up [`QUOTA_CLIENT`]'s quota through `proxy`: a download of 2 MiB is
/// cut at 1 MiB, and the next request gets 91.
fn use_up_quota(proxy: SocketAddr, bin: &str) {
    let source = peer(1, |mut s| {
        let chunk = vec![7u8; 64 * 1024];
        for _ in 0..32 {
            if s.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let c = socks_request_on(
        connect_from(QUOTA_CLIENT, proxy),
        &connect_to(source, b""),
        |_| {},
    );
    assert!(granted(&c), "{bin}: {:?}", c.events);
    let mut s = c.stream;
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert!(
        got.len() < 2 << 20,
        "{bin}: the download is cut at the quota ({} bytes)",
        got.len()
    );
    assert_quota_refused(proxy, bin, "before the upgrade");
}

fn assert_quota_refused(proxy: SocketAddr, bin: &str, when: &str) {
    let echo = echo(1);
    let c = socks_request_on(
        connect_from(QUOTA_CLIENT, proxy),
        &connect_to(echo, b""),
        |_| {},
    );
    assert_eq!(
        rejected_with(&c),
        Some(ReplyCode::Rejected),
        "{bin}: {when}, the client over its quota is refused: {:?}",
        c.events
    );
}

fn an_upgrade_under_load_drops_nothing_and_keeps_the_books(bin: &str) {
    let setup = Setup::new(&format!("upgrade-load-{bin}"), "");
    let mut server = setup.start(bin);
    let proxy = server.addr;
    let metrics = metrics_addr(&server);
    let old = server.pid();
    assert_eq!(setup.pid(), old, "{bin}: the pid file names the server");
    // The books to carry over: a run-time denial, a used-up quota.
    let (ok, out, err) = ctl(
        bin,
        &setup.control,
        &["deny", "add", "10.9.0.0/16", "reason", "upgrade test"],
    );
    assert!(ok, "{bin}: {out}{err}");
    use_up_quota(proxy, bin);
    // Load: a loop of short connections, and 50 relays streaming.
    let echo = echo(100_000);
    let (looping, streamers) = start_load(proxy, echo, bin);
    let started = Instant::now();
    let (ok, out, err) = ctl(bin, &setup.control, &["upgrade"]);
    let mut new = NewProcess(None);
    assert!(ok, "{bin}: ctl upgrade: {out}{err}\n{}", server.log());
    let pid = setup.pid();
    new.0 = Some(pid);
    assert_ne!(pid, old, "{bin}: the pid file names the new process");
    assert!(
        out.contains(&format!("process {pid} serves")),
        "{bin}: {out}"
    );
    assert!(alive(pid), "{bin}: the new process runs");
    // The loop goes on against the new process for a while, the relays
    // stream through the old one.
    let before = looping.done();
    let (moved_at_upgrade, moving) = (
        streamers.iter().map(Streamer::moved).sum::<u64>(),
        Instant::now() + STEP,
    );
    while (looping.done() < before + 250
        || streamers.iter().map(Streamer::moved).sum::<u64>()
            < moved_at_upgrade + (RELAYS as u64) * 8192)
        && Instant::now() < moving
    {
        thread::sleep(Duration::from_millis(20));
    }
    let seconds = started.elapsed().as_secs_f64();
    let failures = looping.finish();
    assert!(
        failures.is_empty(),
        "{bin}: {} short connections failed during the upgrade, e.g. {:?}\n{}",
        failures.len(),
        &failures[..failures.len().min(5)],
        server.log()
    );
    let mut total = 0;
    for s in streamers {
        total += s
            .finish()
            .unwrap_or_else(|e| panic!("{bin}: {e}\n{}", server.log()));
    }
    assert!(
        total > moved_at_upgrade,
        "{bin}: the relays streamed on after the upgrade ({total} bytes, {seconds:.1}s)"
    );
    // The relays closed: the old process drained and is gone within the grace.
    let status = server.wait_exit(GRACE + STEP);
    assert!(
        status.is_some_and(|s| s.success()),
        "{bin}: the old process exits within the grace: {status:?}\n{}",
        server.log()
    );
    assert!(!alive(old), "{bin}");
    assert_eq!(setup.pid(), pid, "{bin}: the old process left the pid file");
    assert!(
        setup.control.exists(),
        "{bin}: the old process left the control socket"
    );
    serves_with_the_books(&setup, (proxy, echo, metrics), bin);
    drop(new);
    assert!(!alive(pid), "{bin}: the new process stopped");
}

/// Starts the load: the loop of short connections and the streaming
/// relays, all of them moving.
fn start_load(proxy: SocketAddr, echo: SocketAddr, bin: &str) -> (Loop, Vec<Streamer>) {
    let looping = Loop::start(proxy, echo);
    let streamers: Vec<Streamer> = (0..RELAYS)
        .map(|i| Streamer::start(proxy, echo, i as u8))
        .collect();
    let settle = Instant::now() + STEP;
    while (looping.done() < 50 || streamers.iter().any(|s| s.moved() == 0))
        && Instant::now() < settle
    {
        thread::sleep(Duration::from_millis(20));
    }
    assert!(
        looping.done() >= 50,
        "{bin}: the loop runs before the upgrade"
    );
    (looping, streamers)
}

/// The new process serves SOCKS, metrics and the control socket, with the
/// books carried over (the quota used up, the denial).
fn serves_with_the_books(
    setup: &Setup,
    (proxy, echo, metrics): (SocketAddr, SocketAddr, SocketAddr),
    bin: &str,
) {
    short_relay(proxy, echo, 1).unwrap_or_else(|e| panic!("{bin}: after the upgrade: {e}"));
    assert_quota_refused(proxy, bin, "after the upgrade");
    let (ok, out, err) = ctl(bin, &setup.control, &["deny", "list"]);
    assert!(
        ok && out.contains("10.9.0.0/16"),
        "{bin}: the denial carried over: {out}{err}"
    );
    let (ok, out, err) = ctl(bin, &setup.control, &["stats"]);
    assert!(ok, "{bin}: ctl stats after the upgrade: {out}{err}");
    let (code, body) = get(metrics, "/metrics");
    assert_eq!(code, 200, "{bin}: {body}");
    assert!(body.contains("socks4_connections_opened_total"), "{bin}");
    let (code, body) = get(metrics, "/ready");
    assert_eq!((code, body.trim()), (200, "ready"), "{bin}");
}

/// The old process still serves: SOCKS, `/ready`, the control socket, and
/// the pid file names it.
fn serves_on(server: &Server, setup: &Setup, bin: &str) {
    let echo = echo(1);
    short_relay(server.addr, echo, 3).unwrap_or_else(|e| panic!("{bin}: {e}\n{}", server.log()));
    let (code, body) = get(metrics_addr(server), "/ready");
    assert_eq!((code, body.trim()), (200, "ready"), "{bin}");
    let (ok, out, err) = ctl(bin, &setup.control, &["deny", "list"]);
    assert!(ok, "{bin}: {out}{err}");
    assert_eq!(
        setup.pid(),
        server.pid(),
        "{bin}: the pid file names the old process"
    );
    assert!(alive(server.pid()), "{bin}");
}

fn a_new_binary_that_fails_its_check_leaves_the_old_one_serving(bin: &str) {
    let setup = Setup::new(&format!("upgrade-bad-{bin}"), "");
    let server = setup.start(bin);
    let good = std::fs::read_to_string(&setup.config).unwrap();
    // The new binary's configuration is broken (a typo in a value).
    std::fs::write(
        &setup.config,
        good.replace(
            &format!("shutdown_grace = \"{}s\"", GRACE.as_secs()),
            "shutdown_grace = \"soon\"",
        ),
    )
    .unwrap();
    let (ok, out, err) = ctl(bin, &setup.control, &["upgrade"]);
    assert!(!ok, "{bin}: ctl upgrade fails: {out}");
    assert!(
        err.contains("exited before it was ready") && err.contains("exit status: 2"),
        "{bin}: the reason: {err}"
    );
    let line = server.wait_says("upgrade failed, this process serves on");
    assert!(field(&line, "error").contains("exited"), "{bin}: {line}");
    std::fs::write(&setup.config, &good).unwrap();
    serves_on(&server, &setup, bin);
    // A wrapper that starts the binary with a bad option fails the same way.
    let wrapper = setup.script(
        "bad-socks4d",
        &format!(
            "exec '{}' --listen nonsense \"$@\"",
            server_binary(bin).display()
        ),
    );
    let (ok, _, err) = ctl(
        bin,
        &setup.control,
        &["upgrade", "--binary", wrapper.to_str().unwrap()],
    );
    assert!(!ok && err.contains("exit status: 2"), "{bin}: {err}");
    serves_on(&server, &setup, bin);
}

fn a_new_binary_that_hangs_is_killed_and_the_old_one_serves_on(bin: &str) {
    let setup = Setup::new(&format!("upgrade-hang-{bin}"), "upgrade = \"3s\"");
    let server = setup.start(bin);
    let metrics = metrics_addr(&server);
    let pid_of_hang = setup.dir.join("hang.pid");
    let hang = setup.script(
        "hanging-socks4d",
        &format!("echo $$ > '{}'\nexec sleep 60", pid_of_hang.display()),
    );
    let asking = {
        let (bin, socket, hang) = (bin.to_owned(), setup.control.clone(), hang.clone());
        thread::spawn(move || {
            let started = Instant::now();
            let answer = ctl(
                &bin,
                &socket,
                &["upgrade", "--binary", hang.to_str().unwrap()],
            );
            (answer, started.elapsed())
        })
    };
    // While the new process hangs, /ready is 503.
    let deadline = Instant::now() + STEP;
    while !pid_of_hang.exists() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    let (code, body) = get(metrics, "/ready");
    assert_eq!(code, 503, "{bin}: /ready during the upgrade: {body}");
    assert!(body.contains("upgrading"), "{bin}: {body}");
    let ((ok, out, err), took) = asking.join().unwrap();
    assert!(!ok, "{bin}: ctl upgrade fails: {out}");
    assert!(err.contains("not ready within 3s"), "{bin}: {err}");
    assert!(
        took < STEP,
        "{bin}: the upgrade gave up after its timeout ({took:?})"
    );
    let hung: u32 = std::fs::read_to_string(&pid_of_hang)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let gone = Instant::now() + STEP;
    while alive(hung) && Instant::now() < gone {
        thread::sleep(Duration::from_millis(10));
    }
    assert!(!alive(hung), "{bin}: the hanging process was killed");
    server.wait_says("upgrade failed, this process serves on");
    serves_on(&server, &setup, bin);
}

fn sigusr2_upgrades_and_systemd_follows_the_new_process(bin: &str) {
    let setup = Setup::new(&format!("upgrade-usr2-{bin}"), "");
    let path = setup.dir.join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    notify.set_read_timeout(Some(STEP)).unwrap();
    let next = || {
        let mut buf = [0u8; 512];
        let n = notify.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let mut server = setup.start_env(bin, &[("NOTIFY_SOCKET", path.to_str().unwrap())]);
    let old = server.pid();
    let ready = next();
    assert!(ready.contains("READY=1"), "{bin}: {ready}");
    server.signal("USR2");
    // The new process takes the unit over: MAINPID= with READY=1.
    let taken = next();
    let pid = setup.pid();
    let mut new = NewProcess(Some(pid));
    assert_ne!(pid, old, "{bin}: the pid file names the new process");
    assert!(
        taken.contains(&format!("MAINPID={pid}")) && taken.contains("READY=1"),
        "{bin}: {taken}\n{}",
        server.log()
    );
    server.wait_says("upgrade: the new process is ready; this one stops accepting and drains");
    // With nothing to drain the old one exits at once, telling systemd
    // nothing (a STOPPING=1 would stop the unit).
    assert!(
        server.wait_exit(STEP).is_some_and(|s| s.success()),
        "{bin}: the old process exits\n{}",
        server.log()
    );
    notify
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 512];
    let quiet = notify.recv(&mut buf);
    assert!(
        quiet.is_err(),
        "{bin}: the old process sent {:?}",
        quiet.map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
    );
    // The new process serves, and its own stop is the unit's.
    short_relay(server.addr, echo(1), 5).unwrap_or_else(|e| panic!("{bin}: {e}"));
    notify.set_read_timeout(Some(STEP)).unwrap();
    new.0 = None;
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let stopping = next();
    assert!(stopping.contains("STOPPING=1"), "{bin}: {stopping}");
    stop(pid);
    assert!(!alive(pid), "{bin}: the new process stopped");
}

/// A configuration with a listener of each kind a test can bind as a
/// normal user (all but transparent), on the ports given, and `more`.
fn every_kind(
    setup: &Setup,
    ports: &[u16; 8],
    echo: SocketAddr,
    cert: &socks4_tests::tls::Issued,
    more: &str,
) {
    let [socks, tls, dual, redirect, forward, forward_tls, extra_socks, extra_forward] =
        ports.map(|p| format!("127.0.0.1:{p}"));
    let text = format!(
        r#"listen = ["{socks}"{more_socks}]
listen_tls = ["{tls}"]
dual = ["{dual}={echo}"]
redirect = ["{redirect}"]
forward = ["{forward}={echo}"{more_forward}]
forward_tls = ["{forward_tls}=localhost:9"]
metrics_listen = "127.0.0.1:0"
control_socket = "{control}"
pid_file = "{pid}"

[tls]
cert = "{cert}"
key = "{key}"

[timeouts]
shutdown_grace = "{grace}s"
"#,
        more_socks = if more == "socks" {
            format!(", \"{extra_socks}\"")
        } else {
            String::new()
        },
        more_forward = if more == "forward" {
            format!(", \"{extra_forward}={echo}\"")
        } else {
            String::new()
        },
        control = setup.control.display(),
        pid = setup.pid_file.display(),
        cert = cert.cert.display(),
        key = cert.key.display(),
        grace = GRACE.as_secs(),
    );
    std::fs::write(&setup.config, text).unwrap();
}

fn every_listener_kind_is_handed_over(bin: &str) {
    let setup = Setup::new(&format!("upgrade-kinds-{bin}"), "");
    let ca = socks4_tests::tls::TestCa::new(&setup.dir, "test-ca");
    let cert = ca.issue("server", "socks4d", &["localhost"]);
    let ports = [(); 8].map(|()| free_port());
    let on = |i: usize| SocketAddr::from(([127, 0, 0, 1], ports[i]));
    let echo = echo(100);
    // An extra SOCKS listener at start (6), swapped by a reload for an extra
    // forward (7): the upgrade hands over what runs now.
    every_kind(&setup, &ports, echo, &cert, "socks");
    let mut server = setup.start(bin);
    every_kind(&setup, &ports, echo, &cert, "forward");
    server.signal("HUP");
    server.wait_for("the reload's forward", |l| {
        says(l, "listening")
            && field(l, "listen") == on(7).to_string()
            && field(l, "kind") == "forward"
    });
    server.wait_for("the removed listener closed", |l| {
        says(l, "listener closed") && field(l, "listen") == on(6).to_string()
    });
    let (ok, out, err) = ctl(bin, &setup.control, &["upgrade"]);
    assert!(ok, "{bin}: {out}{err}\n{}", server.log());
    let new = NewProcess(Some(setup.pid()));
    assert!(
        server.wait_exit(STEP).is_some_and(|s| s.success()),
        "{bin}: the old process exits"
    );
    // Only the new process holds the sockets now: each kind answers there.
    short_relay(on(0), echo, 7).unwrap_or_else(|e| panic!("{bin}: socks: {e}"));
    short_relay(on(2), echo, 8).unwrap_or_else(|e| panic!("{bin}: dual: {e}"));
    for (i, what) in [(4, "forward"), (7, "the forward a reload added")] {
        let mut s = TcpStream::connect_timeout(&on(i), STEP)
            .unwrap_or_else(|e| panic!("{bin}: {what}: {e}"));
        s.set_read_timeout(Some(STEP)).unwrap();
        assert_eq!(
            echo_through(&mut s, b"handed over"),
            b"handed over",
            "{bin}: {what}"
        );
    }
    let tls = socks4_tests::tls::connect(
        on(1),
        socks4_tests::tls::client_config(&ca.cert, None),
        "localhost",
    );
    assert!(
        tls.is_ok(),
        "{bin}: the TLS listener's handshake: {:?}",
        tls.err()
    );
    for (i, kind) in [(3, "redirect"), (5, "forward_tls")] {
        assert!(
            TcpStream::connect_timeout(&on(i), STEP).is_ok(),
            "{bin}: the {kind} listener is open"
        );
        let lines = server.count(|l| says(l, "listening") && field(l, "kind") == kind);
        assert_eq!(lines, 2, "{bin}: {kind} listening in both processes");
    }
    assert!(
        TcpStream::connect_timeout(&on(6), STEP).is_err(),
        "{bin}: the listener a reload removed stays closed"
    );
    let (ok, out, err) = ctl(bin, &setup.control, &["stats"]);
    assert!(ok, "{bin}: the control socket answers: {out}{err}");
    drop(new);
}
