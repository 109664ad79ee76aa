//! The checks a start makes before it binds anything, which `--check` makes
//! too, so that `--check` predicts the start (as `nginx -t` and `sshd -t`
//! do): the user and group to run as exist, and switching to them is possible
//! (root, or already that user); root with a listener beyond loopback and no
//! user; ports below the unprivileged range without the privilege to bind
//! them; the pid file's and control socket's folders; the file-descriptor
//! limit against `max_connections`; the listeners systemd passed by socket
//! activation get the checks bound ones get (beyond loopback with a
//! loopback-only policy, root without a user), once the start has taken
//! them ([`Host::activated`]).
//!
//! The facts about the process (its ids, capabilities and limits) are a
//! [`Host`], read once ([`Host::current`]), so that the checks are plain
//! functions of the settings and the host.

use crate::config::listeners::ListenerKind;
use crate::config::settings::Settings;
use std::net::SocketAddr;
use std::path::Path;

/// Descriptors the server holds besides its connections' and pipes': standard
/// streams, the log writer, the reactor, the runtime's threads, name lookups,
/// the state file, notification commands' pipes.
pub const RESERVED_DESCRIPTORS: u64 = 64;

/// What the checks need to know about the process that would serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The effective user id.
    pub euid: u32,
    /// The effective group id.
    pub egid: u32,
    /// `RLIMIT_NOFILE`: the soft limit and the hard one (`None`: unlimited).
    pub nofile: (Option<u64>, Option<u64>),
    /// Whether the process may bind ports below
    /// [`unprivileged_port_start`](Self::unprivileged_port_start)
    /// (`CAP_NET_BIND_SERVICE` in its effective set).
    pub bind_service: bool,
    /// The first port anyone may bind (`net.ipv4.ip_unprivileged_port_start`,
    /// 1024 unless changed).
    pub unprivileged_port_start: u16,
    /// Whether systemd passed this process its SOCKS listeners (socket
    /// activation), which it then does not bind itself.
    pub socket_activated: bool,
    /// The addresses of the listeners systemd passed, once taken (the start,
    /// and `--check` run the same way, take them before the checks); empty
    /// until then, and without socket activation.
    pub activated: Vec<SocketAddr>,
    /// The configured addresses of the listeners (the metrics listener
    /// among them) a binary upgrade handed this process: already bound, so
    /// a port below the unprivileged range needs no privilege for them.
    pub inherited: Vec<SocketAddr>,
}

impl Host {
    /// This process, now.
    pub fn current() -> Host {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        // CAP_NET_BIND_SERVICE is capability 10.
        let bind_service = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            .is_some_and(|caps| caps & (1 << 10) != 0);
        let unprivileged_port_start =
            std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(1024);
        let socket_activated = std::env::var("LISTEN_PID")
            .is_ok_and(|pid| pid.trim() == std::process::id().to_string());
        Host {
            euid: rustix::process::geteuid().as_raw(),
            egid: rustix::process::getegid().as_raw(),
            nofile: (limit.current, limit.maximum),
            bind_service,
            unprivileged_port_start,
            socket_activated,
            activated: Vec::new(),
            inherited: Vec::new(),
        }
    }

    /// Whether the process runs as root.
    pub fn root(&self) -> bool {
        self.euid == 0
    }
}

/// What the checks found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preflight {
    /// What would stop the start, one sentence each with what to do.
    pub errors: Vec<String>,
    /// What would not stop it but is likely wrong.
    pub warnings: Vec<String>,
    /// The `file descriptors:` line `--check` prints.
    pub text: String,
}

/// What to do about a port below the unprivileged range: the three ways.
pub const PRIVILEGED_PORT_HINT: &str =
    "binding a port below 1024 needs privilege: start as root with --user NAME (the server \
     switches to NAME once its ports are bound), or give the binary CAP_NET_BIND_SERVICE \
     (`setcap cap_net_bind_service=+ep BINARY`, or AmbientCapabilities= in a systemd unit), or \
     let systemd bind the port (the socket unit, dist/systemd/socks4d.socket)";

