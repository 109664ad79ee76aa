//! The pieces of the benchmark (`socks4-load`): the subjects (no proxy, our
//! servers, Dante, 3proxy), the loopback peers they relay to (in a process of
//! their own, so that their descriptors and CPU are counted apart), and the
//! measurements: connections per second with handshake latency, throughput
//! with the proxy's CPU per GB, and memory per idle relayed connection (with
//! the relays held, so that connections per second can be measured beside
//! them).
//!
//! Every byte stays on 127.0.0.1; every loop is bounded by a count or a time.

use crate::e2e::{free_port, server_binary};
use crate::procfs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long a benchmark step may wait for a peer before giving up.
const PATIENCE: Duration = Duration::from_secs(30);

/// The most failed connections [`hold_idle`] tries past before it stops.
const IDLE_FAILURES: usize = 100;

/// Bytes a CPS client sends and gets back after the handshake.
pub const ECHO_BYTES: usize = 32;

/// What is measured: a way for a client to reach a destination.
pub struct Subject {
    /// Its name in the tables.
    pub name: String,
    /// The proxy's address; `None` for a direct connection.
    pub proxy: Option<SocketAddr>,
    /// The loopback address its clients connect from (the system's choice
    /// when `None`).
    pub source: Option<std::net::Ipv4Addr>,
    child: Option<Child>,
    dante: Option<crate::peers::Peer>,
}

impl Subject {
    /// No proxy: the client connects to the destination itself (the limit).
    pub fn direct() -> Subject {
        Subject {
            name: "direct (no proxy)".into(),
            proxy: None,
            source: None,
            child: None,
            dante: None,
        }
    }

    /// A proxy someone else started, at `proxy`.
    pub fn external(proxy: SocketAddr) -> Subject {
        Subject {
            name: proxy.to_string(),
            proxy: Some(proxy),
            source: None,
            child: None,
            dante: None,
        }
    }

    /// One of our server binaries on a free loopback port; `log` keeps the
    /// default log level (one line per connection, to a file) instead of `-qqq`.
    pub fn ours(binary: &str, log: bool) -> Subject {
        Subject::ours_with(binary, log, &[], None)
    }

    /// Like [`Subject::ours`], with extra arguments, and a name of its own.
    pub fn ours_with(binary: &str, log: bool, args: &[&str], name: Option<&str>) -> Subject {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(server_binary(binary));
        // One load generator is one client address: lift the per-client cap
        // with the server-wide one.
        cmd.args([
            "--listen",
            &listen,
            "--max-connections",
            "19000",
            "--max-connections-per-client",
            "19000",
        ]);
        cmd.args(args);
        let stderr = if log {
            let path = crate::scratch::root().join(format!("load-{binary}.log"));
            Stdio::from(std::fs::File::create(path).expect("log file"))
        } else {
            cmd.arg("-qqq");
            Stdio::null()
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("start {binary}: {e}"));
        let name = match (name, log) {
            (Some(n), _) => n.to_owned(),
            (None, true) => format!("{binary} (info log)"),
            (None, false) => binary.to_owned(),
        };
        Subject::started(name, listen.parse().unwrap(), child)
    }

    /// Dante (`danted` from Debian's dante-server), logging nothing, on a free
    /// loopback port; `None` when it is not installed.
    pub fn dante() -> Option<Subject> {
        let peer = crate::peers::dante()?;
        Some(Subject {
            name: "Dante 1.4".into(),
            proxy: Some(peer.addr),
            source: None,
            child: None,
            dante: Some(peer),
        })
    }

    /// 3proxy at `path`, as fast as it can be configured for SOCKS4 CONNECT
    /// on Linux, logging nothing: see [`THREE_PROXY_FAST`]. Named after the
    /// binary's version and whether it relays with splice(2) (see
    /// [`ThreeProxyBuild`]).
    pub fn three_proxy(path: &Path) -> Subject {
        let build = ThreeProxyBuild::of(path);
        Subject::three_proxy_with(
            Command::new(path),
            &build.name(),
            THREE_PROXY_FAST.0,
            THREE_PROXY_FAST.1,
        )
    }

