//! [`Options`]: every setting of a server, declared once. Each field is at the
//! same time a command-line flag (clap) and a config-file key (serde), and each
//! is `None` in a layer that does not set it. Three layers make the settings:
//! [`Options::defaults`], then the config file, then the command line; see
//! [`crate::config::settings`] for how they are resolved.
//!
//! The flag's help says what the option does; the config key and the default
//! are added to `--help` from [`Options::defaults`] and the field's place in the
//! file ([`help_with_defaults`]), so they cannot drift apart.

// The doc comments below are also the `--help` text, where `[access]` and
// `[IPv6]` are literal, not links.
#![allow(rustdoc::broken_intra_doc_links)]

#[cfg(feature = "cli")]
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};
use socks4_proto::server::ServerConfig;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

pub use crate::observe::logging::{LogFormat, LogLevel};

/// IDENT (RFC 1413) mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum IdentMode {
    /// Never query identd (rules may still require it).
    Off,
    /// Query and log, never refuse.
    Log,
    /// Refuse with 92 (identd unavailable) or 93 (another user).
    Require,
}

impl From<IdentMode> for socks4_proto::server::IdentMode {
    fn from(m: IdentMode) -> Self {
        match m {
            IdentMode::Off => Self::Off,
            IdentMode::Log => Self::Log,
            IdentMode::Require => Self::Require,
        }
    }
}

/// A length of time as people write it: `10` or `2.5` (seconds), or with a unit:
/// `500ms`, `10s`, `2m`, `1h`, `1h 30m` (humantime's format).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seconds(pub Duration);

impl FromStr for Seconds {
    type Err = String;

    fn from_str(s: &str) -> Result<Seconds, String> {
        let s = s.trim();
        let d = match s.parse::<f64>() {
            Ok(v) if v.is_finite() && (0.0..1e9).contains(&v) => Duration::from_secs_f64(v),
            Ok(_) => {
                return Err(format!(
                    "'{s}': expected a duration such as 10, 2.5, 500ms, 2m or 1h"
                ))
            }
            Err(_) => humantime::parse_duration(s).map_err(|e| {
                format!("'{s}': {e} (expected a duration such as 10, 2.5, 500ms, 2m or 1h)")
            })?,
        };
        Ok(Seconds(d))
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_zero() {
            return f.write_str("0s");
        }
        humantime::format_duration(self.0).fmt(f)
    }
}

