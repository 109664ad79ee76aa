//! A server's life: binding the listeners, the accept loops, and a graceful
//! stop. [`main`] is what a server binary calls; [`run`] is how a program embeds
//! a server on a runtime it already has.

use crate::cli::Cli;
use crate::connection::{self, Accepted};
use crate::counters::ListenerCounts;
use crate::daemon::{Admission, Daemon};
use crate::net;
use crate::runtime::Runtime;
use crate::settings::Settings;
use futures_lite::future::FutureExt;
use std::future::{poll_fn, Future};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::pin::{pin, Pin};
use std::process::ExitCode;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

/// A server binary's `main`: command line, settings (exit status 2 when they are
/// wrong), `--check`, logging, listeners (exit status 1 when one cannot be
/// bound), signals, then serving on `rt` until a graceful stop (exit status 0).
/// `block_on` runs a future to completion on the runtime that `rt` belongs to.
pub fn main<R: Runtime>(
    name: &str,
    rt: R,
    block_on: impl FnOnce(Pin<Box<dyn Future<Output = ExitCode>>>) -> ExitCode,
) -> ExitCode {
    let cli = Cli::parse_for(name);
    let settings = match Settings::load(cli.sources()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.check {
        print!("{}", crate::check::report(&settings));
        return ExitCode::SUCCESS;
    }
    crate::logging::init(settings.log_format, settings.log_level);
    let listeners = match bind(&settings) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(1);
        }
    };
    let daemon = Daemon::new(settings);
    if let Err(e) = crate::signals::handle(&daemon) {
        eprintln!("{name}: signals: {e}");
        return ExitCode::from(1);
    }
    let name = name.to_owned();
    let code = block_on(Box::pin(async move {
        match serve(rt, daemon, listeners).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(target: "socks4d", error = %e, "serving failed");
                eprintln!("{name}: {e}");
                ExitCode::from(1)
            }
        }
    }));
    crate::logging::flush();
    code
}

/// Binds every listen address of the settings, in order, before any runtime
/// exists (so that a privilege drop can follow).
pub fn bind(settings: &Settings) -> io::Result<Vec<TcpListener>> {
    settings
        .listen
        .iter()
        .map(|addr| {
            net::listen(*addr)
                .map_err(|e| io::Error::new(e.kind(), format!("listen on {addr}: {e}")))
        })
        .collect()
}

/// Binds the daemon's listen addresses and serves until [`Daemon::shutdown`]: the
/// way to embed a server. `on_bound` gets the bound addresses (useful with port
/// 0) before serving starts.
pub async fn run<R: Runtime>(
    rt: R,
    daemon: Daemon,
    on_bound: impl FnOnce(Vec<SocketAddr>),
) -> io::Result<()> {
    let listeners = bind(daemon.settings())?;
    let addrs = listeners
        .iter()
        .map(net::local_addr)
        .collect::<io::Result<Vec<_>>>()?;
    on_bound(addrs);
    serve(rt, daemon, listeners).await
}

/// Serves on bound listeners until [`Daemon::shutdown`], then gives open
/// connections the shutdown grace period, then cuts the relays still running.
pub async fn serve<R: Runtime>(
    rt: R,
    daemon: Daemon,
    listeners: Vec<TcpListener>,
) -> io::Result<()> {
    let settings = daemon.settings();
    crate::pipe::PipePool::global().configure(settings.relay_pipe_size, settings.relay_pipes);
    for listener in listeners {
        let addr = net::local_addr(&listener)?;
        let counts = daemon.books().counters.add_listener(addr);
        let listener = rt.listener(listener)?;
        tracing::info!(target: "socks4d", listen = %addr, "listening");
        rt.spawn(accept_loop(
            rt.clone(),
            daemon.clone(),
            listener,
            addr,
            counts,
        ));
    }
    rt.spawn(housekeeping(rt.clone(), daemon.clone()));
    daemon.shutdown_requested().await;
    let grace_over = rt.now() + daemon.settings().shutdown_grace;
    let idle = async {
        daemon.idle().await;
        true
    };
    let grace = async {
        rt.sleep_until(grace_over).await;
        false
    };
    if !idle.or(grace).await {
        tracing::warn!(target: "socks4d", active = daemon.active(), "grace period over, closing relays");
        daemon.cut_relays();
        // The cut relays log their end; give them a moment to.
        let moment = rt.now() + Duration::from_secs(1);
        daemon.idle().or(rt.sleep_until(moment)).await;
    }
    Ok(())
}

/// Once a second: sums up suppressed refusal lines (and, later, what else
/// needs doing on a clock), until shutdown.
async fn housekeeping<R: Runtime>(rt: R, daemon: Daemon) {
    while !daemon.is_shutting_down() {
        rt.sleep_until(rt.now() + Duration::from_secs(1)).await;
        daemon.books().tick(rt.now());
    }
}

async fn accept_loop<R: Runtime>(
    rt: R,
    daemon: Daemon,
    listener: R::Listener,
    addr: SocketAddr,
    counts: Arc<ListenerCounts>,
) {
    let mut backoff = Duration::from_millis(5);
    let mut shutdown = pin!(daemon.shutdown_requested());
    loop {
        if !daemon.has_room() {
            // At max_connections: new connections wait in the listen queue
            // (the kernel's backlog) until one closes, rather than being
            // accepted and closed.
            daemon.books().counters.accept_paused();
            tracing::warn!(target: "socks4d", listen = %addr, max = daemon.settings().max_connections, "connection cap reached: accepting paused until a connection closes");
            let room = daemon.room();
            let mut room = pin!(room);
            let resumed = poll_fn(|cx| {
                if shutdown.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(false);
                }
                room.as_mut().poll(cx).map(|()| true)
            })
            .await;
            if !resumed {
                return;
            }
        }
        let accept = rt.accept(&listener);
        let mut accept = pin!(accept);
        // Shutdown first: once asked for, nothing more is accepted.
        let accepted = poll_fn(|cx| {
            if shutdown.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            accept.as_mut().poll(cx).map(Some)
        });
        match accepted.await {
            None => return, // shutting down: the listener closes here
            Some(Ok(_)) if daemon.is_shutting_down() => return,
            Some(Ok((client, peer))) => {
                backoff = Duration::from_millis(5);
                let slot = match daemon.admit(&counts, peer) {
                    Admission::Slot(slot) => slot,
                    Admission::Full => continue, // another listener took the last slot
                    Admission::Limited(limit) => {
                        if daemon.books().may_log_refusal(rt.now()) {
                            tracing::info!(target: "socks4d", %peer, listener = %addr, limit = limit.label(), reason = %limit, reply = 91, "refused");
                        }
                        if let Some(refusing) = daemon.refusal_slot() {
                            let rt2 = rt.clone();
                            rt.spawn(async move {
                                connection::refuse(rt2, client).await;
                                drop(refusing);
                            });
                        }
                        continue;
                    }
                };
                // The address the client reached: the listener's, unless it
                // listens on a wildcard address.
                let local = if addr.ip().is_unspecified() {
                    net::local_addr(&client).unwrap_or(addr)
                } else {
                    addr
                };
                let accepted = Accepted {
                    client,
                    peer,
                    local,
                    listener: addr,
                    slot,
                };
                rt.spawn(connection::serve(rt.clone(), daemon.clone(), accepted));
            }
            Some(Err(e)) => {
                // EMFILE, ENFILE, ENOBUFS...: back off instead of spinning.
                tracing::warn!(target: "socks4d", error = %e, ?backoff, "accept failed");
                rt.sleep_until(rt.now() + backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}
