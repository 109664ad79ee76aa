//! Settings: the command line and the TOML config file, merged into what a server
//! runs with. Every CLI flag has a config key; a flag given on the command line
//! wins over the file.

use crate::cli::{Cli, LogFormat};
use serde::Deserialize;
use socks4_acl::{Netmask, Policy};
use socks4_proto::server::{IdentMode, ServerConfig, Timeouts};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The default listen address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:1080";
/// The default cap on concurrent connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// The default time relays get to finish after SIGTERM/SIGINT.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// The config file, as written. Every field is optional; see the README for a
/// complete commented example.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `listen = ["127.0.0.1:1080", "[::1]:1080"]`
    pub listen: Option<Vec<String>>,
    /// `ident = "off" | "log" | "require"`
    pub ident: Option<String>,
    /// `ident_port = 113`
    pub ident_port: Option<u16>,
    /// `log_format = "text" | "json"`
    pub log_format: Option<String>,
    /// `log_level = "error" | "warn" | "info" | "debug" | "trace"`
    pub log_level: Option<String>,
    /// `max_connections = 1024`
    pub max_connections: Option<usize>,
    /// `[limits]`
    #[serde(default)]
    pub limits: FileLimits,
    /// `[timeouts]`, in seconds.
    #[serde(default)]
    pub timeouts: FileTimeouts,
    /// `[access]`
    #[serde(default)]
    pub access: FileAccess,
}

/// `[limits]` of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLimits {
    /// Longest USERID, bytes (255).
    pub max_user_id: Option<usize>,
    /// Longest SOCKS4a host name, bytes (255).
    pub max_host: Option<usize>,
    /// Client bytes buffered between request and reply (65536).
    pub max_early_data: Option<usize>,
}

/// `[timeouts]` of the config file, in seconds (fractions allowed).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTimeouts {
    /// Request must arrive (10).
    pub handshake: Option<f64>,
    /// SOCKS4a name resolution (10).
    pub resolve: Option<f64>,
    /// IDENT exchange (10).
    pub ident: Option<f64>,
    /// Outbound connect (120).
    pub connect: Option<f64>,
    /// BIND's inbound connection (120).
    pub bind_accept: Option<f64>,
    /// Time relays get to finish on shutdown (30).
    pub shutdown_grace: Option<f64>,
}

/// `[access]` of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAccess {
    /// Denial list: client netmasks refused unless exempted.
    pub deny: Option<Vec<String>>,
    /// Exemption list.
    pub exempt: Option<Vec<String>>,
    /// Access rules in the socks4-acl text format.
    pub rules: Option<String>,
    /// A file holding access rules, read in addition to `rules`.
    pub rules_file: Option<PathBuf>,
}

/// Everything a server runs with, resolved and validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Addresses to listen on.
    pub listen: Vec<SocketAddr>,
    /// The session configuration (limits, timeouts, IDENT, policy).
    pub server: ServerConfig,
    /// Concurrent connection cap; connections past it are closed at once.
    pub max_connections: usize,
    /// Time relays get to finish on shutdown.
    pub shutdown_grace: Duration,
    /// Log line format.
    pub log_format: LogFormat,
    /// Log level filter (`info` by default; `-v`/`-q` move it).
    pub log_level: String,
    /// The config file, if any (what SIGHUP re-reads).
    pub config_path: Option<PathBuf>,
}

/// Why settings could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// What went wrong, for a person.
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

fn secs(name: &str, value: Option<f64>, default: Duration) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) if v.is_finite() && v > 0.0 && v < 1e9 => Ok(Duration::from_secs_f64(v)),
        Some(v) => Err(err(format!(
            "timeout {name} = {v}: expected a positive number of seconds"
        ))),
    }
}

