//! `--check`: everything a server would run with, printed for a person, and
//! warnings about configurations that are dangerous or cannot work as written:
//! an open proxy, rules that can never match, a connection cap of 0. With
//! `--strict`, a warning makes the check fail. The errors are those of the
//! start's own checks ([`crate::config::preflight`]): the start runs this same
//! report, stops on its errors and logs its warnings.

use crate::config::listeners::ListenerKind;
use crate::config::preflight::Host;
use crate::config::settings::Settings;
use std::fmt::Write;

/// What `--check` prints, and its warnings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The effective configuration, as text.
    pub text: String,
    /// What looks wrong, one sentence each.
    pub warnings: Vec<String>,
    /// What would stop the server from starting, one sentence each.
    pub errors: Vec<String>,
}

/// Checks `settings` for this process (its user, privileges and limits).
pub fn report(settings: &Settings) -> Report {
    report_for(settings, &Host::current())
}

/// Checks `settings` for a process like `host`.
pub fn report_for(settings: &Settings, host: &Host) -> Report {
    let mut out = String::new();
    listeners(&mut out, settings);
    tls(&mut out, settings);
    ident(&mut out, settings);
    limits(&mut out, settings);
    timeouts(&mut out, settings);
    sniffing(&mut out, settings);
    out.push_str(&settings.outbound.check_text(&settings.server.timeouts));
    operations(&mut out, settings);
    notifications(&mut out, settings);
    let start = crate::config::preflight::check(settings, host);
    out.push_str(&start.text);
    policy(&mut out, settings);
    let mut warnings = warnings(settings);
    warnings.extend(start.warnings);
    Report {
        text: out,
        warnings,
        errors: start.errors,
    }
}

/// `listeners:` every listener, its kind, where it relays and its PROXY
/// protocol.
fn listeners(out: &mut String, s: &Settings) {
    let listeners: Vec<String> = s
        .listeners
        .iter()
        .map(|l| {
            let proxy = l
                .proxy_protocol
                .map(|p| format!(" (PROXY protocol {p})"))
                .unwrap_or_default();
            let (kind, addr) = (&l.kind, l.addr);
            match kind {
                ListenerKind::Dual(to)
                | ListenerKind::Forward(to)
                | ListenerKind::ForwardTls(to) => {
                    format!("{} {addr} -> {to}{proxy}", kind.name())
                }
                _ => format!("{} {addr}{proxy}", kind.name()),
            }
        })
        .collect();
    let _ = writeln!(out, "listeners: {}", listeners.join(", "));
}

/// `tls:` the certificate and client certificates, when a TLS listener
/// needs them; the authorities trusted, when TLS to destinations, parents or
/// the fleet's Redis (`rediss://`) does.
fn tls(out: &mut String, s: &Settings) {
    let files = &s.tls_files;
    if s.tls.server.is_some() {
        let _ = writeln!(
            out,
            "tls: certificate {}, {}",
            files
                .cert
                .as_deref()
                .unwrap_or_else(|| "-".as_ref())
                .display(),
            match &files.client_ca {
                Some(ca) => format!("client certificates required (signed by {})", ca.display()),
                None => "no client certificates".to_owned(),
            }
        );
    }
    if s.tls.client.is_some() {
        let whom = if s.fleet.as_ref().is_some_and(|f| f.redis.tls) {
            "destinations, parents and the fleet's Redis"
        } else {
            "destinations and parents"
        };
        let _ = writeln!(
            out,
            "tls to {whom}: trusting {}",
            files
                .ca
                .as_deref()
                .map_or("the system's authorities".to_owned(), |p| p
                    .display()
                    .to_string())
        );
    }
}

/// `ident:` the IDENT mode and identd's port.
fn ident(out: &mut String, s: &Settings) {
    let _ = writeln!(
        out,
        "ident: {} (identd port {})",
        match s.server.ident {
            socks4_proto::server::IdentMode::Off => "off",
            socks4_proto::server::IdentMode::Log => "log",
            socks4_proto::server::IdentMode::Require => "require",
        },
        s.server.ident_port
    );
}

