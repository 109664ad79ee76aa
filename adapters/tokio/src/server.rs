//! The tokio runtime for the shared server ([`socks4_daemon`]): tokio's reactor,
//! clock (so a test may pause it), timers and tasks. Everything else is shared
//! with the other adapters.

use socks4_daemon::runtime::{Direction, Runtime, Stream};
use socks4_daemon::Daemon;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::io::Interest;

/// The tokio [`Runtime`]: use it inside a tokio runtime (it spawns on the
/// current one).
#[derive(Debug, Clone, Copy, Default)]
pub struct Tokio;

/// The readiness tokio waits for to move bytes in `dir`.
fn interest(dir: Direction) -> Interest {
    match dir {
        Direction::Read => Interest::READABLE,
        Direction::Write => Interest::WRITABLE,
    }
}

/// A TCP stream registered with tokio's reactor.
#[derive(Debug)]
pub struct TokioStream(tokio::net::TcpStream);

impl AsFd for TokioStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl Stream for TokioStream {
    fn poll_ready(&self, dir: Direction, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match dir {
            Direction::Read => self.0.poll_read_ready(cx),
            Direction::Write => self.0.poll_write_ready(cx),
        }
    }

    fn try_io<T>(
        &self,
        dir: Direction,
        op: impl FnOnce(BorrowedFd<'_>) -> io::Result<T>,
    ) -> io::Result<T> {
        self.0.try_io(interest(dir), || op(self.0.as_fd()))
    }
}

/// A UDP socket registered with tokio's reactor (the resolver's queries).
#[derive(Debug)]
pub struct TokioDatagram(tokio::net::UdpSocket);

impl AsFd for TokioDatagram {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl Stream for TokioDatagram {
    fn poll_ready(&self, dir: Direction, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match dir {
            Direction::Read => self.0.poll_recv_ready(cx),
            Direction::Write => self.0.poll_send_ready(cx),
        }
    }

    fn try_io<T>(
        &self,
        dir: Direction,
        op: impl FnOnce(BorrowedFd<'_>) -> io::Result<T>,
    ) -> io::Result<T> {
        self.0.try_io(interest(dir), || op(self.0.as_fd()))
    }
}

impl Runtime for Tokio {
    const NAME: &'static str = "tokio";

    type Stream = TokioStream;
    type Listener = tokio::net::TcpListener;
    type Datagram = TokioDatagram;

    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    async fn sleep_until(&self, deadline: Instant) {
        tokio::time::sleep_until(deadline.into()).await
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        tokio::spawn(task);
    }

    async fn spawn_blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> io::Result<T> {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(io::Error::other)
    }

    fn listener(&self, socket: std::net::TcpListener) -> io::Result<Self::Listener> {
        tokio::net::TcpListener::from_std(socket)
    }

    async fn accept(&self, listener: &Self::Listener) -> io::Result<(Self::Stream, SocketAddr)> {
        let (stream, peer) = listener.accept().await?;
        Ok((TokioStream(stream), peer))
    }

    fn stream(&self, socket: std::net::TcpStream) -> io::Result<Self::Stream> {
        tokio::net::TcpStream::from_std(socket).map(TokioStream)
    }

    fn datagram(&self, socket: std::net::UdpSocket) -> io::Result<Self::Datagram> {
        tokio::net::UdpSocket::from_std(socket).map(TokioDatagram)
    }
}

/// Binds the daemon's listen addresses and serves on the current tokio runtime
/// until [`Daemon::shutdown`]; `on_bound` gets the bound addresses first.
pub async fn run(daemon: Daemon, on_bound: impl FnOnce(Vec<SocketAddr>)) -> io::Result<()> {
    socks4_daemon::run(Tokio, daemon, on_bound).await
}
