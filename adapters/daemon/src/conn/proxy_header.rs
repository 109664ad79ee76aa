//! Reading a PROXY protocol header off a socket a load balancer connected:
//! the bytes are looked at where they wait (`MSG_PEEK`), parsed with
//! [`socks4_proto::proxy_header::parse`], and exactly the header's bytes are taken
//! out of the socket, so that whatever follows (a SOCKS request, a TLS
//! handshake, a dual listener's first byte) is read by whoever serves the
//! connection next, as if the header had never been there.

use crate::runtime::{before, poll_io, recv, Direction, Runtime, Stream};
use socks4_proto::proxy_header::{parse, Accept, Header, HeaderError, Parsed, V1_MAX};
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::time::Instant;

/// Why no header was read.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The bytes are not an acceptable header.
    Invalid(HeaderError),
    /// No complete header before the deadline.
    TimedOut,
    /// The connection closed (or failed) first.
    Closed,
}

impl Failure {
    /// Its label among [`PROXY_RESULTS`](crate::observe::counters::PROXY_RESULTS).
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Failure::Invalid(_) => "invalid",
            Failure::TimedOut => "timed_out",
            Failure::Closed => "closed",
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Invalid(e) => e.fmt(f),
            Failure::TimedOut => f.write_str("no complete PROXY header in time"),
            Failure::Closed => f.write_str("closed before its PROXY header"),
        }
    }
}

/// `recv(2)` with `MSG_PEEK`: the bytes stay in the socket.
fn peek(fd: std::os::fd::BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    rustix::net::recv(fd, buf, rustix::net::RecvFlags::PEEK)
        .map(|(n, _)| n)
        .map_err(io::Error::from)
}

/// Reads the header `accept` allows (v2 up to `max_v2` bytes) from `client`
/// before `deadline`, taking exactly its bytes out of the socket.
pub(crate) async fn read<R: Runtime>(
    rt: &R,
    client: &R::Stream,
    accept: Accept,
    max_v2: usize,
    deadline: Instant,
) -> Result<Header, Failure> {
    let cap = max_v2.max(V1_MAX);
    // The header's bytes taken so far (all of them header: only a parse that
    // says "incomplete" lets bytes be taken before the end is known).
    let mut taken: Vec<u8> = Vec::new();
    loop {
        let mut buf = vec![0u8; cap - taken.len()];
        let peek = poll_fn(|cx| poll_io(client, Direction::Read, cx, &mut |fd| peek(fd, &mut buf)));
        let peeked = before(rt, Some(deadline), peek).await;
        let n = match peeked {
            None => return Err(Failure::TimedOut),
            Some(Ok(0) | Err(_)) => return Err(Failure::Closed),
            Some(Ok(n)) => n,
        };
        let mut seen = taken.clone();
        seen.extend_from_slice(&buf[..n]);
        let (take, done) = match parse(&seen, accept, max_v2) {
            Parsed::Invalid(e) => return Err(Failure::Invalid(e)),
            Parsed::Incomplete => (n, None),
            Parsed::Complete { header, len } => (len - taken.len(), Some(header)),
        };
        // The bytes are in the socket (just peeked): this takes them at once.
        let mut got = 0;
        while got < take {
            match client.try_io(Direction::Read, |fd| recv(fd, &mut buf[got..take])) {
                Ok(0) => return Err(Failure::Closed),
                Ok(k) => got += k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Spurious: wait for the bytes the peek saw.
                    poll_fn(|cx| client.poll_ready(Direction::Read, cx))
                        .await
                        .map_err(|_| Failure::Closed)?;
                }
                Err(_) => return Err(Failure::Closed),
            }
        }
        if let Some(header) = done {
            return Ok(header);
        }
        taken.extend_from_slice(&buf[..take]);
    }
}
