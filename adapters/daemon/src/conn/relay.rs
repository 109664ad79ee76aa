//! The relay: moves bytes both ways between the client and the other side once
//! the handshake is over, until both directions have ended, either side fails,
//! neither side sends for the idle timeout, or the server cuts relays at the
//! end of its shutdown grace period.
//!
//! It is readiness-driven and holds nothing while idle. A direction waits for
//! its source to be readable, then moves what is there:
//! - on Linux with splice(2): socket → pipe → socket, the bytes never entering
//!   user space, through a pipe taken from a bounded pool ([`crate::runtime::pipe`]) only
//!   while bytes are in flight;
//! - otherwise (no pipe available, splice refused, either side over TLS):
//!   through a per-thread scratch buffer straight into the destination,
//!   keeping only what the destination could not take at once.
//!
//! Either side is an [`Endpoint`]: plain TCP, or TLS (whose records rustls
//! decrypts and encrypts on the way; what rustls took but has not sent yet
//! goes out before the direction reads more, and `close_notify` before the
//! half-close).
//!
//! Semantics: end of stream on one side shuts down the other side's sending
//! half (TCP half-close) and the other direction goes on; a read or write error
//! (a reset) on either side ends the relay at once and both sockets are closed;
//! the client's early data goes first; bytes are counted as they are written,
//! so the counts are exact even when the relay ends with an error.

use crate::limits::meter::{Allowance, Meter, Way};
use crate::observe::conns::{ConnEntry, ConnState};
use crate::runtime::endpoint::Endpoint;
use crate::runtime::pipe::{Pipe, PipePool};
use crate::runtime::{sleep_until_or_never, Direction, Runtime, Stream};
use rustix::pipe::{splice, SpliceFlags};
use socks4_proto::server::{RelayEnd, RelayStats};
use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::io::{self, ErrorKind};
use std::os::fd::AsFd;
use std::pin::pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Size of the per-thread scratch buffer a chunk moves through on the copy path.
pub(crate) const SCRATCH_SIZE: usize = 64 * 1024;

/// The most a metered direction asks its meter for at once: a default relay
/// pipe's worth.
const METERED_CHUNK: usize = crate::runtime::pipe::DEFAULT_PIPE_SIZE;

/// How many chunks one direction moves before it lets other tasks run.
const CHUNKS_PER_POLL: usize = 16;

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0u8; SCRATCH_SIZE].into_boxed_slice());
}

/// splice(2) between a socket and a pipe, never blocking.
fn splice_fd(from: impl AsFd, to: impl AsFd, len: usize) -> io::Result<usize> {
    splice(from, None, to, None, len, SpliceFlags::NONBLOCK).map_err(io::Error::from)
}

/// Whether splice's error means "not for these descriptors": copy instead.
fn splice_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(code) if code == rustix::io::Errno::INVAL.raw_os_error()
            || code == rustix::io::Errno::NOSYS.raw_os_error()
    )
}

/// Why a direction stopped before its end of stream.
#[derive(Debug)]
enum Stop {
    /// A read or write failed.
    Io(io::Error),
    /// The client's traffic quota is used up.
    Quota,
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Stop {
        Stop::Io(e)
    }
}

/// One direction's state.
#[derive(Debug)]
struct Half {
    /// Which way it moves bytes.
    way: Way,
    /// Paced: nothing moves before this time.
    paced_until: Option<Instant>,
    /// Copy path: bytes read but not yet written, from `sent` on; empty (no
    /// allocation) whenever the destination keeps up.
    pending: Vec<u8>,
    sent: usize,
    /// Splice path: the pipe holding `in_pipe` bytes in flight.
    pipe: Option<Pipe>,
    in_pipe: usize,
    /// Whether to try splice (cleared when the kernel refuses it).
    splice: bool,
    /// Bytes written to the destination.
    moved: u64,
    /// The source reached end of stream.
    eof: bool,
    /// End of stream was passed on; nothing more to do.
    done: bool,
    /// What this direction waits for: its source readable or its destination
    /// writable.
    blocked: Option<Direction>,
}

