//! The binary upgrade without a gap (`ctl upgrade [--binary PATH]`, or
//! SIGUSR2), nginx's and HAProxy's way: the running server starts the
//! program it was started as (the path of its binary at start, or `PATH`),
//! with the same arguments, and hands it every socket it listens on (SOCKS,
//! TLS, dual, transparent, redirect and forward listeners, those systemd
//! passed, the metrics listener and the control socket) by descriptor
//! inheritance: `LISTEN_FDS` (as socket activation does, without
//! `LISTEN_PID`) and [`UPGRADE_ENV`], a JSON description of each descriptor
//! from 3 on, the last of which is a socket on which the new process says it
//! is ready.
//!
//! The new process checks its configuration as any start does, binds only
//! what it did not inherit, writes the pid file, loads the state file (which
//! the old one wrote just before starting it), starts serving and then says
//! `ready` (and sends systemd `MAINPID=` with `READY=1`). Only then does the
//! old one stop accepting: its listeners close without touching the shared
//! sockets' queues, which the new process serves, and its relays get
//! `shutdown_grace` to finish. It then exits without removing the pid file
//! or the control socket, and without writing the state file again.
//!
//! If the new process exits before it is ready, the old one notices at once
//! (the readiness socket closes); if it says nothing within `[timeouts]
//! upgrade`, it is killed. Either way the old one carries on serving, logs
//! why, and the request fails with the reason.

use crate::daemon::upgrade_state::Handed;
use crate::daemon::Daemon;
use command_fds::{CommandFdExt, FdMapping};
use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The environment variable that describes the inherited descriptors to a
/// process started by an upgrade.
pub(crate) const UPGRADE_ENV: &str = "SOCKS4_UPGRADE";

/// The first inherited descriptor (as with socket activation).
const FIRST_FD: i32 = 3;

/// What [`UPGRADE_ENV`] holds: the descriptors from 3 on, in order, then
/// the readiness socket at index `ready`.
#[derive(Debug, Serialize, Deserialize)]
struct Description {
    sockets: Vec<Handed>,
    ready: usize,
}

/// What a process started by an upgrade inherited, taken at start (before
/// anything is bound).
#[derive(Debug, Default)]
#[cfg_attr(not(feature = "cli"), allow(dead_code))] // the binaries' main only
pub(crate) struct Handover {
    /// SOCKS listeners systemd passed to the old process (they replace
    /// `listen`, as with socket activation); `None` if there were none.
    pub(crate) activated: Option<Vec<TcpListener>>,
    /// The other listeners: kind name, configured address, socket.
    listeners: Vec<(String, String, TcpListener)>,
    /// The metrics listener and its configured address.
    metrics: Option<(String, TcpListener)>,
    /// The control socket and its path.
    control: Option<(PathBuf, UnixListener)>,
    /// Where to say "ready".
    pub(crate) announce: Option<UnixStream>,
}

impl Handover {
    #[cfg_attr(not(feature = "cli"), allow(dead_code))] // the binaries' main only
    /// The configured addresses of the inherited listeners and metrics
    /// listener (for the start's checks: they need no privilege to bind).
    pub(crate) fn addrs(&self) -> Vec<std::net::SocketAddr> {
        self.listeners
            .iter()
            .map(|(_, a, _)| a)
            .chain(self.metrics.iter().map(|(a, _)| a))
            .filter_map(|a| a.parse().ok())
            .collect()
    }

    /// The inherited listener of this kind configured at this address, if
    /// any: served instead of binding one.
    pub(crate) fn take_listener(
        &mut self,
        kind: &str,
        addr: std::net::SocketAddr,
    ) -> Option<TcpListener> {
        let addr = addr.to_string();
        let at = self
            .listeners
            .iter()
            .position(|(k, a, _)| k == kind && *a == addr)?;
        Some(self.listeners.remove(at).2)
    }

    /// The inherited metrics listener, if it was configured at `addr`.
    pub(crate) fn take_metrics(&mut self, addr: std::net::SocketAddr) -> Option<TcpListener> {
        match self.metrics.take() {
            Some((a, l)) if a == addr.to_string() => Some(l),
            _ => None,
        }
    }

    /// The inherited control socket, if it is at `path`.
    pub(crate) fn take_control(&mut self, path: &Path) -> Option<UnixListener> {
        match self.control.take() {
            Some((p, l)) if p == path => Some(l),
            _ => None,
        }
    }
}

