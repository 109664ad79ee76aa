//! The async-std runtime for the shared server ([`socks4_daemon`]): async-std's
//! tasks and blocking pool, on the async-io reactor and timers it is built on.
//! Everything else is shared with the other adapters.

use async_io::Async;
use socks4_daemon::runtime::{async_io as shared, Runtime};
use socks4_daemon::Daemon;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Instant;

/// The async-std [`Runtime`].
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncStd;

impl Runtime for AsyncStd {
    const NAME: &'static str = "async-std";

    type Stream = Async<TcpStream>;
    type Listener = Async<TcpListener>;
    type Datagram = Async<UdpSocket>;

    fn now(&self) -> Instant {
        Instant::now()
    }

    async fn sleep_until(&self, deadline: Instant) {
        async_io::Timer::at(deadline).await;
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        async_std::task::spawn(task);
    }

    async fn spawn_blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> io::Result<T> {
        Ok(async_std::task::spawn_blocking(f).await)
    }

    fn listener(&self, socket: TcpListener) -> io::Result<Self::Listener> {
        shared::listener(socket)
    }

    async fn accept(&self, listener: &Self::Listener) -> io::Result<(Self::Stream, SocketAddr)> {
        shared::accept(listener).await
    }

    fn stream(&self, socket: TcpStream) -> io::Result<Self::Stream> {
        shared::stream(socket)
    }

    fn datagram(&self, socket: UdpSocket) -> io::Result<Self::Datagram> {
        shared::datagram(socket)
    }
}

/// Binds the daemon's listen addresses and serves until [`Daemon::shutdown`];
/// `on_bound` gets the bound addresses first.
pub async fn run(daemon: Daemon, on_bound: impl FnOnce(Vec<SocketAddr>)) -> io::Result<()> {
    socks4_daemon::run(AsyncStd, daemon, on_bound).await
}
