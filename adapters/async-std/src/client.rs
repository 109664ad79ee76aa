//! A SOCKS4/4a client on async-std: [`connect`] a [`async_std::net::TcpStream`] through a proxy, or
//! [`bind`] on one. The same functions as `socks4_tokio::client` (whose
//! docs compare them with `tokio-socks`), over the shared
//! [`socks4_daemon::client`].
//!
//! ```no_run
//! # async fn fetch() -> Result<(), Box<dyn std::error::Error>> {
//! let proxy = "127.0.0.1:1080".parse()?;
//! let s = socks4_async_std::client::connect(proxy, ("example.com", 80), b"").await?;
//! # drop(s); Ok(()) }
//! ```

use crate::AsyncStd;
use socks4_daemon::client as shared;
pub use socks4_daemon::client::{ClientError, Target};
use std::net::{SocketAddr, SocketAddrV4};
use std::time::Duration;

/// Connects to `dest` (an IPv4 address, or `(host, port)` for SOCKS4a)
/// through the proxy at `proxy`, sending `user_id`.
pub async fn connect(
    proxy: SocketAddr,
    dest: impl Into<Target>,
    user_id: &[u8],
) -> Result<async_std::net::TcpStream, ClientError> {
    connect_timeout(proxy, dest, user_id, None).await
}

/// Like [`connect`], the whole exchange within `timeout` when given.
pub async fn connect_timeout(
    proxy: SocketAddr,
    dest: impl Into<Target>,
    user_id: &[u8],
    timeout: Option<Duration>,
) -> Result<async_std::net::TcpStream, ClientError> {
    let s = shared::connect(&AsyncStd, proxy, dest, user_id, timeout).await?;
    Ok(async_std::net::TcpStream::from(s.into_inner()?))
}

/// A BIND the proxy granted: announce [`listen`](Self::listen) to the peer,
/// then [`accept`](Self::accept).
#[derive(Debug)]
pub struct Bound(shared::Bound<AsyncStd>);

impl Bound {
    /// Where the proxy listens for the peer.
    pub fn listen(&self) -> SocketAddrV4 {
        self.0.listen
    }

    /// Waits for the peer: the stream (relayed to it) and its address.
    pub async fn accept(self) -> Result<(async_std::net::TcpStream, SocketAddrV4), ClientError> {
        let (s, from) = self.0.accept().await?;
        Ok((async_std::net::TcpStream::from(s.into_inner()?), from))
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
        shared::bind(&AsyncStd, proxy, peer, user_id, timeout).await?,
    ))
}
