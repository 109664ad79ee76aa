//! [`Settings::resolve`]: the merged layers of [`Options`] turned into
//! [`Settings`], one named step per job (the notification command, the policy,
//! the listeners and their PROXY protocol, the session's timeouts, TLS, the
//! session configuration, the per-client limits), each checking what it reads.
//! The steps run in a fixed order, so that of several mistakes the same one is
//! reported first every time.

use super::origin::FileOrigin;
use super::policy::build_policy;
use super::{err, ConfigError, Settings, Sources};
use crate::config::listeners::{Listener, ListenerKind};
use crate::config::options::{
    IdentMode, LimitOptions, LimitsKey, Options, Seconds, TimeoutOptions,
};
use crate::limits::client_table::ClientLimits;
use crate::observe::notify::NotifySettings;
use crate::runtime::tls::{Tls, TlsFiles};
use socks4_acl::Policy;
use socks4_proto::server::{ServerConfig, Timeouts};
use std::net::SocketAddr;
use std::time::Duration;

/// Every option has a default, so the merged layers set every field the
/// defaults set.
const HAS_DEFAULT: &str = "Options::defaults sets every option with a default";

impl Settings {
    /// The settings `all` (the layers merged) describe. `listen_set` says
    /// whether a layer above the defaults named `listen`; `origin` places
    /// errors in the config file; `sources` is kept for reloads.
    pub(super) fn resolve(
        all: Options,
        listen_set: bool,
        origin: FileOrigin<'_>,
        sources: Sources,
    ) -> Result<Settings, ConfigError> {
        run_as_group_needs_user(&all)?;
        let notify = notify_settings(&all, &origin)?;
        let policy = build_policy(&all, &origin, notify.is_some())?;
        let (listen, addrs) = listener_addrs(&all, listen_set)?;
        let (listeners, proxy_protocol) = with_proxy_protocol(&all, addrs)?;
        let timeouts = session_timeouts(&all.timeouts)?;
        let dual_timeout = dual_timeout(&all.timeouts, &listeners, timeouts.handshake)?;
        let sniffing = sniffing(&all, &listeners)?;
        let fleet = super::fleet::fleet_settings(&all.fleet)?;
        let fleet_tls = fleet.as_ref().is_some_and(|f| f.redis.tls);
        let (tls_files, tls) = tls(&all, &listeners, &policy, fleet_tls)?;
        super::tls_paths::check_tls_paths(&listeners, &policy)?;
        check_limits_key(&all)?;
        let server = session(&all, timeouts, policy);
        let limits = &all.limits;
        Ok(Settings {
            listen,
            listeners,
            proxy_protocol_from: all
                .proxy_protocol_from
                .iter()
                .flatten()
                .map(|n| n.0)
                .collect(),
            reuse_port: all.reuse_port.expect(HAS_DEFAULT),
            proxy_protocol,
            max_proxy_header: limits.max_proxy_header.expect(HAS_DEFAULT),
            server,
            tls_files,
            tls,
            dual_timeout,
            sniffing,
            notify,
            max_connections: all.max_connections.expect(HAS_DEFAULT),
            when_full: all.when_full.expect(HAS_DEFAULT),
            abort_on_client_close: all.abort_on_client_close.expect(HAS_DEFAULT),
            metrics_listen: all.metrics_listen,
            metrics_allow: all.metrics_allow.iter().flatten().map(|n| n.0).collect(),
            control_socket: all.control_socket.clone(),
            user: all.user.clone(),
            group: all.group.clone(),
            allow_root: all.allow_root.expect(HAS_DEFAULT),
            pid_file: all.pid_file.clone(),
            shutdown_grace: all.timeouts.shutdown_grace.expect(HAS_DEFAULT).0,
            keepalive: Some(all.timeouts.keepalive.expect(HAS_DEFAULT).0).filter(|d| !d.is_zero()),
            refused_timeout: positive("refused", all.timeouts.refused)?,
            max_metrics_connections: limits.max_metrics_connections.expect(HAS_DEFAULT).max(1),
            metrics_timeout: positive("metrics", all.timeouts.metrics)?,
            control_timeout: positive("control", all.timeouts.control)?,
            upgrade_timeout: positive("upgrade", all.timeouts.upgrade)?,
            clients: client_limits(limits),
            state_file: all.state_file.clone(),
            outgoing: all.outgoing_address.clone().unwrap_or_default(),
            max_lookups: limits.max_lookups.expect(HAS_DEFAULT).max(1),
            fleet,
            runtime_list_entries: limits.runtime_list_entries.expect(HAS_DEFAULT),
            outbound: crate::config::outbound::Outbound::from_options(&all)?,
            refusal_log_lines: limits.refusal_log_lines.expect(HAS_DEFAULT),
            relay_pipes: limits.relay_pipes.expect(HAS_DEFAULT),
            relay_pipe_size: limits.relay_pipe_size.expect(HAS_DEFAULT),
            log_format: all.log_format.expect(HAS_DEFAULT),
            log_level: all.log_level.expect(HAS_DEFAULT).shifted(sources.verbosity),
            log_outputs: log_outputs(&all, sources.verbosity),
            sources,
            options: all.clone(),
        })
    }
}

