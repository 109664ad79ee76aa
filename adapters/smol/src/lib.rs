//! The smol runtime for the shared connection driver
//! ([`socks4_daemon::driver`]): smol's sockets, resolver, timer and spawner.

use socks4_daemon::driver::{self, Runtime};
use socks4_daemon::Daemon;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// The smol [`Runtime`]. Tasks run on [`EXECUTOR`], which [`block_on`] drives
/// with one thread per core (smol's own global executor has one thread unless
/// `SMOL_THREADS` says otherwise).
pub struct Smol;

/// The executor connection tasks run on.
pub static EXECUTOR: smol::Executor<'static> = smol::Executor::new();

/// Runs `future` to completion while [`EXECUTOR`] runs on every core: this
/// thread and one more per additional core.
pub fn block_on<T>(future: impl Future<Output = T>) -> T {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    for i in 1..threads {
        let spawned = std::thread::Builder::new()
            .name(format!("smol-{i}"))
            .spawn(|| smol::block_on(EXECUTOR.run(smol::future::pending::<()>())));
        if spawned.is_err() {
            break; // fewer threads still work
        }
    }
    smol::block_on(EXECUTOR.run(future))
}

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

    async fn connect_from(from: IpAddr, to: SocketAddr) -> io::Result<Self::Stream> {
        let stream = smol::Async::new(driver::start_connect_from(from, to)?)?;
        stream.writable().await?;
        match stream.get_ref().take_error()? {
            Some(e) => Err(e),
            None => Ok(stream.into()),
        }
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
        EXECUTOR.spawn(task).detach();
    }
}

/// Binds the daemon's listen addresses and serves until [`Daemon::shutdown`];
/// `on_bound` gets the bound addresses first.
pub async fn run(daemon: Daemon, on_bound: impl FnOnce(Vec<SocketAddr>)) -> io::Result<()> {
    driver::run::<Smol>(daemon, on_bound).await
}
