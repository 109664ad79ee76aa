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

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};
use std::task::{Context, Poll};
use std::time::Instant;

/// Which way bytes go on a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Reading: data (or end of stream, or an error) is waiting.
    Read,
    /// Writing: there is room in the send buffer (or an error).
    Write,
}

/// A socket registered with a runtime's reactor: a TCP connection
/// ([`Runtime::Stream`]) or a UDP socket ([`Runtime::Datagram`]).
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
    /// A UDP socket (the resolver's queries); the same readiness calls as a
    /// stream.
    type Datagram: Stream;

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
    /// Registers a bound, non-blocking UDP socket.
    fn datagram(&self, socket: UdpSocket) -> io::Result<Self::Datagram>;
}

#[cfg(feature = "async-io")]
pub mod async_io;
pub(crate) mod endpoint;
mod nonblocking;
pub(crate) mod own_sockets;
pub(crate) mod pipe;
pub(crate) mod socket;
pub(crate) mod tls;

pub(crate) use nonblocking::{
    before, later, poll_io, read, recv, send, shutdown_write, sleep_until_or_never, write_all,
};
