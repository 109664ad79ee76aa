//! [`Outbound`]: how outbound connections find their way, resolved from
//! `[resolver]` and `[parents]`: our own resolver or the system's, its
//! nameservers, hosts file and cache bounds, the address family tried first
//! (Happy Eyeballs) and when a parent counts as down.

use crate::config::options::{Family, Options, ResolverMode};
use crate::config::settings::ConfigError;
use socks4_proto::dns_cache::CacheConfig;
use socks4_proto::eyeballs::{Only, Prefer};
use socks4_proto::health::HealthConfig;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The resolv.conf the own resolver reads when `[resolver] nameservers` is
/// not set.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// How outbound connections find their way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    /// Our own resolver (true) or getaddrinfo (false).
    pub own_resolver: bool,
    /// The family tried first.
    pub prefer: Prefer,
    /// The families used at all.
    pub only: Only,
    /// `[resolver] nameservers`; `None`: /etc/resolv.conf's.
    pub nameservers: Option<Vec<SocketAddr>>,
    /// The hosts file read first.
    pub hosts_file: PathBuf,
    /// The cache's bounds.
    pub cache: CacheConfig,
    /// When a parent counts as down.
    pub health: HealthConfig,
}

impl Outbound {
    /// The questions one lookup asks nameservers at once, each one of the
    /// server's `max_lookups`: AAAA and A for the own resolver with both
    /// families, one otherwise (one getaddrinfo call).
    pub fn questions_per_lookup(&self) -> usize {
        if self.own_resolver && self.only == Only::Any {
            2
        } else {
            1
        }
    }
}

impl Default for Outbound {
    fn default() -> Self {
        Outbound::from_options(&Options::defaults()).expect("the defaults are valid")
    }
}

const HAS_DEFAULT: &str = "Options::defaults sets every [resolver] and [parents] key";

impl Outbound {
    /// The `[resolver]` and `[parents]` sections of `all` (the layers merged).
    pub fn from_options(all: &Options) -> Result<Outbound, ConfigError> {
        let r = &all.resolver;
        let p = &all.parents;
        let err = |message: String| ConfigError { message };
        let prefer = match r.prefer_family.expect(HAS_DEFAULT) {
            Family::Ipv6 => Prefer::Ipv6,
            Family::Ipv4 => Prefer::Ipv4,
            Family::System => Prefer::System,
        };
        let only = match r.only_family.expect(HAS_DEFAULT) {
            Family::Ipv6 => Only::Ipv6,
            Family::Ipv4 => Only::Ipv4,
            Family::System => Only::Any,
        };
        let cache = CacheConfig {
            entries: r.cache_entries.expect(HAS_DEFAULT),
            min_ttl: r.min_ttl.expect(HAS_DEFAULT).0,
            max_ttl: r.max_ttl.expect(HAS_DEFAULT).0,
            stale_for: r.stale_for.expect(HAS_DEFAULT).0,
        };
        if cache.min_ttl > cache.max_ttl {
            return Err(err(format!(
                "[resolver] min_ttl ({}) is more than max_ttl ({})",
                humantime::format_duration(cache.min_ttl),
                humantime::format_duration(cache.max_ttl)
            )));
        }
        if r.nameservers.as_ref().is_some_and(Vec::is_empty) {
            return Err(err(
                "[resolver] nameservers: name at least one, or leave it out for /etc/resolv.conf's"
                    .into(),
            ));
        }
        let max_failures = p.max_failures.expect(HAS_DEFAULT);
        if max_failures == 0 {
            return Err(err("[parents] max_failures: must be at least 1".into()));
        }
        let max_backoff = p.max_backoff.expect(HAS_DEFAULT).0;
        if max_backoff < socks4_proto::health::FIRST_BACKOFF {
            return Err(err(
                "[parents] max_backoff: must be at least 1s (the first backoff)".into(),
            ));
        }
        Ok(Outbound {
            own_resolver: r.mode.expect(HAS_DEFAULT) == ResolverMode::Own,
            prefer,
            only,
            nameservers: r.nameservers.clone(),
            hosts_file: r.hosts_file.clone().expect(HAS_DEFAULT),
            cache,
            health: HealthConfig {
                max_failures,
                max_backoff,
            },
        })
    }
}

impl Outbound {
    /// What `--check` prints of the resolver, the Happy Eyeballs timing
    /// (`timeouts`' attempt keys) and parent health.
    pub(crate) fn check_text(&self, timeouts: &socks4_proto::server::Timeouts) -> String {
        let d = |d: std::time::Duration| humantime::format_duration(d).to_string();
        let resolver = if self.own_resolver {
            let servers = match &self.nameservers {
                Some(list) => list
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
                None => format!("{RESOLV_CONF}'s (read for each question)"),
            };
            format!(
                "own: hosts file {}, nameservers {servers}, cache {} answers, TTL clamped to {}..{}, stale for {}",
                self.hosts_file.display(),
                self.cache.entries,
                d(self.cache.min_ttl),
                d(self.cache.max_ttl),
                d(self.cache.stale_for)
            )
        } else {
            "system (getaddrinfo, uncached)".to_owned()
        };
        format!(
            "resolver: {resolver}\n\
             outbound: prefer {}, families {}, each attempt {}, the next after {}; a parent is down after {} failures, for up to {}\n",
            match self.prefer {
                Prefer::Ipv6 => "ipv6",
                Prefer::Ipv4 => "ipv4",
                Prefer::System => "the resolver's order",
            },
            match self.only {
                Only::Any => "both",
                Only::Ipv4 => "ipv4 only",
                Only::Ipv6 => "ipv6 only",
            },
            d(timeouts.connect_attempt),
            d(timeouts.attempt_delay),
            self.health.max_failures,
            d(self.health.max_backoff)
        )
    }
}