/// The log's outputs: the log file, syslog, the access log (the files'
/// owner, the user switched to, is found at start).
fn log_outputs(all: &Options, verbosity: i32) -> crate::observe::logging::LogOutputs {
    let format = all.log_format.expect(HAS_DEFAULT);
    crate::observe::logging::LogOutputs {
        format,
        level: all.log_level.expect(HAS_DEFAULT).shifted(verbosity),
        file: all.log_file.clone(),
        syslog: all.syslog.clone().map(|t| t.0),
        access: all.access_log.clone().map(|a| a.0),
        access_format: all.access_log_format.unwrap_or(format),
        access_level: all.access_log_level.expect(HAS_DEFAULT),
        owner: None,
    }
}

/// The notification command, found and checked for the user the server runs
/// as after a privilege drop; `None` without `[notify] command`.
fn notify_settings(
    all: &Options,
    origin: &FileOrigin<'_>,
) -> Result<Option<NotifySettings>, ConfigError> {
    let n = &all.notify;
    let Some(argv) = &n.command else {
        return Ok(None);
    };
    let place = match (origin.file, origin.notify_command) {
        (Some(f), Some((l, c))) => format!("{}: line {l}, column {c}: ", f.display()),
        (Some(f), None) => format!("{}: ", f.display()),
        _ => String::new(),
    };
    let (uid, gid) = match &all.user {
        Some(user) => crate::config::users::ids(user, all.group.as_deref())
            .map_err(|e| err(format!("{place}[notify] command: {e}")))?,
        None => (
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
        ),
    };
    let program = crate::observe::notify::resolve_program(argv, uid, gid)
        .map_err(|e| err(format!("{place}[notify] command {e}")))?;
    const HAS_DEFAULT: &str = "Options::defaults sets every [notify] key but command";
    Ok(Some(NotifySettings {
        program,
        args: argv[1..].to_vec(),
        max_running: n.max_running.expect(HAS_DEFAULT).max(1),
        rate: n.rate.as_ref().expect(HAS_DEFAULT).0,
        timeout: n.timeout.expect(HAS_DEFAULT).0,
        queue: n.queue.expect(HAS_DEFAULT).max(1),
    }))
}

/// `group` alone is a mistake: the group is switched to only together with
/// `user` (the privilege drop), so without it the setting would do nothing.
fn run_as_group_needs_user(all: &Options) -> Result<(), ConfigError> {
    match (&all.user, &all.group) {
        (None, Some(group)) => Err(err(format!(
            "group = {group:?} needs user: the group is switched to together with the user \
             after binding (--user NAME --group {group})"
        ))),
        _ => Ok(()),
    }
}

/// Every listener's kind and address, before its PROXY protocol is known.
type Addrs = Vec<(ListenerKind, SocketAddr)>;

