//! The relay: moves bytes both ways between the client and the other side once
//! the handshake is over, until both directions have ended, either side fails,
//! neither side sends for the idle timeout, or the server cuts relays at the
//! end of its shutdown grace period.
//!
//! It is readiness-driven and holds nothing while idle: a direction waits for
//! its source to be readable, then moves what is there through a per-thread
//! scratch buffer straight into the destination. Only bytes the destination
//! could not take at once are kept (a per-direction buffer that exists while
//! they are in flight).
//!
//! Semantics: end of stream on one side shuts down the other side's sending
//! half (TCP half-close) and the other direction goes on; a read or write error
//! (a reset) on either side ends the relay at once and both sockets are closed;
//! the client's early data goes first; bytes are counted as they are written,
//! so the counts are exact even when the relay ends with an error.

use crate::runtime::{poll_io, recv, send, shutdown_write, Direction, Runtime, Stream};
use socks4_proto::server::{RelayEnd, RelayStats};
use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::io::{self, ErrorKind};
use std::pin::pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// Size of the per-thread scratch buffer a chunk moves through.
pub(crate) const SCRATCH_SIZE: usize = 64 * 1024;

/// How many chunks one direction moves before it lets other tasks run.
const CHUNKS_PER_POLL: usize = 16;

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0u8; SCRATCH_SIZE].into_boxed_slice());
}

/// One direction's state.
#[derive(Debug, Default)]
struct Half {
    /// Bytes read but not yet written, from `sent` on; empty (no allocation)
    /// whenever the destination keeps up.
    pending: Vec<u8>,
    sent: usize,
    /// Bytes written to the destination.
    moved: u64,
    /// The source reached end of stream.
    eof: bool,
    /// End of stream was passed on; nothing more to do.
    done: bool,
}

impl Half {
    /// Moves bytes from `from` to `to` until both would block (Pending), the
    /// source's end of stream has been passed on (Ready(Ok)), or an error.
    fn poll<S: Stream>(&mut self, from: &S, to: &S, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.done {
            return Poll::Ready(Ok(()));
        }
        for _ in 0..CHUNKS_PER_POLL {
            // First what is waiting for the destination.
            while self.sent < self.pending.len() {
                let n = match poll_io(to, Direction::Write, cx, &mut |fd| {
                    send(fd, &self.pending[self.sent..])
                }) {
                    Poll::Ready(r) => r?,
                    Poll::Pending => return Poll::Pending,
                };
                self.sent += n;
                self.moved += n as u64;
            }
            if !self.pending.is_empty() {
                self.pending = Vec::new();
                self.sent = 0;
            }
            if self.eof {
                // The peer may already be gone; the other direction finds out.
                let _ = shutdown_write(std::os::fd::AsFd::as_fd(to));
                self.done = true;
                return Poll::Ready(Ok(()));
            }
            match self.move_chunk(from, to) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    match from.poll_ready(Direction::Read, cx) {
                        Poll::Ready(r) => r?,
                        Poll::Pending => return Poll::Pending,
                    }
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        // A busy direction yields so that other connections get their turn.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Reads one chunk into the scratch buffer and writes as much of it as the
    /// destination takes; keeps the rest. `WouldBlock` when the source has
    /// nothing.
    fn move_chunk<S: Stream>(&mut self, from: &S, to: &S) -> io::Result<()> {
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let n = from.try_io(Direction::Read, |fd| recv(fd, &mut scratch))?;
            if n == 0 {
                self.eof = true;
                return Ok(());
            }
            let written = match to.try_io(Direction::Write, |fd| send(fd, &scratch[..n])) {
                Ok(m) => m,
                Err(e) if e.kind() == ErrorKind::WouldBlock => 0,
                Err(e) => return Err(e),
            };
            self.moved += written as u64;
            if written < n {
                self.pending.extend_from_slice(&scratch[written..n]);
            }
            Ok(())
        })
    }
}

/// Both directions of one relay.
struct Pair<'a, S> {
    client: &'a S,
    dest: &'a S,
    up: Half,
    down: Half,
}

impl<S: Stream> Pair<'_, S> {
    fn moved(&self) -> u64 {
        self.up.moved + self.down.moved
    }

    fn stats(&self) -> RelayStats {
        RelayStats {
            client_to_dest: self.up.moved,
            dest_to_client: self.down.moved,
        }
    }

    /// Ready once both directions are done, or with the first error.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let up = self.up.poll(self.client, self.dest, cx)?;
        let down = self.down.poll(self.dest, self.client, cx)?;
        if up.is_ready() && down.is_ready() {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }
}

/// Relays between `client` and `dest` (writing `leftover`, the client's early
/// data, to `dest` first) until the relay ends; see the [module docs](self).
/// `idle` of `None` means no idle timeout; `cut` completes when the server cuts
/// relays at the end of its shutdown grace period.
pub(crate) async fn relay<R: Runtime>(
    rt: &R,
    client: &R::Stream,
    dest: &R::Stream,
    leftover: Vec<u8>,
    idle: Option<Duration>,
    cut: impl Future<Output = ()>,
) -> (RelayStats, RelayEnd) {
    let mut pair = Pair {
        client,
        dest,
        up: Half {
            pending: leftover,
            ..Half::default()
        },
        down: Half::default(),
    };
    let mut cut = pin!(cut);
    let mut last_moved = 0;
    let mut last_activity = rt.now();
    loop {
        let deadline = idle.map(|d| last_activity + d);
        let mut timer = pin!(async {
            match deadline {
                Some(d) => rt.sleep_until(d).await,
                None => std::future::pending().await,
            }
        });
        let woke = poll_fn(|cx| {
            let polled = pair.poll(cx);
            if pair.moved() != last_moved {
                // Traffic: the idle timeout runs from now (one clock read per
                // wake-up that moved bytes).
                last_moved = pair.moved();
                last_activity = rt.now();
            }
            if let Poll::Ready(r) = polled {
                return Poll::Ready(Wake::Io(r));
            }
            if cut.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Wake::Cut);
            }
            if timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Wake::Timer);
            }
            Poll::Pending
        })
        .await;
        let end = match woke {
            Wake::Io(Ok(())) => RelayEnd::Finished,
            Wake::Io(Err(e)) => RelayEnd::Error(e.kind()),
            Wake::Cut => RelayEnd::Shutdown,
            Wake::Timer => match idle {
                // Traffic since the timer was set: wait again from the last of it.
                Some(d) if rt.now() < last_activity + d => continue,
                _ => RelayEnd::Idle,
            },
        };
        return (pair.stats(), end);
    }
}

enum Wake {
    Io(io::Result<()>),
    Cut,
    Timer,
}
