//! `socks4-load`: the project's benchmark. It compares, side by side on
//! loopback, a direct connection (no proxy: the limit), our three servers,
//! Dante (skipped with a message when `danted` is not installed) and 3proxy
//! (when its binary is given with `--3proxy PATH` or `SOCKS4_LOAD_3PROXY`;
//! left out with a message saying so otherwise), in interleaved rounds, and
//! prints Markdown tables of medians with min–max and ratios to direct, to
//! Dante and to 3proxy. Run it in release mode from the workspace root:
//!
//! ```sh
//! cargo run --release -p socks4-tests --bin socks4-load -- [--rounds 5] [--seconds 3] [--bytes-mib 1024] [--idle 9900] [--skip-idle] [--skip-throughput] [--only NAME] [--3proxy PATH]
//! cargo run --release -p socks4-tests --bin socks4-load -- --against IP:PORT CLIENTS SECONDS
//! cargo run --release -p socks4-tests --bin socks4-load -- --against-bytes IP:PORT STREAMS up|down MIB
//! cargo run --release -p socks4-tests --bin socks4-load -- --limits [--rounds 5] [--bytes-mib 1024]
//! cargo run --release -p socks4-tests --bin socks4-load -- --tls [--rounds 5] [--bytes-mib 1024] [--only NAME]
//! cargo run --release -p socks4-tests --bin socks4-load -- --fleet [--rounds 5] [--seconds 3]
//! cargo run --release -p socks4-tests --bin socks4-load -- --resolver [--rounds 5] [--seconds 3] [--3proxy PATH]
//! ```
//!
//! 3proxy runs with a config that logs nothing and is as fast as 3proxy can
//! be set up for SOCKS4 CONNECT ([`socks4_tests::load::THREE_PROXY_FAST`]:
//! `maxconn 19000`, `TCP_NODELAY` both ways, splice when the binary was
//! built with it); its name in the tables says its version and whether it
//! relays with splice or read/write.
//!
//! `--tls` measures relays whose client side is TLS (a `--listen-tls`
//! listener, SOCKS inside TLS) beside the same server's plain listener, and
//! the chains a TLS listener replaces: stunnel (taking TLS, passing
//! plaintext on) in front of socks4d-tokio's plain listener, and stunnel in
//! front of Dante. GB/s and the proxy's CPU seconds per GB (a chain's is
//! stunnel's and the server's together), then the ratios of each TLS
//! listener to each chain.
//!
//! `--limits` measures what per-client limits cost instead: throughput and CPU
//! per GB of unlimited clients while limits are configured for others (against
//! the same server with no limits), the CPU per GB of a metered relay, and how
//! close a 10 MiB/s limit holds over 10 s.
//!
//! `--fleet` measures what a fleet costs one instance: connections per second
//! of socks4d-tokio with a connection rate (far above what the load reaches,
//! so nothing is refused) and `[fleet]` on a redis-server started on a free
//! loopback port, against the same server and rate without a fleet (each
//! granted request then also runs the fleet's rate script in Redis).
//!
//! `--resolver` measures SOCKS4a connections per second (a name in every
//! request) with the own resolver's warm cache, with the system resolver and
//! against 3proxy's `nscache` (its binary from `--3proxy PATH` or
//! `SOCKS4_LOAD_3PROXY`; left out when absent), a dnsmasq on 127.0.0.1:53 as
//! the nameserver: see [`socks4_tests::resolver_load`]. Needs root.
//!
//! Figures: connections per second at 1, 16 and 128 clients (full CONNECT,
//! 32 bytes echoed, close), handshake p50/p99 at 128 clients, GB/s of 1 and 64
//! streams each way with the proxy's CPU seconds per GB, and how busy the
//! machine was with other work. Then, on each proxy started fresh: connections
//! per second at 16 clients on the empty server, KiB of proxy memory per idle
//! relayed connection (`--idle` of them, held) with its extrapolation to
//! 100,000 relays, connections per second at 16 clients again while those
//! relays are held, and the ratio of the two rates (the rates and the
//! ratio in `--rounds` rounds on that server, the memory in the first).
//! Every byte stays on
//! 127.0.0.1; every phase is bounded in time and count.

use socks4_tests::load::{self, Peers, Subject, Way};
use socks4_tests::procfs;
use socks4_tests::samples::Samples;
use std::time::{Duration, Instant};

