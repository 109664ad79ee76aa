//! A server's life: binding the listeners, the accept loops, and a graceful
//! stop. [`main`] is what a server binary calls; [`run`] is how a program embeds
//! a server on a runtime it already has.

#[cfg(feature = "cli")]
use crate::cli::{Cli, Subcommand};
use crate::connection::{self, Accepted};
use crate::counters::ListenerCounts;
use crate::daemon::{Admission, Daemon};
use crate::listeners::{Listener, ListenerKind};
use crate::net;
use crate::runtime::Runtime;
use crate::settings::Settings;
use futures_lite::future::FutureExt;
use std::future::{poll_fn, Future};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::pin::pin;
#[cfg(feature = "cli")]
use std::pin::Pin;
#[cfg(feature = "cli")]
use std::process::ExitCode;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

/// A server binary's `main`: command line (or its `ctl` subcommand), settings
/// (exit status 2 when they are wrong), `--check`, logging, sockets (exit
/// status 1 when one cannot be bound), pid file, privilege drop, signals, then
/// serving on `rt` until a graceful stop (exit status 0). `block_on` runs a
/// future to completion on the runtime that `rt` belongs to.
#[cfg(feature = "cli")]
pub fn main<R: Runtime>(
    name: &str,
    rt: R,
    block_on: impl FnOnce(Pin<Box<dyn Future<Output = ExitCode>>>) -> ExitCode,
) -> ExitCode {
    let cli = Cli::parse_for(name);
    if let Some(Subcommand::Ctl(args)) = &cli.command {
        return crate::ctl::run(args);
    }
    let settings = match Settings::load(cli.sources()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.check {
        let report = crate::check::report(&settings);
        print!("{}", report.text);
        for w in &report.warnings {
            println!("warning: {w}");
        }
        return if cli.strict && !report.warnings.is_empty() {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        };
    }
    crate::logging::init(settings.log_format, settings.log_level);
    let fail = |what: String| {
        tracing::error!(target: "socks4d", error = %what, "cannot start");
        crate::logging::flush();
        eprintln!("{name}: {what}");
        ExitCode::from(1)
    };
    let bound = match bind(&settings) {
        Ok(b) => b,
        Err(e) => return fail(e.to_string()),
    };
    if let Some(path) = &settings.pid_file {
        if let Err(e) = std::fs::write(path, format!("{}\n", std::process::id())) {
            return fail(format!("pid file {}: {e}", path.display()));
        }
    }
    if let Err(e) = crate::privileges::apply(&settings, settings.control_socket.as_deref()) {
        return fail(e);
    }
    let cleanup = (settings.pid_file.clone(), settings.control_socket.clone());
    let daemon = Daemon::new(settings);
    if let Err(e) = crate::signals::handle(&daemon) {
        return fail(format!("signals: {e}"));
    }
    let code = block_on(Box::pin(async move {
        match serve(rt, daemon, bound).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(target: "socks4d", error = %e, "serving failed");
                ExitCode::from(1)
            }
        }
    }));
    for path in [cleanup.0, cleanup.1].into_iter().flatten() {
        let _ = std::fs::remove_file(path);
    }
    crate::logging::flush();
    code
}

/// The sockets a server serves on, bound before any runtime exists (so that a
/// privilege drop can follow).
#[derive(Debug)]
pub struct Bound {
    /// The listeners, each with its configuration.
    pub listeners: Vec<(Listener, TcpListener)>,
    /// The metrics listener, if configured.
    pub metrics: Option<TcpListener>,
    /// The control socket, if configured.
    pub control: Option<std::os::unix::net::UnixListener>,
}

