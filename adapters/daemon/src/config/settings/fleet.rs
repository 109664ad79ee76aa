//! The `[fleet]` step of [`Settings::resolve`](super::Settings): the Redis
//! server's address, this instance's name, the key prefix, the deadline,
//! what a shared limit does when Redis fails, and the password read from its
//! file.

use super::{err, ConfigError};
use crate::config::options::{FleetOptions, OnError, RedisAddr};
use std::time::Duration;

/// The fleet an instance belongs to (`[fleet]` with `redis` set).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FleetSettings {
    /// The Redis server.
    pub redis: RedisAddr,
    /// This instance's name in the fleet.
    pub name: String,
    /// The prefix of every key the fleet writes.
    pub prefix: String,
    /// The longest a request waits for Redis.
    pub timeout: Duration,
    /// What a shared limit does when Redis fails.
    pub on_error: OnError,
    /// The file whose first line is the password sent with AUTH, if any
    /// (read at each connection, so that a new password needs no restart
    /// of the fleet's instances, only of Redis's clients' connections).
    pub password_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for FleetSettings {
    // Written out so that what is shown stays a choice: never a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetSettings")
            .field("redis", &self.redis)
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("on_error", &self.on_error)
            .field("password_file", &self.password_file)
            .finish()
    }
}

/// The longest instance name or key prefix, in bytes.
const MAX_NAME: usize = 128;

/// The fleet `[fleet]` describes: `None` without `redis`, an error for
/// other keys without it, a name or prefix that is empty, too long or holds
/// a space or a control character, or a zero timeout.
pub(super) fn fleet_settings(f: &FleetOptions) -> Result<Option<FleetSettings>, ConfigError> {
    let Some(redis) = &f.redis else {
        if f.name.is_some() || f.password_file.is_some() {
            return Err(err(
                "[fleet]: `redis` is required (redis://HOST:PORT/DB or unix:PATH)",
            ));
        }
        return Ok(None);
    };
    let name = match &f.name {
        Some(n) => n.clone(),
        None => {
            let host = rustix::system::uname();
            format!(
                "{}-{}",
                host.nodename().to_string_lossy(),
                std::process::id()
            )
        }
    };
    let prefix = f.prefix.clone().unwrap_or_default();
    for (key, v) in [("name", &name), ("prefix", &prefix)] {
        if v.is_empty()
            || v.len() > MAX_NAME
            || v.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(err(format!(
                "[fleet] {key}: '{v}': 1 to {MAX_NAME} bytes, no space or control character"
            )));
        }
    }
    let timeout = f.timeout.map(|t| t.0).unwrap_or_default();
    if timeout.is_zero() {
        return Err(err("[fleet] timeout: must be more than 0"));
    }
    Ok(Some(FleetSettings {
        redis: redis.0.clone(),
        name,
        prefix,
        timeout,
        on_error: f.on_error.unwrap_or(OnError::Local),
        password_file: f.password_file.clone(),
    }))
}
