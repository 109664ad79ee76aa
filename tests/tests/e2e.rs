//! End-to-end conformance suite: every scenario runs against every server binary
//! in [`ADAPTERS`], with real third-party clients (curl, PySocks, OpenBSD nc,
//! proxychains4), a real identd (oidentd, started by `.ci/setup`) and loopback
//! peers. Adding an adapter is one line in `ADAPTERS`.

use socks4_proto::client::Event;
use socks4_proto::{Command, Dest, Reply, ReplyCode, Request};
use socks4_tests::e2e::*;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command as Process;

/// The server binaries under test.
const ADAPTERS: &[&str] = &["socks4d-tokio"];

fn for_each_adapter(scenario: impl Fn(&str)) {
    for adapter in ADAPTERS {
        eprintln!("--- {adapter}");
        scenario(adapter);
    }
}

fn granted(c: &Client) -> bool {
    matches!(c.events.last(), Some(Event::Granted(_)))
}

fn rejected_with(c: &Client) -> Option<ReplyCode> {
    match c.events.last() {
        Some(Event::Rejected(r)) => Some(r.code),
        _ => None,
    }
}

#[test]
fn curl_socks4_and_socks4a() {
    for_each_adapter(|bin| {
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
        assert!(
            server.log().contains("dns_lookup"),
            "{bin}: 4a resolved by the server"
        );
    });
}

#[test]
fn pysocks_with_remote_dns_on_and_off() {
    for_each_adapter(|bin| {
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
        let log = server.log();
        assert_eq!(
            log.matches("dns_lookup").count(),
            1,
            "{bin}: only rdns=1 resolves at the proxy\n{log}"
        );
        assert!(
            log.contains("user=pyuser"),
            "{bin}: the user id reached the server"
        );
    });
}

#[test]
fn openbsd_nc_half_close_echo() {
    for_each_adapter(|bin| {
        let server = Server::start(bin, &[]);
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
    });
}

#[test]
fn proxychains4_connect() {
    for_each_adapter(|bin| {
        let server = Server::start(bin, &[]);
        let web = http(1, "via proxychains");
        let dir = std::env::temp_dir().join(format!("socks4-pc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
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
        assert!(
            server.log().contains("sock_up"),
            "{bin}: the connection went through the proxy"
        );
    });
}

#[test]
fn bind_exchange() {
    for_each_adapter(|bin| {
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
    });
}
