//! End-to-end conformance suite: every scenario runs against every server
//! binary, each as a test of its own (`on_tokio::bind_exchange`,
//! `on_smol::bind_exchange`, ...), with real third-party clients (curl, PySocks,
//! OpenBSD nc, proxychains4), a real identd (oidentd, started by `.ci/setup`)
//! and loopback peers. Assertions read the servers' JSON log lines. Adding an
//! adapter is one line in `socks4_tests::on_every_adapter!`.

use socks4_proto::client::Event;
use socks4_proto::{Command, Dest, Reply, ReplyCode, Request};
use socks4_tests::e2e::*;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command as Process;

socks4_tests::on_every_adapter!(
    curl_socks4_and_socks4a,
    pysocks_with_remote_dns_on_and_off,
    openbsd_nc_half_close_echo,
    openbsd_nc_half_close_echo_on_the_copy_path,
    proxychains4_connect,
    bind_exchange,
    ident_require_with_oidentd,
    ident_asks_from_the_address_the_client_reached,
    bad_clients_get_91_or_a_close_while_others_are_served,
    sighup_reloads_good_files_and_keeps_old_rules_on_broken_ones,
    sighup_keeps_command_line_flags_on_top,
    sigterm_lets_a_transfer_in_flight_finish_intact,
    connections_over_the_cap_wait_for_a_slot,
    a_client_over_its_cap_gets_91_while_another_is_served,
    a_client_that_hangs_up_during_a_slow_connect_frees_its_slot_at_once,
    a_user_id_with_a_newline_makes_one_log_line,
    a_denied_socks4a_client_causes_no_lookup,
    a_stuck_log_reader_does_not_stop_serving,
    ipv6_spellings_of_loopback_are_refused_by_ipv4_and_class_rules,
    a_client_reset_closes_both_sides_at_once,
    an_idle_relay_is_closed_after_the_idle_timeout,
);

fn closed(l: &LogLine) -> bool {
    says(l, "closed")
}

fn curl_socks4_and_socks4a(bin: &str) {
    let server = Server::start(bin, &[]);
    let web = http(2, "hello through socks4");
    let proxy = server.addr.to_string();
    for (flag, host) in [("--socks4", "127.0.0.1"), ("--socks4a", "localhost")] {
        let url = format!("http://{host}:{}/", web.port());
        let (status, out, err) = run(
            Process::new("curl").args(["-sS", "--max-time", "10", flag, &proxy, &url]),
            b"",
        );
        assert!(
            status.success(),
            "{bin} curl {flag}: {err}\n{}",
            server.log()
        );
        assert_eq!(
            String::from_utf8_lossy(&out),
            "hello through socks4",
            "{bin} curl {flag}"
        );
    }
    server.wait_says("dns_lookup"); // 4a: resolved by the server
}

fn pysocks_with_remote_dns_on_and_off(bin: &str) {
    let server = Server::start(bin, &[]);
    let echo = echo_after_eof(2);
    let script = r#"
import socks, sys
proxy_port, dest_port, rdns = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
s = socks.socksocket()
s.settimeout(10)
s.set_proxy(socks.SOCKS4, "127.0.0.1", proxy_port, rdns=rdns, username="pyuser")
s.connect(("localhost", dest_port))
s.sendall(b"ping from pysocks")
s.shutdown(1)
data = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
sys.stdout.write(data.decode())
"#;
    for rdns in ["1", "0"] {
        let (status, out, err) = run(
            Process::new("python3").args([
                "-c",
                script,
                &server.addr.port().to_string(),
                &echo.port().to_string(),
                rdns,
            ]),
            b"",
        );
        assert!(
            status.success(),
            "{bin} pysocks rdns={rdns}: {err}\n{}",
            server.log()
        );
        assert_eq!(
            String::from_utf8_lossy(&out),
            "ping from pysocks",
            "{bin} rdns={rdns}"
        );
    }
    let lines = server.wait_for_n("closed", 2, closed);
    assert_eq!(
        server.count(|l| says(l, "dns_lookup")),
        1,
        "{bin}: only rdns=1 resolves at the proxy\n{}",
        server.log()
    );
    assert!(
        lines.iter().all(|l| field(l, "user") == "pyuser"),
        "{bin}: the user id reached the server\n{}",
        server.log()
    );
}

