//! Serving bound sockets until a graceful stop: an accept loop per listener,
//! the metrics endpoint, the control socket, the notifier and the
//! once-a-second housekeeping; then the shutdown grace and the state file's
//! last write.

use super::bind::{bind, Bound};
use super::listeners::{rebind, Listeners};
use crate::daemon::state_file;
use crate::daemon::upgrade_state::Handed;
use crate::daemon::Daemon;
use crate::runtime::socket;
use crate::runtime::Runtime;
use futures_lite::future::FutureExt;
use socks4_proto::server::OwnAddresses;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

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
        .map(|(_, l)| socket::local_addr(l))
        .collect::<io::Result<Vec<_>>>()?;
    on_bound(addrs);
    serve(rt, daemon, bound).await
}

/// Serves on bound listeners until [`Daemon::shutdown`], then gives open
/// connections the shutdown grace period, then cuts the relays still running.
pub async fn serve<R: Runtime>(rt: R, daemon: Daemon, bound: Bound) -> io::Result<()> {
    let settings = daemon.settings();
    crate::runtime::pipe::PipePool::global()
        .configure(settings.relay_pipe_size, settings.relay_pipes);
    // Quota usage and run-time list entries are back before the first
    // connection is admitted.
    if let Some(file) = daemon.state_file() {
        state_file::load_on(&rt, file.clone(), daemon.clients().clone()).await;
        daemon.restore_runtime_lists();
    }
    // With [fleet], the task that shares state through Redis.
    rt.spawn(crate::fleet::run(rt.clone(), daemon.clone()));
    learn_own_addresses(&rt, &daemon, &bound).await?;
    // The metrics endpoint outlives the drain (its /ready says 503 then):
    // it stops when `served` is dropped, as this function returns.
    let (served, serving) = async_channel::bounded::<()>(1);
    let metrics_addr = bound.metrics.as_ref().map(socket::local_addr).transpose()?;
    if let Some(listener) = bound.metrics {
        serve_metrics(&rt, &daemon, listener, serving)?;
    }
    let clock = rt.clone();
    daemon.outbound().set_clock(Box::new(move || clock.now()));
    if let Some(control) = bound.control {
        if let Some(path) = &settings.control_socket {
            let what = Handed {
                kind: "control".to_owned(),
                addr: None,
                path: Some(path.clone()),
            };
            daemon
                .upgrade()
                .register(what, None, control.try_clone()?.into());
        }
        let clock = rt.clone();
        crate::ops::control::serve(control, daemon.clone(), move || clock.now())?;
    }
    let running = bound
        .listeners
        .iter()
        .map(|(config, l)| Ok((config.clone(), socket::local_addr(l)?)))
        .collect::<io::Result<Vec<_>>>()?;
    let mut listeners = Listeners::new(rt.clone(), daemon.clone());
    for (config, listener) in bound.listeners {
        // Not in the settings: passed by systemd.
        let activated = !settings.listeners.contains(&config);
        listeners.start(config, listener, activated)?;
    }
    rt.spawn(housekeeping(rt.clone(), daemon.clone()));
    let stop = daemon.clone();
    rt.spawn(crate::observe::notify::run(
        rt.clone(),
        daemon.books().notifier.clone(),
        async move { stop.shutdown_requested().await },
    ));
    // A reload binds the listeners it adds and closes those it removes.
    let (changes_tx, changes) = async_channel::unbounded();
    daemon.set_rebind(Some(rebind(&daemon, running, changes_tx)));
    crate::ops::upgrade::announce_ready(&daemon);
    listeners.follow(changes, metrics_addr).await;
    daemon.set_rebind(None);
    // Handed over: the unit is the new process's now.
    let handed_over = daemon.upgrade().handed_over();
    if !handed_over {
        crate::ops::systemd::stopping();
    }
    // Each listener drains its accept queue before it closes: once the line
    // is out, no new connection is served.
    listeners.closed().await;
    tracing::info!(target: "socks4d", "shutting down: no new connections, relays may finish");
    drain(&rt, &daemon).await;
    // Handed over: the state file is the new process's now.
    if !handed_over {
        save_state(&rt, &daemon).await;
    }
    daemon.books().notifier.kill_running();
    drop(served);
    Ok(())
}