/// Binds what the settings ask for: the SOCKS listeners (or takes those
/// systemd passed by socket activation, which replace `listen`), the metrics
/// listener and the control socket.
pub fn bind(settings: &Settings) -> io::Result<Bound> {
    let mut listeners = Vec::new();
    let inherited = crate::systemd::inherited_listeners()?;
    let socks_inherited = inherited.is_some();
    for l in inherited.into_iter().flatten() {
        let config = Listener {
            kind: ListenerKind::Socks,
            addr: net::local_addr(&l)?,
            proxy_protocol: settings.proxy_protocol,
        };
        listeners.push((config, l));
    }
    for config in &settings.listeners {
        if socks_inherited && config.kind == ListenerKind::Socks {
            continue; // socket activation replaces `listen`
        }
        let (kind, addr) = (&config.kind, config.addr);
        let options = net::ListenOptions {
            transparent: *kind == ListenerKind::Transparent,
            reuse_port: settings.reuse_port,
        };
        let l = net::listen_with(addr, options).map_err(|e| {
            io::Error::new(e.kind(), format!("{} listen on {addr}: {e}", kind.name()))
        })?;
        listeners.push((config.clone(), l));
    }
    let metrics = settings
        .metrics_listen
        .map(|addr| {
            net::listen(addr)
                .map_err(|e| io::Error::new(e.kind(), format!("metrics listen on {addr}: {e}")))
        })
        .transpose()?;
    let control = settings
        .control_socket
        .as_deref()
        .map(|p| {
            crate::control::bind(p).map_err(|e| {
                io::Error::new(e.kind(), format!("control socket {}: {e}", p.display()))
            })
        })
        .transpose()?;
    Ok(Bound {
        listeners,
        metrics,
        control,
    })
}

/// Binds the daemon's sockets and serves until [`Daemon::shutdown`]: the way to
/// embed a server. `on_bound` gets the bound SOCKS addresses (useful with port
/// 0) before serving starts.
pub async fn run<R: Runtime>(
    rt: R,
    daemon: Daemon,
    on_bound: impl FnOnce(Vec<SocketAddr>),
) -> io::Result<()> {
    let bound = bind(daemon.settings())?;
    let addrs = bound
        .listeners
        .iter()
        .map(|(_, l)| net::local_addr(l))
        .collect::<io::Result<Vec<_>>>()?;
    on_bound(addrs);
    serve(rt, daemon, bound).await
}

/// Serves on bound listeners until [`Daemon::shutdown`], then gives open
/// connections the shutdown grace period, then cuts the relays still running.
pub async fn serve<R: Runtime>(rt: R, daemon: Daemon, bound: Bound) -> io::Result<()> {
    let settings = daemon.settings();
    crate::pipe::PipePool::global().configure(settings.relay_pipe_size, settings.relay_pipes);
    if let Some(listener) = bound.metrics {
        let addr = net::local_addr(&listener)?;
        let metrics = Arc::new(crate::metrics::Metrics::new(&daemon, R::NAME));
        let listener = rt.listener(listener)?;
        tracing::info!(target: "socks4d", metrics = %addr, "serving metrics");
        rt.spawn(crate::metrics::serve(
            rt.clone(),
            daemon.clone(),
            listener,
            metrics,
        ));
    }
    if let Some(control) = bound.control {
        crate::control::serve(control, daemon.clone())?;
    }
    for (config, listener) in bound.listeners {
        let addr = net::local_addr(&listener)?;
        let counts = daemon.books().counters.add_listener(addr);
        let listener = rt.listener(listener)?;
        let proxy = config.proxy_protocol.map(|p| p.to_string());
        tracing::info!(target: "socks4d", listen = %addr, kind = config.kind.name(), proxy_protocol = proxy.as_deref().unwrap_or("off"), "listening");
        rt.spawn(accept_loop(
            rt.clone(),
            daemon.clone(),
            listener,
            addr,
            config,
            counts,
        ));
    }
    rt.spawn(housekeeping(rt.clone(), daemon.clone()));
    let stop = daemon.clone();
    rt.spawn(crate::notify::run(
        rt.clone(),
        daemon.books().notifier.clone(),
        async move { stop.shutdown_requested().await },
    ));
    crate::systemd::ready();
    daemon.shutdown_requested().await;
    crate::systemd::stopping();
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
    save_state(&daemon, &mut Vec::new());
    daemon.books().notifier.kill_running();
    Ok(())
}

