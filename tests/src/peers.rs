//! Third-party servers the tests and the benchmark start on loopback, each on
//! a free port, each stopped (by PID) when its handle is dropped: Dante
//! (`danted`, a SOCKS server) and tinyproxy (an HTTP CONNECT proxy).

use crate::e2e::{free_port, STEP};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running third-party server.
pub struct Peer {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Peer {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn started(what: &str, addr: SocketAddr, mut child: Child) -> Peer {
        let deadline = Instant::now() + STEP * 3;
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{what} exited at start with {status}");
            }
            assert!(Instant::now() < deadline, "{what} did not start on {addr}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Peer { child, addr }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("socks4-peers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{name}-{}", free_port()))
}

/// Dante 1.4 (Debian's dante-server) on a free loopback port, serving SOCKS4
/// CONNECT and BIND to loopback clients, logging nothing. `None` when it is not
/// installed.
pub fn dante() -> Option<Peer> {
    let danted = ["/usr/sbin/danted", "/usr/bin/danted"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    let port = free_port();
    let conf = temp("danted.conf");
    std::fs::write(
        &conf,
        format!(
            "logoutput: stderr\ninternal: 127.0.0.1 port = {port}\nexternal: 127.0.0.1\n\
             clientmethod: none\nsocksmethod: none\nuser.privileged: root\nuser.unprivileged: nobody\n\
             client pass {{\n  from: 127.0.0.0/8 to: 0.0.0.0/0\n}}\n\
             socks pass {{\n  from: 127.0.0.0/8 to: 0.0.0.0/0\n  command: connect bind\n}}\n"
        ),
    )
    .ok()?;
    let child = Command::new(danted)
        .arg("-f")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    Some(Peer::started(
        "danted",
        SocketAddr::from(([127, 0, 0, 1], port)),
        child,
    ))
}

/// tinyproxy (Debian's) on a free loopback port: HTTP CONNECT to any port, for
/// loopback clients.
pub fn tinyproxy() -> Peer {
    let port = free_port();
    let conf = temp("tinyproxy.conf");
    std::fs::write(
        &conf,
        format!("Port {port}\nListen 127.0.0.1\nTimeout 60\nAllow 127.0.0.1\nMaxClients 100\nLogLevel Critical\n"),
    )
    .unwrap();
    let child = Command::new("tinyproxy")
        .args(["-d", "-c"])
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tinyproxy (run .ci/setup to install it)");
    Peer::started("tinyproxy", SocketAddr::from(([127, 0, 0, 1], port)), child)
}
