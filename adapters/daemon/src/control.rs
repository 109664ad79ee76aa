//! [`Daemon`]: the handle a server runs with and an embedding program holds. It
//! owns the current configuration (swapped whole on reload or policy change, so
//! running connections keep theirs), the counters, the event bus and the
//! shutdown signal.

use crate::cli::Cli;
use crate::conn::Conn;
use crate::counters::{Counters, Snapshot};
use crate::events::{EventBus, EventStream};
use crate::settings::{read_file, ConfigError, Settings};
use event_listener::Event as Notify;
use socks4_acl::{Netmask, Policy};
use socks4_proto::server::{ServerConfig, ServerSession};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// A running server's shared state; clone it freely.
#[derive(Debug, Clone)]
pub struct Daemon {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: Settings,
    cli: Cli,
    config: RwLock<Arc<ServerConfig>>,
    pub(crate) counters: Counters,
    pub(crate) bus: EventBus,
    next_id: AtomicU64,
    shutting_down: AtomicBool,
    shutdown: Notify,
    changed: Notify,
}

impl Daemon {
    /// A daemon for these settings. `cli` is kept so that a reload merges the
    /// re-read file with the same command line.
    pub fn new(settings: Settings, cli: Cli) -> Daemon {
        let config = RwLock::new(Arc::new(settings.server.clone()));
        Daemon {
            inner: Arc::new(Inner {
                counters: Counters::new(&settings.listen),
                settings,
                cli,
                config,
                bus: EventBus::default(),
                next_id: AtomicU64::new(1),
                shutting_down: AtomicBool::new(false),
                shutdown: Notify::new(),
                changed: Notify::new(),
            }),
        }
    }

    /// The settings the daemon started with (listeners, caps, logging).
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The configuration new connections get.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.inner
            .config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Changes the policy for new connections (copy on write).
    pub fn update_policy<R>(&self, change: impl FnOnce(&mut Policy) -> R) -> R {
        let mut guard = self.inner.config.write().unwrap_or_else(|e| e.into_inner());
        let mut cfg = ServerConfig::clone(&guard);
        let r = change(&mut cfg.policy);
        *guard = Arc::new(cfg);
        r
    }

    /// Adds a client netmask to the denial list; `false` when already there.
    pub fn add_denial(&self, mask: Netmask) -> bool {
        self.update_policy(|p| p.add_denial(mask))
    }

    /// Deletes a netmask from the denial list; `false` (a no-op) when not there.
    pub fn del_denial(&self, mask: &Netmask) -> bool {
        self.update_policy(|p| p.del_denial(mask))
    }

    /// Whether a client address is refused by the lists.
    pub fn denied(&self, addr: IpAddr) -> bool {
        self.server_config().policy.denied(addr)
    }

    /// Adds a client netmask to the exemption list; `false` when already there.
    pub fn add_exemption(&self, mask: Netmask) -> bool {
        self.update_policy(|p| p.add_exemption(mask))
    }

    /// Deletes a netmask from the exemption list; `false` (a no-op) when not there.
    pub fn del_exemption(&self, mask: &Netmask) -> bool {
        self.update_policy(|p| p.del_exemption(mask))
    }

    /// Whether a client address is exempted from the denials.
    pub fn exempted(&self, addr: IpAddr) -> bool {
        self.server_config().policy.exempted(addr)
    }

    /// Re-reads the config file (SIGHUP) and applies its policy, limits, timeouts
    /// and IDENT mode to new connections. On any error the old configuration
    /// stays and the error is returned. Listen addresses, the connection cap and
    /// logging change on restart only. Lists changed at run time are replaced by
    /// the file's.
    pub fn reload(&self) -> Result<(), ConfigError> {
        let file = match &self.inner.settings.config_path {
            Some(path) => read_file(path)?,
            None => Default::default(),
        };
        let mut cli = self.inner.cli.clone();
        cli.listen = self
            .inner
            .settings
            .listen
            .iter()
            .map(|a| a.to_string())
            .collect();
        let new = Settings::merge(&cli, file)?;
        *self.inner.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(new.server);
        Ok(())
    }

    /// The counters now.
    pub fn counters(&self) -> Snapshot {
        self.inner.counters.snapshot()
    }

    /// A new subscription to every connection's events.
    pub fn subscribe(&self) -> EventStream {
        self.inner.bus.subscribe()
    }

    /// Asks the server to stop accepting and shut down gracefully.
    pub fn shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        self.inner.shutdown.notify(usize::MAX);
    }

    /// Whether shutdown was asked for.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::SeqCst)
    }

    /// Completes once shutdown is asked for (works on any runtime).
    pub async fn shutdown_requested(&self) {
        loop {
            if self.is_shutting_down() {
                return;
            }
            let listener = self.inner.shutdown.listen();
            if self.is_shutting_down() {
                return;
            }
            listener.await;
        }
    }

    /// Completes once no connection is open (works on any runtime).
    pub async fn idle(&self) {
        loop {
            let listener = self.inner.changed.listen();
            if self.counters().active == 0 {
                return;
            }
            listener.await;
        }
    }

    /// Handles SIGHUP (reload, reporting a broken file and keeping the old
    /// configuration), SIGTERM and SIGINT (graceful shutdown; a second one exits at
    /// once) on a thread of its own, so that every runtime gets the same behaviour.
    pub fn handle_signals(&self) -> std::io::Result<()> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGHUP, SIGINT, SIGTERM])?;
        let daemon = self.clone();
        std::thread::Builder::new().name("signals".into()).spawn(move || {
            for signal in signals.forever() {
                match signal {
                    SIGHUP => match daemon.reload() {
                        Ok(()) => tracing::info!(target: "socks4d", "configuration reloaded"),
                        Err(e) => tracing::error!(target: "socks4d", error = %e, "reload failed, keeping the old configuration"),
                    },
                    _ if daemon.is_shutting_down() => {
                        tracing::warn!(target: "socks4d", "second signal: exiting now");
                        std::process::exit(0);
                    }
                    _ => {
                        // Stop accepting first, then say so: once the line is out,
                        // no new connection is served.
                        daemon.shutdown();
                        tracing::info!(target: "socks4d", "shutting down: no new connections, relays may finish");
                    }
                }
            }
        })?;
        Ok(())
    }

    /// Takes a new connection on listener number `listener`: a session with the
    /// current configuration, or `None` when `max_connections` are open (the
    /// caller closes the socket; it is counted).
    pub fn admit(
        &self,
        listener: usize,
        peer: SocketAddr,
        local: SocketAddr,
        now: Instant,
    ) -> Option<Conn> {
        let inner = &self.inner;
        if inner.counters.snapshot_active() >= inner.settings.max_connections as u64 {
            inner.counters.refused_over_capacity();
            tracing::warn!(target: "socks4d", %peer, max = inner.settings.max_connections, "connection cap reached, closing");
            return None;
        }
        inner.counters.opened(listener);
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let session = ServerSession::new(self.server_config(), peer, local, now);
        let listener_addr = inner
            .settings
            .listen
            .get(listener)
            .copied()
            .unwrap_or(local);
        Some(Conn::new(
            self.clone(),
            session,
            id,
            listener,
            listener_addr,
        ))
    }

    pub(crate) fn counters_ref(&self) -> &Counters {
        &self.inner.counters
    }

    pub(crate) fn bus(&self) -> &EventBus {
        &self.inner.bus
    }

    pub(crate) fn connection_closed(&self, listener: usize) {
        self.inner.counters.closed(listener);
        self.inner.changed.notify(usize::MAX);
    }
}
