//! A SOCKS4/4a client on smol: [`connect`] a [`smol::net::TcpStream`] through a proxy, or
//! [`bind`] on one. The same functions as `socks4_tokio::client` (whose
//! docs compare them with `tokio-socks`), over the shared
//! [`socks4_daemon::client`].
//!
//! ```no_run
//! # async fn fetch() -> Result<(), Box<dyn std::error::Error>> {
//! let proxy = "127.0.0.1:1080".parse()?;
//! let s = socks4_smol::client::connect(proxy, ("example.com", 80), b"").await?;
//! # drop(s); Ok(()) }
//! ```

use crate::Smol;
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
) -> Result<smol::net::TcpStream, ClientError> {
    connect_timeout(proxy, dest, user_id, None).await
}

/// Like [`connect`], the whole exchange within `timeout` when given.
pub async fn connect_timeout(
    proxy: SocketAddr,
    dest: impl Into<Target>,
    user_id: &[u8],
    timeout: Option<Duration>,
) -> Result<smol::net::TcpStream, ClientError> {
    let s = shared::connect(&Smol::default(), proxy, dest, user_id, timeout).await?;
    Ok(smol::net::TcpStream::from(s))
}

/// A BIND the proxy granted: announce [`listen`](Self::listen) to the peer,
/// then [`accept`](Self::accept).
#[derive(Debug)]
pub struct Bound(shared::Bound<Smol>);

impl Bound {
    /// Where the proxy listens for the peer.
    pub fn listen(&self) -> SocketAddrV4 {
        self.0.listen
    }

    /// Waits for the peer: the stream (relayed to it) and its address.
    pub async fn accept(self) -> Result<(smol::net::TcpStream, SocketAddrV4), ClientError> {
        let (s, from) = self.0.accept().await?;
        Ok((smol::net::TcpStream::from(s), from))
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
        shared::bind(&Smol::default(), proxy, peer, user_id, timeout).await?,
    ))
}