    /// 3proxy started by `command` (its binary, or a wrapper that runs it;
    /// the config file's path is added as the last argument) with the
    /// config `head` (lines ending in `\n`, before the service) and one
    /// `socks` service with `flags` on a free port of 127.0.0.1, named
    /// `name`. Every benchmark that runs 3proxy starts it here.
    pub fn three_proxy_with(mut command: Command, name: &str, head: &str, flags: &str) -> Subject {
        let port = free_port();
        let conf = crate::scratch::dir("load-3proxy").join(format!("3proxy-{port}.cfg"));
        std::fs::write(&conf, format!("{head}socks {flags} -p{port} -i127.0.0.1\n"))
            .expect("3proxy's config");
        let child = command
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start 3proxy ({name}): {e}"));
        Subject::started(name.into(), SocketAddr::from(([127, 0, 0, 1], port)), child)
    }

    /// A server the caller started (`child`), once it accepts on `addr`.
    pub fn started(name: String, addr: SocketAddr, child: Child) -> Subject {
        let deadline = Instant::now() + PATIENCE;
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "{name} did not start");
            thread::sleep(Duration::from_millis(20));
        }
        Subject {
            name,
            proxy: Some(addr),
            source: None,
            child: Some(child),
            dante: None,
        }
    }

    /// The same proxy, with clients connecting from `source` (this value
    /// does not own the server).
    pub fn from_source(&self, source: std::net::Ipv4Addr) -> Subject {
        Subject {
            name: format!("{} from {source}", self.name),
            proxy: self.proxy,
            source: Some(source),
            child: None,
            dante: None,
        }
    }

    fn connect(&self, to: SocketAddr) -> io::Result<TcpStream> {
        match self.source {
            None => TcpStream::connect(to),
            Some(ip) => {
                let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
                s.bind(&SocketAddr::from((ip, 0)).into())?;
                s.connect(&to.into())?;
                Ok(s.into())
            }
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child
            .as_ref()
            .map(Child::id)
            .or(self.dante.as_ref().map(crate::peers::Peer::pid))
    }

    /// CPU time the server's processes used so far.
    pub fn cpu(&self) -> Duration {
        self.pid().map_or(Duration::ZERO, procfs::cpu)
    }

    /// A connection to `dest`, through the proxy if there is one: the stream
    /// (ready to relay) and how long the TCP connect plus handshake took.
    pub fn open(&self, dest: SocketAddr) -> io::Result<(TcpStream, Duration)> {
        let started = Instant::now();
        let Some(proxy) = self.proxy else {
            let s = self.connect(dest)?;
            s.set_nodelay(true)?;
            return Ok((s, started.elapsed()));
        };
        let mut s = self.connect(proxy)?;
        s.set_nodelay(true)?;
        let SocketAddr::V4(v4) = dest else {
            return Err(io::Error::other("IPv4 destinations only"));
        };
        let mut req = vec![4, 1];
        req.extend_from_slice(&v4.port().to_be_bytes());
        req.extend_from_slice(&v4.ip().octets());
        req.push(0);
        s.write_all(&req)?;
        let mut reply = [0u8; 8];
        s.read_exact(&mut reply)?;
        if reply[1] != 90 {
            return Err(io::Error::other(format!("refused with {}", reply[1])));
        }
        Ok((s, started.elapsed()))
    }
}