fn openbsd_nc_half_close_echo(bin: &str) {
    nc_half_close_echo(bin, &[]);
}

/// The same with splice turned off: bytes go through user space.
fn openbsd_nc_half_close_echo_on_the_copy_path(bin: &str) {
    nc_half_close_echo(bin, &["--relay-pipes", "0"]);
}

fn nc_half_close_echo(bin: &str, args: &[&str]) {
    let server = Server::start(bin, args);
    let echo = echo_after_eof(1);
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let (status, out, err) = run(
        Process::new("nc.openbsd").args([
            "-N",
            "-w",
            "10",
            "-X",
            "4",
            "-x",
            &server.addr.to_string(),
            "127.0.0.1",
            &echo.port().to_string(),
        ]),
        &data,
    );
    assert!(status.success(), "{bin} nc: {err}\n{}", server.log());
    assert_eq!(
        out.len(),
        data.len(),
        "{bin}: the echo answered after the half-close"
    );
    assert!(out == data, "{bin}: echo intact");
    // Bytes counted exactly, each way.
    let line = server.wait_for("the relay's end", closed);
    assert_eq!(field(&line, "outcome"), "done", "{bin}: {line}");
    assert_eq!(
        field(&line, "bytes_up"),
        data.len().to_string(),
        "{bin}: {line}"
    );
    assert_eq!(
        field(&line, "bytes_down"),
        data.len().to_string(),
        "{bin}: {line}"
    );
}

fn proxychains4_connect(bin: &str) {
    let server = Server::start(bin, &[]);
    let web = http(1, "via proxychains");
    let dir = socks4_tests::scratch::dir("pc");
    let conf = dir.join(format!("{bin}.conf"));
    std::fs::write(
            &conf,
            format!("strict_chain\nquiet_mode\ntcp_read_time_out 10000\ntcp_connect_time_out 10000\n[ProxyList]\nsocks4 127.0.0.1 {}\n", server.addr.port()),
        )
        .unwrap();
    let url = format!("http://127.0.0.1:{}/", web.port());
    let (status, out, err) = run(
        Process::new("proxychains4").arg("-f").arg(&conf).args([
            "curl",
            "-sS",
            "--max-time",
            "10",
            &url,
        ]),
        b"",
    );
    assert!(
        status.success(),
        "{bin} proxychains4: {err}\n{}",
        server.log()
    );
    assert_eq!(String::from_utf8_lossy(&out), "via proxychains");
    server.wait_says("sock_up"); // the connection went through the proxy
}

