//! [`Daemon`]: the handle a server runs with and an embedding program holds. It
//! owns the current configuration (swapped whole on reload or on a list change,
//! so that running connections keep theirs), the connection slots, the books
//! (counters and events) and the shutdown signal.
//!
//! The run-time list operations are those of the POE SOCKS server this project
//! grew from: `add_denial`/`del_denial`/`denied` and
//! `add_exemption`/`del_exemption`/`exempted`.

pub(crate) mod fleet_link;
pub(crate) mod outbound;
mod rebind;
pub(crate) use rebind::Rebind;
pub(crate) mod runtime_lists;
pub(crate) mod state_file;
pub(crate) mod upgrade_state;

use crate::config::settings::{ConfigError, Settings};
use crate::limits::client_table::{ClientGuard, ClientKey, ClientTable};
use crate::observe::books::Books;
use crate::observe::counters::{ListenerCounts, Snapshot};
use crate::observe::events::EventStream;
use event_listener::Event as Notify;
use socks4_acl::{Netmask, Policy};
use socks4_proto::server::{Limit, OwnAddresses, ServerConfig};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

/// Where [`Daemon::add_rules`] puts new rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// Before every rule: they decide first.
    First,
    /// After every rule: they decide what no other rule matched.
    Last,
}

/// A server's shared state; clone it freely.
#[derive(Debug, Clone)]
pub struct Daemon {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: Settings,
    /// The settings the last reload loaded (the start's until then).
    current: RwLock<Arc<Settings>>,
    config: RwLock<Arc<ServerConfig>>,
    tls: RwLock<Arc<crate::runtime::tls::Tls>>,
    books: Arc<Books>,
    clients: Arc<ClientTable>,
    conns: Arc<crate::observe::conns::ConnTable>,
    /// Run-time list entries (`ctl deny add`), laid over the file's lists.
    runtime: std::sync::Mutex<runtime_lists::RuntimeLists>,
    state: Option<Arc<state_file::StateFile>>,
    own_sockets: Arc<crate::runtime::own_sockets::OwnSockets>,
    own: RwLock<Arc<OwnAddresses>>,
    /// Permits for lookups at once; a reload that changes `max_lookups`
    /// puts a new one here (lookups running keep the old one's permits).
    lookups: RwLock<(usize, Arc<async_lock::Semaphore>)>,
    outbound: outbound::OutboundState,
    next_id: AtomicU64,
    active: AtomicUsize,
    /// `max_connections` now (a reload changes it).
    max_connections: AtomicUsize,
    shutting_down: AtomicBool,
    shutdown: Notify,
    slot_freed: Notify,
    relays_cut: AtomicBool,
    cut: Notify,
    refusing: AtomicUsize,
    rebind: rebind::RebindSlot,
    upgrade: upgrade_state::UpgradeState,
    /// The link to the fleet task, with `[fleet]`.
    fleet: Option<fleet_link::FleetLink>,
}

/// Refused connections kept open at once so that their clients read the
/// reply (each for at most a second); past it, a refused connection is closed
/// at once.
pub(crate) const MAX_LINGERING_REFUSALS: usize = 256;

/// A refused connection's place among the lingering ones.
#[derive(Debug)]
pub(crate) struct Refusing(Arc<Inner>);

