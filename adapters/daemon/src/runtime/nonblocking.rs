//! Non-blocking IO over a registered [`Stream`]: wait for readiness, try the
//! operation, and wait again on `WouldBlock`; the socket calls the server
//! makes (`recv`, `send` without SIGPIPE, half-close); and deadlines on the
//! runtime's clock ([`before`]).

use super::{Direction, Runtime, Stream};
use std::future::{poll_fn, Future};
use std::io::{self, ErrorKind};
use std::os::fd::BorrowedFd;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

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

/// The longest a deadline is set ahead when a configured duration is too
/// long for the clock: about a century, which is never.
const NEVER: Duration = Duration::from_secs(100 * 365 * 86_400);

/// `now + after`, or as far ahead as the clock goes (at most a century) when
/// `after` is too long for it: a configured duration never panics a task.
pub(crate) fn later(now: Instant, after: Duration) -> Instant {
    now.checked_add(after)
        .or_else(|| now.checked_add(NEVER.min(after)))
        .unwrap_or(now)
}