/// Runs every check of the start on `s` for `host`.
pub fn check(s: &Settings, host: &Host) -> Preflight {
    let mut out = Preflight::default();
    if let Err(e) = activated_listeners(s, &host.activated) {
        out.errors.push(e);
    }
    run_as(s, host, &mut out.errors);
    privileged_ports(s, host, &mut out.errors);
    folders(s, &mut out.errors);
    descriptors(s, host, &mut out);
    out
}

/// Refuses listeners systemd passed (socket activation) at `addrs` beyond
/// loopback when no rule passes a client from outside it, as
/// [`Settings::check_secure`] refuses bound ones: their addresses are known
/// only once the sockets are taken. The start and `--check` run it on
/// [`Host::activated`]; [`bind`](crate::bind) on what it inherits.
pub fn activated_listeners(s: &Settings, addrs: &[SocketAddr]) -> Result<(), String> {
    let public: Vec<String> = addrs
        .iter()
        .filter(|a| !a.ip().is_loopback())
        .map(|a| a.to_string())
        .collect();
    s.check_listeners(&public).map_err(|e| e.message)
}

/// The addresses listened on: the listeners configured, except the SOCKS
/// ones when systemd passes those (socket activation), whose addresses are
/// then [`Host::activated`]; and the metrics listener.
fn listening(s: &Settings, host: &Host) -> Vec<SocketAddr> {
    s.listeners
        .iter()
        .filter(|l| !(host.socket_activated && l.kind == ListenerKind::Socks))
        .map(|l| l.addr)
        .chain(host.activated.iter().copied())
        .chain(s.metrics_listen)
        .collect()
}

/// The user and group to run as: they exist, and switching to them is
/// possible (root) or needless (already them); root with no user and a
/// listener beyond loopback (an inherited one included) is refused unless
/// `allow_root`.
fn run_as(s: &Settings, host: &Host, errors: &mut Vec<String>) {
    let Some(user) = &s.user else {
        if host.root() && !s.allow_root {
            if let Some(addr) = listening(s, host)
                .into_iter()
                .find(|a| !a.ip().is_loopback())
            {
                errors.push(format!(
                    "refusing to run as root with a listener beyond loopback ({addr}): give \
                     --user NAME (and --group NAME) to run as after binding, or --allow-root \
                     if root is meant"
                ));
            }
        }
        return;
    };
    let group = s.group.as_deref();
    let (uid, gid) = match crate::config::users::ids(user, group) {
        Ok(ids) => ids,
        Err(e) => {
            errors.push(format!(
                "--user {user}{}: {e} (config: user, group): name an existing account, or \
                 create it (e.g. `adduser --system --group socks4d`)",
                group.map(|g| format!(" --group {g}")).unwrap_or_default()
            ));
            return;
        }
    };
    if !host.root() && (uid != host.euid || gid != host.egid) {
        errors.push(format!(
            "--user {user}: switching to another user needs root, and this process runs as \
             uid {} (gid {}): start as root (the server switches once its ports are bound), \
             or leave --user out to run as yourself",
            host.euid, host.egid
        ));
    }
}

/// Listeners on ports below the unprivileged range, without the privilege to
/// bind them.
fn privileged_ports(s: &Settings, host: &Host, errors: &mut Vec<String>) {
    if host.bind_service {
        return;
    }
    let low = s
        .listeners
        .iter()
        .filter(|l| !(host.socket_activated && l.kind == ListenerKind::Socks))
        .map(|l| l.addr)
        .chain(s.metrics_listen)
        .filter(|a| !host.inherited.contains(a))
        .filter(|a| a.port() != 0 && a.port() < host.unprivileged_port_start)
        .map(|a| a.to_string())
        .collect::<Vec<_>>();
    if !low.is_empty() {
        errors.push(format!(
            "cannot listen on {} without privilege: {PRIVILEGED_PORT_HINT}",
            low.join(", ")
        ));
    }
}

