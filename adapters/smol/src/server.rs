//! The smol runtime for the shared server ([`socks4_daemon`]): async-io's
//! reactor and timers, and an executor that [`Smol::block_on`] runs on every
//! core. Everything else is shared with the other adapters.

use async_io::Async;
use socks4_daemon::runtime::{async_io as shared, Runtime};
use socks4_daemon::Daemon;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::Instant;

/// The smol [`Runtime`]: a handle to the executor connection tasks run on.
#[derive(Debug, Clone, Default)]
pub struct Smol {
    executor: Arc<smol::Executor<'static>>,
}

impl Smol {
    /// A runtime with a new executor.
    pub fn new() -> Smol {
        Smol::default()
    }

    /// Runs `future` to completion while the executor runs on every core: this
    /// thread and one more per additional core (smol's global executor has one
    /// thread unless `SMOL_THREADS` says otherwise).
    pub fn block_on<T>(&self, future: impl Future<Output = T>) -> T {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        for i in 1..threads {
            let executor = self.executor.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("smol-{i}"))
                .spawn(move || smol::block_on(executor.run(smol::future::pending::<()>())));
            if spawned.is_err() {
                break; // fewer threads still work
            }
        }
        smol::block_on(self.executor.run(future))
    }
}

impl Runtime for Smol {
    const NAME: &'static str = "smol";

    type Stream = Async<TcpStream>;
    type Listener = Async<TcpListener>;
    type Datagram = Async<UdpSocket>;

    fn now(&self) -> Instant {
        Instant::now()
    }

    async fn sleep_until(&self, deadline: Instant) {
        smol::Timer::at(deadline).await;
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.executor.spawn(task).detach();
    }

    async fn spawn_blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> io::Result<T> {
        Ok(smol::unblock(f).await)
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

/// Binds the daemon's listen addresses and serves on `rt` until
/// [`Daemon::shutdown`]; `on_bound` gets the bound addresses first.
pub async fn run(
    rt: Smol,
    daemon: Daemon,
    on_bound: impl FnOnce(Vec<SocketAddr>),
) -> io::Result<()> {
    socks4_daemon::run(rt, daemon, on_bound).await
}
