//! Opening sockets, once for every runtime: listening sockets with the server's
//! options, outbound connections (optionally from a chosen local address, by
//! a chosen interface, with a firewall mark: [`Egress`]), and
//! UDP sockets for the resolver's queries ([`datagram_to`]), and the small
//! socket queries the server needs. Sockets are made non-blocking here
//! and then registered with the runtime ([`Runtime::listener`],
//! [`Runtime::stream`]).

use crate::runtime::own_sockets::{Mark, OwnSockets};
use crate::runtime::{Direction, Runtime, Stream};
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

/// How many connections the kernel queues for a listener before it is accepted.
pub(crate) const LISTEN_BACKLOG: i32 = 1024;

/// A non-blocking listening socket on `addr` (`SO_REUSEADDR`, so that a restart
/// does not wait for old connections' TIME_WAIT; `TCP_NODELAY`, which accepted
/// connections inherit, so that relayed small writes are not held back).
pub(crate) fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    listen_with(addr, ListenOptions::default())
}

/// How a listening socket is opened beyond the defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ListenOptions {
    /// `IP_TRANSPARENT` (Linux TPROXY: accept connections meant for other
    /// addresses; needs CAP_NET_ADMIN).
    pub transparent: bool,
    /// `SO_REUSEPORT`: other processes (each with it set, as the same user)
    /// may listen on the same address, and the kernel spreads new connections
    /// over them.
    pub reuse_port: bool,
}

/// Like [`listen`], with `options`.
pub(crate) fn listen_with(addr: SocketAddr, options: ListenOptions) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if options.reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_tcp_nodelay(true)?;
    let transparent = options.transparent;
    if transparent {
        if addr.is_ipv4() {
            socket.set_ip_transparent_v4(true)?;
        } else {
            socket.set_ip_transparent_v6(true)?;
        }
    }
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Keepalive probes sent before a peer that answers none is given up on.
pub(crate) const KEEPALIVE_PROBES: u32 = 4;

/// The time between keepalive probes for an idle time of `idle`: a quarter
/// of it, at least a second (so that a vanished peer is detected within
/// about twice `idle`).
pub(crate) fn keepalive_interval(idle: Duration) -> Duration {
    (idle / KEEPALIVE_PROBES).max(Duration::from_secs(1))
}

/// Turns on TCP keepalive on `socket`: the first probe after `idle` without
/// traffic, then [`KEEPALIVE_PROBES`] probes [`keepalive_interval`] apart;
/// a peer that answers none makes the socket fail (`ETIMEDOUT`).
pub(crate) fn keepalive(socket: &impl AsFd, idle: Duration) -> io::Result<()> {
    let idle = idle.max(Duration::from_secs(1));
    let params = socket2::TcpKeepalive::new()
        .with_time(idle)
        .with_interval(keepalive_interval(idle))
        .with_retries(KEEPALIVE_PROBES);
    SockRef::from(socket).set_tcp_keepalive(&params)
}

/// Sets `socket`'s TCP keepalive as `idle` says: on as [`keepalive`] does,
/// or off (`None`). A listening socket's setting is what the connections it
/// accepts start with (Linux copies `SO_KEEPALIVE` and the three `TCP_KEEP*`
/// values to them), which spares four system calls per connection.
pub(crate) fn set_keepalive(socket: &impl AsFd, idle: Option<Duration>) -> io::Result<()> {
    match idle {
        Some(idle) => keepalive(socket, idle),
        None => SockRef::from(socket).set_keepalive(false),
    }
}

/// How an outbound connection leaves: its local address, the interface it
/// is bound to, its firewall mark. The default: the system's choice for
/// each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Egress {
    /// The local address (port chosen by the OS).
    pub(crate) from: Option<IpAddr>,
    /// `IP_FREEBIND`: `from` need not be configured on an interface (an
    /// address from a prefix routed to the machine).
    pub(crate) freebind: bool,
    /// `SO_BINDTODEVICE`: the interface the connection leaves by.
    pub(crate) device: Option<String>,
    /// `SO_MARK`: the firewall mark, for policy routing.
    pub(crate) mark: Option<u32>,
}

impl Egress {
    /// From `from` only (the server's `outgoing_address`, an IDENT query's
    /// local address).
    pub(crate) fn from(from: Option<IpAddr>) -> Egress {
        Egress {
            from,
            ..Egress::default()
        }
    }
}

/// A new socket that is non-blocking from the start (`SOCK_NONBLOCK`: no
/// `fcntl` calls after it) and closed on exec (`SOCK_CLOEXEC`, as socket2
/// always sets).
fn nonblocking_socket(domain: Domain, ty: Type, protocol: Option<Protocol>) -> io::Result<Socket> {
    Socket::new(domain, ty.nonblocking(), protocol)
}

