//! [`Options`]: every setting of a server, declared once. Each field is at the
//! same time a command-line flag (clap) and a config-file key (serde), and each
//! is `None` in a layer that does not set it. Three layers make the settings:
//! [`Options::defaults`], then the config file, then the command line; see
//! [`crate::config::settings`] for how they are resolved.
//!
//! The flag's help says what the option does; the config key and the default
//! are added to `--help` from [`Options::defaults`] and the field's place in the
//! file ([`help_with_defaults`]), so they cannot drift apart.
//!
//! Files: the top-level keys are [`Options`]' own fields, here (the
//! listeners, IDENT, logging and the operations keys); each `[section]` of the
//! config file is a struct in a file of its own, with its keys, their `--help`
//! text and their defaults: `limits.rs` ([`LimitOptions`]), `timeouts.rs`
//! ([`TimeoutOptions`]), `access.rs` ([`AccessOptions`]), `tls.rs`
//! ([`TlsOptions`]), `notify.rs` ([`NotifyOptions`]), `resolver.rs`
//! ([`ResolverOptions`], [`ParentOptions`]), `fleet.rs` ([`FleetOptions`]). The value types they are
//! written in are in `values.rs`; the layers (defaults, a file's text, one
//! layer over another) in `layers.rs`; `--help`'s keys and defaults in
//! `help.rs`; every key of the file, read from the structs, in `keys.rs`
//! ([`Options::keys`]).
//!
//! A new section is a new file (its struct, flattened into the command line
//! with flag ids `section.key`, its `defaults` and `is_empty`) plus one field
//! of [`Options`] and one line of [`Options::defaults`].

// The doc comments below are also the `--help` text, where `[access]` and
// `[IPv6]` are literal, not links.
#![allow(rustdoc::broken_intra_doc_links)]

mod access;
mod fleet;
#[cfg(feature = "cli")]
mod help;
mod keys;
mod layers;
mod limits;
mod notify;
mod resolver;
mod timeouts;
mod tls;
mod values;

#[cfg(all(test, feature = "cli"))]
mod tests;

pub use access::AccessOptions;
pub use fleet::{FleetOptions, OnError, RedisAddr, RedisAt};
#[cfg(feature = "cli")]
pub use help::help_with_defaults;
pub use limits::LimitOptions;
pub use notify::NotifyOptions;
pub use resolver::{Family, ParentOptions, ResolverMode, ResolverOptions};
pub use timeouts::TimeoutOptions;
pub use tls::TlsOptions;
pub use values::{
    parse_addr, IdentMode, LimitsKey, Net, Seconds, SniffListeners, SniffTarget, Text, WhenFull,
    MAX_DURATION,
};

pub use crate::observe::logging::{LogFormat, LogLevel};