impl Serialize for Seconds {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Seconds, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Seconds;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration: seconds (10, 2.5) or a string (\"500ms\", \"2m\", \"1h\")")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Seconds, E> {
                v.to_string().parse().map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Seconds, E> {
                v.to_string().parse().map_err(E::custom)
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Seconds, E> {
                v.to_string().parse().map_err(E::custom)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Seconds, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A value written as text in both the config file and on the command line (a
/// netmask, say), checked where it is read so that errors name the flag, or the
/// file's line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text<T>(pub T);

impl<T: FromStr> FromStr for Text<T>
where
    T::Err: fmt::Display,
{
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        s.parse().map(Text).map_err(|e: T::Err| e.to_string())
    }
}

impl<T: fmt::Display> Serialize for Text<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de, T: FromStr> Deserialize<'de> for Text<T>
where
    T::Err: fmt::Display,
{
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse::<T>().map(Text).map_err(serde::de::Error::custom)
    }
}

/// A netmask as a setting.
pub type Net = Text<socks4_acl::Netmask>;

/// One layer of settings: every option a server has, `None` where this layer
/// says nothing. Top-level keys of the config file, and the sections below.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(Args))]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Address to listen on for SOCKS clients, IPv4 or [IPv6]:PORT; repeat for several (the default applies only when no listener of any kind is set)
    #[cfg_attr(feature = "cli", arg(id = "listen", short, long, value_name = "ADDR"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<Vec<SocketAddr>>,

    /// SOCKS inside TLS: listen on ADDR for clients that speak SOCKS over TLS (needs --tls-cert and --tls-key); repeatable
    #[cfg_attr(
        feature = "cli",
        arg(id = "listen_tls", long = "listen-tls", value_name = "ADDR")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_tls: Option<Vec<SocketAddr>>,

    /// One port, two services: SOCKS (or SOCKS inside TLS) for clients that speak it first, everyone else relayed to HOST:PORT (ADDR=HOST:PORT); repeatable
    #[cfg_attr(
        feature = "cli",
        arg(id = "dual", long = "dual", value_name = "ADDR=HOST:PORT")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dual: Option<Vec<Text<crate::config::listeners::Forward>>>,

    /// Transparent listener (Linux TPROXY): intercepted connections go to the address they were meant for; repeatable
    #[cfg_attr(
        feature = "cli",
        arg(id = "transparent", long = "transparent", value_name = "ADDR")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transparent: Option<Vec<SocketAddr>>,

    /// Redirect listener (nftables/iptables REDIRECT or DNAT): connections go to their original destination; repeatable
    #[cfg_attr(
        feature = "cli",
        arg(id = "redirect", long = "redirect", value_name = "ADDR")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<Vec<SocketAddr>>,

    /// Port forward: listen on ADDR, relay every connection to HOST:PORT (ADDR=HOST:PORT); repeatable
    #[cfg_attr(
        feature = "cli",
        arg(id = "forward", long = "forward", value_name = "ADDR=HOST:PORT")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward: Option<Vec<Text<crate::config::listeners::Forward>>>,

    /// Port forward over TLS: listen on ADDR, relay every connection over TLS to HOST:PORT, verifying its certificate for HOST (ADDR=HOST:PORT); repeatable
    #[cfg_attr(
        feature = "cli",
        arg(
            id = "forward_tls",
            long = "forward-tls",
            value_name = "ADDR=HOST:PORT"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_tls: Option<Vec<Text<crate::config::listeners::Forward>>>,

    /// PROXY protocol header required before each client's bytes on the --listen addresses (behind a load balancer): v1, v2 or any
    #[cfg_attr(
        feature = "cli",
        arg(id = "proxy_protocol", long = "proxy-protocol", value_name = "VERSION")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_protocol: Option<Text<socks4_proto::proxy::Accept>>,

    /// PROXY protocol per listener, of any kind: a table of "ADDR" = "v1|v2|any" (config file only)
    #[cfg_attr(feature = "cli", arg(skip))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_protocol_listeners:
        Option<std::collections::BTreeMap<String, Text<socks4_proto::proxy::Accept>>>,

    /// Who may send a PROXY protocol header (the load balancers); anyone else connecting to a listener that requires one is closed; repeatable
    #[cfg_attr(
        feature = "cli",
        arg(
            id = "proxy_protocol_from",
            long = "proxy-protocol-from",
            value_name = "NET"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_protocol_from: Option<Vec<Net>>,

    /// Share the listening ports with other processes (SO_REUSEPORT): run several instances on one port
    #[cfg_attr(feature = "cli", arg(id = "reuse_port", long = "reuse-port", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reuse_port: Option<bool>,

    /// The address BIND listens on and names in its replies (default: the address the client reached)
    #[cfg_attr(
        feature = "cli",
        arg(id = "bind_address", long = "bind-address", value_name = "IP")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_address: Option<std::net::IpAddr>,

    /// IDENT (RFC 1413) mode
    #[cfg_attr(
        feature = "cli",
        arg(id = "ident", long, value_enum, value_name = "MODE")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ident: Option<IdentMode>,

    /// Port of identd on client hosts
    #[cfg_attr(
        feature = "cli",
        arg(id = "ident_port", long = "ident-port", value_name = "PORT")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ident_port: Option<u16>,

    /// Log line format
    #[cfg_attr(
        feature = "cli",
        arg(
            id = "log_format",
            long = "log-format",
            value_enum,
            value_name = "FORMAT"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,

    /// Log level (the command line moves it with -v and -q)
    #[cfg_attr(feature = "cli", arg(skip))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<LogLevel>,

    /// Serve Prometheus metrics at http://ADDR/metrics (off unless set; a non-loopback address needs --metrics-allow)
    #[cfg_attr(
        feature = "cli",
        arg(id = "metrics_listen", long = "metrics-listen", value_name = "ADDR")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,

    /// Who may scrape the metrics besides loopback; repeatable
    #[cfg_attr(
        feature = "cli",
        arg(id = "metrics_allow", long = "metrics-allow", value_name = "NET")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_allow: Option<Vec<Net>>,

    /// Control socket (a Unix socket, mode 0600) for `ctl`: run-time deny/exempt lists, reload, stats (off unless set)
    #[cfg_attr(
        feature = "cli",
        arg(id = "control_socket", long = "control-socket", value_name = "PATH")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_socket: Option<PathBuf>,

    /// After binding every listener, run as this user (supplementary groups cleared)
    #[cfg_attr(feature = "cli", arg(id = "user", long = "user", value_name = "NAME"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,

    /// After binding every listener, run as this group (default: the user's primary group)
    #[cfg_attr(
        feature = "cli",
        arg(id = "group", long = "group", value_name = "NAME")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,

    /// Allow running as root with a listener beyond loopback and no --user
    #[cfg_attr(feature = "cli", arg(id = "allow_root", long = "allow-root", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_root: Option<bool>,

    /// Outbound connections (to destinations and parents) leave from this address; one per family, repeatable (default: the system's choice)
    #[cfg_attr(
        feature = "cli",
        arg(id = "outgoing_address", long = "outgoing-address", value_name = "IP")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outgoing_address: Option<Vec<std::net::IpAddr>>,

    /// Keep per-client quota usage in this file across restarts (written every few seconds and at exit)
    #[cfg_attr(
        feature = "cli",
        arg(id = "state_file", long = "state-file", value_name = "PATH")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_file: Option<PathBuf>,

    /// Write the server's process id here once it serves; removed on a clean exit
    #[cfg_attr(
        feature = "cli",
        arg(id = "pid_file", long = "pid-file", value_name = "PATH")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_file: Option<PathBuf>,

    /// Concurrent connection cap; past it, new connections wait in the listen queue until one closes
    #[cfg_attr(
        feature = "cli",
        arg(id = "max_connections", long = "max-connections", value_name = "N")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,

    /// Request sizes and client buffers.
    #[cfg_attr(feature = "cli", command(flatten))]
    #[serde(default, skip_serializing_if = "LimitOptions::is_empty")]
    pub limits: LimitOptions,

    /// How long each phase may take.
    #[cfg_attr(feature = "cli", command(flatten))]
    #[serde(default, skip_serializing_if = "TimeoutOptions::is_empty")]
    pub timeouts: TimeoutOptions,

    /// Who may use the proxy, to go where.
    #[cfg_attr(feature = "cli", command(flatten))]
    #[serde(default, skip_serializing_if = "AccessOptions::is_empty")]
    pub access: AccessOptions,

    /// Certificates for TLS listeners, destinations and parents.
    #[cfg_attr(feature = "cli", command(flatten))]
    #[serde(default, skip_serializing_if = "TlsOptions::is_empty")]
    pub tls: TlsOptions,

    /// The command rules with `notify` run (config file only).
    #[cfg_attr(feature = "cli", command(flatten))]
    #[serde(default, skip_serializing_if = "NotifyOptions::is_empty")]
    pub notify: NotifyOptions,
}

/// `[notify]`: the command that tells the administrator about requests that
/// rules with `notify` decide (config file only; no notifications unless
/// `command` is set).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(Args))]
#[serde(deny_unknown_fields)]
pub struct NotifyOptions {
    /// The argv to run, directly (never through a shell); the request's
    /// details come as SOCKS4_* environment variables and JSON on stdin
    #[cfg_attr(feature = "cli", arg(skip))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,

    /// Commands running at once; past it, notifications wait in the queue
    #[cfg_attr(feature = "cli", arg(skip))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_running: Option<usize>,

    /// Notifications per client address in any window (N/DURATION); past
    /// it, suppressed and summed up
    #[cfg_attr(feature = "cli", arg(skip))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Text<socks4_acl::limit::ConnectionRate>>,

    /// A command running longer is killed
    #[cfg_attr(feature = "cli", arg(skip))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Seconds>,

    /// Notifications waiting for a free slot; past it, dropped (restart to
    /// change)
    #[cfg_attr(feature = "cli", arg(skip))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<usize>,
}

/// `[tls]`: PEM files, read at start-up and on every reload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(Args))]
#[serde(deny_unknown_fields)]
pub struct TlsOptions {
    /// Certificate chain (PEM) that TLS listeners present; a reload loads it anew for new connections
    #[cfg_attr(
        feature = "cli",
        arg(id = "tls.cert", long = "tls-cert", value_name = "FILE")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,

    /// Private key (PEM) of --tls-cert
    #[cfg_attr(
        feature = "cli",
        arg(id = "tls.key", long = "tls-key", value_name = "FILE")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,

    /// Require a client certificate signed by this authority (PEM) on TLS listeners; rules and routes can match its subject CN with `cert NAME`
    #[cfg_attr(
        feature = "cli",
        arg(id = "tls.client_ca", long = "tls-client-ca", value_name = "FILE")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,

    /// Trust only these authorities (PEM) for TLS to destinations and parents (default: the system's)
    #[cfg_attr(
        feature = "cli",
        arg(id = "tls.ca", long = "tls-ca", value_name = "FILE")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
}

/// `[limits]`: sizes, in bytes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(Args))]
#[serde(deny_unknown_fields)]
pub struct LimitOptions {
    /// Longest USERID in bytes
    #[cfg_attr(
        feature = "cli",
        arg(id = "limits.max_user_id", long = "max-user-id", value_name = "BYTES")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_user_id: Option<usize>,

    /// Longest SOCKS4a host name in bytes
    #[cfg_attr(
        feature = "cli",
        arg(id = "limits.max_host", long = "max-host", value_name = "BYTES")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_host: Option<usize>,

    /// Client bytes buffered between the request and the reply
    #[cfg_attr(
        feature = "cli",
        arg(
            id = "limits.max_early_data",
            long = "max-early-data",
            value_name = "BYTES"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_early_data: Option<usize>,

    /// Connections one client may have open at once (an IPv4 address, or an IPv6 /64); past it, reply 91 at once
    #[cfg_attr(
        feature = "cli",
        arg(
            id = "limits.max_connections_per_client",
            long = "max-connections-per-client",
            value_name = "N"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections_per_client: Option<usize>,

    /// BIND listeners one client may have open at once; past it, reply 91
    #[cfg_attr(
        feature = "cli",
        arg(
            id = "limits.max_binds_per_client",
            long = "max-binds-per-client",
            value_name = "N"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_binds_per_client: Option<usize>,

    /// Client addresses remembered for limits and accounting; past it, the least recently seen idle one is forgotten
    #[cfg_attr(
        feature = "cli",
        arg(
            id = "limits.tracked_clients",
            long = "tracked-clients",
            value_name = "N"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracked_clients: Option<usize>,

    /// SOCKS4a name lookups running at once; more wait, within the resolve timeout (restart to change)
    #[cfg_attr(
        feature = "cli",
        arg(id = "limits.max_lookups", long = "max-lookups", value_name = "N")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_lookups: Option<usize>,

    /// Log lines per second for refused connections; past it they are counted and summed up in one line
    #[cfg_attr(
        feature = "cli",
        arg(
            id = "limits.refusal_log_lines",
            long = "refusal-log-lines",
            value_name = "N"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal_log_lines: Option<u32>,

    /// Bandwidth of each client address, each direction, all its relays together: 500KiB/s, 2MiB/s, 100Mbit/s (off unless set; a rule's `bandwidth` replaces it)
    #[cfg_attr(
        feature = "cli",
        arg(
            id = "limits.client_bandwidth",
            long = "client-bandwidth",
            value_name = "RATE"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_bandwidth: Option<Text<socks4_acl::limit::Bandwidth>>,

    /// Granted requests one client address may make in any window: N/DURATION, e.g. 10/1s, 600/1m (off unless set)
    #[cfg_attr(
        feature = "cli",
        arg(
            id = "limits.client_connection_rate",
            long = "client-connection-rate",
            value_name = "N/DURATION"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_connection_rate: Option<Text<socks4_acl::limit::ConnectionRate>>,

    /// Traffic of each client address, both directions, per calendar period in UTC: SIZE/PERIOD, e.g. 10GiB/day (off unless set; a rule's `quota` replaces it)
    #[cfg_attr(
        feature = "cli",
        arg(id = "limits.quota", long = "quota", value_name = "SIZE/PERIOD")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<Text<socks4_acl::limit::Quota>>,

    /// Longest PROXY protocol v2 header accepted, in bytes (v1 is never longer than 107)
    #[cfg_attr(
        feature = "cli",
        arg(
            id = "limits.max_proxy_header",
            long = "max-proxy-header",
            value_name = "BYTES"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_proxy_header: Option<usize>,

    /// Pipes for splice(2) that may exist at once, all relays together (taken only while bytes are in flight; 0: never splice, copy through user space)
    #[cfg_attr(
        feature = "cli",
        arg(id = "limits.relay_pipes", long = "relay-pipes", value_name = "N")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_pipes: Option<usize>,

    /// Capacity asked for each splice pipe, in bytes (the kernel may give less)
    #[cfg_attr(
        feature = "cli",
        arg(
            id = "limits.relay_pipe_size",
            long = "relay-pipe-size",
            value_name = "BYTES"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_pipe_size: Option<usize>,
}

/// `[timeouts]`: durations (`10`, `2.5`, `"500ms"`, `"2m"`, `"1h"`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(Args))]
#[serde(deny_unknown_fields)]
pub struct TimeoutOptions {
    /// Time for the whole request to arrive
    #[cfg_attr(
        feature = "cli",
        arg(
            id = "timeouts.handshake",
            long = "handshake-timeout",
            value_name = "DURATION"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handshake: Option<Seconds>,

    /// Time for resolving a SOCKS4a name
    #[cfg_attr(
        feature = "cli",
        arg(
            id = "timeouts.resolve",
            long = "resolve-timeout",
            value_name = "DURATION"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve: Option<Seconds>,

    /// Time for the IDENT exchange
    #[cfg_attr(
        feature = "cli",
        arg(id = "timeouts.ident", long = "ident-timeout", value_name = "DURATION")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ident: Option<Seconds>,

    /// Time for the outbound connection (all addresses of a name together)
    #[cfg_attr(
        feature = "cli",
        arg(
            id = "timeouts.connect",
            long = "connect-timeout",
            value_name = "DURATION"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<Seconds>,

    /// Time for BIND's inbound connection
    #[cfg_attr(
        feature = "cli",
        arg(
            id = "timeouts.bind_accept",
            long = "bind-timeout",
            value_name = "DURATION"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_accept: Option<Seconds>,

    /// Close a relay in which neither side sent anything for this long (0: never)
    #[cfg_attr(
        feature = "cli",
        arg(id = "timeouts.idle", long = "idle-timeout", value_name = "DURATION")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<Seconds>,

    /// How long a dual listener waits for a client's first byte before relaying it to the other service (shorter than the handshake timeout)
    #[cfg_attr(
        feature = "cli",
        arg(id = "timeouts.dual", long = "dual-timeout", value_name = "DURATION")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dual: Option<Seconds>,

    /// Time relays get to finish after SIGTERM/SIGINT
    #[cfg_attr(
        feature = "cli",
        arg(
            id = "timeouts.shutdown_grace",
            long = "shutdown-grace",
            value_name = "DURATION"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown_grace: Option<Seconds>,
}

/// `[access]`: the denial and exemption lists and the rules. Unlike other
/// options, these lists add up across layers: the command line's entries come
/// after the file's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(Args))]
#[serde(deny_unknown_fields)]
pub struct AccessOptions {
    /// Serve clients from this net: adds `pass from NET to any`; repeatable
    #[cfg_attr(
        feature = "cli",
        arg(id = "access.allow", long = "allow", value_name = "NET")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow: Option<Vec<Net>>,

    /// Add a client netmask to the denial list; repeatable
    #[cfg_attr(
        feature = "cli",
        arg(id = "access.deny", long = "deny", value_name = "NET")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny: Option<Vec<Net>>,

    /// Add a client netmask to the exemption list (exempt from the denials); repeatable
    #[cfg_attr(
        feature = "cli",
        arg(id = "access.exempt", long = "exempt", value_name = "NET")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exempt: Option<Vec<Net>>,

    /// Access rules in the socks4-acl text format (config file only)
    #[cfg_attr(feature = "cli", arg(skip))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<String>,

    /// A file of access rules in the socks4-acl format; repeatable (relative to the config file's folder)
    #[cfg_attr(
        feature = "cli",
        arg(id = "access.rules_file", long = "rules", value_name = "FILE")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules_file: Option<Vec<PathBuf>>,
}

impl LimitOptions {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl TimeoutOptions {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl AccessOptions {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl TlsOptions {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl NotifyOptions {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Keys whose lists add up across layers rather than the upper layer replacing
/// the lower one's.
const ADDING_KEYS: [&str; 4] = [
    "access.allow",
    "access.deny",
    "access.exempt",
    "access.rules_file",
];

impl Options {
    /// The bottom layer: every option's default. The session's limits and
    /// timeouts come from the protocol crate's [`ServerConfig::default`]; the
    /// daemon's own defaults are written here and nowhere else.
    pub fn defaults() -> Options {
        let core = ServerConfig::default();
        Options {
            listen: Some(vec![SocketAddr::from(([127, 0, 0, 1], 1080))]),
            listen_tls: None,
            dual: None,
            transparent: None,
            redirect: None,
            forward: None,
            forward_tls: None,
            proxy_protocol: None,
            proxy_protocol_listeners: None,
            proxy_protocol_from: Some(vec![
                "127.0.0.0/8".parse().expect("a net"),
                "::1".parse().expect("a net"),
            ]),
            reuse_port: Some(false),
            bind_address: None,
            ident: Some(IdentMode::Off),
            ident_port: Some(core.ident_port),
            log_format: Some(LogFormat::Text),
            log_level: Some(LogLevel::Info),
            metrics_listen: None,
            metrics_allow: None,
            control_socket: None,
            user: None,
            group: None,
            allow_root: Some(false),
            pid_file: None,
            state_file: None,
            outgoing_address: None,
            max_connections: Some(1024),
            limits: LimitOptions {
                max_user_id: Some(core.limits.max_user_id),
                max_host: Some(core.limits.max_host),
                max_early_data: Some(core.max_early_data),
                max_connections_per_client: Some(512),
                max_binds_per_client: Some(16),
                tracked_clients: Some(65_536),
                max_lookups: Some(64),
                refusal_log_lines: Some(100),
                client_bandwidth: None,
                client_connection_rate: None,
                quota: None,
                max_proxy_header: Some(536),
                relay_pipes: Some(crate::runtime::pipe::DEFAULT_MAX_PIPES),
                relay_pipe_size: Some(crate::runtime::pipe::DEFAULT_PIPE_SIZE),
            },
            timeouts: TimeoutOptions {
                handshake: Some(Seconds(core.timeouts.handshake)),
                resolve: Some(Seconds(core.timeouts.resolve)),
                ident: Some(Seconds(core.timeouts.ident)),
                connect: Some(Seconds(core.timeouts.connect)),
                bind_accept: Some(Seconds(core.timeouts.bind_accept)),
                idle: Some(Seconds(core.timeouts.idle.unwrap_or_default())),
                dual: Some(Seconds(Duration::from_secs(2))),
                shutdown_grace: Some(Seconds(Duration::from_secs(30))),
            },
            access: AccessOptions::default(),
            tls: TlsOptions::default(),
            notify: NotifyOptions {
                command: None,
                max_running: Some(4),
                rate: Some(Text("10/1m".parse().expect("a valid rate"))),
                timeout: Some(Seconds(Duration::from_secs(10))),
                queue: Some(256),
            },
        }
    }

    /// This layer with `over` laid on top: what `over` sets wins, except for the
    /// `[access]` lists, which add up.
    pub fn layered(&self, over: &Options) -> Options {
        let base = serde_json::to_value(self).expect("options serialize");
        let top = serde_json::to_value(over).expect("options serialize");
        serde_json::from_value(merge(base, top, "")).expect("a merge of valid layers is valid")
    }

    /// Parses a config file's text. Errors name the line and column.
    #[cfg(feature = "cli")]
    pub fn from_toml(text: &str) -> Result<Options, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}

fn merge(base: serde_json::Value, top: serde_json::Value, path: &str) -> serde_json::Value {
    use serde_json::Value;
    match (base, top) {
        (Value::Object(mut b), Value::Object(t)) => {
            for (k, v) in t {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                let merged = match b.remove(&k) {
                    Some(old) => merge(old, v, &p),
                    None => v,
                };
                b.insert(k, merged);
            }
            Value::Object(b)
        }
        (Value::Array(mut b), Value::Array(t)) if ADDING_KEYS.contains(&path) => {
            b.extend(t);
            Value::Array(b)
        }
        (_, top) => top,
    }
}

#[cfg(feature = "cli")]
/// Adds to each option's `--help` line its config key and its default, taken
/// from [`Options::defaults`]: "(config: [timeouts] connect) [default: 2m]".
pub fn help_with_defaults(mut cmd: clap::Command) -> clap::Command {
    let defaults = toml::Value::try_from(Options::defaults()).expect("options serialize");
    let ids: Vec<String> = cmd
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect();
    for id in ids {
        let Some(key) = config_key(&id) else { continue };
        let default = lookup(&defaults, &id).map(show);
        cmd = cmd.mut_arg(id.as_str(), |arg| {
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            let mut help = format!("{help} (config: {key})");
            if let Some(d) = &default {
                help.push_str(&format!(" [default: {d}]"));
            }
            arg.help(help)
        });
    }
    cmd
}

#[cfg(feature = "cli")]
/// `timeouts.connect` → `[timeouts] connect`; `listen` → `listen`. `None` for
/// the command line's own flags (help, version, config, check, -v, -q), which
/// are not [`Options`].
fn config_key(id: &str) -> Option<String> {
    let options = Options::augment_args(clap::Command::new("options"));
    if !options.get_arguments().any(|a| a.get_id() == id) {
        return None;
    }
    Some(match id.split_once('.') {
        Some((section, key)) => format!("[{section}] {key}"),
        None => id.to_owned(),
    })
}

#[cfg(feature = "cli")]
fn lookup<'a>(v: &'a toml::Value, path: &str) -> Option<&'a toml::Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

#[cfg(feature = "cli")]
fn show(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(items) => items.iter().map(show).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

#[cfg(all(test, feature = "cli"))]
mod tests {
    use super::*;

    #[test]
    fn durations_as_people_write_them() {
        for (text, ms) in [
            ("10", 10_000),
            ("2.5", 2_500),
            ("500ms", 500),
            ("2m", 120_000),
            ("1h", 3_600_000),
            ("1h 30m", 5_400_000),
            ("0", 0),
        ] {
            assert_eq!(
                text.parse::<Seconds>().unwrap().0,
                Duration::from_millis(ms),
                "{text}"
            );
        }
        for bad in ["-1", "ten", "10 parsecs", "inf", "NaN"] {
            assert!(bad.parse::<Seconds>().is_err(), "{bad}");
        }
        let o: Options =
            toml::from_str("[timeouts]\nhandshake = 2.5\nconnect = \"2m\"\nresolve = 3").unwrap();
        assert_eq!(
            o.timeouts.handshake,
            Some(Seconds(Duration::from_millis(2500)))
        );
        assert_eq!(o.timeouts.connect, Some(Seconds(Duration::from_secs(120))));
        assert_eq!(o.timeouts.resolve, Some(Seconds(Duration::from_secs(3))));
        let e = Options::from_toml("\n[timeouts]\nconnect = \"soon\"\n").unwrap_err();
        assert!(e.contains("line 3"), "{e}");
    }

    #[test]
    fn upper_layers_win_and_access_lists_add_up() {
        let file: Options = toml::from_str(
            "listen = [\"127.0.0.1:2000\"]\nmax_connections = 5\n[access]\ndeny = [\"10.0.0.0/8\"]\n",
        )
        .unwrap();
        let cli = Options {
            max_connections: Some(7),
            access: AccessOptions {
                deny: Some(vec!["192.0.2.0/24".parse().unwrap()]),
                ..Default::default()
            },
            ..Default::default()
        };
        let all = Options::defaults().layered(&file).layered(&cli);
        assert_eq!(all.max_connections, Some(7));
        assert_eq!(all.listen.unwrap()[0].port(), 2000);
        assert_eq!(all.ident_port, Some(113));
        let deny: Vec<String> = all
            .access
            .deny
            .unwrap()
            .iter()
            .map(|n| n.0.to_string())
            .collect();
        assert_eq!(deny, ["10.0.0.0/8", "192.0.2.0/24"]);
    }

    #[test]
    fn bad_values_in_the_file_name_line_and_column() {
        let e = Options::from_toml("[access]\ndeny = [\"10.0.0.0 255.0.255.0\"]\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("not a netmask"), "{e}");
        let e = Options::from_toml("lisen = []").unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
    }
}
