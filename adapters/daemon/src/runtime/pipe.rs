//! Pipes for splice(2), from a bounded pool: a relay direction takes a pipe only
//! while bytes are in flight (socket → pipe → socket) and gives it back as soon
//! as it is empty, so idle relays hold no pipe and no extra descriptors.
//!
//! The pool is process-wide: at most [`PipePool::configure`]'s `max` pipes exist
//! at once; each thread keeps a few empty ones ready so that taking and giving
//! back costs no lock. When the pool is exhausted, or a pipe cannot be made (a
//! descriptor limit), the relay copies through user space instead.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The pipe capacity asked for by default (`F_SETPIPE_SZ`): large enough for few,
/// large splices (measured on loopback: 256 KiB–1 MiB pipes halve the CPU per
/// GB of the 64 KiB default), small enough that many fit under the kernel's
/// per-user pipe budget (`/proc/sys/fs/pipe-user-pages-soft`).
pub(crate) const DEFAULT_PIPE_SIZE: usize = 256 * 1024;

/// How many pipes may exist at once by default.
pub(crate) const DEFAULT_MAX_PIPES: usize = 1024;

/// Empty pipes a thread keeps ready.
const PER_THREAD: usize = 4;

/// One pipe: its read and write ends, and its capacity.
#[derive(Debug)]
pub(crate) struct Pipe {
    pub(crate) read: OwnedFd,
    pub(crate) write: OwnedFd,
    pub(crate) size: usize,
}

/// The process-wide pool's settings and count.
#[derive(Debug)]
pub(crate) struct PipePool {
    size: AtomicUsize,
    max: AtomicUsize,
    live: AtomicUsize,
}

static POOL: PipePool = PipePool {
    size: AtomicUsize::new(DEFAULT_PIPE_SIZE),
    max: AtomicUsize::new(DEFAULT_MAX_PIPES),
    live: AtomicUsize::new(0),
};

/// A thread's empty pipes; they leave the count when the thread ends.
struct Ready(Vec<Pipe>);

impl Drop for Ready {
    fn drop(&mut self) {
        POOL.live.fetch_sub(self.0.len(), Ordering::AcqRel);
    }
}

thread_local! {
    static READY: RefCell<Ready> = const { RefCell::new(Ready(Vec::new())) };
}

impl PipePool {
    /// The pool.
    pub(crate) fn global() -> &'static PipePool {
        &POOL
    }

    /// Sets the capacity new pipes ask for and how many may exist at once (0:
    /// never splice). Pipes already made keep their size.
    pub(crate) fn configure(&self, size: usize, max: usize) {
        self.size.store(size.max(4096), Ordering::Relaxed);
        self.max.store(max, Ordering::Relaxed);
    }

    /// Whether relays should try splice at all.
    pub(crate) fn enabled(&self) -> bool {
        self.max.load(Ordering::Relaxed) > 0
    }

    /// An empty pipe, or `None` when the pool is exhausted or a pipe cannot be
    /// made now.
    pub(crate) fn take(&self) -> Option<Pipe> {
        if let Some(p) = READY.with(|r| r.borrow_mut().0.pop()) {
            return Some(p);
        }
        let max = self.max.load(Ordering::Relaxed);
        self.live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        match make(self.size.load(Ordering::Relaxed)) {
            Ok(p) => Some(p),
            Err(_) => {
                self.live.fetch_sub(1, Ordering::AcqRel);
                None
            }
        }
    }

    /// Gives back an empty pipe.
    pub(crate) fn put(&self, pipe: Pipe) {
        let kept = READY.with(|r| {
            let mut r = r.borrow_mut();
            if r.0.len() < PER_THREAD {
                r.0.push(pipe);
                None
            } else {
                Some(pipe)
            }
        });
        if let Some(pipe) = kept {
            self.discard(pipe);
        }
    }

    /// Closes a pipe that cannot be reused (bytes left in it).
    pub(crate) fn discard(&self, pipe: Pipe) {
        drop(pipe);
        self.live.fetch_sub(1, Ordering::AcqRel);
    }
}

fn make(size: usize) -> io::Result<Pipe> {
    use rustix::pipe::{fcntl_setpipe_size, pipe_with, PipeFlags};
    let (read, write) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
    // The kernel may give less (pipe-max-size, or the per-user budget spent):
    // use what it gives.
    let size = fcntl_setpipe_size(write.as_fd(), size)
        .or_else(|_| rustix::pipe::fcntl_getpipe_size(write.as_fd()))?;
    Ok(Pipe { read, write, size })
}
