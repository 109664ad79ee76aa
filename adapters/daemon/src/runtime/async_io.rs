//! The runtime-independent parts of a runtime built on async-io's reactor
//! (smol; async-std, whose sockets are async-io's): its [`Stream`] (TCP and
//! UDP) and listener types and how to register sockets with it.

use super::{Direction, Stream};
use async_io::Async;
use rustix::net::{acceptfrom_with, SocketFlags};
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};
use std::task::{Context, Poll};

impl Stream for Async<UdpSocket> {
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
        op(self.get_ref().as_fd())
    }
}

/// Registers a bound, non-blocking UDP socket with async-io's reactor (as
/// [`Runtime::datagram`](super::Runtime::datagram) asks: not made
/// non-blocking again).
pub fn datagram(socket: UdpSocket) -> io::Result<Async<UdpSocket>> {
    Async::new_nonblocking(socket)
}

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

/// Accepts one connection, non-blocking from the start (`accept4` with
/// `SOCK_NONBLOCK`: async-io's own accept sets `O_NONBLOCK` afterwards, one
/// more system call per connection).
pub async fn accept(listener: &Async<TcpListener>) -> io::Result<(Async<TcpStream>, SocketAddr)> {
    let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
    let (fd, peer) = listener
        .read_with(|l| acceptfrom_with(l, flags).map_err(io::Error::from))
        .await?;
    let peer = peer
        .and_then(|p| SocketAddr::try_from(p).ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an IP peer"))?;
    Ok((Async::new_nonblocking(TcpStream::from(fd))?, peer))
}

/// Registers a non-blocking socket, connected or connecting, with async-io's
/// reactor (as [`Runtime::stream`](super::Runtime::stream) asks: not made
/// non-blocking again).
pub fn stream(socket: TcpStream) -> io::Result<Async<TcpStream>> {
    Async::new_nonblocking(socket)
}