/// The SOCKS listeners' addresses (`listen`), and every listener's kind and
/// address, plain SOCKS ones first. The default SOCKS listener goes when
/// another kind is configured and no layer named `listen`.
fn listener_addrs(
    all: &Options,
    listen_set: bool,
) -> Result<(Vec<SocketAddr>, Addrs), ConfigError> {
    let mut listen = all.listen.clone().expect(HAS_DEFAULT);
    let others = all.listen_tls.iter().flatten().count()
        + all.dual.iter().flatten().count()
        + all.transparent.iter().flatten().count()
        + all.redirect.iter().flatten().count()
        + all.forward.iter().flatten().count()
        + all.forward_tls.iter().flatten().count();
    if !listen_set && others > 0 {
        listen.clear();
    }
    let mut listeners: Addrs = listen.iter().map(|a| (ListenerKind::Socks, *a)).collect();
    listeners.extend(
        all.listen_tls
            .iter()
            .flatten()
            .map(|a| (ListenerKind::Tls, *a)),
    );
    listeners.extend(
        all.dual
            .iter()
            .flatten()
            .map(|f| (ListenerKind::Dual(f.0.to.clone()), f.0.listen)),
    );
    listeners.extend(
        all.transparent
            .iter()
            .flatten()
            .map(|a| (ListenerKind::Transparent, *a)),
    );
    listeners.extend(
        all.redirect
            .iter()
            .flatten()
            .map(|a| (ListenerKind::Redirect, *a)),
    );
    listeners.extend(
        all.forward
            .iter()
            .flatten()
            .map(|f| (ListenerKind::Forward(f.0.to.clone()), f.0.listen)),
    );
    listeners.extend(
        all.forward_tls
            .iter()
            .flatten()
            .map(|f| (ListenerKind::ForwardTls(f.0.to.clone()), f.0.listen)),
    );
    if listeners.is_empty() {
        return Err(err("listen: no listen address"));
    }
    Ok((listen, listeners))
}

/// The listeners with their PROXY protocol: `proxy_protocol` for the SOCKS
/// listeners, and per listener of any kind in `proxy_protocol_listeners`
/// (which must name listeners). Also returns the SOCKS listeners' one.
fn with_proxy_protocol(
    all: &Options,
    addrs: Addrs,
) -> Result<(Vec<Listener>, Option<socks4_proto::proxy_header::Accept>), ConfigError> {
    let socks_proxy = all.proxy_protocol.as_ref().map(|t| t.0);
    let mut per_listener = std::collections::BTreeMap::new();
    for (addr, accept) in all.proxy_protocol_listeners.iter().flatten() {
        let at: SocketAddr = addr.parse().map_err(|_| {
            err(format!(
                "proxy_protocol_listeners: '{addr}' is not an address (IP:PORT or [IPv6]:PORT)"
            ))
        })?;
        if !addrs.iter().any(|(_, a)| *a == at) {
            return Err(err(format!(
                "proxy_protocol_listeners: {at} is not one of the listeners"
            )));
        }
        per_listener.insert(at, accept.0);
    }
    let listeners: Vec<Listener> = addrs
        .into_iter()
        .map(|(kind, addr)| Listener {
            proxy_protocol: per_listener.get(&addr).copied().or(match kind {
                ListenerKind::Socks => socks_proxy,
                _ => None,
            }),
            kind,
            addr,
        })
        .collect();
    require_trusted_balancers(all, &listeners)?;
    Ok((listeners, socks_proxy))
}

/// A listener that requires a PROXY protocol header believes whoever sends
/// one about the client's address: there is no default trust, so
/// `proxy_protocol_from` must name the balancers.
fn require_trusted_balancers(all: &Options, listeners: &[Listener]) -> Result<(), ConfigError> {
    let Some(l) = listeners.iter().find(|l| l.proxy_protocol.is_some()) else {
        return Ok(());
    };
    let what = match &all.proxy_protocol_from {
        None => "is not set",
        Some(nets) if nets.is_empty() => "names no address",
        Some(_) => return Ok(()),
    };
    Err(err(format!(
        "proxy_protocol_from {what}, and the {} listener {} requires a PROXY protocol header: \
         name the load balancers that may send one (--proxy-protocol-from NET, config \
         proxy_protocol_from = [\"NET\"]); there is no default trust",
        l.kind.name(),
        l.addr
    )))
}

