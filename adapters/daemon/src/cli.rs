//! The command line, shared by every `socks4d-*` binary.

// The doc comments below are also the `--help` text, where `[access]` and
// `[IPv6]` are literal, not links.
#![allow(rustdoc::broken_intra_doc_links)]

use clap::{Parser, ValueEnum};
use socks4_proto::server::IdentMode;
use std::path::PathBuf;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// IDENT mode on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IdentArg {
    /// Never query identd (rules may still require it).
    Off,
    /// Query and log, never refuse.
    Log,
    /// Refuse with 92 (identd unavailable) or 93 (another user).
    Require,
}

impl From<IdentArg> for IdentMode {
    fn from(a: IdentArg) -> IdentMode {
        match a {
            IdentArg::Off => IdentMode::Off,
            IdentArg::Log => IdentMode::Log,
            IdentArg::Require => IdentMode::Require,
        }
    }
}

/// A SOCKS4/SOCKS4a proxy server.
///
/// With no arguments it serves clients from loopback on 127.0.0.1:1080. Every
/// option has a config file key (see the README); options given here win.
#[derive(Debug, Clone, Default, Parser)]
#[command(version, about = "A SOCKS4/SOCKS4a proxy server (loopback clients on 127.0.0.1:1080 unless configured otherwise)", long_about = None)]
pub struct Cli {
    /// Address to listen on, IPv4 or [IPv6]:PORT; repeat for several (config: listen) [default: 127.0.0.1:1080]
    #[arg(short, long, value_name = "ADDR")]
    pub listen: Vec<String>,

    /// TOML config file; SIGHUP re-reads it
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// IDENT (RFC 1413) mode (config: ident) [default: off]
    #[arg(long, value_enum, value_name = "MODE")]
    pub ident: Option<IdentArg>,

    /// Port of identd on client hosts (config: ident_port) [default: 113]
    #[arg(long, value_name = "PORT")]
    pub ident_port: Option<u16>,

    /// Access rules file in the socks4-acl format; repeatable (config: [access] rules_file)
    #[arg(long, value_name = "FILE")]
    pub rules: Vec<PathBuf>,

    /// Serve clients from this net: adds `pass from NET to any`; repeatable
    #[arg(long, value_name = "NET")]
    pub allow: Vec<String>,

    /// Add a client netmask to the denial list; repeatable (config: [access] deny)
    #[arg(long, value_name = "NET")]
    pub deny: Vec<String>,

    /// Add a client netmask to the exemption list; repeatable (config: [access] exempt)
    #[arg(long, value_name = "NET")]
    pub exempt: Vec<String>,

    /// Concurrent connection cap; more are closed at once (config: max_connections) [default: 1024]
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,

    /// Longest USERID in bytes (config: [limits] max_user_id) [default: 255]
    #[arg(long, value_name = "BYTES")]
    pub max_user_id: Option<usize>,

    /// Longest SOCKS4a host name in bytes (config: [limits] max_host) [default: 255]
    #[arg(long, value_name = "BYTES")]
    pub max_host: Option<usize>,

    /// Client bytes buffered before the reply (config: [limits] max_early_data) [default: 65536]
    #[arg(long, value_name = "BYTES")]
    pub max_early_data: Option<usize>,

    /// Seconds for the request to arrive (config: [timeouts] handshake) [default: 10]
    #[arg(long, value_name = "SECS")]
    pub handshake_timeout: Option<f64>,

    /// Seconds for resolving a SOCKS4a name (config: [timeouts] resolve) [default: 10]
    #[arg(long, value_name = "SECS")]
    pub resolve_timeout: Option<f64>,

    /// Seconds for the IDENT exchange (config: [timeouts] ident) [default: 10]
    #[arg(long, value_name = "SECS")]
    pub ident_timeout: Option<f64>,

    /// Seconds for the outbound connection (config: [timeouts] connect) [default: 120]
    #[arg(long, value_name = "SECS")]
    pub connect_timeout: Option<f64>,

    /// Seconds for BIND's inbound connection (config: [timeouts] bind_accept) [default: 120]
    #[arg(long, value_name = "SECS")]
    pub bind_timeout: Option<f64>,

    /// Seconds relays get to finish after SIGTERM/SIGINT (config: [timeouts] shutdown_grace) [default: 30]
    #[arg(long, value_name = "SECS")]
    pub shutdown_grace: Option<f64>,

    /// Log format (config: log_format) [default: text]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// More log output (-v debug, -vv trace) (config: log_level)
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Less log output (-q warn, -qq error, -qqq off)
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub quiet: u8,

    /// Check the configuration, print the resolved access policy and exit
    #[arg(long)]
    pub check: bool,
}