impl Half {
    fn new(way: Way, pending: Vec<u8>, splice: bool) -> Half {
        Half {
            way,
            paced_until: None,
            pending,
            sent: 0,
            pipe: None,
            in_pipe: 0,
            splice,
            moved: 0,
            eof: false,
            done: false,
            blocked: None,
        }
    }

    /// Moves bytes from `from` to `to` until both would block (Pending), the
    /// source's end of stream has been passed on (Ready(Ok)), or an error.
    ///
    /// A direction that is waiting for readiness asks only its runtime until
    /// the socket it waits on is ready: being woken for the other direction
    /// costs it no system call.
    ///
    /// With `limit`, each new chunk first asks the meter how much may move at
    /// that time: a direction that may move nothing yet remembers when it may
    /// (the relay's timer wakes it), and one whose quota is used up stops.
    fn poll<S: Stream>(
        &mut self,
        from: &mut Endpoint<S>,
        to: &mut Endpoint<S>,
        cx: &mut Context<'_>,
        limit: Option<(&Meter, Instant)>,
        last: bool,
    ) -> Poll<Result<(), Stop>> {
        if self.done {
            return Poll::Ready(Ok(()));
        }
        if let (Some(until), Some((_, now))) = (self.paced_until, limit) {
            if now < until {
                return Poll::Pending;
            }
            self.paced_until = None;
        }
        if let Some(dir) = self.blocked {
            let side = if dir == Direction::Read { &*from } else { &*to };
            match side.poll_ready(dir, cx) {
                Poll::Ready(r) => r?,
                Poll::Pending => return Poll::Pending,
            }
            self.blocked = None;
        }
        for _ in 0..CHUNKS_PER_POLL {
            if let Some(end) = self.step(from, to, cx, limit, last) {
                return end;
            }
        }
        // A busy direction yields so that other connections get their turn.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// One step: first what is in flight (in the pipe, kept from a copy, or
    /// held by TLS), else the end of stream passed on, else a new chunk.
    /// `None`: go on with the next step; otherwise what [`poll`](Self::poll)
    /// returns. `last`: the other direction is done (see
    /// [`pass_eof`](Self::pass_eof)).
    fn step<S: Stream>(
        &mut self,
        from: &mut Endpoint<S>,
        to: &mut Endpoint<S>,
        cx: &mut Context<'_>,
        limit: Option<(&Meter, Instant)>,
        last: bool,
    ) -> Option<Poll<Result<(), Stop>>> {
        let flushed = if let (Some(pipe), Some(to)) = (&self.pipe, to.plain()) {
            to.try_io(Direction::Write, |fd| {
                splice_fd(&pipe.read, fd, self.in_pipe)
            })
            .inspect(|&n| {
                self.in_pipe -= n;
                if self.in_pipe == 0 {
                    if let Some(pipe) = self.pipe.take() {
                        PipePool::global().put(pipe);
                    }
                }
            })
        } else if self.sent < self.pending.len() {
            to.try_write(&self.pending[self.sent..]).inspect(|&n| {
                self.sent += n;
                if self.sent == self.pending.len() {
                    self.pending = Vec::new();
                    self.sent = 0;
                }
            })
        } else if to.wants_flush() {
            // TLS: records rustls took and has not sent yet.
            to.try_flush().map(|()| 0)
        } else if self.eof {
            return self.pass_eof(to, cx, last);
        } else {
            return self.move_chunk(from, to, cx, limit);
        };
        match flushed {
            Ok(n) => {
                self.moved += n as u64;
                None
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => self.wait_for(to, Direction::Write, cx),
            Err(e) => Some(Poll::Ready(Err(e.into()))),
        }
    }

    /// The source ended and everything before it went out: half-close the
    /// destination (or wait until it can be). When the other direction is
    /// done too (`last`) and the destination is plain TCP, the relay ends
    /// now and its sockets are closed: the close sends the FIN (nothing is
    /// left unread on either socket, both having reached their end), so a
    /// `shutdown` first would be a system call for nothing. A TLS
    /// destination still gets its `close_notify`.
    fn pass_eof<S: Stream>(
        &mut self,
        to: &mut Endpoint<S>,
        cx: &mut Context<'_>,
        last: bool,
    ) -> Option<Poll<Result<(), Stop>>> {
        if last && to.plain().is_some() {
            self.done = true;
            return Some(Poll::Ready(Ok(())));
        }
        match to.try_shutdown_write() {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                return self.wait_for(to, Direction::Write, cx);
            }
            // The peer may already be gone; the other direction finds out.
            _ => {}
        }
        self.done = true;
        Some(Poll::Ready(Ok(())))
    }

    /// Nothing in flight: moves a new chunk (`WouldBlock`: the source has
    /// nothing), as much as the meter allows.
    fn move_chunk<S: Stream>(
        &mut self,
        from: &mut Endpoint<S>,
        to: &mut Endpoint<S>,
        cx: &mut Context<'_>,
        limit: Option<(&Meter, Instant)>,
    ) -> Option<Poll<Result<(), Stop>>> {
        let want = match limit {
            None => usize::MAX,
            Some((meter, now)) => match meter.allow(self.way, now, METERED_CHUNK) {
                Allowance::Bytes(n) => n,
                Allowance::WaitUntil(t) => {
                    self.paced_until = Some(t);
                    return Some(Poll::Pending);
                }
                Allowance::QuotaReached => return Some(Poll::Ready(Err(Stop::Quota))),
            },
        };
        let moved = match (self.splice, from.plain(), to.plain()) {
            (true, Some(f), Some(t)) => match self.splice_chunk(f, t, want) {
                Err(e) if splice_unsupported(&e) => {
                    self.splice = false;
                    self.copy_chunk(from, to, want)
                }
                other => other,
            },
            _ => self.copy_chunk(from, to, want),
        };
        if let Some((meter, _)) = limit {
            let read = *moved.as_ref().unwrap_or(&0);
            meter.moved(self.way, want, read);
        }
        match moved {
            Ok(_) => None,
            Err(e) if e.kind() == ErrorKind::WouldBlock => self.wait_for(from, Direction::Read, cx),
            Err(e) => Some(Poll::Ready(Err(e.into()))),
        }
    }

    /// [`wait`](Self::wait) as a step's answer: `None` when `socket` is ready
    /// again (go on), else pending or the error.
    fn wait_for<S: Stream>(
        &mut self,
        socket: &Endpoint<S>,
        dir: Direction,
        cx: &mut Context<'_>,
    ) -> Option<Poll<Result<(), Stop>>> {
        match self.wait(socket, dir, cx) {
            Poll::Ready(Ok(())) => None,
            Poll::Ready(Err(e)) => Some(Poll::Ready(Err(e.into()))),
            Poll::Pending => Some(Poll::Pending),
        }
    }

    /// After a `WouldBlock`: asks the runtime to wake the task when `socket` is
    /// ready for `dir`, and remembers that this direction waits for it.
    fn wait<S: Stream>(
        &mut self,
        socket: &Endpoint<S>,
        dir: Direction,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        let polled = socket.poll_ready(dir, cx);
        if polled.is_pending() {
            self.blocked = Some(dir);
        }
        polled
    }

    /// Splices what the source has (at most `max` bytes) into a pipe and on
    /// into the destination; keeps the pipe if the destination did not take it
    /// all. Without a pipe, copies through user space (as
    /// [`copy_chunk`](Self::copy_chunk)); when the kernel refuses to splice
    /// these sockets, an error that [`splice_unsupported`] recognizes. The
    /// bytes read from the source; `WouldBlock` when it has nothing.
    fn splice_chunk<S: Stream>(&mut self, from: &S, to: &S, max: usize) -> io::Result<usize> {
        let pool = PipePool::global();
        let Some(pipe) = pool.take() else {
            return copy_with(
                &mut self.pending,
                &mut self.moved,
                &mut self.eof,
                max,
                |buf| from.try_io(Direction::Read, |fd| crate::runtime::recv(fd, buf)),
                |buf| to.try_io(Direction::Write, |fd| crate::runtime::send(fd, buf)),
            );
        };
        let len = pipe.size.min(max);
        let n = match from.try_io(Direction::Read, |fd| splice_fd(fd, &pipe.write, len)) {
            Ok(n) => n,
            Err(e) => {
                pool.put(pipe);
                return Err(e);
            }
        };
        if n == 0 {
            pool.put(pipe);
            self.eof = true;
            return Ok(0);
        }
        match to.try_io(Direction::Write, |fd| splice_fd(&pipe.read, fd, n)) {
            Ok(m) => {
                self.moved += m as u64;
                if m == n {
                    pool.put(pipe);
                } else {
                    self.pipe = Some(pipe);
                    self.in_pipe = n - m;
                }
                Ok(n)
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                self.pipe = Some(pipe);
                self.in_pipe = n;
                Ok(n)
            }
            Err(e) => {
                pool.discard(pipe);
                Err(e)
            }
        }
    }

    /// Reads one chunk (at most `max` bytes) into the scratch buffer and
    /// writes as much of it as the destination takes; keeps the rest. The bytes
    /// read; `WouldBlock` when the source has nothing.
    fn copy_chunk<S: Stream>(
        &mut self,
        from: &mut Endpoint<S>,
        to: &mut Endpoint<S>,
        max: usize,
    ) -> io::Result<usize> {
        copy_with(
            &mut self.pending,
            &mut self.moved,
            &mut self.eof,
            max,
            |buf| from.try_read(buf),
            |buf| to.try_write(buf),
        )
    }
}

/// One chunk through the per-thread scratch buffer: `read` at most `max`
/// bytes into it, `write` as much as goes, keep the rest in `pending`; counts
/// into `moved`, notes end of stream in `eof`. The bytes read.
fn copy_with(
    pending: &mut Vec<u8>,
    moved: &mut u64,
    eof: &mut bool,
    max: usize,
    read: impl FnOnce(&mut [u8]) -> io::Result<usize>,
    write: impl FnOnce(&[u8]) -> io::Result<usize>,
) -> io::Result<usize> {
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        let len = scratch.len().min(max);
        let n = read(&mut scratch[..len])?;
        if n == 0 {
            *eof = true;
            return Ok(0);
        }
        let written = match write(&scratch[..n]) {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::WouldBlock => 0,
            Err(e) => return Err(e),
        };
        *moved += written as u64;
        if written < n {
            pending.extend_from_slice(&scratch[written..n]);
        }
        Ok(n)
    })
}