impl Drop for Subject {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The config of [`Subject::three_proxy`]: the lines before the service,
/// and the `socks` service's flags.
///
/// - No `log` line: 3proxy then logs nothing (its default log function is
///   `lognone`), as Dante is configured here and ours run with `-qqq`.
/// - No `auth` line: the default (`doconnect`) connects without checking
///   any ACL, the least work per request.
/// - `maxconn 19000`, as ours get `--max-connections 19000`: far above the
///   9,900 idle relays plus the 16 clients measured beside them and the 128
///   clients of the CPS phases (at its default, 500, 3proxy would leave the
///   rest unanswered).
///   3proxy warns at start (to its standard error, not kept) that this
///   needs twice as many descriptors as the limit here; 9,900 relays need
///   19,800, which fits.
/// - `-ocTCP_NODELAY -osTCP_NODELAY`: no Nagle delay on either side, as our
///   servers set on both (3proxy sets nothing by default).
/// - `-s`: relay with splice(2). 3proxy 1.0 has it only when built with
///   `-DWITHSPLICE` (not in `Makefile.Linux`'s flags; its manual says the
///   read/write path is faster for most traffic, since Linux ignores
///   `SPLICE_F_MOVE`) and ignores `-s` otherwise. The reference run
///   used splice, so the flag is always given and the binary decides: the
///   subject's name says which path it took (see [`ThreeProxyBuild`]), and
///   docs/benchmarks.md gives the build commands for both.
/// - The thread stack is left at 3proxy's default (49,152 bytes plus
///   `stacksize`, 0): a smaller one risks its crashes, a larger one only
///   costs memory.
pub const THREE_PROXY_FAST: (&str, &str) = ("maxconn 19000\n", "-s -ocTCP_NODELAY -osTCP_NODELAY");

/// What a 3proxy binary is, read from its bytes: its version string
/// (`3proxy-1.0.0`) and whether it was built with splice(2) (its usage text
/// then has `-s Use splice()`, compiled only with `WITHSPLICE`).
pub struct ThreeProxyBuild {
    /// The version, `None` when not found.
    pub version: Option<String>,
    /// Built with `-DWITHSPLICE`.
    pub splice: bool,
}

impl ThreeProxyBuild {
    /// Reads the binary at `path` (a few hundred KiB).
    pub fn of(path: &Path) -> ThreeProxyBuild {
        let bytes = std::fs::read(path).unwrap_or_default();
        let find = |needle: &[u8]| bytes.windows(needle.len()).position(|w| w == needle);
        // The first `3proxy-` followed by a digit: `3proxy-1.0.0`.
        let version = bytes
            .windows(8)
            .position(|w| w.starts_with(b"3proxy-") && w[7].is_ascii_digit())
            .map(|at| {
                bytes[at + 7..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit() || **b == b'.')
                    .map(|b| char::from(*b))
                    .collect::<String>()
            });
        ThreeProxyBuild {
            version,
            splice: find(b"Use splice()").is_some(),
        }
    }

    /// The subject's name: `3proxy 1.0.0 (splice)`, or `(read/write)` for a
    /// binary built without splice.
    pub fn name(&self) -> String {
        format!(
            "3proxy {} ({})",
            self.version.as_deref().unwrap_or("(version unknown)"),
            if self.splice { "splice" } else { "read/write" }
        )
    }
}

/// The peers, in a process of their own (`socks4-load --peers`).
pub struct Peers {
    child: Child,
    /// Echoes [`ECHO_BYTES`] once, then closes.
    pub echo: SocketAddr,
    /// Reads an 8-byte big-endian length, sends that many bytes, closes.
    pub source: SocketAddr,
    /// Reads until end of stream, then closes.
    pub sink: SocketAddr,
    /// Accepts and holds connections without reading.
    pub hold: SocketAddr,
}

impl Peers {
    /// Starts the peers' process (this program, re-run with `--peers`).
    pub fn start() -> Peers {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .arg("--peers")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the peers");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addrs: Vec<SocketAddr> = line
            .split_whitespace()
            .map(|a| a.parse().unwrap())
            .collect();
        Peers {
            child,
            echo: addrs[0],
            source: addrs[1],
            sink: addrs[2],
            hold: addrs[3],
        }
    }

