//! A SOCKS4/4a client on async-std: [`connect`] an
//! [`async_std::net::TcpStream`] through a proxy, or [`bind`] on one;
//! [`Client`] for a user id or a timeout. The same functions as
//! `socks4_tokio::client` (whose docs compare them with `tokio-socks`), over
//! [`socks4_client`] ([`AsyncStdIo`]); with the `client` feature alone this
//! crate pulls in no server.
//!
//! ```no_run
//! # async fn fetch() -> Result<(), Box<dyn std::error::Error>> {
//! let s = socks4_async_std::client::connect("proxy.lan:1080", ("example.com", 80)).await?;
//! # drop(s); Ok(()) }
//! ```

use async_std::net::TcpStream;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
pub use socks4_client::{ClientError, HostPort, ReplyCode, ToHostPort};
use std::future::Future;
use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::time::Duration;

/// A client with a user id or a timeout: `Client::new().user_id("alice")`.
pub type Client = socks4_client::Client<AsyncStdIo>;

/// A BIND the proxy granted: announce [`listen`](Bound::listen) to the peer,
/// then [`accept`](Bound::accept).
pub type Bound = socks4_client::Bound<AsyncStdIo>;

/// Connects to `target` through the proxy at `proxy`, with an empty user id.
pub async fn connect(
    proxy: impl ToHostPort,
    target: impl ToHostPort,
) -> Result<TcpStream, ClientError> {
    Client::new().connect(proxy, target).await
}

/// Like [`connect`], sending `user_id`.
pub async fn connect_with_user_id(
    proxy: impl ToHostPort,
    target: impl ToHostPort,
    user_id: &[u8],
) -> Result<TcpStream, ClientError> {
    Client::new().user_id(user_id).connect(proxy, target).await
}

/// Asks the proxy at `proxy` to accept one connection from `peer` (BIND),
/// with an empty user id.
pub async fn bind(proxy: impl ToHostPort, peer: SocketAddrV4) -> Result<Bound, ClientError> {
    Client::new().bind(proxy, peer).await
}

/// async-std's TCP as the client uses it ([`socks4_client::Io`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncStdIo;

impl socks4_client::Io for AsyncStdIo {
    type Stream = TcpStream;

    async fn connect(&self, to: &HostPort) -> io::Result<TcpStream> {
        match to.socket_addr() {
            Some(addr) => TcpStream::connect(addr).await,
            None => TcpStream::connect((&*to.host_str(), to.port)).await,
        }
    }

    async fn read(&self, stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        stream.read(buf).await
    }

    async fn write_all(&self, stream: &mut TcpStream, buf: &[u8]) -> io::Result<()> {
        stream.write_all(buf).await
    }

    fn peer_addr(&self, stream: &TcpStream) -> io::Result<SocketAddr> {
        stream.peer_addr()
    }

    async fn timeout<T>(&self, after: Duration, fut: impl Future<Output = T>) -> Option<T> {
        async_std::future::timeout(after, fut).await.ok()
    }
}
