//! [`Settings`]: what a server runs with, resolved from three layers of
//! [`Options`] (defaults, the config file, the command line) and checked. The
//! command line's layer is kept ([`Sources`]) so that a reload re-reads the file
//! and lays the same command line on top again, with the same precedence as at
//! start-up. Settings from command-line arguments: `Settings::from_args`, in
//! [`crate::config::cli`].

use crate::config::options::{LogFormat, LogLevel, Options};
use socks4_acl::{Netmask, Policy};
use socks4_proto::server::{ServerConfig, Timeouts};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where settings come from: a config file (re-read on reload) and the layer laid
/// over it (the command line, or what an embedding program set in code).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sources {
    /// The TOML config file, if any.
    pub config: Option<PathBuf>,
    /// The options that win over the file's.
    pub overrides: Options,
    /// Log verbosity steps from `-v` (positive) and `-q` (negative).
    pub verbosity: i32,
}

/// Everything a server runs with, resolved and validated.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Settings {
    /// Addresses to listen on for SOCKS clients.
    pub listen: Vec<SocketAddr>,
    /// Every listener: its kind, address and PROXY protocol (plain SOCKS ones
    /// first).
    pub listeners: Vec<crate::config::listeners::Listener>,
    /// The PROXY protocol of the SOCKS listeners (`listen`, and sockets
    /// inherited by socket activation).
    pub proxy_protocol: Option<socks4_proto::proxy::Accept>,
    /// The longest PROXY protocol v2 header accepted.
    pub max_proxy_header: usize,
    /// Who may send a PROXY protocol header: connections to a listener that
    /// requires one from anyone else are closed.
    pub proxy_protocol_from: Vec<Netmask>,
    /// Whether listening sockets are shared with other processes
    /// (`SO_REUSEPORT`).
    pub reuse_port: bool,
    /// The session configuration (limits, timeouts, IDENT, policy).
    pub server: ServerConfig,
    /// The `[tls]` files.
    pub tls_files: crate::runtime::tls::TlsFiles,
    /// The TLS configurations loaded from them.
    pub tls: crate::runtime::tls::Tls,
    /// How long a dual listener waits for a client's first byte.
    pub dual_timeout: Duration,
    /// The notification command, if `[notify] command` is set.
    pub notify: Option<crate::observe::notify::NotifySettings>,
    /// Concurrent connection cap.
    pub max_connections: usize,
    /// Where Prometheus metrics are served, if anywhere.
    pub metrics_listen: Option<SocketAddr>,
    /// Who may scrape the metrics: loopback plus these.
    pub metrics_allow: Vec<Netmask>,
    /// The control socket's path, if any.
    pub control_socket: Option<PathBuf>,
    /// The user to run as after binding.
    pub user: Option<String>,
    /// The group to run as after binding.
    pub group: Option<String>,
    /// Whether running as root beyond loopback without `user` is allowed.
    pub allow_root: bool,
    /// Where the process id is written.
    pub pid_file: Option<PathBuf>,
    /// Time relays get to finish on shutdown.
    pub shutdown_grace: Duration,
    /// The caps on each client and the client table's size.
    pub clients: crate::limits::client_table::ClientLimits,
    /// Where per-client quota usage is kept across restarts.
    pub state_file: Option<PathBuf>,
    /// Addresses outbound connections leave from, by family.
    pub outgoing: Vec<std::net::IpAddr>,
    /// Name lookups running at once.
    pub max_lookups: usize,
    /// Log lines per second for refused connections.
    pub refusal_log_lines: u32,
    /// Splice pipes that may exist at once (0: copy through user space).
    pub relay_pipes: usize,
    /// Capacity asked for each splice pipe.
    pub relay_pipe_size: usize,
    /// Log line format.
    pub log_format: LogFormat,
    /// Log level (`-v`/`-q` applied).
    pub log_level: LogLevel,
    /// Where these settings came from (what a reload reads again).
    pub sources: Sources,
}

/// Why settings could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// What went wrong, for a person: the file or flag, and where in the file.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

