//! The async-std runtime for the shared connection driver
//! ([`socks4_daemon::driver`]): async-std's sockets, resolver, timer and spawner.
//!
//! async-std is discontinued upstream in favour of smol and carries an
//! "unmaintained" advisory (RUSTSEC-2025-0052). It is kept working because the
//! project asks for it, and it is removable by deleting this folder and its line
//! in the workspace `Cargo.toml` and in the `ADAPTERS` lists of the conformance
//! suite (`tests/tests/e2e.rs`) and the load tool (`tests/src/bin/socks4-load.rs`).

use async_std::net::ToSocketAddrs;
use socks4_daemon::driver::{self, Runtime};
use socks4_daemon::Daemon;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// async-std's TCP stream with TCP half-close on `poll_close`: async-std only
/// flushes there, while the driver relies on close shutting down the sending half.
pub struct Stream(async_std::net::TcpStream);

impl async_std::io::Read for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl async_std::io::Write for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.0.shutdown(Shutdown::Write))
    }
}

/// The async-std [`Runtime`].
pub struct AsyncStd;

impl Runtime for AsyncStd {
    type Stream = Stream;
    type Listener = async_std::net::TcpListener;

    async fn bind(addr: SocketAddr) -> io::Result<Self::Listener> {
        async_std::net::TcpListener::bind(addr).await
    }

    fn listener_addr(listener: &Self::Listener) -> io::Result<SocketAddr> {
        listener.local_addr()
    }

    async fn accept(
        listener: &Self::Listener,
    ) -> io::Result<(Self::Stream, SocketAddr, SocketAddr)> {
        let (stream, peer) = listener.accept().await?;
        let local = stream.local_addr()?;
        Ok((Stream(stream), peer, local))
    }

    async fn connect(addr: SocketAddr) -> io::Result<(Self::Stream, SocketAddr)> {
        let stream = async_std::net::TcpStream::connect(addr).await?;
        let local = stream.local_addr()?;
        Ok((Stream(stream), local))
    }

    async fn connect_from(from: IpAddr, to: SocketAddr) -> io::Result<Self::Stream> {
        let stream = async_io::Async::new(driver::start_connect_from(from, to)?)?;
        stream.writable().await?;
        match stream.get_ref().take_error()? {
            Some(e) => Err(e),
            None => Ok(Stream(stream.into_inner()?.into())),
        }
    }

    async fn resolve(host: String, port: u16) -> io::Result<Vec<IpAddr>> {
        Ok((host.as_str(), port)
            .to_socket_addrs()
            .await?
            .map(|a| a.ip())
            .collect())
    }

    async fn sleep_until(deadline: Instant) {
        async_std::task::sleep(deadline.saturating_duration_since(Instant::now())).await;
    }

    fn spawn(task: impl Future<Output = ()> + Send + 'static) {
        async_std::task::spawn(task);
    }
}

/// Binds the daemon's listen addresses and serves until [`Daemon::shutdown`];
/// `on_bound` gets the bound addresses first.
pub async fn run(daemon: Daemon, on_bound: impl FnOnce(Vec<SocketAddr>)) -> io::Result<()> {
    driver::run::<AsyncStd>(daemon, on_bound).await
}