fn bind_exchange(bin: &str) {
    let server = Server::start(bin, &[]);
    // The "application server" connects to the proxy's listener and sends first.
    let request = Request {
        command: Command::Bind,
        dest: Dest::Addr(lo(21)),
        user_id: b"",
    };
    let mut app: Option<TcpStream> = None;
    let client = socks_request(server.addr, &request, |listen: &Reply| {
        let addr = listen.bind_address(Ipv4Addr::LOCALHOST);
        assert_eq!(
            *addr.ip(),
            Ipv4Addr::LOCALHOST,
            "{bin}: BIND names the interface, not 0.0.0.0"
        );
        let mut s = TcpStream::connect_timeout(&SocketAddr::V4(addr), STEP).unwrap();
        s.write_all(b"220 hello from the app server\r\n").unwrap();
        app = Some(s);
    });
    assert!(
        granted(&client),
        "{bin}: {:?}\n{}",
        client.events,
        server.log()
    );
    assert_eq!(client.events.len(), 2);
    let mut app = app.unwrap();
    let Event::Granted(second) = client.events[1] else {
        unreachable!()
    };
    assert_eq!(
        second.addr.port(),
        app.local_addr().unwrap().port(),
        "{bin}: second reply names the peer"
    );
    let mut stream = client.stream;
    let mut got = client.early;
    let greeting = b"220 hello from the app server\r\n";
    while got.len() < greeting.len() {
        let mut b = [0u8; 64];
        let n = stream.read(&mut b).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&b[..n]);
    }
    assert_eq!(got, greeting);
    stream.write_all(b"PORT ok").unwrap();
    let mut back = [0u8; 7];
    app.set_read_timeout(Some(STEP)).unwrap();
    app.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"PORT ok");

    // An inbound connection from another address than DSTIP (127.0.0.9):
    // second reply 91, and both connections closed.
    let request = Request {
        command: Command::Bind,
        dest: Dest::Addr("127.0.0.9:21".parse().unwrap()),
        user_id: b"",
    };
    let mut intruder: Option<TcpStream> = None;
    let client = socks_request(server.addr, &request, |listen: &Reply| {
        let addr = SocketAddr::V4(listen.bind_address(Ipv4Addr::LOCALHOST));
        intruder = Some(TcpStream::connect_timeout(&addr, STEP).unwrap());
    });
    assert_eq!(
        rejected_with(&client),
        Some(ReplyCode::Rejected),
        "{bin}: {:?}",
        client.events
    );
    let mut intruder = intruder.unwrap();
    intruder.set_read_timeout(Some(STEP)).unwrap();
    let mut b = [0u8; 1];
    assert!(
        matches!(intruder.read(&mut b), Ok(0) | Err(_)),
        "{bin}: the intruder is closed"
    );
}

fn current_user() -> Vec<u8> {
    let out = Process::new("id").arg("-un").output().unwrap();
    out.stdout.trim_ascii().to_vec()
}

fn ident_require_with_oidentd(bin: &str) {
    let server = Server::start(bin, &["--ident", "require"]);
    let echo = echo(1);
    let me = current_user();
    // identd names the same user as the request: granted and relayed.
    let c = socks_request(server.addr, &connect_to(echo, &me), |_| {});
    assert!(granted(&c), "{bin}: {:?}\n{}", c.events, server.log());
    let mut s = c.stream;
    s.write_all(b"x").unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).unwrap();
    // Another user id than identd reports: 93.
    let c = socks_request(server.addr, &connect_to(echo, b"not-the-owner"), |_| {});
    assert_eq!(
        rejected_with(&c),
        Some(ReplyCode::IdentMismatch),
        "{bin}: {:?}",
        c.events
    );
    // An empty user id matches nobody: 93.
    let c = socks_request(server.addr, &connect_to(echo, b""), |_| {});
    assert_eq!(rejected_with(&c), Some(ReplyCode::IdentMismatch), "{bin}");
    drop(server);

    // identd down (nothing listens on the configured port): 92.
    let closed = ClosedPort::new();
    let closed_port = closed.port().to_string();
    let server = Server::start(bin, &["--ident", "require", "--ident-port", &closed_port]);
    let c = socks_request(server.addr, &connect_to(echo, &me), |_| {});
    assert_eq!(
        rejected_with(&c),
        Some(ReplyCode::IdentUnreachable),
        "{bin}: {:?}",
        c.events
    );
}

fn ident_asks_from_the_address_the_client_reached(bin: &str) {
    // The proxy listens on 127.0.0.2; the client connects from 127.0.0.1. oidentd
    // only finds the connection when the query comes from 127.0.0.2 (it matches
    // the querier's address), which the OS would not pick by itself.
    let server = Server::start_on(bin, "127.0.0.2", &["--ident", "require"]);
    let echo = echo(1);
    let c = socks_request(server.addr, &connect_to(echo, &current_user()), |_| {});
    assert!(granted(&c), "{bin}: {:?}\n{}", c.events, server.log());
}

