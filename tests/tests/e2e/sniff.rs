//! Sniffing on a forward listener (issue 30), on every adapter: the name in
//! a client's first bytes (a TLS ClientHello's SNI, an HTTP request's Host)
//! is what rules match (`block to .name.test` refuses both), what a
//! `socks4a://` parent is handed (its log shows the name, the bytes arrive
//! intact), and where `sniff_target = "name"` goes; a server-first protocol
//! goes on after the sniff timeout. The closed line shows the name, marked
//! as sniffed. (The redirect listener's own test, in a network namespace,
//! is in the peers tier.)

use socks4_tests::e2e::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

socks4_tests::on_every_adapter!(
    rules_match_the_sniffed_name,
    a_socks4a_parent_gets_the_sniffed_name,
    a_server_first_protocol_goes_on_after_the_sniff_timeout,
    sniff_target_name_goes_to_the_name,
);

/// A TLS ClientHello naming `name`, in records of 40 bytes (a ClientHello
/// that spans records).
pub(crate) fn client_hello(name: &str) -> Vec<u8> {
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]);
    body.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]);
    let n = name.len() as u16;
    let mut exts = vec![0, 0];
    exts.extend_from_slice(&(n + 5).to_be_bytes());
    exts.extend_from_slice(&(n + 3).to_be_bytes());
    exts.push(0);
    exts.extend_from_slice(&n.to_be_bytes());
    exts.extend_from_slice(name.as_bytes());
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);
    let mut hs = vec![1];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut out = Vec::new();
    for chunk in hs.chunks(40) {
        out.extend_from_slice(&[0x16, 3, 1]);
        out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

/// An HTTP/1.1 request for `name`, with a body after it.
pub(crate) fn http_get(name: &str) -> Vec<u8> {
    format!("GET /x HTTP/1.1\r\nUser-Agent: test\r\nHost: {name}\r\n\r\nand after it").into_bytes()
}

/// A server with a forward listener to `to` that sniffs, and `extra`
/// arguments; the forward listener's address.
fn forwarding(bin: &str, to: SocketAddr, extra: &[&str]) -> (Server, SocketAddr) {
    let forward = format!("127.0.0.1:0={to}");
    let mut args = vec!["--forward", &forward, "--sniff", "forward"];
    args.extend_from_slice(extra);
    let server = Server::start(bin, &args);
    let addr = server.listener("forward");
    (server, addr)
}

/// Sends `bytes` through the forward at `addr` and reads as many back (an
/// echo behind it), or what came before the close.
fn through(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect_timeout(&addr, STEP).unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    s.write_all(bytes).unwrap();
    let mut back = vec![0u8; bytes.len()];
    let mut got = 0;
    while got < back.len() {
        match s.read(&mut back[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    back.truncate(got);
    back
}

/// The `closed` line of a connection to `dest`.
fn closed_for(server: &Server, what: &str, dest: &str) -> LogLine {
    server.wait_for(what, |l| closed(l) && field(l, "dest") == dest)
}

fn rules_match_the_sniffed_name(bin: &str) {
    let echo = echo(4);
    let conf = rules_config(
        &format!("sniff-rules-{bin}"),
        "block from any to .name.test\npass from 127.0.0.0/8 to any",
    );
    let (server, addr) = forwarding(bin, echo, &["--config", &conf]);
    let port = echo.port();
    for (bytes, name, kind) in [
        (http_get("name.test"), "name.test", "host"),
        (client_hello("www.Name.Test"), "www.name.test", "sni"),
    ] {
        // Refused: nothing comes back, the destination is never reached.
        assert!(through(addr, &bytes).is_empty(), "{bin}: {name}");
        let dest = format!("{name}:{port}");
        let line = closed_for(&server, "the refusal", &dest);
        assert_eq!(field(&line, "outcome"), "denied", "{bin}: {line}");
        assert_eq!(field(&line, "sniffed"), kind, "{bin}: {line}");
        assert_eq!(field(&line, "reached"), "-", "{bin}: {line}");
    }
    for (bytes, name, kind) in [
        (http_get("other.test"), "other.test", "host"),
        (client_hello("other.test"), "other.test", "sni"),
    ] {
        // Passed: the bytes read to sniff arrive first and intact.
        assert_eq!(through(addr, &bytes), bytes, "{bin}: {name} {kind}");
    }
    let passed = server.wait_for_n("two relays", 2, |l| {
        closed(l) && field(l, "dest") == format!("other.test:{port}")
    });
    for line in &passed {
        assert_eq!(field(line, "outcome"), "done", "{bin}: {line}");
        assert_eq!(field(line, "reached"), echo.to_string(), "{bin}: {line}");
    }
}

/// A hosts file in the scratch folder `name` with one line.
fn hosts(name: &str, line: &str) -> String {
    let path = socks4_tests::scratch::dir(name).join("hosts");
    std::fs::write(&path, format!("{line}\n")).unwrap();
    path.display().to_string()
}

fn a_socks4a_parent_gets_the_sniffed_name(bin: &str) {
    let echo = echo(2);
    let hosts = hosts(&format!("sniff-parent-{bin}"), "127.0.0.1 name.test");
    let parent = Server::start(bin, &["--hosts-file", &hosts]);
    let conf = rules_config(
        &format!("sniff-route-{bin}"),
        &format!(
            "pass from 127.0.0.0/8 to any\nroute to .name.test via socks4a://{}",
            parent.addr
        ),
    );
    let (server, addr) = forwarding(bin, echo, &["--config", &conf]);
    let dest = format!("name.test:{}", echo.port());
    for bytes in [http_get("name.test"), client_hello("name.test")] {
        assert_eq!(through(addr, &bytes), bytes, "{bin}: intact");
    }
    // The parent was asked for the name, with the original port.
    let asked = parent.wait_for_n("the parent's two relays", 2, |l| {
        closed(l) && field(l, "dest") == dest
    });
    assert_eq!(asked.len(), 2, "{bin}");
    let lines = server.wait_for_n("two relays through the parent", 2, |l| {
        closed(l) && field(l, "dest") == dest
    });
    let kinds: Vec<String> = lines.iter().map(|l| field(l, "sniffed")).collect();
    assert!(
        kinds.contains(&"host".to_owned()) && kinds.contains(&"sni".to_owned()),
        "{bin}: {kinds:?}"
    );
    for line in &lines {
        assert!(
            field(line, "via").starts_with("socks4a://"),
            "{bin}: {line}"
        );
    }
}

fn a_server_first_protocol_goes_on_after_the_sniff_timeout(bin: &str) {
    // An SSH-like server: a banner first, then an echo of one line.
    let banner = peer(1, |mut s| {
        let _ = s.write_all(b"SSH-2.0-banner\r\n");
        let mut buf = [0u8; 64];
        if let Ok(n) = s.read(&mut buf) {
            let _ = s.write_all(&buf[..n]);
        }
    });
    let (server, addr) = forwarding(bin, banner, &["--sniff-timeout", "300ms"]);
    let mut s = TcpStream::connect_timeout(&addr, STEP).unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    let mut got = [0u8; 16];
    s.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"SSH-2.0-banner\r\n", "{bin}");
    s.write_all(b"SSH-2.0-client\r\n").unwrap();
    s.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"SSH-2.0-client\r\n", "{bin}");
    drop(s);
    let line = closed_for(&server, "the relay", &banner.to_string());
    assert_eq!(field(&line, "sniffed"), "-", "{bin}: {line}");
    assert_eq!(field(&line, "outcome"), "done", "{bin}: {line}");
}

fn sniff_target_name_goes_to_the_name(bin: &str) {
    // The name's own address is 127.0.0.2; the forward points elsewhere.
    let listener = TcpListener::bind("127.0.0.2:0").unwrap();
    let there = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Some(Ok(mut s)) = listener.incoming().next() {
            s.set_read_timeout(Some(STEP)).unwrap();
            let mut buf = [0u8; 4096];
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 || s.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    });
    let hosts = hosts(&format!("sniff-name-{bin}"), "127.0.0.2 name.test");
    let socket = socks4_tests::scratch::dir(&format!("sniff-name-{bin}")).join("ctl.sock");
    let elsewhere: SocketAddr = format!("127.0.0.1:{}", there.port()).parse().unwrap();
    let (server, addr) = forwarding(
        bin,
        elsewhere,
        &[
            "--sniff-target",
            "name",
            "--hosts-file",
            &hosts,
            "--control-socket",
            socket.to_str().unwrap(),
        ],
    );
    let bytes = http_get("name.test");
    let mut s = TcpStream::connect_timeout(&addr, STEP).unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    s.write_all(&bytes).unwrap();
    let mut back = vec![0u8; bytes.len()];
    s.read_exact(&mut back).unwrap();
    assert_eq!(back, bytes, "{bin}: intact");
    // While it is open, `ctl conns` shows the name, marked as sniffed.
    let (ok, out, err) = super::operations::live_control::ctl(bin, &socket, &["conns"]);
    assert!(ok, "{bin}: {err}");
    let dest = format!("dest=name.test:{}(host)", there.port());
    assert!(out.contains(&dest), "{bin}: {dest} in {out}");
    drop(s);
    let line = closed_for(&server, "the relay", &format!("name.test:{}", there.port()));
    assert_eq!(field(&line, "reached"), there.to_string(), "{bin}: {line}");
    assert_eq!(field(&line, "sniffed"), "host", "{bin}: {line}");
}