    /// The peers' process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Peers {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The peers' process: serves until its standard input closes (the parent
/// went away).
pub fn serve_peers(echo_threads: usize) {
    let echo = TcpListener::bind("127.0.0.1:0").unwrap();
    let source = TcpListener::bind("127.0.0.1:0").unwrap();
    let sink = TcpListener::bind("127.0.0.1:0").unwrap();
    let hold = TcpListener::bind("127.0.0.1:0").unwrap();
    println!(
        "{} {} {} {}",
        echo.local_addr().unwrap(),
        source.local_addr().unwrap(),
        sink.local_addr().unwrap(),
        hold.local_addr().unwrap()
    );
    io::stdout().flush().unwrap();
    let echo = Arc::new(echo);
    for _ in 0..echo_threads {
        let l = echo.clone();
        thread::spawn(move || loop {
            let Ok((mut s, _)) = l.accept() else { continue };
            let _ = s.set_nodelay(true);
            // One exchange, then the peer closes first, as a server does: its
            // TIME_WAIT then holds none of the connecting side's ports.
            let mut buf = [0u8; ECHO_BYTES];
            if s.read_exact(&mut buf).is_ok() {
                let _ = s.write_all(&buf);
            }
        });
    }
    thread::spawn(move || {
        for s in source.incoming().flatten() {
            thread::spawn(move || {
                let mut s = s;
                let mut len = [0u8; 8];
                if s.read_exact(&mut len).is_err() {
                    return;
                }
                let mut left = u64::from_be_bytes(len);
                let chunk = vec![0x5au8; 256 * 1024];
                while left > 0 {
                    let n = left.min(chunk.len() as u64) as usize;
                    if s.write_all(&chunk[..n]).is_err() {
                        return;
                    }
                    left -= n as u64;
                }
            });
        }
    });
    thread::spawn(move || {
        for s in sink.incoming().flatten() {
            thread::spawn(move || {
                let mut s = s;
                let mut buf = vec![0u8; 256 * 1024];
                while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    thread::spawn(move || {
        let mut held = Vec::new();
        for s in hold.incoming().flatten() {
            held.push(s);
        }
    });
    // Until the parent closes our standard input.
    let mut sink = Vec::new();
    let _ = io::stdin().read_to_end(&mut sink);
}

/// Connections per second and handshake latencies.
pub struct Cps {
    /// Completed connections per second.
    pub rate: f64,
    /// Median handshake time (connect to reply), milliseconds.
    pub p50_ms: f64,
    /// 99th percentile handshake time, milliseconds.
    pub p99_ms: f64,
    /// Connections completed.
    pub count: u64,
}

/// `clients` workers, each in a loop for `duration`: connect through the
/// subject to the echo peer, exchange [`ECHO_BYTES`], read the peer's close,
/// close.
pub fn connections_per_second(
    subject: &Subject,
    echo: SocketAddr,
    clients: usize,
    duration: Duration,
) -> Cps {
    cps_with(clients, duration, || subject.open(echo))
}

/// Like [`connections_per_second`], each connection opened (and its
/// handshake done) by `open`.
pub fn cps_with<F>(clients: usize, duration: Duration, open: F) -> Cps
where
    F: Fn() -> io::Result<(TcpStream, Duration)> + Sync,
{
    let open = &open;
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let barrier = Arc::new(Barrier::new(clients + 1));
    thread::scope(|scope| {
        for _ in 0..clients {
            let (stop, done, latencies, barrier) = (
                stop.clone(),
                done.clone(),
                latencies.clone(),
                barrier.clone(),
            );
            scope.spawn(move || {
                let mut mine = Vec::new();
                barrier.wait();
                while !stop.load(Ordering::Relaxed) {
                    let Ok((mut s, took)) = open() else {
                        thread::sleep(Duration::from_millis(1));
                        continue;
                    };
                    let mut buf = [7u8; ECHO_BYTES];
                    // The echo, then the peer's close (passed on by the proxy).
                    if s.write_all(&buf).is_ok()
                        && s.read_exact(&mut buf).is_ok()
                        && matches!(s.read(&mut buf), Ok(0))
                    {
                        mine.push(took.as_micros() as u32);
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
                latencies.lock().unwrap().extend(mine);
            });
        }
        barrier.wait();
        let started = Instant::now();
        thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
        let elapsed = started.elapsed();
        let count = done.load(Ordering::Relaxed);
        (elapsed, count)
    });
    let count = done.load(Ordering::Relaxed);
    let mut l = latencies.lock().unwrap().clone();
    l.sort_unstable();
    let pct = |p: f64| {
        if l.is_empty() {
            0.0
        } else {
            f64::from(l[((l.len() - 1) as f64 * p) as usize]) / 1000.0
        }
    };
    Cps {
        rate: count as f64 / duration.as_secs_f64(),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        count,
    }
}

/// Which way bytes go in a throughput run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Way {
    /// From the destination to the client.
    Down,
    /// From the client to the destination.
    Up,
}

/// Moves `total` bytes over `streams` relayed connections in parallel, `way`;
/// returns the time from the first byte to the last stream's end.
pub fn throughput(
    subject: &Subject,
    peers: &Peers,
    streams: usize,
    way: Way,
    total: u64,
) -> Duration {
    let each = total / streams as u64;
    let conns: Vec<TcpStream> = (0..streams)
        .map(|_| {
            let dest = match way {
                Way::Down => peers.source,
                Way::Up => peers.sink,
            };
            subject.open(dest).expect("open a stream").0
        })
        .collect();
    move_all(conns, way, each, |s| s.shutdown(Shutdown::Write).unwrap())
}

/// Moves `each` bytes `way` over every stream of `conns` at once, starting
/// together; `half_close` ends a stream's sending side. The time from the
/// first stream's start to the last stream's end, each taken by the stream's
/// own thread: with more threads than cores, the thread that released the
/// others may run again only long after they started (a start taken there
/// made 1 GiB over 64 streams look as fast as 0.1 s).
fn move_all<S: Read + Write + Send>(
    conns: Vec<S>,
    way: Way,
    each: u64,
    half_close: impl Fn(&mut S) + Sync,
) -> Duration {
    let barrier = Arc::new(Barrier::new(conns.len()));
    let half_close = &half_close;
    let spans: Vec<(Instant, Instant)> = thread::scope(|scope| {
        let workers: Vec<_> = conns
            .into_iter()
            .map(|mut s| {
                let barrier = barrier.clone();
                scope.spawn(move || {
                    let mut buf = vec![0x5au8; 256 * 1024];
                    barrier.wait();
                    let start = Instant::now();
                    match way {
                        Way::Down => {
                            s.write_all(&each.to_be_bytes()).unwrap();
                            s.flush().unwrap();
                            let mut got = 0u64;
                            loop {
                                let n = s.read(&mut buf).unwrap();
                                if n == 0 {
                                    break;
                                }
                                got += n as u64;
                            }
                            assert_eq!(got, each, "every byte arrived");
                        }
                        Way::Up => {
                            let mut left = each;
                            while left > 0 {
                                let n = left.min(buf.len() as u64) as usize;
                                s.write_all(&buf[..n]).unwrap();
                                left -= n as u64;
                            }
                            half_close(&mut s);
                            // The sink closes after reading everything.
                            let _ = s.read(&mut buf);
                        }
                    }
                    (start, Instant::now())
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let first = spans.iter().map(|s| s.0).min().expect("a stream");
    let last = spans.iter().map(|s| s.1).max().expect("a stream");
    last - first
}

/// Like [`throughput`], with SOCKS inside TLS: each stream is a TLS
/// connection to `tls_proxy` (its certificate signed by `ca`, for
/// `localhost`) carrying a SOCKS CONNECT.
pub fn tls_throughput(
    tls_proxy: SocketAddr,
    ca: &std::path::Path,
    peers: &Peers,
    streams: usize,
    way: Way,
    total: u64,
) -> Duration {
    let config = crate::tls::client_config(ca, None);
    let each = total / streams as u64;
    let conns: Vec<crate::tls::TlsClient> = (0..streams)
        .map(|_| {
            let dest = match way {
                Way::Down => peers.source,
                Way::Up => peers.sink,
            };
            let mut s = crate::tls::connect(tls_proxy, config.clone(), "localhost")
                .expect("a TLS connection");
            s.sock.set_nodelay(true).unwrap();
            s.sock.set_read_timeout(Some(PATIENCE)).unwrap();
            let SocketAddr::V4(v4) = dest else {
                panic!("IPv4 peers")
            };
            let mut req = vec![4, 1];
            req.extend_from_slice(&v4.port().to_be_bytes());
            req.extend_from_slice(&v4.ip().octets());
            req.push(0);
            s.write_all(&req).unwrap();
            s.flush().unwrap();
            let mut reply = [0u8; 8];
            s.read_exact(&mut reply).unwrap();
            assert_eq!(reply[1], 90, "granted");
            s
        })
        .collect();
    move_all(conns, way, each, |s| {
        s.conn.send_close_notify();
        s.flush().unwrap();
    })
}

/// Idle relayed connections, held open, and what they cost.
pub struct Held {
    /// The client sides of the relays (dropping them closes the relays).
    pub conns: Vec<TcpStream>,
    /// The server's memory growth per relay in KiB (PSS of its whole
    /// process tree, after minus before); 0 for no proxy.
    pub kib_each: f64,
}

/// Opens `count` relayed connections to the hold peer and leaves them idle,
/// held in what this returns with the server's memory growth per connection.
/// A failed connection is tried again, up to 100 failures in all;
/// fewer are held when the server refuses more (told on stderr).
pub fn hold_idle(subject: &Subject, hold: SocketAddr, count: usize) -> Held {
    let pid = subject.pid();
    // Warm up: the first connections allocate what every later one shares.
    for _ in 0..16 {
        drop(subject.open(hold));
    }
    thread::sleep(Duration::from_millis(300));
    let before = pid.map_or(0, procfs::pss_kib);
    let mut conns = Vec::with_capacity(count);
    let mut failed = 0;
    while conns.len() < count {
        match subject.open(hold) {
            Ok((s, _)) => conns.push(s),
            // A failure may pass (our servers refuse, as a loop, a client
            // whose port one of their just-closed outbound connections
            // had): try again, a bounded number of times.
            Err(e) if failed < IDLE_FAILURES => {
                failed += 1;
                if failed == 1 {
                    eprintln!("{}: an idle connection failed: {e}", subject.name);
                }
            }
            Err(e) => {
                eprintln!(
                    "{}: stopped at {} idle connections after {failed} failures: {e}",
                    subject.name,
                    conns.len()
                );
                break;
            }
        }
    }
    if failed > 0 {
        eprintln!("{}: {failed} idle connections failed", subject.name);
    }
    thread::sleep(Duration::from_millis(500));
    let after = pid.map_or(0, procfs::pss_kib);
    let n = conns.len().max(1);
    Held {
        conns,
        kib_each: (after.saturating_sub(before)) as f64 / n as f64,
    }
}

/// Downloads from the source peer through `subject` for `duration`, then
/// closes; the rate received, bytes a second.
pub fn timed_download(subject: &Subject, peers: &Peers, duration: Duration) -> f64 {
    let (mut s, _) = subject.open(peers.source).expect("open a stream");
    s.write_all(&(u64::MAX / 2).to_be_bytes()).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    let started = Instant::now();
    let mut got = 0u64;
    while started.elapsed() < duration {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got += n as u64,
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut => {
            }
            Err(_) => break,
        }
    }
    got as f64 / started.elapsed().as_secs_f64()
}