fn bad_clients_get_91_or_a_close_while_others_are_served(bin: &str) {
    let server = Server::start(bin, &["--handshake-timeout", "1"]);
    let echo = echo(2);
    // A client in the middle of a relay.
    let good = socks_request(server.addr, &connect_to(echo, b"good"), |_| {});
    assert!(granted(&good), "{bin}");
    let mut good = good.stream;
    let mut ping = |round: u8| {
        good.write_all(&[round]).unwrap();
        let mut b = [0u8; 1];
        good.read_exact(&mut b).unwrap();
        assert_eq!(b[0], round, "{bin}: the relay still works");
    };
    ping(1);

    let expect_91_or_close = |bytes: &[u8], what: &str| {
        let mut s = TcpStream::connect_timeout(&server.addr, STEP).unwrap();
        s.set_read_timeout(Some(STEP)).unwrap();
        let started = std::time::Instant::now();
        let _ = s.write_all(bytes);
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        assert!(
            got.is_empty() || got == Reply::with_code(ReplyCode::Rejected).to_bytes(),
            "{bin} {what}: {got:?}"
        );
        assert!(
            started.elapsed() < STEP,
            "{bin} {what}: answered within the configured time"
        );
        got
    };
    // Malformed: refused at once with 91.
    assert_eq!(
        expect_91_or_close(b"GET / HTTP/1.1\r\n\r\n", "malformed").len(),
        8
    );
    ping(2);
    // Half a request, then silence: 91 after the 1 s handshake timeout.
    assert_eq!(
        expect_91_or_close(b"\x04\x01\x00\x50\x7f", "half request").len(),
        8
    );
    ping(3);
    // A 100 KB user id: refused once past the limit, never buffered.
    let mut huge = b"\x04\x01\x00\x50\x7f\x00\x00\x01".to_vec();
    huge.resize(100 * 1024, b'u');
    expect_91_or_close(&huge, "100 KB user id");
    ping(4);
    server.wait_for("a protocol error", |l| {
        closed(l) && field(l, "outcome") == "protocol_error"
    });
    server.wait_for("a timeout", |l| {
        closed(l) && field(l, "outcome") == "timed_out"
    });
}

fn write_config(path: &std::path::Path, rules: &str) {
    std::fs::write(path, format!("[access]\nrules = \"\"\"\n{rules}\n\"\"\"\n")).unwrap();
}

fn sighup_reloads_good_files_and_keeps_old_rules_on_broken_ones(bin: &str) {
    let dir = socks4_tests::scratch::dir(&format!("hup-{bin}"));
    let conf = dir.join("socks4d.toml");
    write_config(&conf, "pass from 127.0.0.0/8 to any");
    let server = Server::start(bin, &["--config", conf.to_str().unwrap()]);
    let echo = echo(8);
    let try_connect = || socks_request(server.addr, &connect_to(echo, b""), |_| {});
    assert!(granted(&try_connect()), "{bin}: allowed at first");

    write_config(
        &conf,
        &format!(
            "block from any to any port eq {} reply 91\npass from 127.0.0.0/8 to any",
            echo.port()
        ),
    );
    server.signal("HUP");
    server.wait_says("configuration reloaded");
    assert_eq!(
        rejected_with(&try_connect()),
        Some(ReplyCode::Rejected),
        "{bin}: new rules apply"
    );

    std::fs::write(&conf, "[access]\nrules = \"pass frm nowhere\"\n").unwrap();
    server.signal("HUP");
    let failed = server.wait_says("reload failed, keeping the old configuration");
    assert!(
        field(&failed, "error").contains("line 2, column 15"),
        "{bin}: the error says where\n{}",
        server.log()
    );
    assert_eq!(
        rejected_with(&try_connect()),
        Some(ReplyCode::Rejected),
        "{bin}: old rules stay"
    );
}

fn sighup_keeps_command_line_flags_on_top(bin: &str) {
    // The file asks for IDENT from a port where no identd listens (every
    // request would get 92); the command line turns IDENT off, before and after
    // a reload.
    let dir = socks4_tests::scratch::dir(&format!("hup-cli-{bin}"));
    let conf = dir.join("socks4d.toml");
    let closed = ClosedPort::new();
    let closed_port = closed.port();
    std::fs::write(
        &conf,
        format!("ident = \"require\"\nident_port = {closed_port}\n"),
    )
    .unwrap();
    let server = Server::start(bin, &["--config", conf.to_str().unwrap(), "--ident", "off"]);
    let echo = echo(2);
    let c = socks_request(server.addr, &connect_to(echo, b""), |_| {});
    assert!(granted(&c), "{bin}: {:?}\n{}", c.events, server.log());
    server.signal("HUP");
    server.wait_says("configuration reloaded");
    let c = socks_request(server.addr, &connect_to(echo, b""), |_| {});
    assert!(
        granted(&c),
        "{bin}: --ident off still wins after SIGHUP: {:?}\n{}",
        c.events,
        server.log()
    );
}

