//! The SOCKS4a resolver benchmark (`socks4-load --resolver`): connections
//! per second when every request names its destination, against
//! `socks4d-tokio` with its own caching resolver (warm cache) and with the
//! system's (getaddrinfo, uncached), against 3proxy with its `nscache` when
//! a 3proxy binary is given, and against no proxy at all (the limit), with
//! SOCKS4 by address through the same server as the reference.
//!
//! The nameserver is a real dnsmasq on 127.0.0.1:53, the only port glibc's
//! resolver asks. No question leaves the machine: every proxy runs in a mount
//! namespace of its own (`unshare --mount`) where a `resolv.conf` naming
//! 127.0.0.1 is bind-mounted over `/etc/resolv.conf`, and dnsmasq has no
//! upstream (`--no-resolv`). dnsmasq's query log counts what each subject
//! asked during its phases; the own resolver must have asked at most a
//! handful of questions (its cache held).

use crate::e2e::{free_port, server_binary};
use crate::load::{self, Peers, Subject};
use crate::procfs;
use crate::samples::Samples;
use socks4_proto::{Command, Dest, Request};
use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// The name every SOCKS4a request asks for (dnsmasq's zone).
pub const NAME: &str = "bench.test";

/// The TTL of its answers, seconds: far longer than a run.
const TTL: u32 = 3600;

/// Where dnsmasq listens: glibc asks port 53 only.
const DNS: &str = "127.0.0.1:53";

/// Client counts of the CPS phases.
const CLIENTS: [usize; 3] = [1, 16, 128];

/// The most questions the warm own resolver may ask in all the phases.
const HANDFUL: u64 = 4;

/// How long a step may wait for a program or a reply.
const PATIENCE: Duration = Duration::from_secs(30);

/// dnsmasq from Debian on 127.0.0.1:53, authoritative for `bench.test`
/// (A 127.0.0.1; its AAAA is NODATA with an SOA, so it may be cached), with
/// no upstream and its query log in a file. Stopped (by PID) when dropped.
pub struct Dnsmasq {
    child: Child,
    log: PathBuf,
    /// How far the log was read, and the questions counted up to there.
    read: (u64, u64),
}

impl Dnsmasq {
    /// Starts it, its files in `dir`; panics when 127.0.0.1:53 is taken or
    /// dnsmasq does not start.
    pub fn start(dir: &Path) -> Dnsmasq {
        assert!(
            UdpSocket::bind(DNS).is_ok() && TcpListener::bind(DNS).is_ok(),
            "something listens on {DNS} already: the benchmark's dnsmasq needs it"
        );
        let log = dir.join("dnsmasq.log");
        let _ = std::fs::remove_file(&log);
        let mut child = std::process::Command::new("dnsmasq")
            .args([
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                "--port=53",
                "--user=root",
                "--pid-file=",
                &format!("--host-record={NAME},127.0.0.1,{TTL}"),
                &format!("--host-record=ns.{NAME},127.0.0.1"),
                &format!("--auth-server=ns.{NAME},lo"),
                &format!("--auth-zone={NAME}"),
                &format!("--auth-ttl={TTL}"),
                &format!("--local-ttl={TTL}"),
                "--log-queries=extra",
                &format!("--log-facility={}", log.display()),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq (Debian package dnsmasq; run .ci/setup)");
        let deadline = Instant::now() + PATIENCE;
        while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("started")) {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("dnsmasq exited at start with {status}");
            }
            assert!(Instant::now() < deadline, "dnsmasq did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Dnsmasq {
            child,
            log,
            read: (0, 0),
        }
    }

    /// Questions for [`NAME`] (A or AAAA) logged so far. Reads only what
    /// was added since the last call, up to its last complete line.
    pub fn questions(&mut self) -> u64 {
        // dnsmasq writes its log from its main loop: let it catch up.
        std::thread::sleep(Duration::from_millis(100));
        let Ok(mut f) = std::fs::File::open(&self.log) else {
            return self.read.1;
        };
        let mut new = Vec::new();
        if f.seek(SeekFrom::Start(self.read.0)).is_err() || f.read_to_end(&mut new).is_err() {
            return self.read.1;
        }
        let complete = new.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let text = String::from_utf8_lossy(&new[..complete]);
        // `query[A] bench.test from ...`, or `auth[AAAA] ...` for its zone.
        let asked = format!("] {NAME} from ");
        self.read.1 += text.lines().filter(|l| l.contains(&asked)).count() as u64;
        self.read.0 += complete as u64;
        self.read.1
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `program args` in a mount namespace of its own, with `resolv` bound over
/// `/etc/resolv.conf` there (so that a system resolver asks only what it
/// names). The process keeps the PID of the `unshare` started here.
fn isolated(resolv: &Path, program: &Path, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new("unshare");
    cmd.args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        r#"mount --bind "$0" /etc/resolv.conf && exec "$@""#,
    ])
    .arg(resolv)
    .arg(program)
    .args(args)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    cmd
}

/// `socks4d-tokio` with `[resolver] mode = MODE` (`own`: dnsmasq as its
/// nameserver), isolated, `-qqq`, named `name`.
fn socks4d(resolv: &Path, mode: &str, name: &str) -> Subject {
    let listen = format!("127.0.0.1:{}", free_port());
    let bin = server_binary("socks4d-tokio");
    // One load generator is one client address: lift the per-client caps to
    // the server-wide ones (as the other benchmarks do).
    let mut args = vec![
        "--listen",
        &listen,
        "--max-connections",
        "19000",
        "--max-connections-per-client",
        "19000",
        "--max-lookups-per-client",
        "64",
        "--resolver",
        mode,
        "-qqq",
    ];
    if mode == "own" {
        args.extend(["--nameserver", DNS]);
    }
    let child = isolated(resolv, &bin, &args)
        .spawn()
        .expect("unshare (util-linux) and socks4d-tokio");
    Subject::started(name.into(), listen.parse().unwrap(), child)
}

/// 3proxy at `path`, isolated: SOCKS on a free loopback port, IPv4 answers
/// only (`-4`), dnsmasq as its nameserver with `nscache`, no log.
fn three_proxy(path: &Path, resolv: &Path) -> Subject {
    Subject::three_proxy_with(
        isolated(resolv, path, &[]),
        "3proxy (nscache)",
        &format!("nserver {DNS}\nnscache 65536\nmaxconn 5000\n"),
        "-4",
    )
}

/// A SOCKS4a CONNECT to `host:port` through `proxy`: the stream (ready to
/// relay) and how long the TCP connect plus handshake took.
pub fn open_by_name(proxy: SocketAddr, host: &str, port: u16) -> io::Result<(TcpStream, Duration)> {
    let started = Instant::now();
    let mut s = TcpStream::connect(proxy)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(PATIENCE))?;
    let req = Request {
        command: Command::Connect,
        dest: Dest::Domain(host, port),
        user_id: b"",
    }
    .to_vec();
    s.write_all(&req)?;
    let mut reply = [0u8; 8];
    s.read_exact(&mut reply)?;
    if reply[1] != 90 {
        return Err(io::Error::other(format!("refused with {}", reply[1])));
    }
    Ok((s, started.elapsed()))
}