/// Reads and parses a config file.
pub fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| err(format!("{}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| err(format!("{}: {e}", path.display())))
}

impl Settings {
    /// Settings from the command line, reading `--config` if given.
    pub fn from_cli(cli: &Cli) -> Result<Settings, ConfigError> {
        let file = match &cli.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        Settings::merge(cli, file)
    }

    /// Settings from command-line style arguments (without the program name), for
    /// programs that embed a server: `Settings::from_args(["--listen",
    /// "127.0.0.1:0", "--allow", "10.0.0.0/8"])`.
    pub fn from_args<I, S>(args: I) -> Result<(Settings, Cli), ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString> + Clone,
    {
        use clap::Parser;
        let argv = std::iter::once(std::ffi::OsString::from("socks4d"))
            .chain(args.into_iter().map(Into::into));
        let cli = Cli::try_parse_from(argv).map_err(|e| err(e.to_string()))?;
        Ok((Settings::from_cli(&cli)?, cli))
    }

    /// Settings from a command line and a config file's contents; the command line
    /// wins where both say something.
    pub fn merge(cli: &Cli, file: FileConfig) -> Result<Settings, ConfigError> {
        let listen_strings = if !cli.listen.is_empty() {
            cli.listen.clone()
        } else {
            file.listen
                .clone()
                .unwrap_or_else(|| vec![DEFAULT_LISTEN.to_owned()])
        };
        let mut listen = Vec::new();
        for l in &listen_strings {
            let addr: SocketAddr = l.parse().map_err(|_| {
                err(format!(
                    "listen address '{l}': expected IP:PORT or [IPv6]:PORT"
                ))
            })?;
            listen.push(addr);
        }
        if listen.is_empty() {
            return Err(err("no listen address"));
        }

        let ident = match cli.ident.map(|m| m.into()).or(file
            .ident
            .as_deref()
            .map(parse_ident)
            .transpose()?)
        {
            Some(mode) => mode,
            None => IdentMode::Off,
        };

        let mut server = ServerConfig::default();
        server.ident = ident;
        server.ident_port = cli
            .ident_port
            .or(file.ident_port)
            .unwrap_or(server.ident_port);
        server.limits.max_user_id = cli
            .max_user_id
            .or(file.limits.max_user_id)
            .unwrap_or(server.limits.max_user_id);
        server.limits.max_host = cli
            .max_host
            .or(file.limits.max_host)
            .unwrap_or(server.limits.max_host);
        server.max_early_data = cli
            .max_early_data
            .or(file.limits.max_early_data)
            .unwrap_or(server.max_early_data);
        let t = &file.timeouts;
        let d = Timeouts::DEFAULT;
        let mut timeouts = Timeouts::DEFAULT;
        timeouts.handshake = secs(
            "handshake",
            cli.handshake_timeout.or(t.handshake),
            d.handshake,
        )?;
        timeouts.resolve = secs("resolve", cli.resolve_timeout.or(t.resolve), d.resolve)?;
        timeouts.ident = secs("ident", cli.ident_timeout.or(t.ident), d.ident)?;
        timeouts.connect = secs("connect", cli.connect_timeout.or(t.connect), d.connect)?;
        timeouts.bind_accept = secs(
            "bind_accept",
            cli.bind_timeout.or(t.bind_accept),
            d.bind_accept,
        )?;
        server.timeouts = timeouts;
        let shutdown_grace = secs(
            "shutdown_grace",
            cli.shutdown_grace.or(t.shutdown_grace),
            DEFAULT_SHUTDOWN_GRACE,
        )?;

        server.policy = build_policy(cli, &file, cli.config.as_deref())?;

        let log_format = match (cli.log_format, file.log_format.as_deref()) {
            (Some(f), _) => f,
            (None, None | Some("text")) => LogFormat::Text,
            (None, Some("json")) => LogFormat::Json,
            (None, Some(other)) => {
                return Err(err(format!(
                    "log_format = '{other}': expected text or json"
                )))
            }
        };
        let base = file.log_level.clone().unwrap_or_else(|| "info".to_owned());
        let log_level = shift_level(&base, i32::from(cli.verbose) - i32::from(cli.quiet))?;

        let settings = Settings {
            listen,
            server,
            max_connections: cli
                .max_connections
                .or(file.max_connections)
                .unwrap_or(DEFAULT_MAX_CONNECTIONS),
            shutdown_grace,
            log_format,
            log_level,
            config_path: cli.config.clone(),
        };
        settings.check_secure()?;
        Ok(settings)
    }

    /// Refuses a listener outside loopback when the policy only serves loopback
    /// clients (nothing was configured): such a server would refuse everyone who
    /// can reach it, or, after a careless edit, serve them all. Serving a network
    /// must be a deliberate rule.
    pub fn check_secure(&self) -> Result<(), ConfigError> {
        let public: Vec<String> = self
            .listen
            .iter()
            .filter(|a| !a.ip().is_loopback())
            .map(|a| a.to_string())
            .collect();
        if !public.is_empty() && self.server.policy.only_loopback_clients() {
            return Err(err(format!(
                "refusing to listen on {} (not loopback) with a policy that serves loopback clients only: \
                 say who may use this proxy with access rules, e.g. `--allow 192.168.1.0/24`, or \
                 `rules = \"pass from 192.168.1.0/24 to any\"` under [access] in the config file \
                 (`pass from any to any` makes an open proxy: only do that deliberately)",
                public.join(", ")
            )));
        }
        Ok(())
    }
}

fn parse_ident(s: &str) -> Result<IdentMode, ConfigError> {
    match s {
        "off" => Ok(IdentMode::Off),
        "log" => Ok(IdentMode::Log),
        "require" => Ok(IdentMode::Require),
        other => Err(err(format!(
            "ident = '{other}': expected off, log or require"
        ))),
    }
}

const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

fn shift_level(base: &str, by: i32) -> Result<String, ConfigError> {
    let i = LEVELS
        .iter()
        .position(|l| l.eq_ignore_ascii_case(base))
        .ok_or_else(|| {
            err(format!(
                "log_level = '{base}': expected one of {}",
                LEVELS.join(", ")
            ))
        })?;
    let j = (i as i32 + by).clamp(0, LEVELS.len() as i32 - 1) as usize;
    Ok(LEVELS[j].to_owned())
}

fn netmask(what: &str, s: &str) -> Result<Netmask, ConfigError> {
    s.parse().map_err(|e| err(format!("{what}: {e}")))
}

/// The policy: lists and rules from the file, then from the command line. No
/// rules at all means the secure default, [`Policy::loopback_only`].
fn build_policy(
    cli: &Cli,
    file: &FileConfig,
    config_path: Option<&Path>,
) -> Result<Policy, ConfigError> {
    let mut text = String::new();
    if let Some(rules) = &file.access.rules {
        text.push_str(rules);
        text.push('\n');
    }
    let mut rules_files: Vec<PathBuf> = Vec::new();
    if let Some(f) = &file.access.rules_file {
        // Relative to the config file's folder.
        rules_files.push(
            match (f.is_relative(), config_path.and_then(Path::parent)) {
                (true, Some(dir)) => dir.join(f),
                _ => f.clone(),
            },
        );
    }
    rules_files.extend(cli.rules.iter().cloned());
    let mut policy = Policy::empty();
    let mut any_rule = false;
    let mut sources: Vec<(String, String)> = vec![("[access] rules".to_owned(), text)];
    for f in rules_files {
        let body = std::fs::read_to_string(&f).map_err(|e| err(format!("{}: {e}", f.display())))?;
        sources.push((f.display().to_string(), body));
    }
    for (name, body) in sources {
        let part: Policy = body.parse().map_err(|e| err(format!("{name}: {e}")))?;
        any_rule |= !part.rules.rules().is_empty() || part.rules.default_action().is_pass();
        for r in part.rules.rules() {
            policy.rules.push(r.clone());
        }
        if part.rules.default_action() != socks4_acl::Action::BLOCK {
            policy.rules.set_default_action(part.rules.default_action());
        }
        policy.denials.extend(part.denials.iter());
        policy.exemptions.extend(part.exemptions.iter());
    }
    for a in &cli.allow {
        let mut rule = socks4_acl::Rule::new(socks4_acl::Action::Pass);
        rule.from = netmask("--allow", a)?;
        policy.rules.push(rule);
        any_rule = true;
    }
    for d in file.access.deny.iter().flatten().chain(&cli.deny) {
        policy.add_denial(netmask("deny", d)?);
    }
    for e in file.access.exempt.iter().flatten().chain(&cli.exempt) {
        policy.add_exemption(netmask("exempt", e)?);
    }
    if !any_rule {
        let lists = (policy.denials.clone(), policy.exemptions.clone());
        policy = Policy::loopback_only();
        (policy.denials, policy.exemptions) = lists;
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("socks4d").chain(args.iter().copied())).unwrap()
    }

    fn merged(args: &[&str], file: &str) -> Result<Settings, ConfigError> {
        Settings::merge(&cli(args), toml::from_str(file).unwrap())
    }

    #[test]
    fn defaults_are_loopback_and_secure() {
        let s = merged(&[], "").unwrap();
        assert_eq!(
            s.listen,
            vec!["127.0.0.1:1080".parse::<SocketAddr>().unwrap()]
        );
        assert!(s.server.policy.only_loopback_clients());
        assert_eq!(s.server.ident, IdentMode::Off);
        assert_eq!(s.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(s.log_level, "info");
    }

    #[test]
    fn public_listen_without_rules_is_refused_with_a_way_out() {
        let e = merged(&["--listen", "0.0.0.0:1080"], "").unwrap_err();
        assert!(
            e.message.contains("refusing to listen on 0.0.0.0:1080"),
            "{e}"
        );
        assert!(e.message.contains("--allow"), "{e}");
        assert!(merged(
            &["--listen", "0.0.0.0:1080", "--allow", "192.168.0.0/16"],
            ""
        )
        .is_ok());
        let file = "listen = [\"[::]:1080\"]\n[access]\nrules = \"pass from 10.0.0.0/8 to any\"\n";
        assert!(merged(&[], file).is_ok());
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
        let s = merged(
            &["--ident", "require", "--connect-timeout", "3", "-v"],
            file,
        )
        .unwrap();
        assert_eq!(s.listen[0].port(), 2000);
        assert_eq!(s.server.ident, IdentMode::Require);
        assert_eq!(s.max_connections, 5);
        assert_eq!(s.server.timeouts.handshake, Duration::from_millis(2500));
        assert_eq!(s.server.timeouts.connect, Duration::from_secs(3));
        assert_eq!(s.server.limits.max_user_id, 16);
        assert_eq!(s.log_level, "info");
    }

    #[test]
    fn bad_values_are_explained() {
        for (args, file, needle) in [
            (&["--listen", "localhost:1080"][..], "", "listen address"),
            (&[][..], "ident = \"maybe\"", "expected off, log or require"),
            (&[][..], "[timeouts]\nconnect = -1", "positive number"),
            (
                &[][..],
                "[access]\nrules = \"pass frm any\"",
                "line 1, column 6",
            ),
            (
                &[][..],
                "[access]\ndeny = [\"10.0.0.0 255.0.255.0\"]",
                "not a netmask",
            ),
            (&[][..], "log_format = \"xml\"", "text or json"),
        ] {
            let e = match toml::from_str::<FileConfig>(file) {
                Ok(f) => Settings::merge(&cli(args), f).unwrap_err(),
                Err(e) => err(e.to_string()),
            };
            assert!(e.message.contains(needle), "{e}");
        }
        assert!(
            toml::from_str::<FileConfig>("lisen = []").is_err(),
            "unknown keys are errors"
        );
    }

    #[test]
    fn lists_alone_keep_the_loopback_default_rules() {
        let s = merged(&["--deny", "127.0.0.2"], "").unwrap();
        assert!(s.server.policy.only_loopback_clients());
        assert!(s.server.policy.denied("127.0.0.2".parse().unwrap()));
        assert!(!s.server.policy.denied("127.0.0.1".parse().unwrap()));
    }
}
