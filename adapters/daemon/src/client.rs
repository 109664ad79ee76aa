//! A SOCKS4/4a client for programs: CONNECT through a proxy, or BIND on it, on
//! any runtime with a [`Runtime`] (the runtime crates wrap these in functions
//! that return their own stream type: `socks4_tokio::client::connect`, ...).
//!
//! The protocol is [`socks4_proto::client::Handshake`], the sans-IO machine;
//! this module only moves its bytes. It reads exactly as many bytes as the
//! replies take, so whatever the server or the destination sends after a
//! reply stays in the socket for the caller: nothing is lost.
//!
//! Errors say what went wrong: the proxy refused ([`ClientError::Refused`]
//! with its reply code, 91, 92 or 93), the time ran out
//! ([`ClientError::TimedOut`]), the proxy broke the protocol
//! ([`ClientError::Protocol`]), or the connection failed
//! ([`ClientError::Io`]).

use crate::runtime::socket;
use crate::runtime::{before, poll_io, recv, send, Direction, Runtime};
use socks4_proto::client::{Event, Handshake};
use socks4_proto::{Command, Dest, Reply, ReplyCode, Request};
use std::fmt;
use std::future::{poll_fn, Future};
use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::time::Duration;

/// Where to go: an IPv4 address (SOCKS4) or a host name the proxy resolves
/// (SOCKS4a).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An IPv4 address and port.
    Addr(SocketAddrV4),
    /// A host name and port, resolved by the proxy.
    Name(String, u16),
}

impl From<SocketAddrV4> for Target {
    fn from(a: SocketAddrV4) -> Target {
        Target::Addr(a)
    }
}

impl From<(&str, u16)> for Target {
    fn from((host, port): (&str, u16)) -> Target {
        Target::Name(host.to_owned(), port)
    }
}

impl From<(String, u16)> for Target {
    fn from((host, port): (String, u16)) -> Target {
        Target::Name(host, port)
    }
}

/// Why a request through the proxy did not succeed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// The proxy answered with a refusal: 91 (rejected or failed), 92 (identd
    /// unreachable) or 93 (identd named another user).
    Refused(ReplyCode),
    /// The whole exchange took longer than the timeout.
    TimedOut,
    /// The proxy sent something that is not a SOCKS4 reply, or closed before
    /// replying.
    Protocol(String),
    /// Connecting to the proxy, or reading or writing, failed.
    Io(io::Error),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Refused(code) => write!(f, "the proxy refused: {code}"),
            ClientError::TimedOut => f.write_str("the proxy did not answer in time"),
            ClientError::Protocol(why) => write!(f, "the proxy broke the protocol: {why}"),
            ClientError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> ClientError {
        ClientError::Io(e)
    }
}

impl From<ClientError> for io::Error {
    /// As an I/O error (`ConnectionRefused`, `TimedOut`, `InvalidData`), for
    /// callers that only deal in those.
    fn from(e: ClientError) -> io::Error {
        match e {
            ClientError::Io(e) => e,
            ClientError::TimedOut => io::Error::new(io::ErrorKind::TimedOut, e.to_string()),
            ClientError::Refused(_) => {
                io::Error::new(io::ErrorKind::ConnectionRefused, e.to_string())
            }
            ClientError::Protocol(_) => io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
        }
    }
}

/// `fut`, or [`ClientError::TimedOut`] once `timeout` has passed.
async fn within<R: Runtime, T>(
    rt: &R,
    timeout: Option<Duration>,
    fut: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    let deadline = timeout.and_then(|t| rt.now().checked_add(t));
    before(rt, deadline, fut)
        .await
        .unwrap_or(Err(ClientError::TimedOut))
}