#[cfg(feature = "cli")]
use clap::Args;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// One layer of settings: every option a server has, `None` where this layer
/// says nothing. Top-level keys of the config file, and the sections below.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(Args))]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Address to listen on for SOCKS clients, IPv4 or [IPv6]:PORT; repeat for several (the default applies only when no listener of any kind is set)
    #[cfg_attr(
        feature = "cli",
        arg(id = "listen", short, long, value_name = "ADDR", value_parser = parse_addr)
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(deserialize_with = "values::addr_list")]
    pub listen: Option<Vec<SocketAddr>>,

    /// SOCKS inside TLS: listen on ADDR for clients that speak SOCKS over TLS (needs --tls-cert and --tls-key); repeatable
    #[cfg_attr(
        feature = "cli",
        arg(id = "listen_tls", long = "listen-tls", value_name = "ADDR", value_parser = parse_addr)
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(deserialize_with = "values::addr_list")]
    pub listen_tls: Option<Vec<SocketAddr>>,

    /// One port, two services: SOCKS (or SOCKS inside TLS) for clients that speak it first, everyone else relayed to HOST:PORT (ADDR=HOST:PORT); repeatable
    #[cfg_attr(
        feature = "cli",
        arg(id = "dual", long = "dual", value_name = "ADDR=HOST:PORT")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(deserialize_with = "values::one_or_many")]
    pub dual: Option<Vec<Text<crate::config::listeners::Forward>>>,

    /// Transparent listener (Linux TPROXY): intercepted connections go to the address they were meant for; repeatable
    #[cfg_attr(
        feature = "cli",
        arg(id = "transparent", long = "transparent", value_name = "ADDR", value_parser = parse_addr)
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(deserialize_with = "values::addr_list")]
    pub transparent: Option<Vec<SocketAddr>>,

    /// Redirect listener (nftables/iptables REDIRECT or DNAT): connections go to their original destination; repeatable
    #[cfg_attr(
        feature = "cli",
        arg(id = "redirect", long = "redirect", value_name = "ADDR", value_parser = parse_addr)
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(deserialize_with = "values::addr_list")]
    pub redirect: Option<Vec<SocketAddr>>,

    /// Port forward: listen on ADDR, relay every connection to HOST:PORT (ADDR=HOST:PORT); repeatable
    #[cfg_attr(
        feature = "cli",
        arg(id = "forward", long = "forward", value_name = "ADDR=HOST:PORT")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(deserialize_with = "values::one_or_many")]
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
    #[serde(deserialize_with = "values::one_or_many")]
    pub forward_tls: Option<Vec<Text<crate::config::listeners::Forward>>>,

    /// Listener kinds whose connections are sniffed: their first bytes read (for the sniff timeout, up to max_sniff bytes) for a TLS SNI or an HTTP Host, the name rules, routes and parents then see: transparent, redirect, forward, or none; repeatable or comma-separated
    #[cfg_attr(
        feature = "cli",
        arg(
            id = "sniff",
            long = "sniff",
            value_enum,
            value_name = "KIND",
            value_delimiter = ','
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sniff: Option<Vec<SniffListeners>>,

    /// Where a sniffed connection goes: address (the one the listener gave; rules still match the name) or name (the sniffed name's own resolution)
    #[cfg_attr(
        feature = "cli",
        arg(
            id = "sniff_target",
            long = "sniff-target",
            value_enum,
            value_name = "TARGET"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sniff_target: Option<SniffTarget>,

    /// sniff_target per listener: a table of "ADDR" = "address|name" (config file only)
    #[cfg_attr(feature = "cli", arg(skip))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sniff_target_listeners: Option<std::collections::BTreeMap<String, SniffTarget>>,

    /// PROXY protocol header required before each client's bytes on the --listen addresses (behind a load balancer): v1, v2 or any
    #[cfg_attr(
        feature = "cli",
        arg(id = "proxy_protocol", long = "proxy-protocol", value_name = "VERSION")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_protocol: Option<Text<socks4_proto::proxy_header::Accept>>,

    /// PROXY protocol per listener, of any kind: a table of "ADDR" = "v1|v2|any" (config file only)
    #[cfg_attr(feature = "cli", arg(skip))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_protocol_listeners:
        Option<std::collections::BTreeMap<String, Text<socks4_proto::proxy_header::Accept>>>,

    /// Who may send a PROXY protocol header (the load balancers); anyone else connecting to a listener that requires one is closed; no default: required with such a listener; repeatable
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

    /// Write the log to this file instead of standard error (opened before the privilege drop, mode 0640, reopened on SIGUSR1 for logrotate)
    #[cfg_attr(
        feature = "cli",
        arg(id = "log_file", long = "log-file", value_name = "PATH")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_file: Option<PathBuf>,

    /// Send the log to syslog, as RFC 5424 messages: unix:/dev/log, udp:HOST:PORT or tcp:HOST:PORT (instead of standard error; beside log_file when both are set)
    #[cfg_attr(
        feature = "cli",
        arg(id = "syslog", long = "syslog", value_name = "TARGET")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syslog: Option<Text<crate::observe::logging::SyslogTarget>>,

    /// Access log, apart from the log: one line per finished connection, to this file (reopened on SIGUSR1) or to "syslog" (off unless set)
    #[cfg_attr(
        feature = "cli",
        arg(id = "access_log", long = "access-log", value_name = "PATH")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_log: Option<Text<crate::observe::logging::AccessLog>>,

    /// Access log line format (default: log_format's)
    #[cfg_attr(
        feature = "cli",
        arg(
            id = "access_log_format",
            long = "access-log-format",
            value_enum,
            value_name = "FORMAT"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_log_format: Option<LogFormat>,

    /// Access log level: info (every finished connection), warn (only those not granted), off
    #[cfg_attr(feature = "cli", arg(skip))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_log_level: Option<LogLevel>,

    /// Serve Prometheus metrics at http://ADDR/metrics (off unless set; a non-loopback address needs --metrics-allow)
    #[cfg_attr(
        feature = "cli",
        arg(id = "metrics_listen", long = "metrics-listen", value_name = "ADDR", value_parser = parse_addr)
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(deserialize_with = "values::one_addr")]
    pub metrics_listen: Option<SocketAddr>,

    /// Who may scrape the metrics besides loopback; repeatable
    #[cfg_attr(
        feature = "cli",
        arg(id = "metrics_allow", long = "metrics-allow", value_name = "NET")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(deserialize_with = "values::one_or_many")]
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
    #[serde(deserialize_with = "values::one_or_many")]
    pub outgoing_address: Option<Vec<std::net::IpAddr>>,

    /// Keep per-client quota usage and run-time list entries (ctl deny add) in this file across restarts (written every few seconds and at exit)
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

    /// At max_connections: wait (new connections stay in the listen queue until one closes) or refuse (accept and answer 91 at once)
    #[cfg_attr(
        feature = "cli",
        arg(id = "when_full", long = "when-full", value_enum, value_name = "MODE")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when_full: Option<WhenFull>,

    /// Abandon a request whose client half-closes (sends FIN) before the reply; by default a FIN is kept for the relay and only a reset or a failed write abandons
    #[cfg_attr(feature = "cli", arg(id = "abort_on_client_close", long = "abort-on-client-close", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_on_client_close: Option<bool>,

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

    /// Name resolution and the address family tried first.
    #[cfg_attr(feature = "cli", command(flatten))]
    #[serde(default, skip_serializing_if = "ResolverOptions::is_empty")]
    pub resolver: ResolverOptions,

    /// When a parent proxy counts as down.
    #[cfg_attr(feature = "cli", command(flatten))]
    #[serde(default, skip_serializing_if = "ParentOptions::is_empty")]
    pub parents: ParentOptions,

    /// The Redis server a fleet of instances shares state through.
    #[cfg_attr(feature = "cli", command(flatten))]
    #[serde(default, skip_serializing_if = "FleetOptions::is_empty")]
    pub fleet: FleetOptions,
}
