//! What a reload (SIGHUP, `ctl reload`) does with each key of the config:
//! every key either applies to new connections ([`RELOADED_KEYS`]) or needs
//! a restart ([`RESTART_KEYS`]), and a reload that changes one of the latter
//! names it in a warning ([`restart_needed`]) instead of leaving it at its
//! old value in silence. A test walks every key of [`Options`]
//! ([`Options::keys`], serde's own list of each struct's fields), so that a
//! new key must be put in one list or the other.

use crate::config::options::Options;

/// Keys that need a restart: how listeners are opened and served (PROXY
/// protocol, `SO_REUSEPORT`), the operator's interfaces bound at start (and their bounds), the privilege
/// drop, the files written at start, logging, the sizes of what is
/// allocated once, and the resolver and parents' health, built at start.
pub const RESTART_KEYS: &[&str] = &[
    "proxy_protocol",
    "proxy_protocol_listeners",
    "reuse_port",
    "log_format",
    "log_level",
    "log_file",
    "syslog",
    "access_log",
    "access_log_format",
    "access_log_level",
    "metrics_listen",
    "control_socket",
    "user",
    "group",
    "allow_root",
    "state_file",
    "pid_file",
    "limits.relay_pipes",
    "limits.relay_pipe_size",
    "limits.max_metrics_connections",
    "timeouts.refused",
    "timeouts.metrics",
    "timeouts.control",
    "notify.queue",
    // The resolver and the parents' health are built once, at start.
    "resolver.mode",
    "resolver.prefer_family",
    "resolver.only_family",
    "resolver.nameservers",
    "resolver.hosts_file",
    "resolver.cache_entries",
    "resolver.min_ttl",
    "resolver.max_ttl",
    "resolver.stale_for",
    "parents.max_failures",
    "parents.max_backoff",
    // The fleet's connection to Redis is made once, at start.
    "fleet.redis",
    "fleet.name",
    "fleet.prefix",
    "fleet.timeout",
    "fleet.on_error",
    "fleet.password_file",
];

/// Keys a reload applies, to new connections (running ones keep what they
/// started with). The listeners: a reload binds those it adds (one that
/// cannot bind fails the reload) and closes those it removes (their
/// connections go on).
pub const RELOADED_KEYS: &[&str] = &[
    "listen",
    "listen_tls",
    "dual",
    "transparent",
    "redirect",
    "forward",
    "forward_tls",
    "sniff",
    "sniff_target",
    "sniff_target_listeners",
    "bind_address",
    "ident",
    "ident_port",
    "proxy_protocol_from",
    "metrics_allow",
    "outgoing_address",
    "abort_on_client_close",
    "max_connections",
    "when_full",
    "limits.max_lookups",
    "limits.max_user_id",
    "limits.max_host",
    "limits.max_early_data",
    "limits.max_sniff",
    "limits.max_connections_per_client",
    "limits.max_binds_per_client",
    "limits.max_lookups_per_client",
    "limits.tracked_clients",
    "limits.refusal_log_lines",
    "limits.client_bandwidth",
    "limits.client_connection_rate",
    "limits.quota",
    "limits.key",
    "limits.max_proxy_header",
    "limits.runtime_list_entries",
    "timeouts.handshake",
    "timeouts.resolve",
    "timeouts.ident",
    "timeouts.connect",
    "timeouts.connect_attempt",
    "timeouts.attempt_delay",
    "timeouts.bind_accept",
    "timeouts.idle",
    "timeouts.keepalive",
    "timeouts.dual",
    "timeouts.sniff",
    "timeouts.shutdown_grace",
    "timeouts.upgrade",
    "access.allow",
    "access.deny",
    "access.exempt",
    "access.rules",
    "access.rules_file",
    "tls.cert",
    "tls.key",
    "tls.client_ca",
    "tls.ca",
    "notify.command",
    "notify.max_running",
    "notify.rate",
    "notify.timeout",
];

/// The value of `key` (`section.key` or a top-level key) in a layer's JSON.
fn value<'a>(all: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    key.split('.').try_fold(all, |v, k| v.get(k))
}

/// The restart-only keys whose value differs between the settings a server
/// runs with (`running`) and those a reload loaded (`loaded`), in
/// [`RESTART_KEYS`] order.
pub fn restart_needed(running: &Options, loaded: &Options) -> Vec<&'static str> {
    let old = serde_json::to_value(running).expect("options serialize");
    let new = serde_json::to_value(loaded).expect("options serialize");
    RESTART_KEYS
        .iter()
        .copied()
        .filter(|k| value(&old, k) != value(&new, k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key of the config, as `section.key` (serde's own lists of each
    /// struct's fields: [`Options::keys`]).
    fn every_key() -> Vec<String> {
        Options::keys()
            .into_iter()
            .map(|(section, key)| match section {
                "" => key.to_owned(),
                s => format!("{s}.{key}"),
            })
            .collect()
    }

    #[test]
    fn every_key_applies_on_reload_or_is_named_as_needing_a_restart() {
        let keys = every_key();
        assert!(keys.len() > 60, "{keys:?}");
        for key in &keys {
            let restart = RESTART_KEYS.contains(&key.as_str());
            let reloaded = RELOADED_KEYS.contains(&key.as_str());
            assert!(
                restart != reloaded,
                "{key}: put it in exactly one of RESTART_KEYS (named by a reload's warning) \
                 and RELOADED_KEYS (applied by a reload)"
            );
        }
        for listed in RESTART_KEYS.iter().chain(RELOADED_KEYS) {
            assert!(keys.iter().any(|k| k == listed), "{listed} is not a key");
        }
    }

    #[test]
    fn a_changed_restart_key_is_named_and_an_applied_one_is_not() {
        let running = Options::defaults();
        let mut loaded = Options::defaults();
        loaded.max_connections = Some(7);
        loaded.reuse_port = Some(true);
        loaded.limits.relay_pipes = Some(3);
        loaded.outgoing_address = Some(vec!["127.0.0.1".parse().unwrap()]);
        loaded.timeouts.shutdown_grace = Some(crate::config::options::Seconds(
            std::time::Duration::from_secs(1),
        ));
        assert_eq!(
            restart_needed(&running, &loaded),
            ["reuse_port", "limits.relay_pipes"]
        );
        assert!(restart_needed(&running, &running).is_empty());
    }
}