const ADAPTERS: &[&str] = &["socks4d-tokio", "socks4d-smol", "socks4d-async-std"];
/// The `--tls` subject a TLS listener replaces: stunnel (taking TLS, passing
/// plaintext on) in front of socks4d-tokio's plain listener.
const STUNNEL_SOCKS4D: &str = "stunnel 5 + socks4d-tokio";
const CLIENTS: [usize; 3] = [1, 16, 128];
/// Clients of the CPS measured beside the idle relays (and before them).
const IDLE_CLIENTS: usize = 16;
/// The relay count the idle memory is extrapolated to.
const SCALE: f64 = 100_000.0;

struct Options {
    rounds: usize,
    seconds: u64,
    bytes: u64,
    idle: usize,
    skip_idle: bool,
    skip_throughput: bool,
    only: Option<String>,
    limits: bool,
    tls: bool,
    resolver: bool,
    fleet: bool,
    three_proxy: Option<std::path::PathBuf>,
}

fn options() -> Options {
    let mut o = Options {
        rounds: 5,
        seconds: 3,
        bytes: 1 << 30,
        idle: 9900,
        skip_idle: false,
        skip_throughput: false,
        only: None,
        limits: false,
        tls: false,
        resolver: false,
        fleet: false,
        three_proxy: std::env::var_os("SOCKS4_LOAD_3PROXY").map(Into::into),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().and_then(|v| v.parse::<u64>().ok());
        match arg.as_str() {
            "--rounds" => o.rounds = value().expect("--rounds N") as usize,
            "--seconds" => o.seconds = value().expect("--seconds N"),
            "--bytes-mib" => o.bytes = value().expect("--bytes-mib N") << 20,
            "--idle" => o.idle = value().expect("--idle N") as usize,
            "--skip-idle" => o.skip_idle = true,
            "--skip-throughput" => o.skip_throughput = true,
            "--limits" => o.limits = true,
            "--tls" => o.tls = true,
            "--resolver" => o.resolver = true,
            "--fleet" => o.fleet = true,
            "--3proxy" => o.three_proxy = args.next().map(Into::into),
            "--only" => o.only = args.next(),
            other => panic!("unknown argument {other}"),
        }
    }
    o
}

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("--peers") => load::serve_peers(160),
        Some("--against") => against(),
        Some("--against-bytes") => against_bytes(),
        _ => {
            let o = options();
            if o.limits {
                limits_phase(&o);
            } else if o.fleet {
                fleet_phase(&o);
            } else if o.tls {
                tls_phase(&o);
            } else if o.resolver {
                let held =
                    socks4_tests::resolver_load::run(o.rounds, o.seconds, o.three_proxy.clone());
                std::process::exit(if held { 0 } else { 1 });
            } else {
                compare(&o);
            }
        }
    }
}

/// Profiling aid (`--against IP:PORT CLIENTS SECONDS`): connections per
/// second against a server started by hand.
fn against() {
    let args: Vec<String> = std::env::args().collect();
    let proxy = args[2].parse().expect("--against IP:PORT CLIENTS SECONDS");
    let clients = args[3].parse().expect("CLIENTS");
    let seconds = args[4].parse().expect("SECONDS");
    let peers = Peers::start();
    let s = Subject::external(proxy);
    let c = load::connections_per_second(&s, peers.echo, clients, Duration::from_secs(seconds));
    println!(
        "{} connections, {:.0}/s, p50 {:.2} ms, p99 {:.2} ms",
        c.count, c.rate, c.p50_ms, c.p99_ms
    );
}

/// Profiling aid (`--against-bytes IP:PORT STREAMS up|down MIB`): MIB
/// mebibytes over STREAMS relayed connections in parallel, one way, through
/// a server started by hand.
fn against_bytes() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "--against-bytes IP:PORT STREAMS up|down MIB";
    let proxy = args.get(2).and_then(|a| a.parse().ok()).expect(usage);
    let streams = args.get(3).and_then(|a| a.parse().ok()).expect(usage);
    let way = match args.get(4).map(String::as_str) {
        Some("up") => Way::Up,
        Some("down") => Way::Down,
        _ => panic!("{usage}"),
    };
    let mib: u64 = args.get(5).and_then(|a| a.parse().ok()).expect(usage);
    let peers = Peers::start();
    let s = Subject::external(proxy);
    let took = load::throughput(&s, &peers, streams, way, mib << 20);
    let gb = (mib << 20) as f64 / 1e9;
    println!(
        "{mib} MiB over {streams} streams in {:.2} s: {:.2} GB/s",
        took.as_secs_f64(),
        gb / took.as_secs_f64()
    );
}

