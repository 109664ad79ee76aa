//! Loopback peers and ports: free and closed ports, echo and HTTP peers that
//! serve a bounded number of connections, a destination that never accepts,
//! and connections from a chosen loopback address.

use super::STEP;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// A free loopback port (bound, read, released). Prefer port 0 where the
/// program can report what it bound.
pub fn free_port() -> u16 {
    free_port_on(Ipv4Addr::LOCALHOST)
}

/// Like [`free_port`], on another loopback address. For a program that must be
/// given its port: on an address no other test uses, a port released here
/// cannot be taken meanwhile by another test's listener on 127.0.0.1.
pub fn free_port_on(ip: Ipv4Addr) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (at most [`STEP`]) until the process `pid` listens, and returns its
/// first listening address. For a program started on port 0 that does not say
/// which port it bound; `what` names it in the failure.
pub fn wait_listening(pid: u32, what: &str) -> SocketAddr {
    let deadline = Instant::now() + STEP;
    loop {
        if let Some(addr) = crate::procfs::listening_addrs(pid).first() {
            return *addr;
        }
        assert!(Instant::now() < deadline, "{what} did not start listening");
        thread::sleep(Duration::from_millis(20));
    }
}

/// A loopback port that refuses connections for as long as this value lives:
/// bound (without `SO_REUSEADDR`) but not listening, so no other socket can
/// take it meanwhile and a connect to it is reset. For "the peer is down".
pub struct ClosedPort(socket2::Socket);

impl ClosedPort {
    /// Reserves a port on 127.0.0.1.
    pub fn new() -> ClosedPort {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
            .unwrap();
        ClosedPort(s)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.0.local_addr().unwrap().as_socket().unwrap().port()
    }
}

impl Default for ClosedPort {
    fn default() -> ClosedPort {
        ClosedPort::new()
    }
}

/// Starts a loopback peer serving up to `count` connections, one thread each,
/// with `handler`. Returns its address.
pub fn peer(count: usize, handler: impl Fn(TcpStream) + Send + Sync + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handler = Arc::new(handler);
    thread::spawn(move || {
        for stream in listener.incoming().take(count).flatten() {
            let h = handler.clone();
            stream.set_read_timeout(Some(STEP)).unwrap();
            thread::spawn(move || h(stream));
        }
    });
    addr
}

/// An echo peer that reads until EOF, then sends everything back and closes: it
/// answers only if the proxy passes on the client's half-close.
pub fn echo_after_eof(count: usize) -> SocketAddr {
    peer(count, |mut s| {
        let mut all = Vec::new();
        if s.read_to_end(&mut all).is_ok() {
            let _ = s.write_all(&all);
        }
    })
}

/// An echo peer that sends back each chunk as it arrives.
pub fn echo(count: usize) -> SocketAddr {
    peer(count, |mut s| {
        let mut buf = [0u8; 16384];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 || s.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    })
}

/// A minimal HTTP/1.0 server answering every request with `body`.
pub fn http(count: usize, body: &'static str) -> SocketAddr {
    peer(count, move |mut s| {
        let mut reader = BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
            line.clear();
        }
        let _ = write!(
            s,
            "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    })
}

/// A loopback address where connections are never accepted: a listener whose
/// accept queue is full, so that the kernel drops further SYNs and a connect
/// hangs until its caller gives up. Held open while the value lives.
pub struct Blackhole {
    listener: socket2::Socket,
    _fillers: Vec<socket2::Socket>,
}

impl Blackhole {
    /// A listener with a backlog of 0, its queue filled by a connection that
    /// is never accepted.
    pub fn new() -> Blackhole {
        use socket2::{Domain, Socket, Type};
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        listener
            .bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
            .unwrap();
        listener.listen(0).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut fillers = Vec::new();
        for _ in 0..2 {
            let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
            s.set_nonblocking(true).unwrap();
            let _ = s.connect(&addr);
            fillers.push(s);
        }
        // Let the first filler's handshake finish and take the one queue slot.
        thread::sleep(Duration::from_millis(100));
        Blackhole {
            listener,
            _fillers: fillers,
        }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap().as_socket().unwrap()
    }
}

impl Default for Blackhole {
    fn default() -> Self {
        Blackhole::new()
    }
}

/// A TCP connection to `to` from the loopback address `from` (so that a test
/// can be several client addresses: 127.0.0.2, 127.0.0.3...).
pub fn connect_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::from((from, 0)).into()).unwrap();
    s.connect_timeout(&to.into(), STEP).unwrap();
    s.into()
}

/// The loopback address with a port.
pub fn lo(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)
}
