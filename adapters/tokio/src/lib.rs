//! The tokio runtime for the shared connection driver
//! ([`socks4_daemon::driver`]): tokio's sockets, resolver, timer and spawner.
//! Everything else (the session, the policy, the books) is shared with the other
//! adapters.

use socks4_daemon::driver::{self, Runtime};
use socks4_daemon::Daemon;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

/// The tokio [`Runtime`].
pub struct Tokio;

impl Runtime for Tokio {
    type Stream = Compat<tokio::net::TcpStream>;
    type Listener = tokio::net::TcpListener;

    async fn bind(addr: SocketAddr) -> io::Result<Self::Listener> {
        tokio::net::TcpListener::bind(addr).await
    }

    fn listener_addr(listener: &Self::Listener) -> io::Result<SocketAddr> {
        listener.local_addr()
    }

    async fn accept(
        listener: &Self::Listener,
    ) -> io::Result<(Self::Stream, SocketAddr, SocketAddr)> {
        let (stream, peer) = listener.accept().await?;
        let local = stream.local_addr()?;
        Ok((stream.compat(), peer, local))
    }

    async fn connect(addr: SocketAddr) -> io::Result<(Self::Stream, SocketAddr)> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        let local = stream.local_addr()?;
        Ok((stream.compat(), local))
    }

    async fn connect_from(from: IpAddr, to: SocketAddr) -> io::Result<Self::Stream> {
        let socket = if to.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.bind(SocketAddr::new(from, 0))?;
        Ok(socket.connect(to).await?.compat())
    }

    async fn resolve(host: String, port: u16) -> io::Result<Vec<IpAddr>> {
        Ok(tokio::net::lookup_host((host.as_str(), port))
            .await?
            .map(|a| a.ip())
            .collect())
    }

    async fn sleep_until(deadline: Instant) {
        tokio::time::sleep_until(deadline.into()).await
    }

    fn spawn(task: impl Future<Output = ()> + Send + 'static) {
        tokio::spawn(task);
    }
}

/// Binds the daemon's listen addresses and serves on the current tokio runtime
/// until [`Daemon::shutdown`]; `on_bound` gets the bound addresses first.
pub async fn run(daemon: Daemon, on_bound: impl FnOnce(Vec<SocketAddr>)) -> io::Result<()> {
    driver::run::<Tokio>(daemon, on_bound).await
}