/// Sends the request and reads replies until `want` events came (1 for
/// CONNECT, 1 for BIND's first reply, then 1 more for its second), reading no
/// byte beyond them.
async fn replies<S: crate::runtime::Stream>(
    stream: &S,
    handshake: &mut Handshake,
    want: usize,
) -> Result<Vec<Reply>, ClientError> {
    if let Some(bytes) = handshake.poll_transmit() {
        let mut sent = 0;
        while sent < bytes.len() {
            sent += poll_fn(|cx| {
                poll_io(stream, Direction::Write, cx, &mut |fd| {
                    send(fd, &bytes[sent..])
                })
            })
            .await?;
        }
    }
    let mut got = Vec::new();
    // Bytes of the reply being read: a reply is 8 bytes, and no more than
    // the rest of the one expected is read.
    let mut have = 0;
    while got.len() < want {
        let mut buf = [0u8; Reply::LEN];
        let need = Reply::LEN - have;
        let n = poll_fn(|cx| {
            poll_io(stream, Direction::Read, cx, &mut |fd| {
                recv(fd, &mut buf[..need])
            })
        })
        .await?;
        if n == 0 {
            let e = handshake.handle_eof().err();
            return Err(ClientError::Protocol(
                e.map_or_else(|| "closed".to_owned(), |e| e.to_string()),
            ));
        }
        handshake
            .handle_input(&buf[..n])
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        have = (have + n) % Reply::LEN;
        while let Some(event) = handshake.poll_event() {
            match event {
                Event::Granted(r) | Event::BindListening(r) => got.push(r),
                Event::Rejected(r) => return Err(ClientError::Refused(r.code)),
            }
        }
    }
    Ok(got)
}

fn request(command: Command, dest: &Target, user_id: &[u8]) -> Result<Handshake, ClientError> {
    let dest = match dest {
        Target::Addr(a) => Dest::Addr(*a),
        Target::Name(host, port) => Dest::Domain(host, *port),
    };
    let req = Request {
        command,
        dest,
        user_id,
    };
    Handshake::new(&req).map_err(|e| ClientError::Protocol(e.to_string()))
}

/// Connects to `dest` through the SOCKS4/4a proxy at `proxy`, sending
/// `user_id`; the whole exchange within `timeout` (if any). The stream is
/// relayed from then on.
pub async fn connect<R: Runtime>(
    rt: &R,
    proxy: SocketAddr,
    dest: impl Into<Target>,
    user_id: &[u8],
    timeout: Option<Duration>,
) -> Result<R::Stream, ClientError> {
    let mut handshake = request(Command::Connect, &dest.into(), user_id)?;
    within(rt, timeout, async {
        let stream = socket::connect(rt, proxy, None).await?;
        replies(&stream, &mut handshake, 1).await?;
        Ok(stream)
    })
    .await
}

/// A BIND whose first reply came: the address to announce to the peer that
/// is to connect, and the connection that waits for it.
#[derive(Debug)]
pub struct Bound<R: Runtime> {
    /// Where the proxy listens for the peer (its first reply).
    pub listen: SocketAddrV4,
    stream: R::Stream,
    handshake: Handshake,
    rt: R,
    timeout: Option<Duration>,
}

impl<R: Runtime> Bound<R> {
    /// Waits for the peer to connect (the proxy's second reply, within the
    /// timeout): the stream, relayed to the peer, and the peer's address as
    /// the proxy reports it.
    pub async fn accept(mut self) -> Result<(R::Stream, SocketAddrV4), ClientError> {
        let (rt, timeout) = (self.rt.clone(), self.timeout);
        let second = within(&rt, timeout, async {
            replies(&self.stream, &mut self.handshake, 1).await
        })
        .await?;
        Ok((self.stream, second[0].addr))
    }
}

/// Asks the proxy at `proxy` to listen for a connection from `peer` (BIND):
/// the listening address to announce (the first reply, where an address of
/// `0.0.0.0` is replaced by the proxy's own), and [`Bound::accept`] for the
/// connection. `timeout` applies to each of the two replies.
pub async fn bind<R: Runtime>(
    rt: &R,
    proxy: SocketAddr,
    peer: SocketAddrV4,
    user_id: &[u8],
    timeout: Option<Duration>,
) -> Result<Bound<R>, ClientError> {
    let mut handshake = request(Command::Bind, &Target::Addr(peer), user_id)?;
    let (stream, first) = within(rt, timeout, async {
        let stream = socket::connect(rt, proxy, None).await?;
        let first = replies(&stream, &mut handshake, 1).await?;
        Ok((stream, first[0]))
    })
    .await?;
    let proxy_ip = match proxy {
        SocketAddr::V4(a) => *a.ip(),
        SocketAddr::V6(_) => std::net::Ipv4Addr::UNSPECIFIED,
    };
    Ok(Bound {
        listen: first.bind_address(proxy_ip),
        stream,
        handshake,
        rt: rt.clone(),
        timeout,
    })
}
