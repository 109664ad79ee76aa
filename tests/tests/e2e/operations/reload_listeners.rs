//! Listeners and caps a reload changes, on every adapter: a reload binds a
//! listener the config adds (served at once) and closes one it removes (new
//! connections refused, its open relay finishes intact); a listener that
//! cannot bind fails the reload as a whole (the old configuration stays, and
//! `ctl reload` says why); a lowered `max_connections` takes effect.

use socks4_tests::e2e::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command as Process;

socks4_tests::on_every_adapter!(
    a_reload_adds_and_removes_listeners,
    a_listener_that_cannot_bind_fails_the_reload,
    a_reload_lowers_max_connections,
);

/// A config file listening on `ports` of 127.0.0.1, with `extra` lines.
fn write_config(path: &std::path::Path, ports: &[u16], extra: &str) {
    let listen: Vec<String> = ports.iter().map(|p| format!("\"127.0.0.1:{p}\"")).collect();
    std::fs::write(path, format!("listen = [{}]\n{extra}", listen.join(", "))).unwrap();
}

/// 127.0.0.1:`port`.
fn on(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Data through a granted relay and back, checked byte for byte.
fn relay_intact(stream: &mut TcpStream, tag: u8) {
    let data: Vec<u8> = (0..100_000u32).map(|i| (i as u8) ^ tag).collect();
    assert_eq!(echo_through(stream, &data), data);
}

fn a_reload_adds_and_removes_listeners(bin: &str) {
    let dir = socks4_tests::scratch::fresh(&format!("reload-listeners-{bin}"));
    let conf = dir.join("socks4d.toml");
    let (old, new) = (free_port(), free_port());
    write_config(&conf, &[old], "");
    let server = Server::start_with(bin, &["--config", conf.to_str().unwrap()]);
    assert_eq!(server.addr, on(old));
    let echo = echo(8);
    let c = socks_request(on(old), &connect_to(echo, b""), |_| {});
    assert!(granted(&c), "{bin}: {:?}", c.events);
    let mut open = c.stream;
    relay_intact(&mut open, 1);

    // The reload swaps the old listener for the new one.
    write_config(&conf, &[new], "");
    let outcome = server.reload();
    assert!(
        says(&outcome, "configuration reloaded"),
        "{bin}: {}",
        server.log()
    );
    let c = socks_request(on(new), &connect_to(echo, b""), |_| {});
    assert!(
        granted(&c),
        "{bin}: the added listener serves: {:?}",
        c.events
    );
    relay_intact(&mut { c.stream }, 2);
    let listening = server.wait_for("the new listener's line", |l| {
        says(l, "listening") && field(l, "listen") == on(new).to_string()
    });
    assert_eq!(field(&listening, "kind"), "socks", "{bin}");
    server.wait_for("the old listener closed", |l| {
        says(l, "listener closed") && field(l, "listen") == on(old).to_string()
    });
    let refused = TcpStream::connect_timeout(&on(old), STEP);
    assert!(
        refused.is_err(),
        "{bin}: the removed listener still takes connections"
    );
    // Its relay goes on, intact, and ends as any other.
    relay_intact(&mut open, 3);
    drop(open);
    server.wait_for("the old relay's end", |l| {
        closed(l) && field(l, "listener") == on(old).to_string() && field(l, "outcome") == "done"
    });
}

fn a_listener_that_cannot_bind_fails_the_reload(bin: &str) {
    let dir = socks4_tests::scratch::fresh(&format!("reload-bind-fails-{bin}"));
    let (conf, socket) = (dir.join("socks4d.toml"), dir.join("control.sock"));
    let (port, added) = (free_port(), free_port());
    write_config(&conf, &[port], "");
    let server = Server::start_with(
        bin,
        &[
            "--config",
            conf.to_str().unwrap(),
            "--control-socket",
            socket.to_str().unwrap(),
        ],
    );
    let echo = echo(8);
    // Another listener added, on a port someone else holds, with a rule that
    // would refuse everything: neither applies.
    let taken = TcpListener::bind(on(added)).unwrap();
    let block = format!(
        "[access]\nrules = \"block from any to any port eq {} reply 91\"\n",
        echo.port()
    );
    write_config(&conf, &[port, added], &block);
    let (status, out, err) = run(
        Process::new(server_binary(bin))
            .args(["ctl", "--socket"])
            .arg(&socket)
            .arg("reload"),
        b"",
    );
    let answer = format!("{}{err}", String::from_utf8_lossy(&out));
    assert!(!status.success(), "{bin}: {answer}");
    assert!(
        answer.contains("the old configuration stays")
            && answer.contains(&format!("listen on {}", on(added)))
            && answer.contains("Address already in use"),
        "{bin}: {answer}"
    );
    let failed = server.wait_says("reload failed, keeping the old configuration (control socket)");
    assert!(
        field(&failed, "error").contains(&on(added).to_string()),
        "{bin}"
    );
    server.signal("HUP");
    server.wait_says("reload failed, keeping the old configuration");
    // The old configuration: the old rules, the old listener alone.
    let c = socks_request(on(port), &connect_to(echo, b""), |_| {});
    assert!(granted(&c), "{bin}: old rules stay: {:?}", c.events);
    relay_intact(&mut { c.stream }, 4);
    assert_eq!(
        server.count(|l| says(l, "listening")),
        1,
        "{bin}: {}",
        server.log()
    );
    // Once the port is free, the same reload applies whole.
    drop(taken);
    let outcome = server.reload();
    assert!(
        says(&outcome, "configuration reloaded"),
        "{bin}: {}",
        server.log()
    );
    let c = socks_request(on(added), &connect_to(echo, b""), |_| {});
    assert!(refused(&c), "{bin}: the new rules apply: {:?}", c.events);
}

fn a_reload_lowers_max_connections(bin: &str) {
    let dir = socks4_tests::scratch::fresh(&format!("reload-max-{bin}"));
    let conf = dir.join("socks4d.toml");
    let port = free_port();
    write_config(&conf, &[port], "max_connections = 3\n");
    let server = Server::start_with(
        bin,
        &[
            "--config",
            conf.to_str().unwrap(),
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    );
    let gauge = |s: &Server| {
        s.metrics()
            .lines()
            .find_map(|l| l.strip_prefix("socks4_max_connections "))
            .map(str::to_owned)
    };
    assert_eq!(gauge(&server).as_deref(), Some("3"), "{bin}");
    let echo = echo(8);
    let first = socks_request(on(port), &connect_to(echo, b""), |_| {});
    assert!(granted(&first), "{bin}: {:?}", first.events);
    let second = socks_request(on(port), &connect_to(echo, b""), |_| {});
    assert!(granted(&second), "{bin}: two of three: {:?}", second.events);
    drop(second.stream);
    server.wait_for("the second's end", |l| {
        closed(l) && field(l, "outcome") == "done"
    });

    write_config(
        &conf,
        &[port],
        "max_connections = 1\nwhen_full = \"refuse\"\n",
    );
    let outcome = server.reload();
    assert!(
        says(&outcome, "configuration reloaded"),
        "{bin}: {}",
        server.log()
    );
    assert!(
        !server.log().contains("restart needed"),
        "{bin}: {}",
        server.log()
    );
    assert_eq!(gauge(&server).as_deref(), Some("1"), "{bin}");
    let metrics: SocketAddr = field(&server.wait_says("serving metrics"), "metrics")
        .parse()
        .unwrap();
    let mut probe = TcpStream::connect_timeout(&metrics, STEP).unwrap();
    probe.set_read_timeout(Some(STEP)).unwrap();
    probe.write_all(b"GET /ready HTTP/1.0\r\n\r\n").unwrap();
    let mut ready = String::new();
    probe.read_to_string(&mut ready).unwrap();
    assert!(
        ready.starts_with("HTTP/1.1 503") || ready.starts_with("HTTP/1.0 503"),
        "{bin}: {ready}"
    );
    // One open of one: the next is refused at once.
    let past = socks_request(on(port), &connect_to(echo, b""), |_| {});
    assert!(refused(&past), "{bin}: {:?}", past.events);
    relay_intact(&mut { first.stream }, 5);
}