/// A `[timeouts]` key that must be more than zero.
fn positive(name: &str, v: Option<Seconds>) -> Result<Duration, ConfigError> {
    let d = v.expect(HAS_DEFAULT).0;
    if d.is_zero() {
        Err(err(format!("[timeouts] {name}: must be more than zero")))
    } else {
        Ok(d)
    }
}

/// The session's timeouts: every phase's more than zero; an idle timeout of
/// zero means none.
fn session_timeouts(t: &TimeoutOptions) -> Result<Timeouts, ConfigError> {
    let mut timeouts = Timeouts::DEFAULT;
    timeouts.handshake = positive("handshake", t.handshake)?;
    timeouts.resolve = positive("resolve", t.resolve)?;
    timeouts.ident = positive("ident", t.ident)?;
    timeouts.connect = positive("connect", t.connect)?;
    timeouts.bind_accept = positive("bind_accept", t.bind_accept)?;
    timeouts.connect_attempt = positive("connect_attempt", t.connect_attempt)?;
    timeouts.attempt_delay = positive("attempt_delay", t.attempt_delay)?;
    let idle = t.idle.expect(HAS_DEFAULT).0;
    timeouts.idle = (!idle.is_zero()).then_some(idle);
    Ok(timeouts)
}

/// How long a dual listener waits for the first byte: more than zero, and
/// with dual listeners shorter than the handshake timeout that covers it.
fn dual_timeout(
    t: &TimeoutOptions,
    listeners: &[Listener],
    handshake: Duration,
) -> Result<Duration, ConfigError> {
    let dual_timeout = positive("dual", t.dual)?;
    let duals = listeners
        .iter()
        .any(|l| matches!(l.kind, ListenerKind::Dual(_)));
    if duals && dual_timeout >= handshake {
        return Err(err(format!(
            "[timeouts] dual ({}) must be shorter than [timeouts] handshake ({}): the \
             handshake timeout runs from accept and covers the wait for the first byte",
            Seconds(dual_timeout),
            Seconds(handshake)
        )));
    }
    Ok(dual_timeout)
}

/// Which listeners sniff, and how: `sniff`'s kinds (`none` alone, or an
/// empty list, for none), `sniff_target` and its per-listener table (which
/// must name listeners that sniff), `[timeouts] sniff` (more than zero) and
/// `[limits] max_sniff`.
fn sniffing(
    all: &Options,
    listeners: &[Listener],
) -> Result<crate::config::listeners::Sniffing, ConfigError> {
    use crate::config::options::SniffListeners;
    let kinds = all.sniff.clone().unwrap_or_default();
    if kinds.contains(&SniffListeners::None) && kinds.len() > 1 {
        return Err(err(
            "sniff: 'none' cannot go with listener kinds (to sniff none, say only none, or sniff = [])",
        ));
    }
    let mut sniffing = crate::config::listeners::Sniffing {
        transparent: kinds.contains(&SniffListeners::Transparent),
        redirect: kinds.contains(&SniffListeners::Redirect),
        forward: kinds.contains(&SniffListeners::Forward),
        target: all.sniff_target.expect(HAS_DEFAULT),
        per_listener: std::collections::BTreeMap::new(),
        timeout: positive("sniff", all.timeouts.sniff)?,
        max: all.limits.max_sniff.expect(HAS_DEFAULT),
    };
    for (addr, target) in all.sniff_target_listeners.iter().flatten() {
        let at: SocketAddr = addr.parse().map_err(|_| {
            err(format!(
                "sniff_target_listeners: '{addr}' is not an address (IP:PORT or [IPv6]:PORT)"
            ))
        })?;
        let Some(l) = listeners.iter().find(|l| l.addr == at) else {
            return Err(err(format!(
                "sniff_target_listeners: {at} is not one of the listeners"
            )));
        };
        if sniffing.for_listener(&l.kind, at).is_none() {
            return Err(err(format!(
                "sniff_target_listeners: the {} listener {at} does not sniff (sniff names the kinds that do)",
                l.kind.name()
            )));
        }
        sniffing.per_listener.insert(at, *target);
    }
    Ok(sniffing)
}