impl Drop for Refusing {
    fn drop(&mut self) {
        self.0.refusing.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A connection's place among `max_connections` and among its client's
/// connections; freed when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    inner: Arc<Inner>,
    listener: Arc<ListenerCounts>,
    /// The connection counted for its client (uncounted when dropped);
    /// `None` until its client is known (behind a PROXY header).
    client: Option<ClientGuard>,
    /// The connection's id, unique in this server's life.
    pub(crate) id: u64,
}

/// What [`Daemon::admit`] says to a new connection.
#[derive(Debug)]
pub(crate) enum Admission {
    /// Served: its slot.
    Slot(Slot),
    /// `max_connections` are open (the caller waits for room first, so this
    /// is a race between listeners).
    Full,
    /// Its client is at a per-client cap.
    Limited(Limit),
}

impl Slot {
    /// Counts the connection for its client at `peer`, under the per-client
    /// cap.
    pub(crate) fn attribute(&mut self, peer: SocketAddr) -> Result<(), Limit> {
        let guard = self
            .inner
            .clients
            .open(ClientKey::of(peer.ip()))
            .inspect_err(|limit| {
                self.inner.books.counters.limited(*limit);
            })?;
        self.client = Some(guard);
        Ok(())
    }
}

impl Slot {
    /// Takes the connection's count under its client out of the slot (the
    /// connection holds it from then on, to move it to the identity
    /// admission reveals: `[limits] key`).
    pub(crate) fn take_client(&mut self) -> Option<ClientGuard> {
        self.client.take()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.listener.closed();
        self.inner.active.fetch_sub(1, Ordering::AcqRel);
        self.inner.slot_freed.notify(usize::MAX);
    }
}

impl Daemon {
    /// A daemon for these settings.
    pub fn new(settings: Settings) -> Daemon {
        let config = RwLock::new(Arc::new(settings.server.clone()));
        let tls = RwLock::new(Arc::new(settings.tls.clone()));
        let clients = Arc::new(ClientTable::new(settings.clients));
        let quotas = settings.clients.quota.is_some()
            || settings
                .server
                .policy
                .rules
                .rules()
                .iter()
                .any(|r| r.quota.is_some());
        if settings.state_file.is_none() && quotas {
            tracing::info!(target: "socks4d", "quota usage is kept in memory only (no state_file): a restart starts it from zero")
        }
        // Read when serving starts, off the runtime's threads.
        let state = settings.state_file.clone().map(state_file::StateFile::new);
        let max_connections = settings.max_connections;
        let lookups = RwLock::new((
            settings.max_lookups,
            Arc::new(async_lock::Semaphore::new(settings.max_lookups)),
        ));
        let outbound = outbound::OutboundState::new(&settings.outbound);
        let fleet = settings.fleet.clone().map(fleet_link::FleetLink::new);
        let books = Arc::new(Books::new(
            settings.refusal_log_lines,
            settings.notify.clone(),
        ));
        Daemon {
            inner: Arc::new(Inner {
                current: RwLock::new(Arc::new(settings.clone())),
                settings,
                config,
                tls,
                books,
                clients,
                conns: Default::default(),
                runtime: Default::default(),
                state,
                own_sockets: Default::default(),
                own: Default::default(),
                lookups,
                outbound,
                next_id: AtomicU64::new(1),
                active: AtomicUsize::new(0),
                max_connections: AtomicUsize::new(max_connections),
                shutting_down: AtomicBool::new(false),
                shutdown: Notify::new(),
                slot_freed: Notify::new(),
                relays_cut: AtomicBool::new(false),
                cut: Notify::new(),
                refusing: AtomicUsize::new(0),
                rebind: Default::default(),
                upgrade: Default::default(),
                fleet,
            }),
        }
    }