fn sigterm_lets_a_transfer_in_flight_finish_intact(bin: &str) {
    let mut server = Server::start(bin, &["--shutdown-grace", "20"]);
    const CHUNKS: usize = 40;
    const CHUNK: usize = 64 * 1024;
    // A source that sends 2.5 MB over about two seconds.
    let source = peer(1, |mut s| {
        for i in 0..CHUNKS {
            let chunk: Vec<u8> = (0..CHUNK).map(|j| ((i * 31 + j * 7) % 256) as u8).collect();
            if s.write_all(&chunk).is_err() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    });
    let expected =
        checksum((0..CHUNKS).flat_map(|i| (0..CHUNK).map(move |j| ((i * 31 + j * 7) % 256) as u8)));
    let c = socks_request(server.addr, &connect_to(source, b""), |_| {});
    assert!(granted(&c), "{bin}");
    let mut stream = c.stream;
    let mut received = c.early;
    let mut buf = vec![0u8; 65536];
    while received.len() < CHUNK {
        let n = stream.read(&mut buf).unwrap();
        received.extend_from_slice(&buf[..n]);
    }
    server.signal("TERM");
    server.wait_says("shutting down: no new connections, relays may finish");
    // No new connections once shutting down.
    let refused = TcpStream::connect_timeout(&server.addr, std::time::Duration::from_secs(1))
        .map(|mut s| {
            s.set_read_timeout(Some(STEP)).unwrap();
            let _ = s.write_all(&connect_to(source, b"").to_vec());
            let mut b = [0u8; 8];
            !matches!(s.read(&mut b), Ok(8))
        })
        .unwrap_or(true);
    assert!(
        refused,
        "{bin}: new connections are not served during shutdown"
    );
    loop {
        let n = stream.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        received.extend_from_slice(&buf[..n]);
    }
    assert_eq!(
        received.len(),
        CHUNKS * CHUNK,
        "{bin}: the whole transfer arrived"
    );
    assert_eq!(
        checksum(received.iter().copied()),
        expected,
        "{bin}: intact"
    );
    drop(stream); // the client's half: the relay is over once both sides are done
    let status = server
        .wait_exit(STEP)
        .unwrap_or_else(|| panic!("{bin} did not exit:\n{}", server.log()));
    assert!(
        status.success(),
        "{bin}: exit status {status:?}\n{}",
        server.log()
    );
}

/// FNV-1a over the bytes.
fn checksum(bytes: impl Iterator<Item = u8>) -> u64 {
    bytes.fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn connections_over_the_cap_wait_for_a_slot(bin: &str) {
    let server = Server::start(bin, &["--max-connections", "1", "--handshake-timeout", "5"]);
    // One connection holds the only slot (half a request).
    let mut first = TcpStream::connect_timeout(&server.addr, STEP).unwrap();
    first.write_all(b"\x04\x01").unwrap();
    server.wait_says("connection");
    // The next waits in the listen queue: no reply, no close.
    let target = echo(1);
    let mut second = TcpStream::connect_timeout(&server.addr, STEP).unwrap();
    second.write_all(&connect_to(target, b"").to_vec()).unwrap();
    server.wait_says("connection cap reached: accepting paused until a connection closes");
    second
        .set_read_timeout(Some(std::time::Duration::from_millis(500)))
        .unwrap();
    let mut reply = [0u8; 8];
    assert!(
        second.read_exact(&mut reply).is_err(),
        "{bin}: served past the cap"
    );
    // Once the slot frees, the waiting connection is served.
    drop(first);
    second.set_read_timeout(Some(STEP)).unwrap();
    second.read_exact(&mut reply).unwrap();
    assert_eq!(reply[1], 90, "{bin}: {reply:?}");
}

fn a_client_over_its_cap_gets_91_while_another_is_served(bin: &str) {
    let server = Server::start(bin, &["--max-connections-per-client", "2"]);
    let target = echo(4);
    let a = Ipv4Addr::new(127, 0, 0, 2);
    // Two connections from 127.0.0.2 hold its two slots.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = connect_from(a, server.addr);
        s.write_all(b"\x04\x01").unwrap();
        held.push(s);
    }
    server.wait_for_n("two connections", 2, |l| says(l, "connection"));
    // A third from 127.0.0.2 gets 91 at once.
    let started = std::time::Instant::now();
    let c = socks_request_on(
        connect_from(a, server.addr),
        &connect_to(target, b""),
        |_| {},
    );
    assert_eq!(
        rejected_with(&c),
        Some(ReplyCode::Rejected),
        "{bin}: {:?}",
        c.events
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    let refused = server.wait_says("refused");
    assert_eq!(field(&refused, "limit"), "connections", "{bin}: {refused}");
    // 127.0.0.3 is served meanwhile.
    let b = Ipv4Addr::new(127, 0, 0, 3);
    let c = socks_request_on(
        connect_from(b, server.addr),
        &connect_to(target, b""),
        |_| {},
    );
    assert!(granted(&c), "{bin}: {:?}\n{}", c.events, server.log());
    // A slot freed by 127.0.0.2 is usable at once.
    drop(held.pop());
    let deadline = std::time::Instant::now() + STEP;
    loop {
        let c = socks_request_on(
            connect_from(a, server.addr),
            &connect_to(target, b""),
            |_| {},
        );
        if granted(&c) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{bin}: the slot never freed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn a_client_that_hangs_up_during_a_slow_connect_frees_its_slot_at_once(bin: &str) {
    let server = Server::start(bin, &["--max-connections", "1"]);
    let hole = Blackhole::new();
    // The only slot: a CONNECT to a destination that never answers (the
    // connect timeout is two minutes).
    let mut first = TcpStream::connect_timeout(&server.addr, STEP).unwrap();
    first
        .write_all(&connect_to(hole.addr(), b"gone").to_vec())
        .unwrap();
    server.wait_says("request");
    drop(first);
    // The server sees the hang-up, abandons the connect and frees the slot.
    let started = std::time::Instant::now();
    let line = server.wait_for("the abandoned connection", closed);
    assert_eq!(field(&line, "outcome"), "peer_closed", "{bin}: {line}");
    let c = socks_request(server.addr, &connect_to(echo(1), b""), |_| {});
    assert!(granted(&c), "{bin}: {:?}\n{}", c.events, server.log());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{bin}: the slot took {:?} to free",
        started.elapsed()
    );
}

fn a_user_id_with_a_newline_makes_one_log_line(bin: &str) {
    let server = Server::start(bin, &["--deny", "127.0.0.0/8", "--log-format", "text"]);
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

fn a_denied_socks4a_client_causes_no_lookup(bin: &str) {
    let server = Server::start(bin, &["--deny", "127.0.0.0/8"]);
    let request = Request {
        command: Command::Connect,
        dest: Dest::Domain("localhost", 80),
        user_id: b"",
    };
    let c = socks_request(server.addr, &request, |_| {});
    assert_eq!(rejected_with(&c), Some(ReplyCode::Rejected), "{bin}");
    let line = server.wait_for("the refusal", closed);
    assert_eq!(field(&line, "outcome"), "denied", "{bin}: {line}");
    assert_eq!(
        server.count(|l| says(l, "dns_lookup")),
        0,
        "{bin}\n{}",
        server.log()
    );
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

fn ipv6_spellings_of_loopback_are_refused_by_ipv4_and_class_rules(bin: &str) {
    for rule in [
        "block from any to 127.0.0.0/8",
        "block from any to loopback",
    ] {
        let dir = socks4_tests::scratch::dir(&format!("v6lo-{bin}"));
        let conf = dir.join("socks4d.toml");
        write_config(&conf, &format!("{rule}\npass from 127.0.0.0/8 to any"));
        let server = Server::start(bin, &["--config", conf.to_str().unwrap()]);
        for host in ["::1", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", "127.0.0.1"] {
            let request = Request {
                command: Command::Connect,
                dest: Dest::Domain(host, 80),
                user_id: b"",
            };
            let c = socks_request(server.addr, &request, |_| {});
            assert_eq!(
                rejected_with(&c),
                Some(ReplyCode::Rejected),
                "{bin}: {host} through `{rule}`: {:?}",
                c.events
            );
        }
        let denied = server.wait_for_n("four refusals", 4, |l| {
            closed(l) && field(l, "outcome") == "denied"
        });
        assert_eq!(denied.len(), 4, "{bin}");
    }
}

/// A target that accepts one connection and never sends or reads; its socket
/// comes back so the test can see when the proxy closes it.
fn silent_target() -> (SocketAddr, std::sync::mpsc::Receiver<TcpStream>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Ok((s, _)) = listener.accept() {
            let _ = tx.send(s);
        }
    });
    (addr, rx)
}

/// Reads from `s` until end of stream or an error; how long that took.
fn closed_within(mut s: TcpStream, limit: std::time::Duration) -> Option<std::time::Duration> {
    let started = std::time::Instant::now();
    s.set_read_timeout(Some(limit)).unwrap();
    let mut b = [0u8; 64];
    loop {
        match s.read(&mut b) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return None
            }
            Err(_) => return Some(started.elapsed()),
        }
    }
}

fn a_client_reset_closes_both_sides_at_once(bin: &str) {
    let server = Server::start(bin, &[]);
    let (target, accepted) = silent_target();
    let c = socks_request(server.addr, &connect_to(target, b"resetter"), |_| {});
    assert!(granted(&c), "{bin}: {:?}", c.events);
    let dest_side = accepted.recv_timeout(STEP).unwrap();
    // SO_LINGER {on, 0}: close() sends a reset instead of a FIN.
    socket2::SockRef::from(&c.stream)
        .set_linger(Some(std::time::Duration::ZERO))
        .unwrap();
    drop(c.stream);
    let took = closed_within(dest_side, std::time::Duration::from_secs(1));
    assert!(
        took.is_some(),
        "{bin}: the destination side was not closed within a second of the client's reset\n{}",
        server.log()
    );
    let line = server.wait_for("the relay's end", closed);
    assert_eq!(field(&line, "outcome"), "relay_error", "{bin}: {line}");
    assert_eq!(field(&line, "user"), "resetter");
}

fn an_idle_relay_is_closed_after_the_idle_timeout(bin: &str) {
    let server = Server::start(bin, &["--idle-timeout", "1s"]);
    let (target, accepted) = silent_target();
    let c = socks_request(server.addr, &connect_to(target, b""), |_| {});
    assert!(granted(&c), "{bin}: {:?}", c.events);
    let dest_side = accepted.recv_timeout(STEP).unwrap();
    let started = std::time::Instant::now();
    // Traffic resets the timer: a byte at half time keeps it open past 1 s.
    std::thread::sleep(std::time::Duration::from_millis(600));
    let mut client = c.stream;
    client.write_all(b"x").unwrap();
    let client_closed = closed_within(client, STEP).expect("the client side is closed");
    let dest_closed = closed_within(dest_side, STEP).expect("the destination side is closed");
    let total = started.elapsed();
    assert!(
        total >= std::time::Duration::from_millis(1500),
        "{bin}: closed {total:?} after the start, less than 1 s after the last byte"
    );
    assert!(client_closed <= total && dest_closed <= total);
    let line = server.wait_for("the relay's end", closed);
    assert_eq!(field(&line, "outcome"), "idle_timeout", "{bin}: {line}");
    assert_eq!(field(&line, "bytes_up"), "1", "{bin}: {line}");
}