fn err(message: impl Into<String>) -> ConfigError {
    ConfigError {
        message: message.into(),
    }
}

impl Settings {
    /// Settings from options set in code, with no config file: for programs that
    /// embed a server. What `options` leaves `None` gets its default.
    pub fn from_options(options: Options) -> Result<Settings, ConfigError> {
        Settings::load(Sources {
            config: None,
            overrides: options,
            verbosity: 0,
        })
    }

    /// Reads the config file (if any), lays `sources.overrides` on top, and
    /// resolves and checks the result.
    pub fn load(sources: Sources) -> Result<Settings, ConfigError> {
        let (file, text) = match &sources.config {
            #[cfg(not(feature = "cli"))]
            Some(path) => {
                return Err(err(format!(
                    "{}: reading a config file needs the `cli` feature of socks4-daemon",
                    path.display()
                )))
            }
            #[cfg(feature = "cli")]
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| err(format!("{}: {e}", path.display())))?;
                let file = Options::from_toml(&text)
                    .map_err(|e| err(format!("{}: {e}", path.display())))?;
                (file, Some(text))
            }
            None => (Options::default(), None::<String>),
        };
        let all = Options::defaults()
            .layered(&file)
            .layered(&sources.overrides);
        let config = sources.config.clone();
        let origin = FileOrigin {
            file: config.as_deref(),
            start: text.as_deref().map_or((1, 1), rules_start),
            notify_command: text
                .as_deref()
                .and_then(|t| crate::observe::notify::key_position(t, "command")),
        };
        if file.notify != crate::config::options::NotifyOptions::default()
            && all.notify.command.is_none()
        {
            return Err(err(format!(
                "{}: [notify]: `command` is required (the argv of the program to run)",
                config.as_deref().unwrap_or(Path::new("config")).display()
            )));
        }
        // The default SOCKS listener is for a server configured with no
        // listener at all: one that names only TLS, dual, forward or
        // interception listeners gets just those.
        let listen_set = file.listen.is_some() || sources.overrides.listen.is_some();
        let settings = Settings::resolve(all, listen_set, origin, sources)?;
        settings.check_secure()?;
        Ok(settings)
    }

    /// Reads the same sources again: what SIGHUP does.
    pub fn reload(&self) -> Result<Settings, ConfigError> {
        Settings::load(self.sources.clone())
    }

    fn resolve(
        all: Options,
        listen_set: bool,
        origin: FileOrigin<'_>,
        sources: Sources,
    ) -> Result<Settings, ConfigError> {
        // Every option has a default, so the merged layers set every field the
        // defaults set.
        const HAS_DEFAULT: &str = "Options::defaults sets every option with a default";
        let notify = notify_settings(&all, &origin)?;
        let policy = build_policy(&all, &origin, notify.is_some())?;
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
        use crate::config::listeners::{Listener, ListenerKind};
        let mut listeners: Vec<(ListenerKind, SocketAddr)> =
            listen.iter().map(|a| (ListenerKind::Socks, *a)).collect();
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
        // PROXY protocol: `proxy_protocol` for the SOCKS listeners, and per
        // listener of any kind in `proxy_protocol_listeners`.
        let socks_proxy = all.proxy_protocol.as_ref().map(|t| t.0);
        let mut per_listener = std::collections::BTreeMap::new();
        for (addr, accept) in all.proxy_protocol_listeners.iter().flatten() {
            let at: SocketAddr = addr.parse().map_err(|_| {
                err(format!(
                    "proxy_protocol_listeners: '{addr}' is not an address (IP:PORT or [IPv6]:PORT)"
                ))
            })?;
            if !listeners.iter().any(|(_, a)| *a == at) {
                return Err(err(format!(
                    "proxy_protocol_listeners: {at} is not one of the listeners"
                )));
            }
            per_listener.insert(at, accept.0);
        }
        let listeners: Vec<Listener> = listeners
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
        let mut server = ServerConfig::default();
        server.ident = all.ident.expect(HAS_DEFAULT).into();
        server.ident_port = all.ident_port.expect(HAS_DEFAULT);
        server.limits.max_user_id = all.limits.max_user_id.expect(HAS_DEFAULT);
        server.limits.max_host = all.limits.max_host.expect(HAS_DEFAULT);
        server.max_early_data = all.limits.max_early_data.expect(HAS_DEFAULT);
        let t = &all.timeouts;
        let positive = |name: &str, v: Option<crate::config::options::Seconds>| {
            let d = v.expect(HAS_DEFAULT).0;
            if d.is_zero() {
                Err(err(format!("[timeouts] {name}: must be more than zero")))
            } else {
                Ok(d)
            }
        };
        let mut timeouts = Timeouts::DEFAULT;
        timeouts.handshake = positive("handshake", t.handshake)?;
        timeouts.resolve = positive("resolve", t.resolve)?;
        timeouts.ident = positive("ident", t.ident)?;
        timeouts.connect = positive("connect", t.connect)?;
        timeouts.bind_accept = positive("bind_accept", t.bind_accept)?;
        let idle = t.idle.expect(HAS_DEFAULT).0;
        timeouts.idle = (!idle.is_zero()).then_some(idle);
        server.timeouts = timeouts;
        let shutdown_grace = t.shutdown_grace.expect(HAS_DEFAULT).0;
        let dual_timeout = positive("dual", t.dual)?;
        let duals = listeners
            .iter()
            .any(|l| matches!(l.kind, ListenerKind::Dual(_)));
        if duals && dual_timeout >= timeouts.handshake {
            return Err(err(format!(
                "[timeouts] dual ({}) must be shorter than [timeouts] handshake ({}): the \
                 handshake timeout runs from accept and covers the wait for the first byte",
                crate::config::options::Seconds(dual_timeout),
                crate::config::options::Seconds(timeouts.handshake)
            )));
        }
        let tls_files = crate::runtime::tls::TlsFiles {
            cert: all.tls.cert.clone(),
            key: all.tls.key.clone(),
            client_ca: all.tls.client_ca.clone(),
            ca: all.tls.ca.clone(),
        };
        let server_needed = listeners.iter().any(|l| l.kind == ListenerKind::Tls);
        let client_needed = listeners
            .iter()
            .any(|l| matches!(l.kind, ListenerKind::ForwardTls(_)))
            || policy.routes.routes().any(|r| match &r.target {
                socks4_acl::Target::Via(parents) => parents.iter().any(|p| p.kind.tls()),
                _ => false,
            });
        let tls = crate::runtime::tls::Tls::load(&tls_files, server_needed, client_needed)
            .map_err(|e| err(format!("[tls] {e}")))?;
        server.policy = policy;
        server.bind_address = all.bind_address;
        // The driver answers admission from the client table (BIND listeners,
        // and the limits that come with it).
        server.admission = true;
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
            proxy_protocol: socks_proxy,
            max_proxy_header: all.limits.max_proxy_header.expect(HAS_DEFAULT),
            server,
            tls_files,
            tls,
            dual_timeout,
            notify,
            max_connections: all.max_connections.expect(HAS_DEFAULT),
            metrics_listen: all.metrics_listen,
            metrics_allow: all.metrics_allow.iter().flatten().map(|n| n.0).collect(),
            control_socket: all.control_socket.clone(),
            user: all.user.clone(),
            group: all.group.clone(),
            allow_root: all.allow_root.expect(HAS_DEFAULT),
            pid_file: all.pid_file.clone(),
            shutdown_grace,
            clients: crate::limits::client_table::ClientLimits {
                max_connections: all.limits.max_connections_per_client.expect(HAS_DEFAULT),
                max_binds: all.limits.max_binds_per_client.expect(HAS_DEFAULT),
                tracked: all.limits.tracked_clients.expect(HAS_DEFAULT).max(1),
                bandwidth: all.limits.client_bandwidth.as_ref().map(|t| t.0),
                rate: all.limits.client_connection_rate.as_ref().map(|t| t.0),
                quota: all.limits.quota.as_ref().map(|t| t.0),
            },
            state_file: all.state_file.clone(),
            outgoing: all.outgoing_address.clone().unwrap_or_default(),
            max_lookups: all.limits.max_lookups.expect(HAS_DEFAULT).max(1),
            refusal_log_lines: all.limits.refusal_log_lines.expect(HAS_DEFAULT),
            relay_pipes: all.limits.relay_pipes.expect(HAS_DEFAULT),
            relay_pipe_size: all.limits.relay_pipe_size.expect(HAS_DEFAULT),
            log_format: all.log_format.expect(HAS_DEFAULT),
            log_level: all.log_level.expect(HAS_DEFAULT).shifted(sources.verbosity),
            sources,
        })
    }

    /// The listeners' addresses outside loopback, as text.
    pub(crate) fn public_listeners(&self) -> Vec<String> {
        self.listeners
            .iter()
            .map(|l| l.addr)
            .filter(|a| !a.ip().is_loopback())
            .map(|a| a.to_string())
            .collect()
    }

    /// Refuses a listener outside loopback when the policy serves loopback
    /// clients only: every client that can reach such a listener would be
    /// refused, which is never what was meant, and a careless edit could later
    /// open it to all. Serving a network must be a deliberate rule that names a
    /// client net outside loopback.
    pub fn check_secure(&self) -> Result<(), ConfigError> {
        let public = self.public_listeners();
        if let Some(addr) = self.metrics_listen {
            let outside = self.metrics_allow.iter().any(|n| match n {
                Netmask::Any => true,
                Netmask::Net(net) => !socks4_acl::loopback().iter().any(|l| match l {
                    Netmask::Net(l) => l.contains(net),
                    Netmask::Any => false,
                }),
            });
            if !addr.ip().is_loopback() && !outside {
                return Err(err(format!(
                    "refusing to serve metrics on {addr} (not loopback): only loopback may scrape them; \
                     say who else may with `--metrics-allow NET` (config: metrics_allow)"
                )));
            }
        }
        if !public.is_empty() && self.server.policy.only_loopback_clients() {
            return Err(err(format!(
                "refusing to listen on {} (not loopback): no access rule passes a client from outside \
                 loopback, so nobody who can reach that address could use the proxy; say who may, \
                 e.g. `--allow 192.168.1.0/24`, or `rules = \"pass from 192.168.1.0/24 to any\"` under \
                 [access] in the config file (`pass from any to any` makes an open proxy: only do \
                 that deliberately)",
                public.join(", ")
            )));
        }
        Ok(())
    }
}