    /// The settings the daemon started with: what is bound and allocated
    /// once (listeners, caps, logging; the keys of
    /// [`RESTART_KEYS`](crate::config::settings::reload::RESTART_KEYS)).
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The settings the last reload loaded (those of the start until one
    /// did): what new connections get for the keys a reload applies
    /// ([`RELOADED_KEYS`](crate::config::settings::reload::RELOADED_KEYS)).
    pub fn current(&self) -> Arc<Settings> {
        self.inner
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The configuration new connections get.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.inner
            .config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The TLS configurations new connections get (certificates reloaded on
    /// SIGHUP).
    pub(crate) fn tls(&self) -> Arc<crate::runtime::tls::Tls> {
        self.inner
            .tls
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

    /// Adds rules (and routes, and list entries) written in the policy text
    /// format ([`socks4_acl::parse`]) to the policy of new connections, before
    /// the rules there are ([`Position::First`]: they decide first) or after
    /// them ([`Position::Last`]). Like the run-time list changes, they last
    /// until a reload.
    ///
    /// ```
    /// # let daemon = socks4_daemon::Daemon::new(socks4_daemon::Settings::from_options(Default::default()).unwrap());
    /// use socks4_daemon::Position;
    /// daemon.add_rules("block from 127.0.0.2 to any port eq 25 log", Position::First)?;
    /// assert!(daemon.server_config().policy.rules.rules()[0].log);
    /// # Ok::<(), socks4_daemon::ParseError>(())
    /// ```
    pub fn add_rules(&self, text: &str, at: Position) -> Result<(), socks4_acl::ParseError> {
        let added: Policy = text.parse()?;
        self.update_policy(|p| match at {
            Position::First => p.prepend(added),
            Position::Last => p.append(added),
        });
        tracing::info!(target: "socks4d", rules = text, ?at, "rules added at run time");
        Ok(())
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

    /// Re-reads the settings' sources (SIGHUP): the config file, with the same
    /// command line laid on top as at start-up. Every key either applies to
    /// new connections or needs a restart
    /// ([`reload`](crate::config::settings::reload)); a reload that changes
    /// one of the latter says so in one warning line, "restart needed for:
    /// KEY, ...". The lists become the file's, with the run-time entries
    /// (`ctl deny add`, kept in the state file) laid over them again (entries
    /// added through [`add_denial`](Self::add_denial) are dropped). On
    /// any error the old configuration stays and the error is returned.
    pub fn reload(&self) -> Result<(), ConfigError> {
        self.reload_report().map(|_| ())
    }

    /// [`reload`](Self::reload), returning the keys that changed but need a
    /// restart (empty when everything applied).
    pub fn reload_report(&self) -> Result<Vec<&'static str>, ConfigError> {
        // One reload at a time: the listeners bound follow the settings.
        let mut rebind = self
            .inner
            .rebind
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let new = self.inner.settings.reload().and_then(|new| {
            let listeners = match rebind.as_mut() {
                Some(rebind) => rebind(&new).map_err(|message| ConfigError { message })?,
                None => None,
            };
            Ok((new, listeners))
        });
        self.inner.books.counters.reload(new.is_ok());
        let (new, listeners) = new?;
        let mut restart = crate::config::settings::reload::restart_needed(
            &self.inner.settings.options,
            &new.options,
        );
        restart.extend(listeners);
        if !restart.is_empty() {
            let keys = restart.join(", ");
            tracing::warn!(target: "socks4d", keys = %keys, "restart needed for: {keys}");
        }
        self.inner.clients.set_limits(new.clients);
        let max = new.max_connections;
        self.inner.max_connections.store(max, Ordering::Release);
        // Room may have come: connections waiting for a slot look again.
        self.inner.slot_freed.notify(usize::MAX);
        {
            let lookups = self.inner.lookups.write();
            let mut lookups = lookups.unwrap_or_else(|e| e.into_inner());
            if lookups.0 != new.max_lookups {
                let permits = async_lock::Semaphore::new(new.max_lookups);
                *lookups = (new.max_lookups, Arc::new(permits));
            }
        }
        self.inner
            .books
            .set_refusal_log_lines(new.refusal_log_lines);
        self.inner.books.notifier.configure(new.notify.clone());
        *self.inner.tls.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(new.tls.clone());
        let mut server = new.server.clone();
        server.own = self.own();
        *self.inner.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(server);
        *self
            .inner
            .current
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(new);
        self.apply_runtime_lists();
        Ok(restart)
    }

    /// Installs what a reload calls to bind and close listeners (the server
    /// does when it starts serving).
    pub(crate) fn set_rebind(&self, rebind: Option<rebind::Rebind>) {
        *self
            .inner
            .rebind
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = rebind;
    }

    /// The binary upgrade's bookkeeping: the sockets served, the program,
    /// whether an upgrade is under way or done.
    pub(crate) fn upgrade(&self) -> &upgrade_state::UpgradeState {
        &self.inner.upgrade
    }

    /// Per-client bookkeeping: what each client address holds and has done.
    pub fn clients(&self) -> &Arc<ClientTable> {
        &self.inner.clients
    }

    /// The connections open now (`ctl conns`, `ctl kill`).
    pub fn conns(&self) -> &Arc<crate::observe::conns::ConnTable> {
        &self.inner.conns
    }

    /// The local addresses of the server's own outbound connections now open.
    pub(crate) fn own_sockets(&self) -> &Arc<crate::runtime::own_sockets::OwnSockets> {
        &self.inner.own_sockets
    }

    /// Where the server itself can be reached, as sessions see it.
    pub(crate) fn own(&self) -> Arc<OwnAddresses> {
        self.inner
            .own
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sets where the server itself can be reached (its bound listeners of
    /// every kind, and the machine's local addresses); new sessions refuse a
    /// CONNECT there as a loop. Does nothing when nothing changed.
    pub(crate) fn set_own(&self, own: OwnAddresses) {
        {
            let mut current = self.inner.own.write().unwrap_or_else(|e| e.into_inner());
            if **current == own {
                return;
            }
            *current = Arc::new(own);
        }
        let own = self.own();
        let mut guard = self.inner.config.write().unwrap_or_else(|e| e.into_inner());
        let mut cfg = ServerConfig::clone(&guard);
        cfg.own = own;
        *guard = Arc::new(cfg);
    }

    /// A new connection id (for a connection refused before it takes a slot).
    pub(crate) fn next_conn_id(&self) -> u64 {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The state file, if there is one.
    pub(crate) fn state_file(&self) -> Option<&Arc<state_file::StateFile>> {
        self.inner.state.as_ref()
    }

    /// Permits for name lookups running at once.
    pub(crate) fn lookups(&self) -> Arc<async_lock::Semaphore> {
        let lookups = self.inner.lookups.read();
        lookups.unwrap_or_else(|e| e.into_inner()).1.clone()
    }

    /// The link to the fleet task, with `[fleet]`.
    pub(crate) fn fleet(&self) -> Option<&fleet_link::FleetLink> {
        self.inner.fleet.as_ref()
    }

    /// Queues a run-time entry added or renewed for the fleet, if any.
    pub(crate) fn share_list_set(
        &self,
        kind: runtime_lists::ListKind,
        entry: runtime_lists::ListEntry,
    ) {
        if let Some(fleet) = self.fleet() {
            fleet.changed(fleet_link::SharedChange::Set(kind, entry));
        }
    }

    /// Queues a run-time entry deleted for the fleet, if any.
    pub(crate) fn share_list_del(&self, kind: runtime_lists::ListKind, net: String) {
        if let Some(fleet) = self.fleet() {
            fleet.changed(fleet_link::SharedChange::Del(kind, net));
        }
    }

    /// What outbound connections share: parents' health, the resolver's
    /// cache, attempt counters.
    pub(crate) fn outbound(&self) -> &outbound::OutboundState {
        &self.inner.outbound
    }

    /// The counters now.
    pub fn counters(&self) -> Snapshot {
        let mut s = self.inner.books.counters.snapshot();
        s.notifications = self.inner.books.notifier.counts();
        s
    }

    /// A new subscription to every connection's events.
    pub fn subscribe(&self) -> EventStream {
        self.inner.books.bus.subscribe()
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

    /// Ends every relay still running (the shutdown grace period is over);
    /// each is logged and counted with the outcome `shutdown`.
    pub(crate) fn cut_relays(&self) {
        self.inner.relays_cut.store(true, Ordering::SeqCst);
        self.inner.cut.notify(usize::MAX);
        // A listed connection's relay waits on its entry's listener alone.
        self.inner.conns.wake_all();
    }

    /// Whether relays are cut.
    pub(crate) fn are_relays_cut(&self) -> bool {
        self.inner.relays_cut.load(Ordering::SeqCst)
    }

    /// Completes once relays are cut.
    pub(crate) async fn relays_cut(&self) {
        loop {
            if self.are_relays_cut() {
                return;
            }
            let listener = self.inner.cut.listen();
            if self.are_relays_cut() {
                return;
            }
            listener.await;
        }
    }

    /// Connections open now.
    pub fn active(&self) -> usize {
        self.inner.active.load(Ordering::Acquire)
    }

    /// A place for a refused connection to linger, if there is one.
    pub(crate) fn refusal_slot(&self) -> Option<Refusing> {
        self.inner
            .refusing
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_LINGERING_REFUSALS).then_some(n + 1)
            })
            .ok()
            .map(|_| Refusing(self.inner.clone()))
    }

    /// The cap on connections open at once now (`max_connections`, as the
    /// last reload set it).
    pub fn max_connections(&self) -> usize {
        self.inner.max_connections.load(Ordering::Acquire)
    }

    /// Whether a new connection would find room under `max_connections`.
    pub(crate) fn has_room(&self) -> bool {
        self.active() < self.max_connections()
    }

    /// Completes once there is room for a new connection.
    pub(crate) async fn room(&self) {
        loop {
            let listener = self.inner.slot_freed.listen();
            if self.has_room() {
                return;
            }
            listener.await;
        }
    }

    /// Completes once no connection is open (works on any runtime).
    pub async fn idle(&self) {
        loop {
            let listener = self.inner.slot_freed.listen();
            if self.active() == 0 {
                return;
            }
            listener.await;
        }
    }

    /// The books connections report to.
    pub(crate) fn books(&self) -> &Arc<Books> {
        &self.inner.books
    }

    /// Takes a slot for a new connection from `peer` on the listener counted
    /// by `listener`: under `max_connections`, and under its client's cap.
    pub(crate) fn admit(&self, listener: &Arc<ListenerCounts>, peer: SocketAddr) -> Admission {
        let inner = &self.inner;
        let max = self.max_connections();
        let taken = inner
            .active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            });
        if taken.is_err() {
            return Admission::Full;
        }
        let client = match inner.clients.open(ClientKey::of(peer.ip())) {
            Ok(c) => c,
            Err(limit) => {
                inner.active.fetch_sub(1, Ordering::AcqRel);
                inner.books.counters.limited(limit);
                return Admission::Limited(limit);
            }
        };
        listener.opened();
        Admission::Slot(Slot {
            inner: inner.clone(),
            listener: listener.clone(),
            client: Some(client),
            id: inner.next_id.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// Takes a slot under `max_connections` for a connection whose client is
    /// not known yet (a PROXY header will say): [`Slot::attribute`] counts it
    /// for its client once known. `None` when full.
    pub(crate) fn admit_unattributed(&self, listener: &Arc<ListenerCounts>) -> Option<Slot> {
        let inner = &self.inner;
        let max = self.max_connections();
        inner
            .active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        listener.opened();
        Some(Slot {
            inner: inner.clone(),
            listener: listener.clone(),
            client: None,
            id: inner.next_id.fetch_add(1, Ordering::Relaxed),
        })
    }
}