/// How a subject's clients ask.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ask {
    /// No proxy: connect to the echo peer's address.
    Direct,
    /// SOCKS4, the echo peer's address.
    Address,
    /// SOCKS4a, [`NAME`].
    Name,
}

/// Where a subject's numbers go, beside its phases' questions and failures.
#[derive(Default)]
struct Books {
    samples: Samples,
    /// Per subject: questions to dnsmasq during its phases, connections made,
    /// requests that failed.
    asked: BTreeMap<String, (u64, u64, u64)>,
    /// The machine's other load during each round, percent of its CPUs.
    other_load: Vec<f64>,
}

/// The resolver benchmark: `rounds` interleaved rounds of `seconds`-long
/// CPS phases; 3proxy from `three_proxy` when given. Prints the tables and
/// the cache check; returns whether the own resolver's cache held.
pub fn run(rounds: usize, seconds: u64, three_proxy_path: Option<PathBuf>) -> bool {
    let dir = crate::scratch::fresh("load-resolver");
    let resolv = dir.join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.1\n").unwrap();
    let mut dns = Dnsmasq::start(&dir);
    let peers = Peers::start();
    let own = socks4d(&resolv, "own", "socks4d-tokio, own resolver");
    let system = socks4d(&resolv, "system", "socks4d-tokio, system resolver");
    let three = match three_proxy_path {
        Some(p) if p.is_file() => Some(three_proxy(&p, &resolv)),
        other => {
            println!("3proxy not given or not found ({other:?}; --3proxy PATH or SOCKS4_LOAD_3PROXY): left out\n");
            None
        }
    };
    let direct = Subject::direct();
    let mut subjects: Vec<(&Subject, Ask, String)> = vec![
        (&direct, Ask::Direct, direct.name.clone()),
        (&own, Ask::Address, "socks4d-tokio, SOCKS4 (address)".into()),
        (&own, Ask::Name, own.name.clone()),
        (&system, Ask::Name, system.name.clone()),
    ];
    if let Some(t) = &three {
        subjects.push((t, Ask::Name, t.name.clone()));
    }
    // Warm up: one request by name through each proxy (the caches of the
    // own resolver and of 3proxy now hold the name).
    for (s, _, _) in subjects.iter().filter(|s| s.1 == Ask::Name) {
        open_by_name(s.proxy.unwrap(), NAME, peers.echo.port())
            .unwrap_or_else(|e| panic!("{}: a request by name failed: {e}", s.name));
    }
    let warm = dns.questions();
    let mut books = Books::default();
    for round in 0..rounds {
        eprintln!("resolver round {}/{}", round + 1, rounds);
        round_of(&subjects, &peers, &mut dns, seconds, &mut books);
    }
    print(rounds, seconds, &subjects, &books);
    check(&own.name, warm, &books)
}

