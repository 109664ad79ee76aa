//! What a binary upgrade (`ctl upgrade`, SIGUSR2: [`crate::ops::upgrade`])
//! needs to know of a running server: every listening socket it serves on
//! now (a duplicate descriptor of each, with what it is), the program and
//! arguments it was started with, whether an upgrade is under way, and
//! whether this server handed its sockets over (then it only drains: it
//! writes no state file, sends systemd nothing and leaves the pid file and
//! the control socket to the new process).
//!
//! The sockets are registered by the server as it starts serving each one and
//! unregistered as it stops (a reload removed a listener, or shutdown): a
//! duplicate kept here must never hold a closed listener's socket open.

use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// What one handed-over socket is, as the new process reads it from the
/// environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Handed {
    /// A listener kind's name (`socks`, `tls`, `dual`, ...), `activated` (a
    /// SOCKS listener systemd passed by socket activation), `metrics` or
    /// `control`.
    pub(crate) kind: String,
    /// The listener's address as configured (port 0 stays 0), for a TCP
    /// socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) addr: Option<String>,
    /// The control socket's path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) path: Option<PathBuf>,
}

/// A registered socket: what it is, its bound address (to unregister a
/// listener by), and a duplicate of its descriptor.
#[derive(Debug)]
pub(crate) struct Registered {
    pub(crate) what: Handed,
    pub(crate) bound: Option<SocketAddr>,
    pub(crate) fd: OwnedFd,
}

/// A server's upgrade bookkeeping (part of the daemon).
#[derive(Debug, Default)]
pub(crate) struct UpgradeState {
    sockets: Mutex<Vec<Registered>>,
    program: Mutex<Option<(PathBuf, Vec<OsString>)>>,
    upgrading: AtomicBool,
    handed_over: AtomicBool,
    /// Serving started (the listeners are open).
    served: AtomicBool,
    /// In a new process started by an upgrade: the socket on which it tells
    /// the old one it is ready.
    announce: Mutex<Option<std::os::unix::net::UnixStream>>,
}

impl UpgradeState {
    /// Registers a socket being served.
    pub(crate) fn register(&self, what: Handed, bound: Option<SocketAddr>, fd: OwnedFd) {
        self.lock().push(Registered { what, bound, fd });
    }

    /// Unregisters the listener bound at `addr` (a reload removed it).
    pub(crate) fn unregister(&self, addr: SocketAddr) {
        self.lock().retain(|r| r.bound != Some(addr));
    }

    /// Unregisters every socket (shutdown).
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    /// Duplicates of the registered sockets' descriptors, with what each
    /// is.
    pub(crate) fn sockets(&self) -> std::io::Result<Vec<(Handed, OwnedFd)>> {
        self.lock()
            .iter()
            .map(|r| Ok((r.what.clone(), r.fd.try_clone()?)))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Registered>> {
        self.sockets.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg_attr(not(feature = "cli"), allow(dead_code))] // the binaries' main only
    /// Records the program and arguments an upgrade starts.
    pub(crate) fn set_program(&self, program: PathBuf, args: Vec<OsString>) {
        *self.program.lock().unwrap_or_else(|e| e.into_inner()) = Some((program, args));
    }

    /// The program and arguments an upgrade starts, if known.
    pub(crate) fn program(&self) -> Option<(PathBuf, Vec<OsString>)> {
        self.program
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Marks an upgrade as under way; `false` if one already is.
    pub(crate) fn begin(&self) -> bool {
        !self.upgrading.swap(true, Ordering::SeqCst)
    }

    /// Marks the upgrade as over (it failed: this server carries on).
    pub(crate) fn end(&self) {
        self.upgrading.store(false, Ordering::SeqCst);
    }

    /// Whether an upgrade is under way (or this server handed over).
    pub(crate) fn upgrading(&self) -> bool {
        self.upgrading.load(Ordering::SeqCst) || self.handed_over()
    }

    /// Marks this server as having handed its sockets over.
    pub(crate) fn set_handed_over(&self) {
        self.handed_over.store(true, Ordering::SeqCst);
    }

    /// Whether this server handed its sockets over to a new process.
    pub(crate) fn handed_over(&self) -> bool {
        self.handed_over.load(Ordering::SeqCst)
    }

    /// Marks serving as started.
    pub(crate) fn set_served(&self) {
        self.served.store(true, Ordering::SeqCst);
    }

    #[cfg_attr(not(feature = "cli"), allow(dead_code))] // the binaries' main only
    /// Whether serving started.
    pub(crate) fn served(&self) -> bool {
        self.served.load(Ordering::SeqCst)
    }

    #[cfg_attr(not(feature = "cli"), allow(dead_code))] // the binaries' main only
    /// Keeps the socket on which this new process says it is ready.
    pub(crate) fn set_announce(&self, stream: std::os::unix::net::UnixStream) {
        *self.announce.lock().unwrap_or_else(|e| e.into_inner()) = Some(stream);
    }

    /// Takes the socket on which this new process says it is ready, if it
    /// was started by an upgrade (once).
    pub(crate) fn take_announce(&self) -> Option<std::os::unix::net::UnixStream> {
        self.announce
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}
