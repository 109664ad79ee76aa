//! `[timeouts]` ([`TimeoutOptions`]): how long each phase of a connection may
//! take, and the shutdown grace.

use super::values::Seconds;
#[cfg(feature = "cli")]
use clap::Args;
use serde::{Deserialize, Serialize};
use socks4_proto::server::ServerConfig;
use std::time::Duration;

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

    /// Time for each address of a destination and each parent of a route; past it, the next is tried
    #[cfg_attr(
        feature = "cli",
        arg(
            id = "timeouts.connect_attempt",
            long = "connect-attempt-timeout",
            value_name = "DURATION"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_attempt: Option<Seconds>,

    /// Happy Eyeballs: the next address is tried this long after the previous one started, without cancelling it
    #[cfg_attr(
        feature = "cli",
        arg(
            id = "timeouts.attempt_delay",
            long = "attempt-delay",
            value_name = "DURATION"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt_delay: Option<Seconds>,

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

    /// TCP keepalive on both sockets of a relay: idle time before the first probe; probes every quarter of it (at least 1s), 4 of them, so a vanished peer ends the relay within about twice this (0: off)
    #[cfg_attr(
        feature = "cli",
        arg(id = "timeouts.keepalive", long = "keepalive", value_name = "DURATION")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive: Option<Seconds>,

    /// How long a dual listener waits for a client's first byte before relaying it to the other service (shorter than the handshake timeout)
    #[cfg_attr(
        feature = "cli",
        arg(id = "timeouts.dual", long = "dual-timeout", value_name = "DURATION")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dual: Option<Seconds>,

    /// How long a sniffing listener reads a client's first bytes for a TLS SNI or an HTTP Host before going on with the address only (a server-first protocol waits this long)
    #[cfg_attr(
        feature = "cli",
        arg(id = "timeouts.sniff", long = "sniff-timeout", value_name = "DURATION")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sniff: Option<Seconds>,

    /// How long a connection refused at accept (its source can pass no rule, or is over a per-client cap) is kept so that its client reads the 91; it never holds one of max_connections
    #[cfg_attr(
        feature = "cli",
        arg(
            id = "timeouts.refused",
            long = "refused-timeout",
            value_name = "DURATION"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<Seconds>,

    /// Time a metrics scraper has to send its request and read the answer (restart to change)
    #[cfg_attr(
        feature = "cli",
        arg(
            id = "timeouts.metrics",
            long = "metrics-timeout",
            value_name = "DURATION"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Seconds>,

    /// Time a control socket client has to send its whole request and read the answer (restart to change)
    #[cfg_attr(
        feature = "cli",
        arg(
            id = "timeouts.control",
            long = "control-timeout",
            value_name = "DURATION"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<Seconds>,

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

    /// How long a binary upgrade (`ctl upgrade`, SIGUSR2) waits for the new process to say it is ready before killing it and carrying on
    #[cfg_attr(
        feature = "cli",
        arg(
            id = "timeouts.upgrade",
            long = "upgrade-timeout",
            value_name = "DURATION"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<Seconds>,
}

impl TimeoutOptions {
    /// Every `[timeouts]` key's default (part of [`super::Options::defaults`]):
    /// the session's timeouts from the protocol crate, the rest the daemon's.
    pub(super) fn defaults(core: &ServerConfig) -> TimeoutOptions {
        TimeoutOptions {
            handshake: Some(Seconds(core.timeouts.handshake)),
            resolve: Some(Seconds(core.timeouts.resolve)),
            ident: Some(Seconds(core.timeouts.ident)),
            connect: Some(Seconds(core.timeouts.connect)),
            bind_accept: Some(Seconds(core.timeouts.bind_accept)),
            connect_attempt: Some(Seconds(core.timeouts.connect_attempt)),
            attempt_delay: Some(Seconds(core.timeouts.attempt_delay)),
            idle: Some(Seconds(core.timeouts.idle.unwrap_or_default())),
            keepalive: Some(Seconds(Duration::from_secs(120))),
            dual: Some(Seconds(Duration::from_secs(2))),
            sniff: Some(Seconds(Duration::from_millis(300))),
            shutdown_grace: Some(Seconds(Duration::from_secs(30))),
            refused: Some(Seconds(Duration::from_secs(1))),
            metrics: Some(Seconds(Duration::from_secs(5))),
            control: Some(Seconds(Duration::from_secs(5))),
            upgrade: Some(Seconds(Duration::from_secs(30))),
        }
    }

    /// Whether this layer sets nothing in the section (then it is left out
    /// when the layer is serialized).
    pub(super) fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}
