//! `[resolver]` ([`ResolverOptions`]) and `[parents]` ([`ParentOptions`]):
//! how names are resolved (our own caching resolver or the system's), which
//! address family is tried first, and when a parent proxy counts as down.

use super::values::Seconds;
#[cfg(feature = "cli")]
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Which resolver names go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum ResolverMode {
    /// Our own: /etc/hosts, then the nameservers, with a shared cache.
    Own,
    /// The system's getaddrinfo (nsswitch), on a thread pool, uncached.
    System,
}

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// IPv6.
    Ipv6,
    /// IPv4.
    Ipv4,
    /// The resolver's order (prefer_family), both (only_family).
    System,
}

/// `[resolver]`: name resolution and the address family tried first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(Args))]
#[serde(deny_unknown_fields)]
pub struct ResolverOptions {
    /// Resolver: own (hosts file, then the nameservers, cached) or system (getaddrinfo, uncached)
    #[cfg_attr(
        feature = "cli",
        arg(id = "resolver.mode", long = "resolver", value_name = "MODE")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ResolverMode>,

    /// Address family tried first when a destination has both (Happy Eyeballs)
    #[cfg_attr(
        feature = "cli",
        arg(
            id = "resolver.prefer_family",
            long = "prefer-family",
            value_name = "FAMILY"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefer_family: Option<Family>,

    /// Use only this address family (ipv4 or ipv6; system: both)
    #[cfg_attr(
        feature = "cli",
        arg(
            id = "resolver.only_family",
            long = "only-family",
            value_name = "FAMILY"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_family: Option<Family>,

    /// Nameservers (IP:PORT) for the own resolver, instead of /etc/resolv.conf's; repeatable
    #[cfg_attr(
        feature = "cli",
        arg(id = "resolver.nameservers", long = "nameserver", value_name = "ADDR")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nameservers: Option<Vec<SocketAddr>>,

    /// The hosts file the own resolver reads first (re-read when it changes)
    #[cfg_attr(
        feature = "cli",
        arg(id = "resolver.hosts_file", long = "hosts-file", value_name = "PATH")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts_file: Option<PathBuf>,

    /// Answers the own resolver's cache keeps at most (0: no cache)
    #[cfg_attr(
        feature = "cli",
        arg(
            id = "resolver.cache_entries",
            long = "dns-cache-entries",
            value_name = "N"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_entries: Option<usize>,

    /// Answers are cached at least this long, whatever their TTL
    #[cfg_attr(
        feature = "cli",
        arg(id = "resolver.min_ttl", long = "dns-min-ttl", value_name = "DURATION")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ttl: Option<Seconds>,

    /// Answers (positive or negative) are cached at most this long
    #[cfg_attr(
        feature = "cli",
        arg(id = "resolver.max_ttl", long = "dns-max-ttl", value_name = "DURATION")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ttl: Option<Seconds>,

    /// How long past its TTL a cached answer is served when no nameserver answers (0: never)
    #[cfg_attr(
        feature = "cli",
        arg(
            id = "resolver.stale_for",
            long = "dns-stale-for",
            value_name = "DURATION"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_for: Option<Seconds>,
}

impl ResolverOptions {
    /// Every `[resolver]` key's default but `nameservers` (part of
    /// [`super::Options::defaults`]).
    pub(super) fn defaults() -> ResolverOptions {
        let cache = socks4_proto::dns_cache::CacheConfig::default();
        ResolverOptions {
            mode: Some(ResolverMode::Own),
            prefer_family: Some(Family::Ipv6),
            only_family: Some(Family::System),
            nameservers: None,
            hosts_file: Some(PathBuf::from("/etc/hosts")),
            cache_entries: Some(cache.entries),
            min_ttl: Some(Seconds(cache.min_ttl)),
            max_ttl: Some(Seconds(cache.max_ttl)),
            stale_for: Some(Seconds(cache.stale_for)),
        }
    }

    /// Whether this layer sets nothing in the section.
    pub(super) fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// `[parents]`: when a parent proxy is down (passive checks).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(Args))]
#[serde(deny_unknown_fields)]
pub struct ParentOptions {
    /// Consecutive failures that mark a parent down (skipped while another is up)
    #[cfg_attr(
        feature = "cli",
        arg(
            id = "parents.max_failures",
            long = "parent-max-failures",
            value_name = "N"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failures: Option<u32>,

    /// The longest a parent stays down before it is tried again (the backoff starts at 1s and doubles)
    #[cfg_attr(
        feature = "cli",
        arg(
            id = "parents.max_backoff",
            long = "parent-max-backoff",
            value_name = "DURATION"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_backoff: Option<Seconds>,
}

impl ParentOptions {
    /// Every `[parents]` key's default.
    pub(super) fn defaults() -> ParentOptions {
        ParentOptions {
            max_failures: Some(3),
            max_backoff: Some(Seconds(Duration::from_secs(300))),
        }
    }

    /// Whether this layer sets nothing in the section.
    pub(super) fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}