/// Where parts of the config file are (the `[access] rules` text, the
/// `[notify] command` key), so that errors name the file's line and column.
struct FileOrigin<'a> {
    file: Option<&'a Path>,
    /// The file's line and column (from 1) of the `[access] rules` string's
    /// first character.
    start: (usize, usize),
    /// The file's line and column of `[notify] command`.
    notify_command: Option<(usize, usize)>,
}

/// The file's line and column where the `[access] rules` string's text starts.
/// A multi-line string (`"""` or `'''`) drops the newline right after its
/// opening quotes, so its text starts on the next line.
#[cfg_attr(not(feature = "cli"), allow(unused_variables))]
fn rules_start(text: &str) -> (usize, usize) {
    #[cfg(not(feature = "cli"))]
    return (1, 1);
    #[cfg(feature = "cli")]
    rules_start_in_toml(text)
}

#[cfg(feature = "cli")]
fn rules_start_in_toml(text: &str) -> (usize, usize) {
    #[derive(serde::Deserialize)]
    struct File {
        access: Option<Access>,
    }
    #[derive(serde::Deserialize)]
    struct Access {
        rules: Option<toml::Spanned<String>>,
    }
    let Ok(File {
        access: Some(Access { rules: Some(rules) }),
    }) = toml::from_str::<File>(text)
    else {
        return (1, 1);
    };
    let start = rules.span().start;
    let line = text[..start].matches('\n').count() + 1;
    let raw = &text[start..];
    if ["\"\"\"\n", "'''\n", "\"\"\"\r\n", "'''\r\n"]
        .iter()
        .any(|q| raw.starts_with(q))
    {
        return (line + 1, 1);
    }
    let quote = if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
        3
    } else {
        1
    };
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    (line, text[line_start..start].chars().count() + quote + 1)
}