/// `limits:` the caps and sizes; `per-client limits:` what they key on
/// (`[limits] key`), bandwidth, rate and quota, and where quota usage is
/// kept.
fn limits(out: &mut String, s: &Settings) {
    let _ = writeln!(
        out,
        "limits: max_connections {} (when full: {}), per client {} connections and {} BIND listeners, \
         {} clients tracked, {} lookups at once ({} per client), {} refusal log lines/s, \
         user id {} bytes, host {} bytes, early data {} bytes, {} splice pipes of {} bytes, \
         {} run-time list entries",
        s.max_connections,
        match s.when_full {
            crate::config::options::WhenFull::Wait => "wait",
            crate::config::options::WhenFull::Refuse => "refuse",
        },
        s.clients.max_connections,
        s.clients.max_binds,
        s.clients.tracked,
        s.max_lookups,
        s.clients.max_lookups,
        s.refusal_log_lines,
        s.server.limits.max_user_id,
        s.server.limits.max_host,
        s.server.max_early_data,
        s.relay_pipes,
        s.relay_pipe_size,
        s.runtime_list_entries
    );
    let off = |v: Option<String>| v.unwrap_or_else(|| "off".to_owned());
    let _ = writeln!(
        out,
        "per-client limits: keyed by {}, bandwidth {}, connection rate {}, quota {}{}",
        s.clients.key.name(),
        off(s.clients.bandwidth.map(|b| b.to_string())),
        off(s.clients.rate.map(|r| r.to_string())),
        off(s.clients.quota.map(|q| q.to_string())),
        match (&s.state_file, s.clients.quota) {
            (Some(p), _) => format!(" (usage kept in {})", p.display()),
            (None, Some(_)) => " (usage kept in memory only)".to_owned(),
            (None, None) => String::new(),
        }
    );
}

/// `timeouts:` every phase's, the dual listeners' and the shutdown grace.
fn timeouts(out: &mut String, s: &Settings) {
    let t = &s.server.timeouts;
    let secs = |d: std::time::Duration| humantime::format_duration(d).to_string();
    let _ = writeln!(
        out,
        "timeouts: handshake {}, resolve {}, ident {}, connect {}, bind_accept {}, idle {}, keepalive {}, dual {}, shutdown_grace {}",
        secs(t.handshake),
        secs(t.resolve),
        secs(t.ident),
        secs(t.connect),
        secs(t.bind_accept),
        t.idle.map_or("off".to_owned(), secs),
        s.keepalive.map_or("off".to_owned(), secs),
        secs(s.dual_timeout),
        secs(s.shutdown_grace)
    );
    let _ = writeln!(
        out,
        "timeouts: refused {}, metrics {} ({} connections at once), control {}, upgrade {}",
        secs(s.refused_timeout),
        secs(s.metrics_timeout),
        s.max_metrics_connections,
        secs(s.control_timeout),
        secs(s.upgrade_timeout)
    );
}

/// `sniffing:` which listeners sniff their clients' first bytes for a name,
/// where those connections go, and the sniff's bounds; nothing when no
/// listener sniffs.
fn sniffing(out: &mut String, s: &Settings) {
    let sn = &s.sniffing;
    let target = |t: crate::config::options::SniffTarget| match t {
        crate::config::options::SniffTarget::Address => "the address",
        crate::config::options::SniffTarget::Name => "the name",
    };
    let sniffing: Vec<String> = s
        .listeners
        .iter()
        .filter_map(|l| {
            let t = sn.for_listener(&l.kind, l.addr)?;
            Some(format!("{} {} (to {})", l.kind.name(), l.addr, target(t)))
        })
        .collect();
    if sniffing.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "sniffing: {}; for {} and {} bytes at most",
        sniffing.join(", "),
        humantime::format_duration(sn.timeout),
        sn.max
    );
}

/// What operating the server involves: the metrics endpoint, the control
/// socket, the user it runs as, the pid file, the log.
fn operations(out: &mut String, s: &Settings) {
    if let Some(m) = s.metrics_listen {
        let allow: Vec<String> = s.metrics_allow.iter().map(|n| n.to_string()).collect();
        let _ = writeln!(
            out,
            "metrics: http://{m}/metrics (loopback{})",
            if allow.is_empty() {
                String::new()
            } else {
                format!(", {}", allow.join(", "))
            }
        );
    }
    if let Some(c) = &s.control_socket {
        let _ = writeln!(out, "control socket: {}", c.display());
    }
    if let Some(f) = &s.fleet {
        let _ = writeln!(
            out,
            "fleet: {} as {:?}, keys {}:*, requests wait at most {} for Redis, then decide {}{}",
            f.redis,
            f.name,
            f.prefix,
            humantime::format_duration(f.timeout),
            match f.on_error {
                crate::config::options::OnError::Local => "on local state",
                crate::config::options::OnError::Refuse => "to refuse",
            },
            f.password_file
                .as_ref()
                .map(|p| format!(", password from {}", p.display()))
                .unwrap_or_default()
        );
    }
    if let Some(u) = &s.user {
        let _ = writeln!(
            out,
            "runs as: user {u}{}",
            s.group
                .as_deref()
                .map(|g| format!(", group {g}"))
                .unwrap_or_default()
        );
    }
    if let Some(p) = &s.pid_file {
        let _ = writeln!(out, "pid file: {}", p.display());
    }
    let format = match s.log_format {
        crate::config::options::LogFormat::Text => "text",
        crate::config::options::LogFormat::Json => "json",
    };
    let _ = writeln!(out, "log: {format}, {}", s.log_level.as_str());
    log_outputs(out, &s.log_outputs);
}