/// Serves the metrics listener until `serving` closes (as serving ends,
/// after the drain) or, once a binary upgrade handed it over, at once (the
/// new process answers on it).
fn serve_metrics<R: Runtime>(
    rt: &R,
    daemon: &Daemon,
    listener: std::net::TcpListener,
    serving: async_channel::Receiver<()>,
) -> io::Result<()> {
    let addr = socket::local_addr(&listener)?;
    if let Some(configured) = daemon.settings().metrics_listen {
        let what = Handed {
            kind: "metrics".to_owned(),
            addr: Some(configured.to_string()),
            path: None,
        };
        daemon
            .upgrade()
            .register(what, None, listener.try_clone()?.into());
    }
    let handed = daemon.clone();
    let metrics = Arc::new(crate::ops::metrics::Metrics::new(daemon, R::NAME));
    let listener = rt.listener(listener)?;
    tracing::info!(target: "socks4d", metrics = %addr, "serving metrics");
    rt.spawn(crate::ops::metrics::serve(
        rt.clone(),
        daemon.clone(),
        listener,
        metrics,
        async move {
            let over = async {
                handed.shutdown_requested().await;
                if !handed.upgrade().handed_over() {
                    std::future::pending::<()>().await;
                }
            };
            let _ = async { serving.recv().await.unwrap_or(()) }.or(over).await;
        },
    ));
    Ok(())
}

/// Tells the daemon its own addresses (listeners, metrics endpoint, local
/// interfaces), so that a CONNECT back to the server is seen as a loop.
async fn learn_own_addresses<R: Runtime>(rt: &R, daemon: &Daemon, bound: &Bound) -> io::Result<()> {
    let mut own = bound
        .listeners
        .iter()
        .map(|(_, l)| socket::local_addr(l))
        .collect::<io::Result<Vec<_>>>()?;
    if let Some(metrics) = &bound.metrics {
        own.push(socket::local_addr(metrics)?);
    }
    let local = rt.spawn_blocking(socket::local_addresses).await?;
    daemon.set_own(OwnAddresses::new(own, local));
    Ok(())
}

/// Waits for open connections to end within the shutdown grace period, then
/// cuts the relays still running.
async fn drain<R: Runtime>(rt: &R, daemon: &Daemon) {
    let grace_over = crate::runtime::later(rt.now(), daemon.current().shutdown_grace);
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
}

/// How often the parents' health book is pruned of parents no route names,
/// besides right after each policy change (a reload, rules added at run
/// time): connections that started under an older policy may have used such
/// a parent since.
pub(crate) const PARENT_PRUNE_INTERVAL: Duration = Duration::from_secs(60);

/// How often the state file is written while quota usage changes.
pub(crate) const STATE_SAVE_INTERVAL: Duration = Duration::from_secs(5);

/// Once a second: sums up suppressed refusal lines, forgets unused bandwidth
/// buckets and quota records worth nothing, forgets parents no route names
/// any more (after a policy change, and every [`PARENT_PRUNE_INTERVAL`]), and
/// every few seconds writes the
/// state file if usage changed; until shutdown.
async fn housekeeping<R: Runtime>(rt: R, daemon: Daemon) {
    let mut last_save = rt.now();
    let mut pruned = (daemon.server_config(), rt.now());
    while !daemon.is_shutting_down() {
        rt.sleep_until(rt.now() + Duration::from_secs(1)).await;
        daemon.books().tick(rt.now());
        daemon.conns().tick(rt.now());
        daemon.expire_runtime(std::time::SystemTime::now());
        daemon.clients().tidy();
        // Interfaces come and go: a new local address reaches a wildcard
        // listener too.
        if let Ok(local) = rt.spawn_blocking(socket::local_addresses).await {
            let listeners = daemon.own().listeners().to_vec();
            daemon.set_own(OwnAddresses::new(listeners, local));
        }
        let config = daemon.server_config();
        let due = rt.now().saturating_duration_since(pruned.1) >= PARENT_PRUNE_INTERVAL;
        if due || !Arc::ptr_eq(&config, &pruned.0) {
            daemon
                .outbound()
                .parents
                .prune(config.policy.routes.routes());
            pruned = (config, rt.now());
        }
        if rt.now().saturating_duration_since(last_save) >= STATE_SAVE_INTERVAL {
            last_save = rt.now();
            save_state(&rt, &daemon).await;
        }
    }
}

/// Writes the state file, if there is one and usage changed, off the
/// runtime's threads.
async fn save_state<R: Runtime>(rt: &R, daemon: &Daemon) {
    if daemon.upgrade().handed_over() {
        return;
    }
    if let Some(file) = daemon.state_file() {
        state_file::save_on(rt, file.clone(), daemon.clients().clone(), false).await;
    }
}
