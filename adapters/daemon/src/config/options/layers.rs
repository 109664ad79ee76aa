//! The layers: [`Options::defaults`] (the bottom one), a config file's layer
//! ([`Options::from_toml`]) and laying one layer over another
//! ([`Options::layered`]).

use super::access::ADDING_KEYS;
use super::values::{IdentMode, SniffListeners, SniffTarget, WhenFull};
use super::{AccessOptions, LimitOptions, LogFormat, LogLevel, NotifyOptions, Options};
use super::{ParentOptions, ResolverOptions, TimeoutOptions, TlsOptions};
use socks4_proto::server::ServerConfig;
use std::net::SocketAddr;

impl Options {
    /// The bottom layer: every option's default. The session's limits and
    /// timeouts come from the protocol crate's [`ServerConfig::default`]; the
    /// daemon's own defaults are written here (top-level keys) and in each
    /// section's `defaults`, beside the section's keys, and nowhere else.
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
            sniff: Some(vec![SniffListeners::Transparent, SniffListeners::Redirect]),
            sniff_target: Some(SniffTarget::Address),
            sniff_target_listeners: None,
            proxy_protocol: None,
            proxy_protocol_listeners: None,
            // No default trust: required with a PROXY protocol listener.
            proxy_protocol_from: None,
            reuse_port: Some(false),
            bind_address: None,
            ident: Some(IdentMode::Off),
            ident_port: Some(core.ident_port),
            log_format: Some(LogFormat::Text),
            log_level: Some(LogLevel::Info),
            log_file: None,
            syslog: None,
            access_log: None,
            access_log_format: None,
            access_log_level: Some(LogLevel::Info),
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
            when_full: Some(WhenFull::Wait),
            abort_on_client_close: Some(false),
            limits: LimitOptions::defaults(&core),
            timeouts: TimeoutOptions::defaults(&core),
            access: AccessOptions::default(),
            tls: TlsOptions::default(),
            notify: NotifyOptions::defaults(),
            resolver: ResolverOptions::defaults(),
            parents: ParentOptions::defaults(),
            fleet: super::FleetOptions::defaults(),
        }
    }

    /// This layer with `over` laid on top: what `over` sets wins, except for the
    /// `[access]` lists, which add up.
    pub fn layered(&self, over: &Options) -> Options {
        let base = serde_json::to_value(self).expect("options serialize");
        let top = serde_json::to_value(over).expect("options serialize");
        serde_json::from_value(merge(base, top, "")).expect("a merge of valid layers is valid")
    }

    /// Parses a config file's text. Errors name the line and column, and an
    /// unknown key that another section has, the section it belongs in.
    #[cfg(feature = "cli")]
    pub fn from_toml(text: &str) -> Result<Options, String> {
        toml::from_str(text).map_err(|e| super::keys::explain(e.to_string()))
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