/// The folders of the pid file, the control socket and the log files exist.
fn folders(s: &Settings, errors: &mut Vec<String>) {
    let files = [
        ("pid file", "pid_file", s.pid_file.as_deref()),
        ("log file", "log_file", s.log_outputs.file.as_deref()),
        (
            "access log",
            "access_log",
            match &s.log_outputs.access {
                Some(crate::observe::logging::AccessLog::File(p)) => Some(p.as_path()),
                _ => None,
            },
        ),
        (
            "control socket",
            "control_socket",
            s.control_socket.as_deref(),
        ),
    ];
    for (what, key, path) in files {
        let Some(path) = path else { continue };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        if !dir.is_dir() {
            errors.push(format!(
                "{what} {}: the folder {} does not exist (config: {key}): create it \
                 (systemd: {}=) or name another path",
                path.display(),
                dir.display(),
                if key.starts_with("log") || key.starts_with("access") {
                    "LogsDirectory"
                } else {
                    "RuntimeDirectory"
                }
            ));
        }
    }
}

/// The descriptors needed whatever the traffic: one per listener (the
/// metrics one and the control socket included), and
/// [`RESERVED_DESCRIPTORS`].
fn fixed_descriptors(s: &Settings) -> u64 {
    let listeners = s.listeners.len()
        + usize::from(s.metrics_listen.is_some())
        + usize::from(s.control_socket.is_some());
    listeners as u64 + RESERVED_DESCRIPTORS
}

/// How many descriptors the settings may need at once: two per connection
/// (the client's and the destination's), two per splice pipe, and the fixed
/// ones (listeners, [`RESERVED_DESCRIPTORS`]).
pub fn descriptors_needed(s: &Settings) -> u64 {
    (s.max_connections as u64)
        .saturating_mul(2)
        .saturating_add((s.relay_pipes as u64).saturating_mul(2))
        .saturating_add(fixed_descriptors(s))
}

/// The descriptor limit against what the settings need: the start raises the
/// soft limit to the hard one, so only a hard limit below the need is a
/// warning, saying what to raise it to.
fn descriptors(s: &Settings, host: &Host, out: &mut Preflight) {
    let need = descriptors_needed(s);
    let fixed = fixed_descriptors(s);
    let show = |l: Option<u64>| l.map_or("unlimited".to_owned(), |l| l.to_string());
    let (soft, hard) = host.nofile;
    out.text = format!(
        "file descriptors: up to {need} needed (2 per connection, 2 per splice pipe, {fixed} \
         for listeners and the server itself); limit {} (hard {}), raised to the hard limit \
         at start\n",
        show(soft),
        show(hard)
    );
    if let Some(hard) = hard.filter(|h| *h < need) {
        out.warnings.push(format!(
            "file descriptors: max_connections {} and relay_pipes {} need up to {need} (2 per \
             connection, 2 per splice pipe, {fixed} for listeners and the server itself), and \
             the limit is {hard}: raise it to {need} (`ulimit -n {need}` in the shell that \
             starts the server, or `LimitNOFILE={need}` in its systemd unit), or lower \
             max_connections or [limits] relay_pipes; past the limit, connections fail to be \
             accepted",
            s.max_connections, s.relay_pipes,
        ));
    }
}

#[cfg(all(test, feature = "cli"))]
mod tests {
    use super::*;

    fn host() -> Host {
        Host {
            euid: 1000,
            egid: 1000,
            nofile: (Some(1024), Some(524_288)),
            bind_service: false,
            unprivileged_port_start: 1024,
            socket_activated: false,
            activated: Vec::new(),
            inherited: Vec::new(),
        }
    }

    fn settings(args: &[&str]) -> Settings {
        Settings::from_args(args).unwrap()
    }

    #[test]
    fn the_defaults_pass_for_a_normal_user() {
        let p = check(&settings(&[]), &host());
        assert_eq!((p.errors.len(), p.warnings.len()), (0, 0), "{p:?}");
        assert!(
            p.text.starts_with("file descriptors: up to 4161 needed"),
            "{}",
            p.text
        );
    }

