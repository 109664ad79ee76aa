//! The smol runtime for the shared connection driver
//! ([`socks4_daemon::driver`]): smol's sockets, resolver, timer and spawner.

use socks4_daemon::driver::{self, Runtime};
use socks4_daemon::Daemon;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// The smol [`Runtime`] (tasks run on smol's global executor).
pub struct Smol;

impl Runtime for Smol {
    type Stream = smol::net::TcpStream;
    type Listener = smol::net::TcpListener;

    async fn bind(addr: SocketAddr) -> io::Result<Self::Listener> {
        smol::net::TcpListener::bind(addr).await
    }

    fn listener_addr(listener: &Self::Listener) -> io::Result<SocketAddr> {
        listener.local_addr()
    }

    async fn accept(
        listener: &Self::Listener,
    ) -> io::Result<(Self::Stream, SocketAddr, SocketAddr)> {
        let (stream, peer) = listener.accept().await?;
        let local = stream.local_addr()?;
        Ok((stream, peer, local))
    }

    async fn connect(addr: SocketAddr) -> io::Result<(Self::Stream, SocketAddr)> {
        let stream = smol::net::TcpStream::connect(addr).await?;
        let local = stream.local_addr()?;
        Ok((stream, local))
    }

    async fn resolve(host: String, port: u16) -> io::Result<Vec<IpAddr>> {
        Ok(smol::net::resolve((host.as_str(), port))
            .await?
            .into_iter()
            .map(|a| a.ip())
            .collect())
    }

    async fn sleep_until(deadline: Instant) {
        smol::Timer::at(deadline).await;
    }

    fn spawn(task: impl Future<Output = ()> + Send + 'static) {
        smol::spawn(task).detach();
    }
}

/// Binds the daemon's listen addresses and serves until [`Daemon::shutdown`];
/// `on_bound` gets the bound addresses first.
pub async fn run(daemon: Daemon, on_bound: impl FnOnce(Vec<SocketAddr>)) -> io::Result<()> {
    driver::run::<Smol>(daemon, on_bound).await
}
