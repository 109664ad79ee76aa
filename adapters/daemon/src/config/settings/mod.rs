//! [`Settings`]: what a server runs with, resolved from three layers of
//! [`Options`] (defaults, the config file, the command line) and checked. The
//! command line's layer is kept ([`Sources`]) so that a reload re-reads the file
//! and lays the same command line on top again, with the same precedence as at
//! start-up. Settings from command-line arguments: `Settings::from_args`, in
//! [`crate::config::cli`].
//!
//! Files: the settings and their loading here; `resolve.rs` turns the merged
//! layers into [`Settings`], step by step; `policy.rs` builds the access
//! policy from the `[access]` options; `origin.rs` finds where things are in
//! the config file, for errors; `secure.rs` refuses what would serve nobody or
//! everybody by accident; `tls_paths.rs` refuses a route that would drop the
//! TLS a `forward_tls` listener asks for; `fleet.rs` reads `[fleet]`; `reload.rs` says which keys a
//! reload applies and which need a restart.

pub mod fleet;
mod origin;
mod policy;
pub mod reload;
mod resolve;
mod secure;
#[cfg(all(test, feature = "cli"))]
mod tests;
mod tls_paths;

use crate::config::options::{LogFormat, LogLevel, Options};
use origin::FileOrigin;
use socks4_acl::Netmask;
use socks4_proto::server::ServerConfig;
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
    pub proxy_protocol: Option<socks4_proto::proxy_header::Accept>,
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
    /// Which listeners sniff their clients' first bytes for a name, and how.
    pub sniffing: crate::config::listeners::Sniffing,
    /// The notification command, if `[notify] command` is set.
    pub notify: Option<crate::observe::notify::NotifySettings>,
    /// Concurrent connection cap.
    pub max_connections: usize,
    /// What a new connection gets at `max_connections`: a wait in the listen
    /// queue, or a refusal at once.
    pub when_full: crate::config::options::WhenFull,
    /// Whether a client's half-close (FIN) before the reply abandons its
    /// request (by default only a reset or a failed write does).
    pub abort_on_client_close: bool,
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
    /// TCP keepalive on both sockets of a relay (idle time before the first
    /// probe; `None`: off).
    pub keepalive: Option<Duration>,
    /// How long a connection refused at accept lingers for its 91.
    pub refused_timeout: Duration,
    /// Connections the metrics listener serves at once.
    pub max_metrics_connections: usize,
    /// Time a metrics scraper has for its request and the answer.
    pub metrics_timeout: Duration,
    /// Time a control socket client has for its request and the answer.
    pub control_timeout: Duration,
    /// How long a binary upgrade waits for the new process to be ready.
    pub upgrade_timeout: Duration,
    /// The caps on each client and the client table's size.
    pub clients: crate::limits::client_table::ClientLimits,
    /// Where per-client quota usage is kept across restarts.
    pub state_file: Option<PathBuf>,
    /// Addresses outbound connections leave from, by family.
    pub outgoing: Vec<std::net::IpAddr>,
    /// Name lookups running at once.
    pub max_lookups: usize,
    /// The fleet this instance belongs to (`[fleet]`), if any.
    pub fleet: Option<fleet::FleetSettings>,
    /// Entries each run-time list (`ctl deny add`, `ctl exempt add`) may hold.
    pub runtime_list_entries: usize,
    /// The resolver, the family tried first, parents' health.
    pub outbound: crate::config::outbound::Outbound,
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
    /// Where the log and the access log go besides standard error, in
    /// which format and at which level (its `format` and `level` are
    /// `log_format` and `log_level`).
    pub log_outputs: crate::observe::logging::LogOutputs,
    /// Where these settings came from (what a reload reads again).
    pub sources: Sources,
    /// The layers merged, before they were resolved: what a reload compares
    /// key by key ([`reload::restart_needed`]).
    pub options: Options,
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

/// A [`ConfigError`] saying `message`.
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
                let mut file = Options::from_toml(&text)
                    .map_err(|e| err(format!("{}: {e}", path.display())))?;
                // The file's rules files are relative to its folder.
                if let Some(dir) = path.parent() {
                    for f in file.access.rules_file.iter_mut().flatten() {
                        *f = dir.join(&*f);
                    }
                }
                (file, Some(text))
            }
            None => (Options::default(), None::<String>),
        };
        let all = Options::defaults()
            .layered(&file)
            .layered(&sources.overrides);
        let config = sources.config.clone();
        let origin = FileOrigin::of(config.as_deref(), text.as_deref());
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
}