/// The comparison of direct, our servers and Dante (the default): rounds of
/// connection rates and throughput, then idle memory, then the tables.
fn compare(o: &Options) {
    let peers = Peers::start();
    let wanted = |name: &str| o.only.as_deref().is_none_or(|only| name.contains(only));
    let mut subjects = vec![Subject::direct()];
    for bin in ADAPTERS.iter().filter(|b| wanted(b)) {
        subjects.push(Subject::ours(bin, false));
    }
    let logged = Subject::ours(ADAPTERS[0], true);
    match Subject::dante().filter(|_| wanted("dante")) {
        Some(d) => subjects.push(d),
        None => eprintln!(
            "danted not found (Debian package dante-server) or not chosen: Dante is left out"
        ),
    }
    match three_proxy(o).filter(|_| wanted("3proxy")) {
        Some(path) => subjects.push(Subject::three_proxy(&path)),
        None => eprintln!(
            "3proxy not given, not found or not chosen ({:?}; --3proxy PATH or SOCKS4_LOAD_3PROXY): \
             3proxy is left out",
            o.three_proxy
        ),
    }
    let names: Vec<String> = subjects.iter().map(|s| s.name.clone()).collect();
    let mut samples = Samples::default();
    let mut other_load = Vec::new();
    for round in 0..o.rounds {
        eprintln!("round {}/{}", round + 1, o.rounds);
        other_load.push(compare_round(o, &subjects, &logged, &peers, &mut samples));
    }
    drop(logged);

    if !o.skip_idle {
        // Each subject fresh, with fresh peers, so that nothing left from the
        // other phases counts.
        drop(subjects);
        drop(peers);
        idle_phase(o, &mut samples);
    }

    print_tables(o, &names, &samples, &other_load);
}

/// The 3proxy binary to run, when one was given and is a file.
fn three_proxy(o: &Options) -> Option<std::path::PathBuf> {
    o.three_proxy.clone().filter(|p| p.is_file())
}

/// One interleaved round over every subject: connections per second (and
/// the logged subject beside its `-qqq` twin), then throughput. Returns how
/// busy the machine was with other work meanwhile, in percent of its CPUs.
fn compare_round(
    o: &Options,
    subjects: &[Subject],
    logged: &Subject,
    peers: &Peers,
    samples: &mut Samples,
) -> f64 {
    let duration = Duration::from_secs(o.seconds);
    let me = std::process::id();
    let busy0 = procfs::machine_busy();
    // This tool's process tree: the subjects and the peers are its children.
    let ours0 = procfs::cpu(me);
    let wall0 = Instant::now();
    for s in subjects.iter().chain([logged]) {
        for clients in CLIENTS {
            if s.name == logged.name && clients != 16 {
                continue;
            }
            let c = load::connections_per_second(s, peers.echo, clients, duration);
            samples.add(&s.name, &format!("cps{clients}"), c.rate);
            if clients == 128 {
                samples.add(&s.name, "p50", c.p50_ms);
                samples.add(&s.name, "p99", c.p99_ms);
            }
        }
    }
    // The -q twin of the logged subject, measured right after it.
    if let Some(quiet) = subjects.iter().find(|s| s.name == ADAPTERS[0]) {
        let c = load::connections_per_second(quiet, peers.echo, 16, duration);
        samples.add(&logged.name, "cps16q", c.rate);
    }
    for s in subjects.iter().filter(|_| !o.skip_throughput) {
        for (streams, way, label) in [
            (1, Way::Down, "down1"),
            (1, Way::Up, "up1"),
            (64, Way::Down, "down64"),
            (64, Way::Up, "up64"),
        ] {
            let cpu0 = s.cpu();
            let took = load::throughput(s, peers, streams, way, o.bytes);
            let cpu = s.cpu().saturating_sub(cpu0);
            let gb = o.bytes as f64 / 1e9;
            samples.add(&s.name, label, gb / took.as_secs_f64());
            if s.proxy.is_some() {
                samples.add(&s.name, &format!("cpu_{label}"), cpu.as_secs_f64() / gb);
            }
        }
    }
    let wall = wall0.elapsed();
    let busy = procfs::machine_busy().saturating_sub(busy0);
    let ours = procfs::cpu(me).saturating_sub(ours0);
    busy.saturating_sub(ours).as_secs_f64() / (wall.as_secs_f64() * f64::from(procfs::cpus()))
        * 100.0
}

