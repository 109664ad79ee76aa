//! A SOCKS4/4a client on tokio: [`connect`] a [`tokio::net::TcpStream`]
//! through a proxy, or [`bind`] on one.
//!
//! ```no_run
//! # async fn fetch() -> Result<(), Box<dyn std::error::Error>> {
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! let proxy = "127.0.0.1:1080".parse()?;
//! let mut s = socks4_tokio::client::connect(proxy, ("example.com", 80), b"").await?;
//! s.write_all(b"GET / HTTP/1.0\r\nHost: example.com\r\n\r\n").await?;
//! let mut page = String::new();
//! s.read_to_string(&mut page).await?;
//! # Ok(()) }
//! ```
//!
//! # Compared with `tokio-socks`
//!
//! `tokio_socks::tcp::Socks4Stream::connect(proxy, target)` and
//! `connect_with_userid(proxy, target, user_id)` do what [`connect`] does:
//! the same arguments (an IPv4 address, or a host name for SOCKS4a), a
//! connected stream back. What is the same: one call, the caller's own
//! stream type afterwards (tokio-socks wraps it in `Socks4Stream`, which
//! derefs to it; here it is the `TcpStream` itself). What this adds:
//! - BIND with both replies ([`bind`], then [`Bound::accept`]), and the same
//!   functions on smol and async-std (`socks4_smol::client`,
//!   `socks4_async_std::client`);
//! - the protocol is a sans-IO machine (`socks4_proto::client::Handshake`),
//!   the same one the server's chaining uses and that is fuzzed;
//! - exact errors: [`ClientError::Refused`] carries the reply code (91, 92 or
//!   93) apart from I/O errors, protocol violations and
//!   [`ClientError::TimedOut`] ([`connect_timeout`] bounds the whole
//!   exchange);
//! - no byte after a reply is lost: only the reply's 8 bytes are read.

use crate::{Tokio, TokioStream};
use socks4_daemon::client as shared;
pub use socks4_daemon::client::{ClientError, Target};
use std::net::{SocketAddr, SocketAddrV4};
use std::time::Duration;
use tokio::net::TcpStream;

/// Connects to `dest` (an IPv4 address, or `(host, port)` for SOCKS4a)
/// through the proxy at `proxy`, sending `user_id`.
pub async fn connect(
    proxy: SocketAddr,
    dest: impl Into<Target>,
    user_id: &[u8],
) -> Result<TcpStream, ClientError> {
    connect_timeout(proxy, dest, user_id, None).await
}

/// Like [`connect`], the whole exchange within `timeout` when given.
pub async fn connect_timeout(
    proxy: SocketAddr,
    dest: impl Into<Target>,
    user_id: &[u8],
    timeout: Option<Duration>,
) -> Result<TcpStream, ClientError> {
    let TokioStream(s) = shared::connect(&Tokio, proxy, dest, user_id, timeout).await?;
    Ok(s)
}

/// A BIND the proxy granted: announce [`listen`](Self::listen) to the peer,
/// then [`accept`](Self::accept).
#[derive(Debug)]
pub struct Bound(shared::Bound<Tokio>);

impl Bound {
    /// Where the proxy listens for the peer.
    pub fn listen(&self) -> SocketAddrV4 {
        self.0.listen
    }

    /// Waits for the peer: the stream (relayed to it) and its address.
    pub async fn accept(self) -> Result<(TcpStream, SocketAddrV4), ClientError> {
        let (TokioStream(s), from) = self.0.accept().await?;
        Ok((s, from))
    }
}

/// Asks the proxy at `proxy` to accept one connection from `peer` (BIND).
pub async fn bind(
    proxy: SocketAddr,
    peer: SocketAddrV4,
    user_id: &[u8],
) -> Result<Bound, ClientError> {
    bind_timeout(proxy, peer, user_id, None).await
}

/// Like [`bind`], each of the two replies within `timeout` when given.
pub async fn bind_timeout(
    proxy: SocketAddr,
    peer: SocketAddrV4,
    user_id: &[u8],
    timeout: Option<Duration>,
) -> Result<Bound, ClientError> {
    Ok(Bound(
        shared::bind(&Tokio, proxy, peer, user_id, timeout).await?,
    ))
}