/// The line and column (in `body`) of the first rule's `notify` clause.
fn first_notify(part: &Policy, body: &str) -> Option<(usize, usize)> {
    let rules = part.rules.rules();
    let i = rules.iter().position(|r| r.notify)?;
    let line = part.rules.line(i)?;
    let text = body.lines().nth(line - 1)?;
    let text = text.split('#').next().unwrap_or(text);
    let at = text.match_indices("notify").map(|(at, _)| at).find(|&at| {
        let before = text[..at].chars().last();
        let after = text[at + "notify".len()..].chars().next();
        before.is_none_or(char::is_whitespace) && after.is_none_or(char::is_whitespace)
    })?;
    Some((line, text[..at].chars().count() + 1))
}

/// The notification command, found and checked for the user the server runs
/// as after a privilege drop; `None` without `[notify] command`.
fn notify_settings(
    all: &Options,
    origin: &FileOrigin<'_>,
) -> Result<Option<crate::observe::notify::NotifySettings>, ConfigError> {
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
    Ok(Some(crate::observe::notify::NotifySettings {
        program,
        args: argv[1..].to_vec(),
        max_running: n.max_running.expect(HAS_DEFAULT).max(1),
        rate: n.rate.as_ref().expect(HAS_DEFAULT).0,
        timeout: n.timeout.expect(HAS_DEFAULT).0,
        queue: n.queue.expect(HAS_DEFAULT).max(1),
    }))
}