/// KiB of proxy memory per idle relayed connection, and connections per
/// second at [`IDLE_CLIENTS`] clients with those relays held against the
/// same on the empty server just before, in `rounds` rounds; each subject
/// started fresh, each round with fresh peers.
fn idle_phase(o: &Options, samples: &mut Samples) {
    let wanted = |name: &str| o.only.as_deref().is_none_or(|only| name.contains(only));
    let mut fresh: Vec<Box<dyn Fn() -> Option<Subject>>> = Vec::new();
    for bin in ADAPTERS.iter().filter(|b| wanted(b)) {
        fresh.push(Box::new(move || Some(Subject::ours(bin, false))));
    }
    if wanted("dante") {
        fresh.push(Box::new(Subject::dante));
    }
    if let Some(path) = three_proxy(o).filter(|_| wanted("3proxy")) {
        fresh.push(Box::new(move || Some(Subject::three_proxy(&path))));
    }
    let duration = Duration::from_secs(o.seconds);
    for make in fresh {
        let Some(s) = make() else { continue };
        eprintln!("idle: {}", s.name);
        // Rounds on the same server, each with fresh peers (whose end closes
        // the relays held in the round before): the empty phase, the
        // relays, the phase beside them; the memory on the first (the
        // server fresh), the ratio from each round's pair.
        for round in 0..o.rounds.max(1) {
            let peers = Peers::start();
            let empty = load::connections_per_second(&s, peers.echo, IDLE_CLIENTS, duration);
            let held = load::hold_idle(&s, peers.hold, o.idle);
            let busy = load::connections_per_second(&s, peers.echo, IDLE_CLIENTS, duration);
            if round == 0 {
                samples.add(&s.name, "idle_kib", held.kib_each);
                samples.add(&s.name, "idle_held", held.conns.len() as f64);
            }
            samples.add(&s.name, "cps_empty", empty.rate);
            samples.add(&s.name, "cps_held", busy.rate);
            if empty.rate > 0.0 {
                samples.add(&s.name, "cps_held_ratio", busy.rate / empty.rate);
            }
            drop(held);
            drop(peers);
            // The relays end as their peers go: give the server a moment.
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

fn print_tables(o: &Options, names: &[String], s: &Samples, other_load: &[f64]) {
    let mut load = other_load.to_vec();
    load.sort_by(f64::total_cmp);
    println!(
        "{} interleaved rounds; medians (min–max). CPS phases {} s each; throughput {} MiB per figure; \
         {} idle connections. Other load on the machine during the rounds: median {:.1}% of its {} CPUs (max {:.1}%).\n",
        o.rounds,
        o.seconds,
        o.bytes >> 20,
        o.idle,
        load.get(load.len() / 2).copied().unwrap_or(0.0),
        procfs::cpus(),
        load.last().copied().unwrap_or(0.0)
    );
    if !names.iter().any(|n| n.starts_with("3proxy")) {
        println!(
            "3proxy is left out (not given, not found or not chosen: give its binary with \
             --3proxy PATH or SOCKS4_LOAD_3PROXY).\n"
        );
    }
    print_rates(names, s);
    print_throughput(names, s);
    print_ratios(names, s);
}

/// Connections per second and handshake times, and what the log costs.
fn print_rates(names: &[String], s: &Samples) {
    println!("| subject | conn/s, 1 client | conn/s, 16 | conn/s, 128 | handshake p50 ms @128 | p99 ms @128 |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for n in names {
        println!(
            "| {n} | {} | {} | {} | {} | {} |",
            s.cell(n, "cps1", 0),
            s.cell(n, "cps16", 0),
            s.cell(n, "cps128", 0),
            s.cell(n, "p50", 2),
            s.cell(n, "p99", 2)
        );
    }
    let logged = format!("{} (info log)", ADAPTERS[0]);
    if let (Some(l), Some(q)) = (s.median(&logged, "cps16"), s.median(&logged, "cps16q")) {
        println!(
            "\nDefault log level (one info line per connection, to a file) against `-qqq`, {}, 16 clients: {:.0} vs {:.0} conn/s ({:+.1}%).",
            ADAPTERS[0],
            l,
            q,
            (l / q - 1.0) * 100.0
        );
    }
}

/// Throughput and CPU per GB, and memory per idle connection.
fn print_throughput(names: &[String], s: &Samples) {
    println!("\n| subject | GB/s 1 stream ↓ | 1 ↑ | 64 streams ↓ | 64 ↑ | proxy CPU s/GB 1↓ | 1↑ | 64↓ | 64↑ |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for n in names {
        println!(
            "| {n} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s.cell(n, "down1", 2),
            s.cell(n, "up1", 2),
            s.cell(n, "down64", 2),
            s.cell(n, "up64", 2),
            s.cell(n, "cpu_down1", 2),
            s.cell(n, "cpu_up1", 2),
            s.cell(n, "cpu_down64", 2),
            s.cell(n, "cpu_up64", 2)
        );
    }
    println!(
        "\n| subject | idle relays held | KiB per idle relay | MiB for 100,000 (extrapolated) | \
         conn/s, {IDLE_CLIENTS} clients, empty | with the idle relays held | held / empty |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for n in names.iter().skip(1) {
        let mib = s
            .median(n, "idle_kib")
            .map_or("–".into(), |k| format!("{:.0}", k * SCALE / 1024.0));
        println!(
            "| {n} | {} | {} | {mib} | {} | {} | {} |",
            s.cell(n, "idle_held", 0),
            s.cell(n, "idle_kib", 1),
            s.cell(n, "cps_empty", 0),
            s.cell(n, "cps_held", 0),
            s.cell(n, "cps_held_ratio", 3)
        );
    }
}

/// Ratios of medians: ours against direct, Dante and 3proxy.
fn print_ratios(names: &[String], s: &Samples) {
    let dante = names.iter().find(|n| n.starts_with("Dante"));
    let three = names.iter().find(|n| n.starts_with("3proxy"));
    let figures = [
        ("cps1", "conn/s 1", true),
        ("cps16", "conn/s 16", true),
        ("cps128", "conn/s 128", true),
        ("p99", "p99 @128", false),
        ("down1", "GB/s 1↓", true),
        ("up1", "GB/s 1↑", true),
        ("down64", "GB/s 64↓", true),
        ("up64", "GB/s 64↑", true),
        ("cpu_down64", "CPU/GB 64↓", false),
        ("cpu_up64", "CPU/GB 64↑", false),
        ("idle_kib", "KiB idle", false),
    ];
    for (against, label) in [
        (names.first(), "direct"),
        (dante, "Dante"),
        (three, "3proxy"),
    ] {
        let Some(base) = against else { continue };
        println!("\nRatios to {label} (median / median):\n");
        let header: Vec<&str> = figures.iter().map(|f| f.1).collect();
        println!("| subject | {} |", header.join(" | "));
        println!("| --- |{}", " --- |".repeat(figures.len()));
        for n in names.iter().filter(|n| n.starts_with("socks4d")) {
            let cells: Vec<String> = figures
                .iter()
                .map(|(f, _, _)| match (s.median(n, f), s.median(base, f)) {
                    (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
                    _ => "–".into(),
                })
                .collect();
            println!("| {n} | {} |", cells.join(" | "));
        }
    }
}

/// What a fleet costs one instance (`--fleet`): connections per second with
/// a connection rate, with and without `[fleet]`.
fn fleet_phase(o: &Options) {
    let dir = socks4_tests::scratch::dir("load-fleet");
    let redis = socks4_tests::peers::redis_server(socks4_tests::e2e::free_port());
    let rate = "[limits]\nclient_connection_rate = \"100000/1s\"\n";
    let alone = dir.join("alone.toml");
    std::fs::write(&alone, rate).unwrap();
    let fleet = dir.join("fleet.toml");
    std::fs::write(
        &fleet,
        format!(
            "{rate}[fleet]\nredis = \"redis://127.0.0.1:{}/0\"\nname = \"load\"\n",
            redis.addr.port()
        ),
    )
    .unwrap();
    let peers = Peers::start();
    let subjects = [
        (
            "alone",
            Subject::ours_with(
                "socks4d-tokio",
                false,
                &["--config", alone.to_str().unwrap()],
                Some("rate, no fleet"),
            ),
        ),
        (
            "fleet",
            Subject::ours_with(
                "socks4d-tokio",
                false,
                &["--config", fleet.to_str().unwrap()],
                Some("rate, [fleet]"),
            ),
        ),
    ];
    // The fleet task connects within a moment of the start.
    std::thread::sleep(Duration::from_secs(1));
    let duration = Duration::from_secs(o.seconds);
    let mut s = Samples::default();
    for round in 0..o.rounds {
        eprintln!("fleet round {}/{}", round + 1, o.rounds);
        for (label, subject) in &subjects {
            for clients in [1, 16, 128] {
                let c = load::connections_per_second(subject, peers.echo, clients, duration);
                s.add(label, &format!("cps{clients}"), c.rate);
                if clients == 128 {
                    s.add(label, "p99", c.p99_ms);
                }
            }
        }
    }
    println!(
        "{} rounds of {} s; medians (min–max).\n",
        o.rounds, o.seconds
    );
    println!("| socks4d-tokio, `client_connection_rate` on | CPS 1 client | CPS 16 | CPS 128 | p99 ms at 128 |");
    println!("| --- | --- | --- | --- | --- |");
    for (label, what) in [
        ("alone", "no fleet"),
        ("fleet", "`[fleet]` (rate counted in Redis)"),
    ] {
        println!(
            "| {what} | {} | {} | {} | {} |",
            s.cell(label, "cps1", 0),
            s.cell(label, "cps16", 0),
            s.cell(label, "cps128", 0),
            s.cell(label, "p99", 2),
        );
    }
    println!();
    for clients in [1, 16, 128] {
        let f = format!("cps{clients}");
        if let (Some(a), Some(b)) = (s.median("alone", &f), s.median("fleet", &f)) {
            println!("fleet / no fleet, {clients} clients: {:.3}×\n", b / a);
        }
    }
    drop(redis);
}

/// Per-client limits' cost and accuracy (`--limits`).
fn limits_phase(o: &Options) {
    let dir = socks4_tests::scratch::dir("load-limits");
    let conf = dir.join("limits.toml");
    // 127.0.0.2 is limited to 10 MiB/s; 127.0.0.4 is metered (bandwidth and
    // quota far above what it moves); everyone else, the load tool's usual
    // 127.0.0.1, is not limited at all.
    std::fs::write(
        &conf,
        "[access]\nrules = \"\"\"\n\
         pass from 127.0.0.2 to any bandwidth 10MiB/s\n\
         pass from 127.0.0.4 to any bandwidth 100GiB/s quota 1000TiB/day\n\
         pass from 127.0.0.0/8 to any\n\"\"\"\n",
    )
    .unwrap();
    let peers = Peers::start();
    let plain = Subject::ours("socks4d-tokio", false);
    let others = Subject::ours_with(
        "socks4d-tokio",
        false,
        &["--config", conf.to_str().unwrap()],
        Some("socks4d-tokio (limits for others)"),
    );
    let metered = others.from_source(std::net::Ipv4Addr::new(127, 0, 0, 4));
    let limited = others.from_source(std::net::Ipv4Addr::new(127, 0, 0, 2));
    let mut s = Samples::default();
    let gb = o.bytes as f64 / 1e9;
    for round in 0..o.rounds {
        eprintln!("limits round {}/{}", round + 1, o.rounds);
        for (subject, cpu_of, label) in [
            (&plain, &plain, "plain"),
            (&others, &others, "others"),
            (&metered, &others, "metered"),
        ] {
            for (streams, way, figure) in [(64, Way::Down, "64"), (1, Way::Down, "1")] {
                let cpu0 = cpu_of.cpu();
                let took = load::throughput(subject, &peers, streams, way, o.bytes);
                let cpu = cpu_of.cpu().saturating_sub(cpu0);
                s.add(label, &format!("gbps{figure}"), gb / took.as_secs_f64());
                s.add(label, &format!("cpu{figure}"), cpu.as_secs_f64() / gb);
            }
        }
        // The bucket starts full (one second's worth), so 10 s may carry 11 s
        // of the rate: the accuracy is against that bound.
        let rate = load::timed_download(&limited, &peers, Duration::from_secs(10));
        s.add("limited", "rate", rate / f64::from(10u32 << 20));
        s.add(
            "limited",
            "accuracy",
            rate * 10.0 / (f64::from(10u32 << 20) * 11.0),
        );
    }
    print_limits(o, &s);
}

/// The tables of `--limits`.
fn print_limits(o: &Options, s: &Samples) {
    println!(
        "{} rounds; medians (min–max); {} MiB per throughput figure.\n",
        o.rounds,
        o.bytes >> 20
    );
    println!(
        "| socks4d-tokio, downloads | GB/s 64 streams | CPU s/GB 64 | GB/s 1 stream | CPU s/GB 1 |"
    );
    println!("| --- | --- | --- | --- | --- |");
    for (label, what) in [
        ("plain", "no limits configured"),
        ("others", "limits configured for other clients"),
        (
            "metered",
            "a metered client (bandwidth and quota far above its use)",
        ),
    ] {
        println!(
            "| {what} | {} | {} | {} | {} |",
            s.cell(label, "gbps64", 2),
            s.cell(label, "cpu64", 2),
            s.cell(label, "gbps1", 2),
            s.cell(label, "cpu1", 2)
        );
    }
    for figure in ["gbps64", "cpu64", "gbps1", "cpu1"] {
        if let (Some(a), Some(b)) = (s.median("others", figure), s.median("plain", figure)) {
            println!("\nlimits for others / no limits, {figure}: {:.3}×", a / b);
        }
    }
    println!(
        "\nA 10 MiB/s limit over 10 s delivered {} of its rate (median, min–max): {} of \
         rate × 10 s + a one-second burst, the most a token bucket full at the start allows.",
        s.cell("limited", "rate", 3),
        s.cell("limited", "accuracy", 3)
    );
}

/// A subject of `--tls`: a TLS listener (ours, or stunnel in front of a
/// plain SOCKS server: socks4d-tokio or Dante) and, for ours, the same
/// server's plain listener beside it.
struct Tls {
    name: String,
    plain: Option<Subject>,
    addr: std::net::SocketAddr,
    server: Subject,
    stunnel: Option<socks4_tests::peers::Peer>,
}

impl Tls {
    /// The CPU time of the TLS side's processes so far.
    fn cpu(&self) -> Duration {
        self.server.cpu()
            + self
                .stunnel
                .as_ref()
                .map_or(Duration::ZERO, |s| procfs::cpu(s.pid()))
    }
}

/// Relays with a TLS client side (`--tls`).
fn tls_phase(o: &Options) {
    let dir = socks4_tests::scratch::dir("load-tls");
    let ca = socks4_tests::tls::TestCa::new(&dir, "load-ca");
    let cert = ca.issue("server", "localhost", &["localhost"]);
    let peers = Peers::start();
    let all = tls_subjects(o, &cert);
    let mut s = Samples::default();
    let gb = o.bytes as f64 / 1e9;
    for round in 0..o.rounds {
        eprintln!("tls round {}/{}", round + 1, o.rounds);
        for t in &all {
            for (streams, way, label) in [
                (1, Way::Down, "down1"),
                (1, Way::Up, "up1"),
                (16, Way::Down, "down16"),
            ] {
                if let Some(plain) = &t.plain {
                    let cpu0 = plain.cpu();
                    let took = load::throughput(plain, &peers, streams, way, o.bytes);
                    let used = plain.cpu().saturating_sub(cpu0);
                    s.add(&plain.name, label, gb / took.as_secs_f64());
                    s.add(
                        &plain.name,
                        &format!("cpu_{label}"),
                        used.as_secs_f64() / gb,
                    );
                }
                let cpu0 = t.cpu();
                let took = load::tls_throughput(t.addr, &ca.cert, &peers, streams, way, o.bytes);
                let used = t.cpu().saturating_sub(cpu0);
                s.add(&t.name, label, gb / took.as_secs_f64());
                s.add(&t.name, &format!("cpu_{label}"), used.as_secs_f64() / gb);
            }
        }
    }
    print_tls(o, &all, &s);
}

/// Our servers with a TLS listener (and their plain twins), stunnel in front
/// of socks4d-tokio's plain listener, and stunnel in front of Dante when
/// Dante is installed.
fn tls_subjects(o: &Options, cert: &socks4_tests::tls::Issued) -> Vec<Tls> {
    let (cert_path, key_path) = (
        cert.cert.to_str().unwrap().to_owned(),
        cert.key.to_str().unwrap().to_owned(),
    );
    let wanted = |name: &str| o.only.as_deref().is_none_or(|only| name.contains(only));
    let mut all = Vec::new();
    for bin in ADAPTERS.iter().filter(|b| wanted(b)) {
        let port = socks4_tests::e2e::free_port();
        let listen = format!("127.0.0.1:{port}");
        let server = Subject::ours_with(
            bin,
            false,
            &[
                "--listen-tls",
                &listen,
                "--tls-cert",
                &cert_path,
                "--tls-key",
                &key_path,
            ],
            Some(&format!("{bin}, TLS listener")),
        );
        all.push(Tls {
            name: format!("{bin}, TLS listener"),
            plain: Some(Subject::ours(bin, false)),
            addr: listen.parse().unwrap(),
            server,
            stunnel: None,
        });
    }
    // The chain a TLS listener replaces: stunnel taking TLS in front of the
    // plain listener of socks4d-tokio (its own instance, so that its CPU is
    // counted apart from the TLS listener's server).
    if wanted(STUNNEL_SOCKS4D) {
        let server = Subject::ours_with(ADAPTERS[0], false, &[], Some(STUNNEL_SOCKS4D));
        let stunnel =
            socks4_tests::peers::stunnel_server(server.proxy.unwrap(), &cert.cert, &cert.key);
        all.push(Tls {
            name: STUNNEL_SOCKS4D.into(),
            plain: None,
            addr: stunnel.addr,
            server,
            stunnel: Some(stunnel),
        });
    }
    if let Some(dante) = Subject::dante().filter(|_| wanted("stunnel 5 + dante")) {
        let dante_addr = dante.proxy.unwrap();
        let stunnel = socks4_tests::peers::stunnel_server(dante_addr, &cert.cert, &cert.key);
        all.push(Tls {
            name: "stunnel 5 + Dante 1.4".into(),
            plain: None,
            addr: stunnel.addr,
            server: dante,
            stunnel: Some(stunnel),
        });
    }
    all
}

/// The table of `--tls`.
fn print_tls(o: &Options, all: &[Tls], s: &Samples) {
    println!(
        "{} interleaved rounds; medians (min–max); {} MiB per figure. The client's TLS runs in the \
         load tool, on the same 2 cores.\n",
        o.rounds,
        o.bytes >> 20
    );
    println!("| subject | GB/s 1 stream ↓ | 1 ↑ | 16 streams ↓ | proxy CPU s/GB 1↓ | 1↑ | 16↓ |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let mut names: Vec<String> = Vec::new();
    for t in all {
        if let Some(p) = &t.plain {
            names.push(p.name.clone());
        }
        names.push(t.name.clone());
    }
    for n in &names {
        println!(
            "| {n} | {} | {} | {} | {} | {} | {} |",
            s.cell(n, "down1", 2),
            s.cell(n, "up1", 2),
            s.cell(n, "down16", 2),
            s.cell(n, "cpu_down1", 2),
            s.cell(n, "cpu_up1", 2),
            s.cell(n, "cpu_down16", 2)
        );
    }
    let figures = [
        "down1",
        "up1",
        "down16",
        "cpu_down1",
        "cpu_up1",
        "cpu_down16",
    ];
    for chain in all.iter().filter(|t| t.stunnel.is_some()) {
        println!(
            "\nRatios of the TLS listeners to {} (median / median; GB/s above 1 and CPU s/GB \
             below 1 are better):\n",
            chain.name
        );
        println!("| subject | GB/s 1↓ | 1↑ | 16↓ | CPU s/GB 1↓ | 1↑ | 16↓ |");
        println!("| --- | --- | --- | --- | --- | --- | --- |");
        for t in all.iter().filter(|t| t.stunnel.is_none()) {
            let cells: Vec<String> = figures
                .iter()
                .map(|f| match (s.median(&t.name, f), s.median(&chain.name, f)) {
                    (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
                    _ => "–".into(),
                })
                .collect();
            println!("| {} | {} |", t.name, cells.join(" | "));
        }
    }
}