/// Starts a non-blocking TCP connection to `to`, leaving as `egress` says.
fn start_connect(to: SocketAddr, egress: &Egress) -> io::Result<TcpStream> {
    let socket = nonblocking_socket(Domain::for_address(to), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_tcp_nodelay(true)?;
    let context =
        |what: String| move |e: io::Error| io::Error::new(e.kind(), format!("{what}: {e}"));
    if let Some(mark) = egress.mark {
        socket.set_mark(mark).map_err(context(format!(
            "mark {mark:#x} (SO_MARK needs CAP_NET_ADMIN or CAP_NET_RAW)"
        )))?;
    }
    if let Some(device) = &egress.device {
        socket
            .bind_device(Some(device.as_bytes()))
            .map_err(context(format!("interface {device}")))?;
    }
    if let Some(from) = egress.from {
        if egress.freebind {
            match from {
                IpAddr::V4(_) => socket.set_freebind_v4(true)?,
                IpAddr::V6(_) => socket.set_freebind_v6(true)?,
            }
        }
        socket
            .bind(&SocketAddr::new(from, 0).into())
            .map_err(context(format!("source {from}")))?;
    }
    match socket.connect(&to.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INPROGRESS.raw_os_error()) => {}
        Err(e) => return Err(e),
    }
    Ok(socket.into())
}

/// Connects to `to` (leaving as `egress` says) and registers the stream.
pub(crate) async fn connect<R: Runtime>(
    rt: &R,
    to: SocketAddr,
    egress: &Egress,
) -> io::Result<R::Stream> {
    let stream = rt.stream(start_connect(to, egress)?)?;
    finish_connect(stream).await
}

/// Like [`connect`], marking the connection's local address in `ours` from
/// the moment the connect starts (before the peer can accept it) until the
/// mark is dropped: a connection of ours that comes back in is known.
pub(crate) async fn connect_marked<R: Runtime>(
    rt: &R,
    to: SocketAddr,
    egress: &Egress,
    ours: &Arc<OwnSockets>,
) -> io::Result<(R::Stream, Mark)> {
    let socket = start_connect(to, egress)?;
    let mark = ours.mark(local_addr(&socket)?, to);
    let stream = finish_connect(rt.stream(socket)?).await?;
    Ok((stream, mark))
}

/// Connects to the Unix stream socket at `path` and registers it like a
/// TCP stream: the runtimes register a descriptor, whatever its family, and
/// the server's reads and writes (`recv`, `send`) work on both (the fleet's
/// Redis connection over `unix:`).
pub(crate) async fn connect_unix<R: Runtime>(
    rt: &R,
    path: &std::path::Path,
) -> io::Result<R::Stream> {
    let socket = nonblocking_socket(Domain::UNIX, Type::STREAM, None)?;
    match socket.connect(&socket2::SockAddr::unix(path)?) {
        Ok(()) => {}
        Err(e)
            if e.raw_os_error() == Some(rustix::io::Errno::INPROGRESS.raw_os_error())
                || e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    let fd: std::os::fd::OwnedFd = socket.into();
    finish_connect(rt.stream(TcpStream::from(fd))?).await
}

/// Waits for a connect started on `stream` to complete.
async fn finish_connect<S: Stream>(stream: S) -> io::Result<S> {
    // Connected (or failed) once writable; a failure is in SO_ERROR. (tokio's
    // and async-io's own connects wait the same way.)
    poll_fn(|cx| stream.poll_ready(Direction::Write, cx)).await?;
    match SockRef::from(&stream.as_fd()).take_error()? {
        Some(e) => Err(e),
        None => Ok(stream),
    }
}

/// A non-blocking UDP socket connected to `to` (so that only `to`'s
/// datagrams reach it), bound to a port the kernel picks at random among
/// its ephemeral ports (a fresh port per query: RFC 5452's source port
/// randomisation), and registered with the runtime.
pub(crate) fn datagram_to<R: Runtime>(rt: &R, to: SocketAddr) -> io::Result<R::Datagram> {
    let socket = nonblocking_socket(Domain::for_address(to), Type::DGRAM, Some(Protocol::UDP))?;
    let any: SocketAddr = match to {
        SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    socket.bind(&any.into())?;
    socket.connect(&to.into())?;
    rt.datagram(socket.into())
}

/// The local address of a connected or listening socket.
pub(crate) fn local_addr(socket: &impl AsFd) -> io::Result<SocketAddr> {
    SockRef::from(socket)
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an IP socket"))
}

/// The destination a connection was meant for before the kernel rewrote it
/// (nftables/iptables `REDIRECT` or DNAT: `SO_ORIGINAL_DST` from conntrack).
/// `ipv4` says which family's option to ask. Fails when the connection was not
/// rewritten and conntrack does not know it.
pub(crate) fn original_dst(stream: &impl AsFd, ipv4: bool) -> io::Result<SocketAddr> {
    let sock = SockRef::from(stream);
    let original = if ipv4 {
        sock.original_dst_v4()?
    } else {
        sock.original_dst_v6()?
    };
    original
        .as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no original destination"))
}

/// The machine's local addresses now (every interface's, loopback
/// included), for telling whether a destination is the machine itself.
/// Empty if they cannot be listed.
pub(crate) fn local_addresses() -> Vec<IpAddr> {
    let Ok(all) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    all.filter_map(|i| {
        let a = i.address?;
        if let Some(v4) = a.as_sockaddr_in() {
            return Some(IpAddr::V4(v4.ip()));
        }
        a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
    })
    .collect()
}
