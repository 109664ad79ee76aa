//! systemd integration, harmless outside systemd: listening sockets passed by
//! socket activation (`LISTEN_FDS`/`LISTEN_PID`, read with `listenfd`), and
//! readiness, reload and stop notifications (`sd_notify`, with `sd-notify`;
//! nothing is sent when `NOTIFY_SOCKET` is unset).

use sd_notify::NotifyState;
use std::io;
use std::net::TcpListener;

/// The TCP listeners systemd passed, non-blocking; `None` when the process was
/// not socket-activated.
pub(crate) fn inherited_listeners() -> io::Result<Option<Vec<TcpListener>>> {
    let mut fds = listenfd::ListenFd::from_env();
    if fds.len() == 0 {
        return Ok(None);
    }
    let mut listeners = Vec::new();
    for i in 0..fds.len() {
        match fds.take_tcp_listener(i)? {
            Some(l) => {
                l.set_nonblocking(true)?;
                listeners.push(l);
            }
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("socket activation: descriptor {i} is not a TCP listener"),
                ))
            }
        }
    }
    Ok(Some(listeners))
}

fn notify(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(target: "socks4d", error = %e, "sd_notify failed");
    }
}

/// `READY=1`: listening and serving.
pub(crate) fn ready() {
    notify(&[NotifyState::Ready, NotifyState::Status("serving")]);
}

/// `MAINPID=` (this process) and `READY=1`: a process started by a binary
/// upgrade takes over the unit (which needs `NotifyAccess=all`).
pub(crate) fn ready_as_main() {
    notify(&[
        NotifyState::MainPid(std::process::id()),
        NotifyState::Ready,
        NotifyState::Status("serving"),
    ]);
}

/// `RELOADING=1` (with the monotonic time systemd 253 and later ask for).
#[cfg(feature = "cli")]
pub(crate) fn reloading() {
    let mut states = vec![NotifyState::Reloading];
    if let Ok(now) = NotifyState::monotonic_usec_now() {
        states.push(now);
    }
    notify(&states);
}

/// `STOPPING=1`: shutting down.
pub(crate) fn stopping() {
    notify(&[NotifyState::Stopping]);
}