/// Where the log and the access log go, when not to standard error alone.
fn log_outputs(out: &mut String, o: &crate::observe::logging::LogOutputs) {
    if let Some(f) = &o.file {
        let _ = writeln!(out, "log file: {} (reopened on SIGUSR1)", f.display());
    }
    if let Some(t) = &o.syslog {
        let _ = writeln!(out, "syslog: {t} (RFC 5424)");
    }
    if let Some(a) = &o.access {
        let format = match o.access_format {
            crate::config::options::LogFormat::Text => "text",
            crate::config::options::LogFormat::Json => "json",
        };
        let to = match a {
            crate::observe::logging::AccessLog::Syslog => format!("syslog {}", o.access_syslog()),
            crate::observe::logging::AccessLog::File(p) => p.display().to_string(),
        };
        let _ = writeln!(
            out,
            "access log: {to}, {format}, {}",
            o.access_level.as_str()
        );
    }
}

/// `notify:` the notification command (or its absence when rules notify), and
/// the rules that notify.
fn notifications(out: &mut String, s: &Settings) {
    let notifying: Vec<String> = s
        .server
        .policy
        .rules
        .rules()
        .iter()
        .enumerate()
        .filter(|(_, r)| r.notify)
        .map(|(i, r)| format!("rule {} (`{r}`)", i + 1))
        .collect();
    match &s.notify {
        Some(n) => {
            let _ = writeln!(out, "{}", crate::observe::notify::describe(n));
        }
        None if !notifying.is_empty() => {
            let _ = writeln!(out, "notify: no command (events and log lines only)");
        }
        None => {}
    }
    if !notifying.is_empty() {
        let _ = writeln!(out, "rules that notify: {}", notifying.join(", "));
    }
}

/// `policy`: the lists and rules, indented, under a line that says how they
/// decide (two steps: the lists, then the rules).
fn policy(out: &mut String, s: &Settings) {
    let otherwise = if s.server.policy.rules.default_action().is_pass() {
        "pass"
    } else {
        "block with 91"
    };
    let _ = writeln!(
        out,
        "policy, in two steps (1. the lists: a client in a deny net and in no exempt net is \
         refused with 91; 2. the rules: the first that matches decides, none: {otherwise}):"
    );
    for line in s.server.policy.redacted().lines() {
        let _ = writeln!(out, "  {line}");
    }
    let needs: Vec<String> = s
        .server
        .policy
        .routes
        .routes()
        .enumerate()
        .flat_map(|(i, r)| {
            r.exit
                .capabilities()
                .into_iter()
                .map(move |c| format!("  route {}: {c}", i + 1))
        })
        .collect();
    if !needs.is_empty() {
        let _ = writeln!(
            out,
            "capabilities the routes' exits need (as root: all; otherwise grant them, e.g. \
             AmbientCapabilities=CAP_NET_ADMIN in the systemd unit):"
        );
        for line in needs {
            let _ = writeln!(out, "{line}");
        }
    }
}

/// What looks wrong: an open proxy on a public listener, rules that can never
/// match, caps that refuse everyone.
fn warnings(s: &Settings) -> Vec<String> {
    let mut warnings = crate::config::surprises::warnings(s);
    let rules = s.server.policy.rules.rules();
    for (shadowed, by) in s.server.policy.rules.shadowed() {
        warnings.push(format!(
            "rule {shadowed} (`{}`) can never match: rule {by} (`{}`) matches everything it does",
            rules[shadowed - 1],
            rules[by - 1]
        ));
    }
    if s.max_connections == 0 {
        warnings.push("max_connections = 0: no connection can ever be served".to_owned());
    }
    if s.clients.max_connections == 0 {
        warnings.push("max_connections_per_client = 0: every client is refused".to_owned());
    }
    warnings
}

#[cfg(all(test, feature = "cli"))]
mod tests {
    use super::*;