fn netmasks(list: &Option<Vec<crate::config::options::Net>>) -> impl Iterator<Item = Netmask> + '_ {
    list.iter().flatten().map(|n| n.0)
}

/// The policy: the file's rules text, rules files, `--allow` rules, then the
/// lists. No rule at all means the secure default, [`Policy::loopback_only`].
///
/// In the daemon's configuration (a config file or rules files, not rules an
/// embedder set in code), a rule with `notify` needs a notification command.
fn build_policy(
    all: &Options,
    origin: &FileOrigin<'_>,
    notify_configured: bool,
) -> Result<Policy, ConfigError> {
    let access = &all.access;
    // (name, text, where its first character is in its file, whether it is
    // the daemon's configuration)
    let mut sources: Vec<(String, String, (usize, usize), bool)> = Vec::new();
    if let Some(rules) = &access.rules {
        let name = match origin.file {
            Some(f) => format!("{}: [access] rules", f.display()),
            None => "[access] rules".to_owned(),
        };
        sources.push((name, rules.clone(), origin.start, origin.file.is_some()));
    }
    for f in access.rules_file.iter().flatten() {
        // Relative to the config file's folder.
        let path = match (f.is_relative(), origin.file.and_then(Path::parent)) {
            (true, Some(dir)) => dir.join(f),
            _ => f.clone(),
        };
        let body =
            std::fs::read_to_string(&path).map_err(|e| err(format!("{}: {e}", path.display())))?;
        sources.push((path.display().to_string(), body, (1, 1), true));
    }
    let mut policy = Policy::empty();
    let mut any_rule = false;
    for (name, body, (line, column), daemon) in sources {
        let part: Policy = body.parse().map_err(|e: socks4_acl::ParseError| {
            let mut e = e;
            if e.line == 1 {
                e.column += column - 1;
            }
            e.line += line - 1;
            err(format!("{name}: {e}"))
        })?;
        if daemon && !notify_configured {
            if let Some((l, c)) = first_notify(&part, &body) {
                let c = if l == 1 { c + column - 1 } else { c };
                return Err(err(format!(
                    "{name}: line {}, column {c}: `notify` needs a notification command: \
                     add a [notify] section with `command` to the config file",
                    l + line - 1
                )));
            }
        }
        any_rule |= !part.rules.rules().is_empty() || part.rules.default_action().is_pass();
        policy.append(part);
    }
    for net in netmasks(&access.allow) {
        let mut rule = socks4_acl::Rule::new(socks4_acl::Action::Pass);
        rule.from = net;
        policy.rules.push(rule);
        any_rule = true;
    }
    for net in netmasks(&access.deny) {
        policy.add_denial(net);
    }
    for net in netmasks(&access.exempt) {
        policy.add_exemption(net);
    }
    if !any_rule {
        let lists = (policy.denials.clone(), policy.exemptions.clone());
        policy = Policy::loopback_only();
        (policy.denials, policy.exemptions) = lists;
    }
    Ok(policy)
}

