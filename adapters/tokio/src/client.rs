//! A SOCKS4/4a client on tokio: [`connect`] a [`tokio::net::TcpStream`]
//! through a proxy, or [`bind`] on one; [`Client`] for a user id or a
//! timeout. The proxy may be given by name (resolved by tokio) or address,
//! the target as `"host:port"`, `(host, port)`, a `SocketAddr` or a
//! `SocketAddrV4` (a name goes to the proxy to resolve: SOCKS4a).
//!
//! ```no_run
//! # async fn fetch() -> Result<(), Box<dyn std::error::Error>> {
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! let mut s = socks4_tokio::client::connect("proxy.lan:1080", "example.com:80").await?;
//! s.write_all(b"GET / HTTP/1.0\r\nHost: example.com\r\n\r\n").await?;
//! let mut page = String::new();
//! s.read_to_string(&mut page).await?;
//! // A user id and a timeout:
//! use socks4_tokio::client::Client;
//! let s = Client::new()
//!     .user_id("alice")
//!     .timeout(std::time::Duration::from_secs(10))
//!     .connect("proxy.lan:1080", ("example.com", 443))
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! The loop is [`socks4_client`]'s, over tokio ([`TokioIo`]); with the
//! `client` feature alone this crate pulls in no server.
//!
//! # Compared with `tokio-socks`
//!
//! `tokio_socks::tcp::Socks4Stream::connect(proxy, target)` and
//! `connect_with_userid(proxy, target, user_id)` do what [`connect`] and
//! [`connect_with_user_id`] do: the same arguments (a proxy, an IPv4
//! address or a host name for SOCKS4a), a connected stream back. What is the
//! same: one call, the caller's own stream type afterwards (tokio-socks wraps
//! it in `Socks4Stream`, which derefs to it; here it is the `TcpStream`
//! itself). What this adds:
//! - BIND with both replies ([`bind`], then [`Bound::accept`]), and the same
//!   functions on smol and async-std (`socks4_smol::client`,
//!   `socks4_async_std::client`);
//! - the protocol is a sans-IO machine (`socks4_proto::client::Handshake`),
//!   the same one the server's chaining uses and that is fuzzed;
//! - exact errors: [`ClientError::Refused`] carries the reply code (91, 92 or
//!   93) apart from I/O errors, protocol violations and
//!   [`ClientError::TimedOut`] ([`Client::timeout`] bounds the whole
//!   exchange);
//! - no byte after a reply is lost: only the reply's 8 bytes are read.

pub use socks4_client::{ClientError, HostPort, ReplyCode, ToHostPort};
use std::future::Future;
use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::time::Duration;
use tokio::net::TcpStream;

/// A client with a user id or a timeout: `Client::new().user_id("alice")`.
pub type Client = socks4_client::Client<TokioIo>;

/// A BIND the proxy granted: announce [`listen`](Bound::listen) to the peer,
/// then [`accept`](Bound::accept).
pub type Bound = socks4_client::Bound<TokioIo>;

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

/// tokio's TCP as the client uses it ([`socks4_client::Io`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioIo;

impl socks4_client::Io for TokioIo {
    type Stream = TcpStream;

    async fn connect(&self, to: &HostPort) -> io::Result<TcpStream> {
        match to.socket_addr() {
            Some(addr) => TcpStream::connect(addr).await,
            None => TcpStream::connect((&*to.host_str(), to.port)).await,
        }
    }

    async fn read(&self, stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            stream.readable().await?;
            match stream.try_read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                done => return done,
            }
        }
    }

    async fn write_all(&self, stream: &mut TcpStream, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            stream.writable().await?;
            match stream.try_write(buf) {
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn peer_addr(&self, stream: &TcpStream) -> io::Result<SocketAddr> {
        stream.peer_addr()
    }

    async fn timeout<T>(&self, after: Duration, fut: impl Future<Output = T>) -> Option<T> {
        tokio::time::timeout(after, fut).await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send<T: Send>(_: &T) {}

    #[test]
    fn the_futures_are_send() {
        // Spawnable on a multi-threaded runtime.
        let f = connect("proxy.lan:1080", "example.com:80");
        send(&f);
        let client = Client::new().user_id("alice");
        let f = client.bind("127.0.0.1:1080", "127.0.0.1:0".parse().unwrap());
        send(&f);
        let f = client.connect(("proxy.lan", 1080), "127.0.0.1:80");
        send(&f);
    }
}