#[cfg_attr(not(feature = "cli"), allow(dead_code))] // the binaries' main only
/// The descriptors an upgrade handed this process, if it was started by one
/// (then `LISTEN_FDS` is read here, not as socket activation). Call it once,
/// at start, before other threads exist.
pub(crate) fn inherited() -> io::Result<Option<Handover>> {
    let Some(text) = std::env::var_os(UPGRADE_ENV) else {
        return Ok(None);
    };
    // Not passed on to programs this process starts.
    std::env::remove_var(UPGRADE_ENV);
    let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidInput, why);
    let description: Description = serde_json::from_str(&text.to_string_lossy())
        .map_err(|e| invalid(format!("{UPGRADE_ENV}: {e}")))?;
    let mut fds = listenfd::ListenFd::from_env();
    if fds.len() != description.sockets.len() + 1 || description.ready != fds.len() - 1 {
        return Err(invalid(format!(
            "{UPGRADE_ENV} describes {} sockets, LISTEN_FDS passes {}",
            description.sockets.len() + 1,
            fds.len()
        )));
    }
    let missing = |i: usize| invalid(format!("upgrade: descriptor {i} was not passed"));
    let mut handover = Handover::default();
    for (i, what) in description.sockets.into_iter().enumerate() {
        match what.kind.as_str() {
            "control" => {
                let l = fds.take_unix_listener(i)?.ok_or_else(|| missing(i))?;
                handover.control = Some((what.path.unwrap_or_default(), l));
            }
            kind => {
                let l = fds.take_tcp_listener(i)?.ok_or_else(|| missing(i))?;
                l.set_nonblocking(true)?;
                let addr = what.addr.unwrap_or_default();
                match kind {
                    "metrics" => handover.metrics = Some((addr, l)),
                    "activated" => handover.activated.get_or_insert_with(Vec::new).push(l),
                    _ => handover.listeners.push((kind.to_owned(), addr, l)),
                }
            }
        }
    }
    // AF_UNIX (1), SOCK_STREAM (1): the readiness socket.
    let ready: UnixStream = fds
        .take_custom(description.ready, 1, 1, "unix stream socket")?
        .ok_or_else(|| missing(description.ready))?;
    handover.announce = Some(ready);
    Ok(Some(handover))
}

/// Says this process serves: to the old process if an upgrade started it
/// (with `MAINPID=` and `READY=1` to systemd, so that the unit follows the
/// new process), else `READY=1` to systemd.
pub(crate) fn announce_ready(daemon: &Daemon) {
    daemon.upgrade().set_served();
    let Some(mut old) = daemon.upgrade().take_announce() else {
        crate::ops::systemd::ready();
        return;
    };
    crate::ops::systemd::ready_as_main();
    let pid = std::process::id();
    let _ = old.set_write_timeout(Some(Duration::from_secs(5)));
    match writeln!(old, "ready {pid}") {
        Ok(()) => {
            tracing::info!(target: "socks4d", pid, "upgrade: serving, the old process stops accepting")
        }
        Err(e) => {
            tracing::warn!(target: "socks4d", error = %e, "upgrade: cannot tell the old process this one is ready")
        }
    }
}

/// Runs a binary upgrade: starts the new process (`binary`, or the program
/// this server was started as), hands it the sockets and waits for it to be
/// ready. The new process's id, or why the upgrade failed (this server then
/// serves on). The caller then answers whoever asked and calls
/// [`drain_after_handover`], which stops this server: a server with nothing
/// to drain exits at once, and would otherwise take an unsent answer with it.
pub(crate) fn upgrade(daemon: &Daemon, binary: Option<PathBuf>, who: &str) -> Result<u32, String> {
    if daemon.is_shutting_down() {
        return Err("the server is shutting down".to_owned());
    }
    if !daemon.upgrade().begin() {
        return Err("an upgrade is already under way".to_owned());
    }
    tracing::info!(target: "socks4d", by = who, binary = binary.as_ref().map(|b| b.display().to_string()), "upgrade: starting the new process");
    match hand_over(daemon, binary) {
        Ok(pid) => {
            daemon.upgrade().set_handed_over();
            let grace = daemon.current().shutdown_grace;
            tracing::info!(target: "socks4d", new_pid = pid, grace = %humantime::format_duration(grace), "upgrade: the new process is ready; this one stops accepting and drains");
            Ok(pid)
        }
        Err(why) => {
            tracing::error!(target: "socks4d", error = %why, "upgrade failed, this process serves on");
            restore_pid_file(daemon);
            daemon.upgrade().end();
            Err(format!("upgrade failed, the old process serves on: {why}"))
        }
    }
}

/// After an upgrade handed the sockets over and its answer went out: this
/// server stops accepting and drains (nothing when no upgrade did).
pub(crate) fn drain_after_handover(daemon: &Daemon) {
    if daemon.upgrade().handed_over() && !daemon.is_shutting_down() {
        daemon.shutdown();
    }
}