#[cfg(all(test, feature = "cli"))]
mod tests {
    use super::*;

    /// A config file in a directory of its own, removed when dropped.
    struct ConfigFile(std::path::PathBuf);

    impl ConfigFile {
        fn new(text: &str) -> ConfigFile {
            let dir = std::env::temp_dir().join(format!(
                "socks4-settings-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("socks4d.toml"), text).unwrap();
            ConfigFile(dir)
        }

        fn load(&self, args: &[&str]) -> Result<Settings, ConfigError> {
            let path = self.0.join("socks4d.toml");
            let mut all = vec!["--config".to_owned(), path.display().to_string()];
            all.extend(args.iter().map(|a| a.to_string()));
            Settings::from_args(all)
        }
    }

    impl Drop for ConfigFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn with_file(args: &[&str], file: &str) -> Result<Settings, ConfigError> {
        ConfigFile::new(file).load(args)
    }

    #[test]
    fn defaults_are_loopback_and_secure() {
        let s = Settings::from_args::<_, &str>([]).unwrap();
        assert_eq!(
            s.listen,
            vec!["127.0.0.1:1080".parse::<SocketAddr>().unwrap()]
        );
        assert!(s.server.policy.only_loopback_clients());
        assert_eq!(s.server.ident, socks4_proto::server::IdentMode::Off);
        assert_eq!(s.max_connections, 1024);
        assert_eq!(s.log_level, LogLevel::Info);
        assert_eq!(s.shutdown_grace, Duration::from_secs(30));
    }

    #[test]
    fn public_listen_without_a_rule_for_outside_clients_is_refused_with_a_way_out() {
        let e = Settings::from_args(["--listen", "0.0.0.0:1080"]).unwrap_err();
        assert!(
            e.message.contains("refusing to listen on 0.0.0.0:1080"),
            "{e}"
        );
        assert!(e.message.contains("--allow"), "{e}");
        let e = Settings::from_args(["--listen", "0.0.0.0:1080", "--allow", "127.0.0.0/8"])
            .unwrap_err();
        assert!(
            e.message
                .contains("no access rule passes a client from outside loopback"),
            "{e}"
        );
        assert!(
            Settings::from_args(["--listen", "0.0.0.0:1080", "--allow", "192.168.0.0/16"]).is_ok()
        );
        let file = "listen = [\"[::]:1080\"]\n[access]\nrules = \"pass from 10.0.0.0/8 to any\"\n";
        assert!(with_file(&[], file).is_ok());
    }

    #[test]
    fn cli_wins_over_the_file() {
        let file = r#"
            listen = ["127.0.0.1:2000"]
            ident = "log"
            max_connections = 5
            log_level = "warn"
            [timeouts]
            handshake = 2.5
            connect = 7
            [limits]
            max_user_id = 16
        "#;
        // Kept until the reload below has read it again.
        let config = ConfigFile::new(file);
        let s = config
            .load(&["--ident", "require", "--connect-timeout", "3s", "-v"])
            .unwrap();
        assert_eq!(s.listen[0].port(), 2000);
        assert_eq!(s.server.ident, socks4_proto::server::IdentMode::Require);
        assert_eq!(s.max_connections, 5);
        assert_eq!(s.server.timeouts.handshake, Duration::from_millis(2500));
        assert_eq!(s.server.timeouts.connect, Duration::from_secs(3));
        assert_eq!(s.server.limits.max_user_id, 16);
        assert_eq!(s.log_level, LogLevel::Info);
        // A reload reads the file again and lays the same command line on top.
        let again = s.reload().unwrap();
        assert_eq!(again.server.ident, socks4_proto::server::IdentMode::Require);
        assert_eq!(again.server.timeouts.connect, Duration::from_secs(3));
        assert_eq!(again.max_connections, 5);
    }

    #[test]
    fn bad_values_are_explained() {
        for (args, file, needle) in [
            (
                &["--listen", "localhost:1080"][..],
                "",
                "invalid value 'localhost:1080'",
            ),
            (&[][..], "ident = \"maybe\"", "line 1"),
            (&[][..], "[timeouts]\nconnect = -1", "line 2"),
            (&[][..], "[timeouts]\nconnect = 0", "must be more than zero"),
            (
                &[][..],
                "[access]\nrules = \"pass frm any\"",
                "[access] rules: line 2, column 15",
            ),
            (
                &[][..],
                "\n[access]\nrules = \"\"\"\npass from any\npass frm any\n\"\"\"\n",
                "[access] rules: line 5, column 6",
            ),
            (
                &[][..],
                "[access]\ndeny = [\"10.0.0.0 255.0.255.0\"]",
                "not a netmask",
            ),
            (&[][..], "log_format = \"xml\"", "line 1"),
            (&[][..], "lisen = []", "unknown field"),
            (&["--deny", "10.0.0.0/33"][..], "", "--deny"),
        ] {
            let e = with_file(args, file).unwrap_err();
            assert!(e.message.contains(needle), "{args:?} {file:?}: {e}");
        }
    }

    #[test]
    fn tls_and_dual_settings_are_checked() {
        use crate::config::listeners::ListenerKind;
        // Another kind of listener replaces the default SOCKS one; naming
        // `listen` keeps it.
        let s = Settings::from_args(["--forward", "127.0.0.1:2222=127.0.0.1:22"]).unwrap();
        assert!(s.listen.is_empty());
        assert_eq!(s.listeners.len(), 1);
        let s = Settings::from_args([
            "--listen",
            "127.0.0.1:1080",
            "--forward",
            "127.0.0.1:2222=127.0.0.1:22",
        ])
        .unwrap();
        assert_eq!(s.listeners[0].kind, ListenerKind::Socks);
        // A TLS listener needs a certificate; files that are not there are
        // named.
        let e = Settings::from_args(["--listen-tls", "127.0.0.1:1443"]).unwrap_err();
        assert!(e.message.contains("--tls-cert FILE --tls-key FILE"), "{e}");
        let e = Settings::from_args([
            "--listen-tls",
            "127.0.0.1:1443",
            "--tls-cert",
            "/nonexistent/cert.pem",
            "--tls-key",
            "/nonexistent/key.pem",
        ])
        .unwrap_err();
        assert!(e.message.contains("/nonexistent/cert.pem"), "{e}");
        let e = Settings::from_args(["--tls-cert", "/nonexistent/cert.pem"]).unwrap_err();
        assert!(e.message.contains("go together"), "{e}");
        // The dual timeout must end before the handshake timeout.
        let e = Settings::from_args([
            "--dual",
            "127.0.0.1:443=127.0.0.1:22",
            "--dual-timeout",
            "10s",
        ])
        .unwrap_err();
        assert!(e.message.contains("must be shorter"), "{e}");
        let s = Settings::from_args(["--dual", "127.0.0.1:443=127.0.0.1:22"]).unwrap();
        assert_eq!(s.dual_timeout, Duration::from_secs(2));
        assert!(matches!(s.listeners[0].kind, ListenerKind::Dual(_)));
    }

    #[test]
    fn lists_alone_keep_the_loopback_default_rules() {
        let s = Settings::from_args(["--deny", "127.0.0.2"]).unwrap();
        assert!(s.server.policy.only_loopback_clients());
        assert!(s.server.policy.denied("127.0.0.2".parse().unwrap()));
        assert!(!s.server.policy.denied("127.0.0.1".parse().unwrap()));
    }
}
