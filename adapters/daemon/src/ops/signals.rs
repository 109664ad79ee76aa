//! Signals, the same on every runtime (caught on a thread of their own): SIGHUP
//! reloads the settings (a broken file is reported and the old configuration
//! stays), SIGTERM and SIGINT stop gracefully, and a second one exits at once;
//! SIGUSR1 reopens the log files (logrotate's `postrotate`); SIGUSR2 starts
//! a binary upgrade ([`crate::ops::upgrade`], on a thread of its own: its
//! outcome is logged).

use crate::daemon::Daemon;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};

/// Starts handling SIGHUP, SIGTERM, SIGINT, SIGUSR1 and SIGUSR2 for `daemon`.
pub(crate) fn handle(daemon: &Daemon) -> std::io::Result<()> {
    let mut signals =
        signal_hook::iterator::Signals::new([SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2])?;
    let daemon = daemon.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                match signal {
                    SIGHUP => {
                        crate::ops::systemd::reloading();
                        match daemon.reload() {
                            Ok(()) => tracing::info!(target: "socks4d", "configuration reloaded"),
                            Err(e) => tracing::error!(target: "socks4d", error = %e, "reload failed, keeping the old configuration"),
                        }
                        crate::ops::systemd::ready();
                    }
                    SIGUSR1 => reopen_logs(),
                    SIGUSR2 => {
                        let daemon = daemon.clone();
                        // The upgrade logs its outcome.
                        let started = std::thread::Builder::new()
                            .name("upgrade".into())
                            .spawn(move || {
                                let _ = crate::ops::upgrade::upgrade(&daemon, None, "SIGUSR2");
                                crate::ops::upgrade::drain_after_handover(&daemon);
                            });
                        if let Err(e) = started {
                            tracing::error!(target: "socks4d", error = %e, "upgrade: cannot start its thread");
                        }
                    }
                    _ if daemon.is_shutting_down() => {
                        tracing::warn!(target: "socks4d", "second signal: exiting now");
                        std::process::exit(0);
                    }
                    // The server says "shutting down" once every listener
                    // drained its queue and closed.
                    _ => daemon.shutdown(),
                }
            }
        })?;
    Ok(())
}

/// SIGUSR1: the log files are opened again, and the new ones say so.
fn reopen_logs() {
    match crate::observe::logging::reopen() {
        Ok(files) => {
            for file in files {
                tracing::info!(target: "socks4d", file = %file.display(), "log file reopened");
            }
        }
        Err(e) => {
            tracing::error!(target: "socks4d", error = %e, "cannot reopen a log file, writing on to the old one");
        }
    }
}
