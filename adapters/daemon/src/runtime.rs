//! The seam between the shared server and one async runtime: [`Runtime`] (clock,
//! timers, tasks, and registering sockets with the runtime's reactor) and
//! [`Stream`] (a registered TCP socket: its file descriptor and its readiness).
//!
//! Sockets are created, bound and connected here, in shared code, with
//! `socket2` (so that every runtime gets the same socket options); a runtime only
//! registers them. Bytes move through the socket's descriptor once the runtime
//! says it is ready ([`Stream::try_io`]), which is what lets the relay splice
//! without buffers and lets an idle connection hold none.
//!
//! An adapter implements [`Runtime`] for a value (a handle to its executor) and
//! [`Stream`] for its registered socket type; the async-io based runtimes (smol,
//! async-std) share one implementation behind the `async-io` feature.

use std::future::{poll_fn, Future};
use std::io::{self, ErrorKind};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::task::{ready, Context, Poll};
use std::time::Instant;

/// Which way bytes go on a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Reading: data (or end of stream, or an error) is waiting.
    Read,
    /// Writing: there is room in the send buffer (or an error).
    Write,
}

/// A TCP socket registered with a runtime's reactor.
pub trait Stream: AsFd + Send + Sync + 'static {
    /// Polls until the socket may be ready for `dir`. May be spurious: the
    /// operation that follows can still report `WouldBlock`.
    fn poll_ready(&self, dir: Direction, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Runs a non-blocking operation `op` on the socket's descriptor. When `op`
    /// reports `WouldBlock`, the runtime forgets that the socket was ready for
    /// `dir` (so the next [`poll_ready`](Self::poll_ready) waits for the
    /// reactor), and the error is returned.
    fn try_io<T>(
        &self,
        dir: Direction,
        op: impl FnOnce(BorrowedFd<'_>) -> io::Result<T>,
    ) -> io::Result<T>;
}

/// What the shared server needs from an async runtime. Implemented for a value
/// (cheap to clone: a handle), so that the clock can be the runtime's own (a
/// test runtime may pause it) rather than the system's.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// The runtime's name, for logs and metrics (`tokio`, `smol`, ...).
    const NAME: &'static str;
    /// A connected TCP socket.
    type Stream: Stream;
    /// A listening TCP socket.
    type Listener: Send + Sync + 'static;

    /// The runtime's clock.
    fn now(&self) -> Instant;
    /// Completes at `deadline` on the runtime's clock.
    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> + Send;
    /// Runs a task in the background.
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static);
    /// Runs a blocking function (a name lookup) off the executor's threads.
    /// `Err` when the function panicked or the runtime is shutting down.
    fn spawn_blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> impl Future<Output = io::Result<T>> + Send;

    /// Registers a bound, listening, non-blocking socket.
    fn listener(&self, socket: TcpListener) -> io::Result<Self::Listener>;
    /// Accepts one connection: the stream and the peer's address.
    fn accept(
        &self,
        listener: &Self::Listener,
    ) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send;
    /// Registers a non-blocking socket that is connected or connecting.
    fn stream(&self, socket: TcpStream) -> io::Result<Self::Stream>;
}

/// Waits until `op` on `stream` does not report `WouldBlock`.
pub(crate) async fn io<S: Stream, T>(
    stream: &S,
    dir: Direction,
    mut op: impl FnMut(BorrowedFd<'_>) -> io::Result<T>,
) -> io::Result<T> {
    poll_fn(|cx| poll_io(stream, dir, cx, &mut op)).await
}

/// One poll of `op`: tries it, and on `WouldBlock` waits for readiness.
pub(crate) fn poll_io<S: Stream, T>(
    stream: &S,
    dir: Direction,
    cx: &mut Context<'_>,
    op: &mut impl FnMut(BorrowedFd<'_>) -> io::Result<T>,
) -> Poll<io::Result<T>> {
    loop {
        match stream.try_io(dir, &mut *op) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                ready!(stream.poll_ready(dir, cx))?;
            }
            r => return Poll::Ready(r),
        }
    }
}

/// Reads what is there (at least one byte, or 0 at end of stream).
pub(crate) async fn read<S: Stream>(stream: &S, buf: &mut [u8]) -> io::Result<usize> {
    io(stream, Direction::Read, |fd| recv(fd, buf)).await
}

/// Writes all of `buf`.
pub(crate) async fn write_all<S: Stream>(stream: &S, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        let n = io(stream, Direction::Write, |fd| send(fd, buf)).await?;
        buf = &buf[n..];
    }
    Ok(())
}

/// Completes at `deadline`, or never (no deadline).
pub(crate) async fn sleep_until_or_never<R: Runtime>(rt: &R, deadline: Option<Instant>) {
    match deadline {
        Some(d) => rt.sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// `fut`'s output, or `None` when `deadline` comes first (with no deadline,
/// `fut` alone).
pub(crate) async fn before<R: Runtime, T>(
    rt: &R,
    deadline: Option<Instant>,
    fut: impl Future<Output = T>,
) -> Option<T> {
    let mut fut = std::pin::pin!(fut);
    let mut timer = std::pin::pin!(sleep_until_or_never(rt, deadline));
    poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        timer.as_mut().poll(cx).map(|()| None)
    })
    .await
}

/// `recv(2)` without flags.
pub(crate) fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    rustix::net::recv(fd, buf, rustix::net::RecvFlags::empty())
        .map(|(n, _)| n)
        .map_err(io::Error::from)
}

/// `send(2)` with `MSG_NOSIGNAL`: a peer that went away is an `EPIPE` error,
/// never a SIGPIPE that would end an embedding program.
pub(crate) fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    rustix::net::send(fd, buf, rustix::net::SendFlags::NOSIGNAL).map_err(io::Error::from)
}

/// Shuts down the sending half (TCP half-close: the peer reads end of stream).
pub(crate) fn shutdown_write(fd: BorrowedFd<'_>) -> io::Result<()> {
    rustix::net::shutdown(fd, rustix::net::Shutdown::Write).map_err(io::Error::from)
}

/// The runtime-independent parts of a runtime built on async-io's reactor
/// (smol; async-std, whose sockets are async-io's): its [`Stream`] and
/// listener types and how to register sockets with it.
#[cfg(feature = "async-io")]
pub mod async_io {
    use super::{Direction, Stream};
    use async_io::Async;
    use std::io;
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::os::fd::{AsFd, BorrowedFd};
    use std::task::{Context, Poll};

    impl Stream for Async<TcpStream> {
        fn poll_ready(&self, dir: Direction, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            match dir {
                Direction::Read => self.poll_readable(cx),
                Direction::Write => self.poll_writable(cx),
            }
        }

        fn try_io<T>(
            &self,
            _dir: Direction,
            op: impl FnOnce(BorrowedFd<'_>) -> io::Result<T>,
        ) -> io::Result<T> {
            // async-io keeps no readiness of its own: `poll_readable` always
            // waits for the reactor's next event after a `WouldBlock`.
            op(self.get_ref().as_fd())
        }
    }

    /// Registers a listening socket with async-io's reactor.
    pub fn listener(socket: TcpListener) -> io::Result<Async<TcpListener>> {
        Async::new(socket)
    }

    /// Accepts one connection.
    pub async fn accept(
        listener: &Async<TcpListener>,
    ) -> io::Result<(Async<TcpStream>, SocketAddr)> {
        listener.accept().await
    }

    /// Registers a connected or connecting socket with async-io's reactor.
    pub fn stream(socket: TcpStream) -> io::Result<Async<TcpStream>> {
        Async::new(socket)
    }
}