/// How often the state file is written while quota usage changes.
pub const STATE_SAVE_INTERVAL: Duration = Duration::from_secs(5);

/// Once a second: sums up suppressed refusal lines, forgets unused bandwidth
/// buckets, and every few seconds writes the state file if usage changed;
/// until shutdown.
async fn housekeeping<R: Runtime>(rt: R, daemon: Daemon) {
    let mut saved = Vec::new();
    let mut last_save = rt.now();
    while !daemon.is_shutting_down() {
        rt.sleep_until(rt.now() + Duration::from_secs(1)).await;
        daemon.books().tick(rt.now());
        daemon.clients().tidy();
        if rt.now().saturating_duration_since(last_save) >= STATE_SAVE_INTERVAL {
            last_save = rt.now();
            save_state(&daemon, &mut saved);
        }
    }
}

/// Writes the state file if there is one and usage changed since `saved`.
fn save_state(
    daemon: &Daemon,
    saved: &mut Vec<(
        crate::clients::ClientKey,
        socks4_acl::limit::Period,
        u64,
        u64,
    )>,
) {
    let Some(path) = &daemon.settings().state_file else {
        return;
    };
    let now = crate::state::fingerprint(daemon.clients());
    if now == *saved {
        return;
    }
    match crate::state::save(path, daemon.clients()) {
        Ok(()) => *saved = now,
        Err(e) => {
            tracing::warn!(target: "socks4d", state_file = %path.display(), error = %e, "cannot write the state file")
        }
    }
}

async fn accept_loop<R: Runtime>(
    rt: R,
    daemon: Daemon,
    listener: R::Listener,
    addr: SocketAddr,
    config: Listener,
    counts: Arc<ListenerCounts>,
) {
    let kind = config.kind;
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
                let slot = if config.proxy_protocol.is_some() {
                    // Behind a load balancer: only it may connect, and its
                    // header says who the client is (and so which client's
                    // cap the connection counts under).
                    let settings = daemon.settings();
                    if !settings
                        .proxy_protocol_from
                        .iter()
                        .any(|n| n.contains(peer.ip()))
                    {
                        daemon.books().counters.proxy_header("untrusted");
                        if daemon.books().may_log_refusal(rt.now()) {
                            tracing::warn!(target: "socks4d", %peer, listener = %addr, "connection to a PROXY protocol listener from outside proxy_protocol_from: closed");
                        }
                        continue;
                    }
                    let Some(slot) = daemon.admit_unattributed(&counts) else {
                        continue;
                    };
                    slot
                } else {
                    match daemon.admit(&counts, peer) {
                        Admission::Slot(slot) => slot,
                        Admission::Full => continue, // another listener took the last slot
                        Admission::Limited(limit) => {
                            if daemon.books().may_log_refusal(rt.now()) {
                                tracing::info!(target: "socks4d", %peer, listener = %addr, limit = limit.label(), reason = %limit, reply = 91, "refused");
                            }
                            // A SOCKS client reads a 91; any other is closed at
                            // once (it could not read a SOCKS reply).
                            if !kind.replies_in_clear() {
                                continue;
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
                    }
                };
                // The address the client reached: the listener's, unless it
                // listens on a wildcard address, intercepts connections meant
                // for other addresses, or sits behind a balancer.
                let local = if addr.ip().is_unspecified()
                    || kind == ListenerKind::Transparent
                    || config.proxy_protocol.is_some()
                {
                    net::local_addr(&client).unwrap_or(addr)
                } else {
                    addr
                };
                let dest = match kind.destination(&client, local) {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::warn!(target: "socks4d", %peer, listener = %addr, error = %e, "no destination for an intercepted connection");
                        continue;
                    }
                };
                let accepted = Accepted {
                    client,
                    peer,
                    local,
                    listener: addr,
                    kind: kind.clone(),
                    dest,
                    proxy: config.proxy_protocol,
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