    #[test]
    fn dangerous_and_useless_configs_are_warned_about() {
        let s = Settings::from_args([
            "--listen",
            "0.0.0.0:1080",
            "--allow",
            "any",
            "--max-connections",
            "0",
        ])
        .unwrap();
        let r = report(&s);
        assert!(
            r.warnings.iter().any(|w| w.starts_with("open proxy")),
            "{r:?}"
        );
        assert!(
            r.warnings
                .iter()
                .any(|w| w.starts_with("max_connections = 0")),
            "{r:?}"
        );
        assert!(r.text.contains("timeouts: handshake 10s"), "{}", r.text);
        // Values in the config's own spelling, not Rust's.
        assert!(
            r.text.contains("ident: off (identd port 113)"),
            "{}",
            r.text
        );
        assert!(r.text.contains("log: text, info"), "{}", r.text);
        let s = Settings::from_args(["--allow", "10.0.0.0/8", "--allow", "10.1.0.0/16"]).unwrap();
        let r = report(&s);
        assert!(r.warnings.iter().any(|w| w.starts_with("rule 2 ")), "{r:?}");
        let s = Settings::from_args::<_, &str>([]).unwrap();
        assert!(report(&s).warnings.is_empty());
    }

    #[test]
    fn the_tls_line_names_the_fleets_redis_over_tls() {
        let check = |redis: &str| {
            let options = crate::config::options::Options::from_toml(&format!(
                "[fleet]\nredis = \"{redis}\"\nname = \"a\""
            ))
            .unwrap();
            report(&Settings::from_options(options).unwrap()).text
        };
        let text = check("rediss://redis.lan:6380/0");
        assert!(
            text.contains(
                "tls to destinations, parents and the fleet's Redis: trusting the system's authorities"
            ),
            "{text}"
        );
        assert!(text.contains("fleet: rediss://redis.lan:6380/0"), "{text}");
        // Plain Redis needs no TLS: no such line.
        let text = check("redis://127.0.0.1:6379/0");
        assert!(!text.contains("tls to"), "{text}");
    }
}

#[cfg(all(test, feature = "cli"))]
mod surprising_policies {
    use super::*;

    fn warnings_of(args: &[&str]) -> Vec<String> {
        report(&Settings::from_args(args).unwrap()).warnings
    }

    #[test]
    fn every_spelling_of_everyone_on_a_public_listener_is_an_open_proxy() {
        for everyone in ["any", "0.0.0.0/0", "::/0", "::ffff:0:0/96"] {
            let w = warnings_of(&["--listen", "0.0.0.0:1080", "--allow", everyone]);
            assert!(
                w.iter().any(|w| w.starts_with("open proxy: rule 1")),
                "{everyone}: {w:?}"
            );
        }
        let w = warnings_of(&["--listen", "0.0.0.0:1080", "--allow", "10.0.0.0/7"]);
        assert!(
            w.iter().any(|w| w.starts_with("nearly open proxy")),
            "{w:?}"
        );
        let w = warnings_of(&["--listen", "0.0.0.0:1080", "--allow", "10.0.0.0/8"]);
        assert!(w.is_empty(), "{w:?}");
        let w = warnings_of(&["--listen", "127.0.0.1:1080", "--allow", "0.0.0.0/0"]);
        assert!(w.is_empty(), "loopback only: {w:?}");
    }

    #[test]
    fn a_policy_that_passes_nothing_is_warned_about() {
        let dir = std::env::temp_dir().join(format!("socks4-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let rules = dir.join("block.rules");
        std::fs::write(&rules, "block from 10.0.0.0/8 to any\n").unwrap();
        let w = warnings_of(&["--rules", rules.to_str().unwrap()]);
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            w.iter().any(|w| w.starts_with("no rule passes anything")),
            "{w:?}"
        );
        let w = warnings_of(&["--deny", "any"]);
        assert!(
            w.iter()
                .any(|w| w.starts_with("the denial list holds everyone")),
            "{w:?}"
        );
        assert!(warnings_of(&["--deny", "any", "--exempt", "127.0.0.1"]).is_empty());
    }

    #[test]
    fn check_names_the_capabilities_a_routes_exit_needs() {
        let dir = std::env::temp_dir().join(format!("socks4-check-exit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let rules = dir.join("exit.rules");
        std::fs::write(
            &rules,
            "pass from 127.0.0.1 to any
route to 10.0.0.0/8 direct source 192.0.2.11 mark 0x10
\
             route to any direct interface eth1
",
        )
        .unwrap();
        let text = report(&Settings::from_args(["--rules", rules.to_str().unwrap()]).unwrap()).text;
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            text.contains("route 1: mark needs CAP_NET_ADMIN (or CAP_NET_RAW on Linux 5.17"),
            "{text}"
        );
        assert!(
            text.contains("route 2: interface needs no capability on Linux 5.7"),
            "{text}"
        );
        assert!(text.contains("AmbientCapabilities=CAP_NET_ADMIN"), "{text}");
        let plain = report(&Settings::from_args(["--allow", "127.0.0.1"]).unwrap()).text;
        assert!(!plain.contains("capabilities the routes"), "{plain}");
    }
}
