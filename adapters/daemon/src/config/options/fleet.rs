//! `[fleet]` ([`FleetOptions`]): the Redis server several instances share
//! their run-time lists, connection rates and health through (see
//! `docs/fleet.md`). Config file only; without `redis`, no fleet.

use super::values::{Seconds, Text};
#[cfg(feature = "cli")]
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// `[fleet]`: the Redis server the instances of a fleet share state
/// through (config file only; no fleet unless `redis` is set).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(Args))]
#[serde(deny_unknown_fields)]
pub struct FleetOptions {
    /// The Redis server: redis://HOST:PORT/DB, rediss://HOST:PORT/DB (TLS,
    /// trusting `[tls] ca`) or unix:PATH (restart to change)
    #[cfg_attr(feature = "cli", arg(skip))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<Text<RedisAddr>>,

    /// This instance's name in the fleet (default: the host name and the
    /// process id)
    #[cfg_attr(feature = "cli", arg(skip))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,

    /// The prefix of every key this fleet writes in Redis
    #[cfg_attr(feature = "cli", arg(skip))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,

    /// The longest a request waits for Redis; past it, `on_error` decides
    #[cfg_attr(feature = "cli", arg(skip))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Seconds>,

    /// What a shared limit does when Redis does not answer in time: decide
    /// on this instance's own state (`local`) or refuse (`refuse`)
    #[cfg_attr(feature = "cli", arg(skip))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_error: Option<OnError>,

    /// A file holding the Redis password (its first line), sent with AUTH
    #[cfg_attr(feature = "cli", arg(skip))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
}

impl FleetOptions {
    /// Every `[fleet]` key's default but `redis` and `name` (part of
    /// [`super::Options::defaults`]).
    pub(super) fn defaults() -> FleetOptions {
        FleetOptions {
            redis: None,
            name: None,
            prefix: Some("socks4".to_owned()),
            timeout: Some(Seconds(Duration::from_millis(50))),
            on_error: Some(OnError::Local),
            password_file: None,
        }
    }

    /// Whether this layer sets nothing in the section (then it is left out
    /// when the layer is serialized).
    pub(super) fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// What a shared limit does when Redis is down or slower than `[fleet]
/// timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Decide on this instance's own books (fail open to the local limit).
    Local,
    /// Refuse the request (fail closed).
    Refuse,
}

/// Where the Redis server is: `redis://HOST[:PORT][/DB]` (port 6379,
/// database 0 by default), `rediss://HOST[:PORT][/DB]` (the same over TLS,
/// the server's certificate checked against `[tls] ca` for HOST) or
/// `unix:PATH` (`unix:PATH?db=N` for another database).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisAddr {
    /// Where to connect.
    pub at: RedisAt,
    /// The database (`SELECT`), 0 by default.
    pub db: u32,
    /// Over TLS (`rediss://`; TCP only).
    pub tls: bool,
}

/// A Redis server's socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisAt {
    /// A host name or address and a port.
    Tcp(String, u16),
    /// A Unix socket's path.
    Unix(PathBuf),
}

impl FromStr for RedisAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<RedisAddr, String> {
        let bad = |why: &str| format!("'{s}': {why} (redis://HOST:PORT/DB or unix:PATH)");
        if let Some(rest) = s.strip_prefix("unix:") {
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            let (path, db) = match rest.split_once("?db=") {
                Some((p, db)) => (p, db.parse().map_err(|_| bad("not a database number"))?),
                None => (rest, 0),
            };
            if !path.starts_with('/') {
                return Err(bad("a Unix socket's path is absolute"));
            }
            return Ok(RedisAddr {
                at: RedisAt::Unix(PathBuf::from(path)),
                db,
                tls: false,
            });
        }
        let (rest, tls) = match s.strip_prefix("rediss://") {
            Some(rest) => (rest, true),
            None => (
                s.strip_prefix("redis://")
                    .ok_or_else(|| bad("not a Redis URL"))?,
                false,
            ),
        };
        if rest.contains('@') {
            return Err(bad("put the password in password_file, not in the URL"));
        }
        let (hostport, db) = match rest.split_once('/') {
            Some((h, "")) => (h, 0),
            Some((h, db)) => (h, db.parse().map_err(|_| bad("not a database number"))?),
            None => (rest, 0),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(':') && !(h.starts_with('[') ^ h.ends_with(']')) => {
                (h, p.parse().map_err(|_| bad("not a port"))?)
            }
            _ => (hostport, 6379),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(RedisAddr {
            at: RedisAt::Tcp(host.to_owned(), port),
            db,
            tls,
        })
    }
}

impl fmt::Display for RedisAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "rediss" } else { "redis" };
        match &self.at {
            RedisAt::Tcp(host, port) if host.contains(':') => {
                write!(f, "{scheme}://[{host}]:{port}/{}", self.db)
            }
            RedisAt::Tcp(host, port) => write!(f, "{scheme}://{host}:{port}/{}", self.db),
            RedisAt::Unix(path) if self.db == 0 => write!(f, "unix:{}", path.display()),
            RedisAt::Unix(path) => write!(f, "unix:{}?db={}", path.display(), self.db),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_addresses_in_every_spelling() {
        let a: RedisAddr = "redis://127.0.0.1:6380/2".parse().unwrap();
        assert_eq!(a.at, RedisAt::Tcp("127.0.0.1".into(), 6380));
        assert_eq!(a.db, 2);
        let a: RedisAddr = "redis://cache".parse().unwrap();
        assert_eq!(
            (a.at.clone(), a.db),
            (RedisAt::Tcp("cache".into(), 6379), 0)
        );
        assert_eq!(a.to_string(), "redis://cache:6379/0");
        let a: RedisAddr = "redis://[::1]:7000".parse().unwrap();
        assert_eq!(a.at, RedisAt::Tcp("::1".into(), 7000));
        assert_eq!(a.to_string(), "redis://[::1]:7000/0");
        let a: RedisAddr = "unix:/run/redis/redis.sock?db=3".parse().unwrap();
        assert_eq!(a.at, RedisAt::Unix("/run/redis/redis.sock".into()));
        assert_eq!(a.db, 3);
        assert_eq!(a.to_string(), "unix:/run/redis/redis.sock?db=3");
        assert!(!a.tls);
        let a: RedisAddr = "rediss://redis.example:6380/1".parse().unwrap();
        assert_eq!(a.at, RedisAt::Tcp("redis.example".into(), 6380));
        assert!(a.tls);
        assert_eq!(a.to_string(), "rediss://redis.example:6380/1");
        for bad in [
            "redis://:pw@host",
            "rediss://:pw@host",
            "rediss://",
            "http://host",
            "unix:relative",
            "redis://host:x",
            "redis://host/x",
            "redis://",
        ] {
            assert!(bad.parse::<RedisAddr>().is_err(), "{bad}");
        }
    }
}