    #[test]
    fn a_low_hard_limit_names_the_limit_needed() {
        let low = Host {
            nofile: (Some(256), Some(256)),
            ..host()
        };
        let p = check(&settings(&[]), &low);
        assert!(
            p.warnings[0].contains("`ulimit -n 4161`")
                && p.warnings[0].contains("LimitNOFILE=4161"),
            "{p:?}"
        );
        let p = check(
            &settings(&["--max-connections", "10", "--relay-pipes", "0"]),
            &low,
        );
        assert!(p.warnings.is_empty(), "{p:?}");
    }

    #[test]
    fn root_and_ports_and_folders() {
        let root = Host {
            euid: 0,
            egid: 0,
            bind_service: true,
            ..host()
        };
        let public = ["--listen", "0.0.0.0:1080", "--allow", "10.0.0.0/8"];
        let p = check(&settings(&public), &root);
        assert!(p.errors[0].starts_with("refusing to run as root"), "{p:?}");
        let p = check(&settings(&[&public[..], &["--allow-root"]].concat()), &root);
        assert!(p.errors.is_empty(), "{p:?}");
        let p = check(&settings(&["--listen", "127.0.0.1:80"]), &host());
        assert!(p.errors[0].contains("CAP_NET_BIND_SERVICE"), "{p:?}");
        assert!(check(&settings(&["--listen", "127.0.0.1:80"]), &root)
            .errors
            .is_empty());
        // Handed over by a binary upgrade: already bound.
        let upgraded = Host {
            inherited: vec!["127.0.0.1:80".parse().unwrap()],
            ..host()
        };
        assert!(check(&settings(&["--listen", "127.0.0.1:80"]), &upgraded)
            .errors
            .is_empty());
        let p = check(&settings(&["--pid-file", "/no/such/folder/x.pid"]), &host());
        assert!(
            p.errors[0].contains("the folder /no/such/folder does not exist"),
            "{p:?}"
        );
        let p = check(
            &settings(&["--control-socket", "/no/such/folder/ctl"]),
            &host(),
        );
        assert!(p.errors[0].starts_with("control socket"), "{p:?}");
    }

    #[test]
    fn inherited_listeners_get_the_checks_bound_ones_get() {
        let root = Host {
            euid: 0,
            egid: 0,
            bind_service: true,
            socket_activated: true,
            activated: vec!["0.0.0.0:1080".parse().unwrap()],
            ..host()
        };
        let p = check(&settings(&[]), &root);
        assert!(
            p.errors[0].starts_with("refusing to listen on 0.0.0.0:1080"),
            "{p:?}"
        );
        let p = check(&settings(&["--allow", "10.0.0.0/8"]), &root);
        assert!(
            p.errors[0].starts_with("refusing to run as root")
                && p.errors[0].contains("0.0.0.0:1080"),
            "{p:?}"
        );
        // The configured SOCKS listener is replaced: only the inherited
        // one counts.
        let loopback = Host {
            activated: vec!["127.0.0.1:1080".parse().unwrap()],
            ..root
        };
        let replaced = ["--listen", "0.0.0.0:1080", "--allow", "10.0.0.0/8"];
        assert!(check(&settings(&replaced), &loopback).errors.is_empty());
    }

    #[test]
    fn switching_users_needs_root_unless_already_that_user() {
        let p = check(&settings(&["--user", "no-such-user-here"]), &host());
        assert!(
            p.errors[0].contains("no user named no-such-user-here"),
            "{p:?}"
        );
        let p = check(
            &settings(&["--user", "root", "--group", "no-such-group-here"]),
            &host(),
        );
        assert!(
            p.errors[0].contains("no group named no-such-group-here"),
            "{p:?}"
        );
        let p = check(&settings(&["--user", "root"]), &host());
        assert!(p.errors[0].contains("needs root"), "{p:?}");
        let as_root = Host {
            euid: 0,
            egid: 0,
            ..host()
        };
        assert!(check(&settings(&["--user", "root"]), &as_root)
            .errors
            .is_empty());
        let nobody = Host {
            euid: 65534,
            egid: 65534,
            ..host()
        };
        let (uid, gid) = crate::config::users::ids("nobody", None).unwrap();
        let same = Host {
            euid: uid,
            egid: gid,
            ..nobody
        };
        assert!(check(&settings(&["--user", "nobody"]), &same)
            .errors
            .is_empty());
    }
}