impl Drop for Half {
    fn drop(&mut self) {
        // A pipe with bytes left in it cannot be reused.
        if let Some(pipe) = self.pipe.take() {
            PipePool::global().discard(pipe);
        }
    }
}

/// Both directions of one relay.
struct Pair<'a, S> {
    client: &'a mut Endpoint<S>,
    dest: &'a mut Endpoint<S>,
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

    /// Ready once both directions are done, or with the first stop.
    fn poll(
        &mut self,
        cx: &mut Context<'_>,
        limit: Option<(&Meter, Instant)>,
    ) -> Poll<Result<(), Stop>> {
        let up = self
            .up
            .poll(self.client, self.dest, cx, limit, self.down.done)?;
        let down = self
            .down
            .poll(self.dest, self.client, cx, limit, self.up.done)?;
        if up.is_ready() && down.is_ready() {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }

    /// The earliest time a paced direction may move again.
    fn paced_until(&self) -> Option<Instant> {
        earliest(self.up.paced_until, self.down.paced_until)
    }
}

/// Relays between `client` and `dest` (writing `leftover`, the client's early
/// data, to `dest` first, and `dest_leftover`, what a parent sent after its
/// answer, to the client first: the pair of them) until the relay ends; see the [module docs](self).
/// `idle` of `None` means no idle timeout; `meter`, when given, paces the
/// relay and counts it against a quota (callers pass only a meter that
/// [`is_limited`](Meter::is_limited): a relay with none reads no clock and
/// asks no meter); `cut` completes with how the relay ends when the server cuts
/// relays at the end of its shutdown grace period
/// ([`RelayEnd::Shutdown`]) or an operator kills the connection
/// ([`RelayEnd::Killed`]); `live`, when given, is kept up to date with the
/// bytes moved and whether a direction has ended (`ctl conns`).
pub(crate) async fn relay<R: Runtime>(
    rt: &R,
    client: &mut Endpoint<R::Stream>,
    dest: &mut Endpoint<R::Stream>,
    (leftover, dest_leftover): (Vec<u8>, Vec<u8>),
    idle: Option<Duration>,
    meter: Option<&Meter>,
    (cut, live): (impl Future<Output = RelayEnd>, Option<&ConnEntry>),
) -> (RelayStats, RelayEnd) {
    let splice = PipePool::global().enabled();
    let mut pair = Pair {
        client,
        dest,
        up: Half::new(Way::Up, leftover, splice),
        down: Half::new(Way::Down, dest_leftover, splice),
    };
    let mut cut = pin!(cut);
    let mut last_moved = 0;
    let mut last_activity = rt.now();
    let mut draining = false;
    loop {
        let paced = pair.paced_until();
        let deadline = earliest(idle.and_then(|d| last_activity.checked_add(d)), paced);
        let mut timer = pin!(sleep_until_or_never(rt, deadline));
        let woke = poll_fn(|cx| {
            // A limited relay reads the clock at each wake-up; others never.
            let limit = meter.map(|m| (m, rt.now()));
            let polled = pair.poll(cx, limit);
            if pair.moved() != last_moved {
                // Traffic: the idle timeout runs from now (one clock read per
                // wake-up that moved bytes).
                last_moved = pair.moved();
                last_activity = rt.now();
                if let Some(live) = live {
                    live.set_bytes(pair.up.moved, pair.down.moved);
                }
            }
            if !draining && pair.up.done != pair.down.done {
                draining = true;
                if let Some(live) = live {
                    live.set_state(ConnState::Draining);
                }
            }
            if let Poll::Ready(r) = polled {
                return Poll::Ready(Wake::Io(r));
            }
            if let Poll::Ready(end) = cut.as_mut().poll(cx) {
                return Poll::Ready(Wake::Cut(end));
            }
            if pair.paced_until() != paced {
                // A direction now waits for its bandwidth: set the timer anew.
                return Poll::Ready(Wake::Paced);
            }
            if timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Wake::Timer);
            }
            Poll::Pending
        })
        .await;
        let end = match woke {
            Wake::Io(Ok(())) => RelayEnd::Finished,
            Wake::Io(Err(Stop::Io(e))) => RelayEnd::Error(e.kind()),
            Wake::Io(Err(Stop::Quota)) => RelayEnd::Limited(socks4_proto::server::Limit::Quota),
            Wake::Cut(end) => end,
            Wake::Paced => continue,
            Wake::Timer => match idle {
                // A paced direction's time came, or traffic since the timer was
                // set: wait again (from the last traffic, for the idle timeout).
                _ if paced.is_some_and(|p| rt.now() >= p) => continue,
                Some(d) if rt.now() < last_activity + d => continue,
                None => continue,
                _ => RelayEnd::Idle,
            },
        };
        return (pair.stats(), end);
    }
}

/// The earlier of two times, either of which may be absent.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

enum Wake {
    Io(Result<(), Stop>),
    Cut(RelayEnd),
    Paced,
    Timer,
}
