//! Third-party servers the tests and the benchmark start on loopback, each on
//! a free port, each stopped (by PID) when its handle is dropped: Dante
//! (`danted`, a SOCKS server), oidentd (an identd), tinyproxy (an HTTP
//! CONNECT proxy), stunnel (a TLS client tunnel), OpenSSH's sshd and
//! redis-server (a fleet's shared state).

use crate::e2e::{free_port, STEP};
use crate::procfs::listening_addrs;
use std::ffi::OsString;
use std::net::SocketAddr;
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

    /// Waits until `child` itself listens on `addr` (read from /proc, so a
    /// program that took the port first is not mistaken for the peer).
    fn started(what: &str, addr: SocketAddr, mut child: Child) -> Peer {
        // Generous: a loaded CI machine starts programs slowly.
        let deadline = Instant::now() + STEP * 6;
        while !listening_addrs(child.id()).contains(&addr) {
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
    let dir = crate::scratch::dir("peers");
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
             socks pass {{\n  from: 127.0.0.0/8 to: 0.0.0.0/0\n  command: connect bind bindreply\n}}\n"
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

/// oidentd (Debian's), an RFC 1413 identd, in the foreground on a free port
/// of 127.0.0.1: the test that needs it starts it and stops it (by PID, when
/// the handle is dropped), so nothing is left running after the tests.
pub fn oidentd() -> Peer {
    let port = free_port();
    let child = Command::new("/usr/sbin/oidentd")
        .args([
            "--foreground",
            "--nosyslog",
            "--quiet",
            "-a",
            "127.0.0.1",
            "-p",
        ])
        .arg(port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("oidentd (Debian package oidentd; run .ci/setup to install it)");
    Peer::started("oidentd", SocketAddr::from(([127, 0, 0, 1], port)), child)
}

/// redis-server (Debian's) on `port` of 127.0.0.1, keeping nothing on disk
/// (no RDB snapshot, no append-only file): stopping it loses its data, as
/// the fleet tests want. Started again on the same port, it is the same
/// address to the servers that use it.
pub fn redis_server(port: u16) -> Peer {
    let listen: [OsString; 4] = [
        "--port".into(),
        port.to_string().into(),
        "--bind".into(),
        "127.0.0.1".into(),
    ];
    start_redis("redis-server", port, &listen)
}

/// redis-server (Debian's, built with TLS) taking only TLS on `port` of
/// 127.0.0.1 (and of ::1 where there is one, as `localhost` may be either),
/// with the certificate `cert` and its key `key` (PEM files), asking
/// clients for no certificate, keeping nothing on disk.
pub fn redis_tls_server(port: u16, cert: &Path, key: &Path, ca: &Path) -> Peer {
    let listen: [OsString; 14] = [
        "--port".into(),
        "0".into(),
        "--tls-port".into(),
        port.to_string().into(),
        "--tls-cert-file".into(),
        cert.into(),
        "--tls-key-file".into(),
        key.into(),
        "--tls-ca-cert-file".into(),
        ca.into(),
        "--tls-auth-clients".into(),
        "no".into(),
        "--bind".into(),
        "127.0.0.1 -::1".into(),
    ];
    start_redis("redis-server (TLS)", port, &listen)
}

/// Starts redis-server with `listen` (where and how it listens) on `port`
/// of 127.0.0.1, keeping nothing on disk, as peer `name`.
fn start_redis(name: &str, port: u16, listen: &[OsString]) -> Peer {
    let child = Command::new("redis-server")
        .args(listen)
        .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server (Debian package redis-server; run .ci/setup to install it)");
    Peer::started(name, SocketAddr::from(([127, 0, 0, 1], port)), child)
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

/// stunnel (Debian's stunnel4) in client mode on a free loopback port: each
/// connection to it goes over TLS to `connect`, whose certificate must be
/// signed by `ca` and valid for `host`.
pub fn stunnel_client(connect: SocketAddr, ca: &Path, host: &str) -> Peer {
    stunnel(&format!(
        "client = yes\nconnect = {connect}\nverifyChain = yes\nCAfile = {}\n\
         checkHost = {host}\nsni = {host}\n",
        ca.display()
    ))
}

/// stunnel in server mode on a free loopback port: it takes TLS with `cert`
/// and `key` (PEM files) and passes what is inside on to `connect`.
pub fn stunnel_server(connect: SocketAddr, cert: &Path, key: &Path) -> Peer {
    stunnel(&format!(
        "connect = {connect}\ncert = {}\nkey = {}\n",
        cert.display(),
        key.display()
    ))
}

fn stunnel(service: &str) -> Peer {
    let port = free_port();
    let conf = temp("stunnel.conf");
    std::fs::write(
        &conf,
        format!(
            "foreground = yes\npid =\nsyslog = no\ndebug = 3\n[tunnel]\n\
             accept = 127.0.0.1:{port}\n{service}"
        ),
    )
    .unwrap();
    let binary = ["stunnel4", "stunnel"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("-version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok()
        })
        .expect("stunnel4 (run .ci/setup to install it)");
    let child = Command::new(binary)
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start stunnel");
    Peer::started("stunnel", SocketAddr::from(([127, 0, 0, 1], port)), child)
}

/// OpenSSH's server (Debian's openssh-server) on a free loopback port, with a
/// host key of its own made in `dir`, accepting the key this returns (a
/// private key file for `ssh -i`) for the current user.
pub fn sshd(dir: &Path) -> (Peer, std::path::PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let keygen = |name: &str| {
        let path = dir.join(name);
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(path.with_extension("pub"));
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&path)
            .status()
            .expect("ssh-keygen (run .ci/setup to install openssh-client)");
        assert!(status.success(), "ssh-keygen failed");
        path
    };
    let host_key = keygen("host_key");
    let client_key = keygen("client_key");
    let authorized = dir.join("authorized_keys");
    std::fs::copy(client_key.with_extension("pub"), &authorized).unwrap();
    // sshd wants its privilege separation directory.
    let _ = std::fs::create_dir_all("/run/sshd");
    let port = free_port();
    let conf = dir.join("sshd_config");
    std::fs::write(
        &conf,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
             PidFile none\nUsePAM no\nStrictModes no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
             PermitRootLogin prohibit-password\n",
            host_key.display(),
            authorized.display()
        ),
    )
    .unwrap();
    let child = Command::new("/usr/sbin/sshd")
        .args(["-D", "-e", "-f"])
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sshd (run .ci/setup to install openssh-server)");
    let peer = Peer::started("sshd", SocketAddr::from(([127, 0, 0, 1], port)), child);
    (peer, client_key)
}
