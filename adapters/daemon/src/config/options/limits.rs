//! `[limits]` ([`LimitOptions`]): request sizes, the caps on each client, the
//! client table and the relay's splice pipes.

use super::values::Text;
#[cfg(feature = "cli")]
use clap::Args;
use serde::{Deserialize, Serialize};
use socks4_proto::server::ServerConfig;

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

    /// Client bytes a sniffing listener reads, at most, looking for a TLS SNI or an HTTP Host (they go to the destination first, unchanged)
    #[cfg_attr(
        feature = "cli",
        arg(id = "limits.max_sniff", long = "max-sniff", value_name = "BYTES")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sniff: Option<usize>,

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

    /// Client addresses remembered for limits and accounting, whatever limits are on; past it, the least recently seen one holding no connection is forgotten (quota usage is kept apart, for as many clients)
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

    /// SOCKS4a name lookups one client may have running at once, so that no client holds them all; more wait (default: a quarter of max_lookups)
    #[cfg_attr(
        feature = "cli",
        arg(
            id = "limits.max_lookups_per_client",
            long = "max-lookups-per-client",
            value_name = "N"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_lookups_per_client: Option<usize>,

    /// Entries each run-time list (`ctl deny add`, `ctl exempt add`) may hold; past it, adding one is refused
    #[cfg_attr(
        feature = "cli",
        arg(
            id = "limits.runtime_list_entries",
            long = "runtime-list-entries",
            value_name = "N"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_list_entries: Option<usize>,

    /// Connections the metrics listener serves at once; past it, new ones are closed at once (restart to change)
    #[cfg_attr(
        feature = "cli",
        arg(
            id = "limits.max_metrics_connections",
            long = "max-metrics-connections",
            value_name = "N"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_metrics_connections: Option<usize>,

    /// Log lines per second for refused connections, and as many for the other lines a client can cause (notifications, refused metrics scrapes, untrusted PROXY headers, accept pauses); past it they are counted and summed up in one line
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

    /// What per-client limits (connections, lookups, rate, bandwidth, quota) count under: address, cert (a verified client certificate's name; others by address) or ident (the user identd confirmed; needs ident = require)
    #[cfg_attr(
        feature = "cli",
        arg(id = "limits.key", long = "limits-key", value_enum, value_name = "KEY")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<super::values::LimitsKey>,

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

impl LimitOptions {
    /// Every `[limits]` key's default (part of [`super::Options::defaults`]):
    /// the session's sizes from the protocol crate, the rest the daemon's.
    pub(super) fn defaults(core: &ServerConfig) -> LimitOptions {
        LimitOptions {
            max_user_id: Some(core.limits.max_user_id),
            max_host: Some(core.limits.max_host),
            max_early_data: Some(core.max_early_data),
            max_sniff: Some(16 * 1024),
            max_connections_per_client: Some(512),
            max_binds_per_client: Some(16),
            tracked_clients: Some(65_536),
            max_lookups: Some(64),
            // A quarter of max_lookups, whatever that is set to (resolved
            // with it: `config::settings`).
            max_lookups_per_client: None,
            max_metrics_connections: Some(16),
            runtime_list_entries: Some(1024),
            refusal_log_lines: Some(100),
            client_bandwidth: None,
            client_connection_rate: None,
            quota: None,
            key: Some(super::values::LimitsKey::Address),
            max_proxy_header: Some(536),
            relay_pipes: Some(crate::runtime::pipe::DEFAULT_MAX_PIPES),
            relay_pipe_size: Some(crate::runtime::pipe::DEFAULT_PIPE_SIZE),
        }
    }

    /// Whether this layer sets nothing in the section (then it is left out
    /// when the layer is serialized).
    pub(super) fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}