/// One round: each client count, each subject in turn.
fn round_of(
    subjects: &[(&Subject, Ask, String)],
    peers: &Peers,
    dns: &mut Dnsmasq,
    seconds: u64,
    books: &mut Books,
) {
    let duration = Duration::from_secs(seconds);
    let me = std::process::id();
    let busy0 = procfs::machine_busy();
    // The subjects, dnsmasq and the peers are this tool's children.
    let ours0 = procfs::cpu(me);
    let wall0 = Instant::now();
    for clients in CLIENTS {
        for (s, ask, name) in subjects {
            let failed = std::sync::atomic::AtomicU64::new(0);
            let asked0 = dns.questions();
            let echo = peers.echo;
            let c = load::cps_with(clients, duration, || {
                let opened = match ask {
                    Ask::Direct | Ask::Address => s.open(echo),
                    Ask::Name => open_by_name(s.proxy.unwrap(), NAME, echo.port()),
                };
                // The first failure of a phase is told on stderr.
                if let Err(e) = &opened {
                    if failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 0 {
                        eprintln!("{name}, {clients} clients: a request failed: {e}");
                    }
                }
                opened
            });
            let asked = dns.questions() - asked0;
            let books_of = books.asked.entry(name.clone()).or_default();
            books_of.0 += asked;
            books_of.1 += c.count;
            books_of.2 += failed.into_inner();
            books.samples.add(name, &format!("cps{clients}"), c.rate);
            match clients {
                1 => books.samples.add(name, "p50_1", c.p50_ms),
                128 => books.samples.add(name, "p99_128", c.p99_ms),
                _ => {}
            }
        }
    }
    let wall = wall0.elapsed();
    let busy = procfs::machine_busy().saturating_sub(busy0);
    let ours = procfs::cpu(me).saturating_sub(ours0);
    books.other_load.push(
        busy.saturating_sub(ours).as_secs_f64() / (wall.as_secs_f64() * f64::from(procfs::cpus()))
            * 100.0,
    );
}

/// The tables of `--resolver`.
fn print(rounds: usize, seconds: u64, subjects: &[(&Subject, Ask, String)], books: &Books) {
    let mut load = books.other_load.clone();
    load.sort_by(f64::total_cmp);
    println!(
        "{rounds} interleaved rounds; medians (min–max). CPS phases {seconds} s each. Other load on \
         the machine during the rounds: median {:.1}% of its {} CPUs (max {:.1}%).\n",
        load.get(load.len() / 2).copied().unwrap_or(0.0),
        procfs::cpus(),
        load.last().copied().unwrap_or(0.0)
    );
    let s = &books.samples;
    println!("| subject | conn/s, 1 client | conn/s, 16 | conn/s, 128 | handshake p50 ms @1 | p99 ms @128 | DNS questions per 1,000 connections | failed requests |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (_, _, n) in subjects {
        let (asked, made, failed) = books.asked.get(n).copied().unwrap_or_default();
        println!(
            "| {n} | {} | {} | {} | {} | {} | {:.1} | {failed} |",
            s.cell(n, "cps1", 0),
            s.cell(n, "cps16", 0),
            s.cell(n, "cps128", 0),
            s.cell(n, "p50_1", 2),
            s.cell(n, "p99_128", 2),
            asked as f64 * 1000.0 / made.max(1) as f64
        );
    }
    let direct = &subjects[0].2;
    for (base, label) in [
        (direct.as_str(), "direct"),
        ("socks4d-tokio, system resolver", "the system resolver"),
    ] {
        println!("\nconn/s, ratios to {label} (median / median):\n");
        println!("| subject | 1 client | 16 | 128 |");
        println!("| --- | --- | --- | --- |");
        for (_, _, n) in subjects.iter().filter(|x| x.2 != base && x.2 != *direct) {
            let cells: Vec<String> = CLIENTS
                .iter()
                .map(|c| {
                    let f = format!("cps{c}");
                    match (s.median(n, &f), s.median(base, &f)) {
                        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
                        _ => "–".into(),
                    }
                })
                .collect();
            println!("| {n} | {} |", cells.join(" | "));
        }
    }
}

/// The cache check: the own resolver, warm, asked at most [`HANDFUL`]
/// questions in all its phases. Printed; true when it held.
fn check(own: &str, warm: u64, books: &Books) -> bool {
    let (asked, made, _) = books.asked.get(own).copied().unwrap_or_default();
    let held = asked <= HANDFUL;
    println!(
        "\nCache check (dnsmasq's query log): {own} asked {asked} questions for {NAME} over {made} \
         SOCKS4a connections in its phases (at most {HANDFUL} expected; {warm} questions in all \
         before the phases, the warm-up of every subject): {}.",
        if held { "the cache held" } else { "FAILED" }
    );
    held
}