/// The `[tls]` files and the TLS configurations loaded from them: the server
/// side when a TLS listener needs it, the client side when a TLS forward, a
/// route through a TLS parent or the fleet's Redis over TLS (`fleet_tls`)
/// does.
fn tls(
    all: &Options,
    listeners: &[Listener],
    policy: &Policy,
    fleet_tls: bool,
) -> Result<(TlsFiles, Tls), ConfigError> {
    let tls_files = TlsFiles {
        cert: all.tls.cert.clone(),
        key: all.tls.key.clone(),
        client_ca: all.tls.client_ca.clone(),
        ca: all.tls.ca.clone(),
    };
    let server_needed = listeners.iter().any(|l| l.kind == ListenerKind::Tls);
    let client_needed = fleet_tls
        || listeners
            .iter()
            .any(|l| matches!(l.kind, ListenerKind::ForwardTls(_)))
        || policy.routes.routes().any(|r| match &r.target {
            socks4_acl::Target::Via(parents) => parents.iter().any(|p| p.kind.tls()),
            _ => false,
        });
    let tls = Tls::load(&tls_files, server_needed, client_needed)
        .map_err(|e| err(format!("[tls] {e}")))?;
    Ok((tls_files, tls))
}

/// The session configuration: IDENT, sizes, timeouts and the policy.
fn session(all: &Options, timeouts: Timeouts, policy: Policy) -> ServerConfig {
    let mut server = ServerConfig::default();
    server.ident = all.ident.expect(HAS_DEFAULT).into();
    server.ident_port = all.ident_port.expect(HAS_DEFAULT);
    server.limits.max_user_id = all.limits.max_user_id.expect(HAS_DEFAULT);
    server.limits.max_host = all.limits.max_host.expect(HAS_DEFAULT);
    server.max_early_data = all.limits.max_early_data.expect(HAS_DEFAULT);
    server.timeouts = timeouts;
    server.policy = policy;
    server.bind_address = all.bind_address;
    // The driver answers admission from the client table (BIND listeners,
    // and the limits that come with it).
    server.admission = true;
    // Limits keyed on the IDENT-verified user: identd answers first.
    server.ident_before_admission = all.limits.key == Some(LimitsKey::Ident);
    server
}

/// The caps on each client and the client table's size.
fn client_limits(limits: &LimitOptions) -> ClientLimits {
    ClientLimits {
        max_connections: limits.max_connections_per_client.expect(HAS_DEFAULT),
        max_binds: limits.max_binds_per_client.expect(HAS_DEFAULT),
        max_lookups: lookups_per_client(limits),
        tracked: limits.tracked_clients.expect(HAS_DEFAULT).max(1),
        bandwidth: limits.client_bandwidth.as_ref().map(|t| t.0),
        rate: limits.client_connection_rate.as_ref().map(|t| t.0),
        quota: limits.quota.as_ref().map(|t| t.0),
        key: limits.key.expect(HAS_DEFAULT).into(),
    }
}

/// `[limits] key = "ident"` keys on the user identd confirmed, which only
/// `ident = "require"` makes every request have: refused without it, rather
/// than keyed on addresses in silence.
fn check_limits_key(all: &Options) -> Result<(), ConfigError> {
    let key = all.limits.key.expect(HAS_DEFAULT);
    let ident = all.ident.expect(HAS_DEFAULT);
    if key == LimitsKey::Ident && ident != IdentMode::Require {
        return Err(err(
            "[limits] key = \"ident\" needs ident = \"require\" (only a user identd confirmed keys a limit; a SOCKS user id alone is the client's claim)"
                .to_owned(),
        ));
    }
    Ok(())
}

/// `max_lookups_per_client`, or a quarter of `max_lookups` (at least one).
fn lookups_per_client(limits: &LimitOptions) -> usize {
    let all = limits.max_lookups.expect(HAS_DEFAULT).max(1);
    limits
        .max_lookups_per_client
        .unwrap_or(all / 4)
        .clamp(1, all)
}