/// Starts the new process with the sockets and waits for its "ready"; its
/// process id.
fn hand_over(daemon: &Daemon, binary: Option<PathBuf>) -> Result<u32, String> {
    let (program, args) = daemon
        .upgrade()
        .program()
        .ok_or("this server was not started by its binary's main: nothing to start")?;
    let program = binary.unwrap_or(program);
    let started = daemon
        .outbound()
        .now()
        .ok_or("the server is not serving yet")?;
    // The new process starts from the usage and run-time entries of now.
    if let Some(file) = daemon.state_file() {
        file.save(daemon.clients(), true)
            .map_err(|e| format!("state file {}: {e}", file.path().display()))?;
    }
    let sockets = daemon
        .upgrade()
        .sockets()
        .map_err(|e| format!("duplicating the listening sockets: {e}"))?;
    let (ours, theirs) = UnixStream::pair().map_err(|e| format!("readiness socket: {e}"))?;
    let description = Description {
        sockets: sockets.iter().map(|(what, _)| what.clone()).collect(),
        ready: sockets.len(),
    };
    let mut mappings: Vec<FdMapping> = Vec::new();
    for (i, fd) in sockets
        .into_iter()
        .map(|(_, fd)| fd)
        .chain([OwnedFd::from(theirs)])
        .enumerate()
    {
        mappings.push(FdMapping {
            parent_fd: fd,
            child_fd: FIRST_FD + i as i32,
        });
    }
    let count = mappings.len();
    let mut command = Command::new(&program);
    command
        .args(args)
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDNAMES")
        .env_remove("LISTEN_FDS_FIRST_FD")
        .env("LISTEN_FDS", count.to_string())
        .env(
            UPGRADE_ENV,
            serde_json::to_string(&description).map_err(|e| e.to_string())?,
        )
        .stdin(Stdio::null());
    command
        .fd_mappings(mappings)
        .map_err(|e| format!("passing the sockets: {e}"))?;
    let child = command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()));
    // The descriptors given to the child are closed here.
    drop(command);
    let mut child = child?;
    let timeout = daemon.current().upgrade_timeout;
    // The runtime's clock (set as serving starts, before the control socket
    // is served; checked before anything was started).
    let clock = daemon.outbound();
    let now = || clock.now().unwrap_or(started);
    match wait_ready(&ours, &mut child, (timeout, &now)) {
        Ok(()) => Ok(child.id()),
        Err(why) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(why)
        }
    }
}

/// How long the old process waits for the new one's exit status once the
/// readiness socket closed (it closes as the process exits).
const EXIT_WAIT: Duration = Duration::from_secs(5);

/// How often the old process looks at the new one while it waits.
const POLL: Duration = Duration::from_millis(50);

/// Waits for the new process to say "ready" on `ours`, at most `timeout`;
/// why not, if it does not (it exited, closed the socket, or hangs).
fn wait_ready(
    ours: &UnixStream,
    child: &mut Child,
    (timeout, now): (Duration, &dyn Fn() -> Instant),
) -> Result<(), String> {
    let deadline = now() + timeout;
    let pid = child.id();
    let mut said = Vec::new();
    let mut buf = [0u8; 64];
    ours.set_read_timeout(Some(POLL))
        .map_err(|e| e.to_string())?;
    loop {
        match (&*ours).read(&mut buf) {
            Ok(0) => {
                // Closed: it exited (or closed the socket) before it was ready.
                let moment = now() + EXIT_WAIT;
                while now() < moment {
                    if let Ok(Some(status)) = child.try_wait() {
                        return Err(format!(
                            "the new process {pid} exited before it was ready ({status}); its own log says why"
                        ));
                    }
                    std::thread::sleep(POLL);
                }
                return Err(format!(
                    "the new process {pid} closed its readiness socket without saying it is ready: killed"
                ));
            }
            Ok(n) => {
                said.extend_from_slice(&buf[..n]);
                if said.contains(&b'\n') {
                    return if said.starts_with(b"ready") {
                        Ok(())
                    } else {
                        Err(format!(
                            "the new process {pid} said {:?} instead of ready: killed",
                            String::from_utf8_lossy(&said).trim()
                        ))
                    };
                }
                if said.len() > 256 {
                    return Err(format!("the new process {pid} says too much: killed"));
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(format!("reading the new process's readiness: {e}")),
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "the new process {pid} exited before it was ready ({status}); its own log says why"
            ));
        }
        if now() >= deadline {
            return Err(format!(
                "the new process {pid} was not ready within {} ([timeouts] upgrade): killed",
                humantime::format_duration(timeout)
            ));
        }
    }
}

/// After a failed upgrade: the pid file names this process again (the new
/// one may have written its own and removed it, or been killed).
#[cfg(feature = "cli")]
fn restore_pid_file(daemon: &Daemon) {
    let Some(path) = &daemon.settings().pid_file else {
        return;
    };
    let ours = std::process::id().to_string();
    if std::fs::read_to_string(path).is_ok_and(|t| t.trim() == ours) {
        return;
    }
    if let Err(e) = crate::ops::pid_file::write(path) {
        tracing::warn!(target: "socks4d", pid_file = %path.display(), error = %e, "upgrade: cannot write the pid file again");
    }
}

/// Without the command line there is no pid file.
#[cfg(not(feature = "cli"))]
fn restore_pid_file(_: &Daemon) {}
