//! Signals, the same on every runtime (caught on a thread of their own): SIGHUP
//! reloads the settings (a broken file is reported and the old configuration
//! stays), SIGTERM and SIGINT stop gracefully, and a second one exits at once.

use crate::daemon::Daemon;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// Starts handling SIGHUP, SIGTERM and SIGINT for `daemon`.
pub(crate) fn handle(daemon: &Daemon) -> std::io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([SIGHUP, SIGINT, SIGTERM])?;
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
