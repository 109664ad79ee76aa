//! `[notify]` ([`NotifyOptions`]): the command that tells the administrator
//! about requests decided by rules with `notify`. Config file only.

use super::values::{Seconds, Text};
#[cfg(feature = "cli")]
use clap::Args;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `[notify]`: the command that tells the administrator about requests that
/// rules with `notify` decide (config file only; no notifications unless
/// `command` is set).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(Args))]
#[serde(deny_unknown_fields)]
pub struct NotifyOptions {
    /// The argv to run, directly (never through a shell); the request's
    /// details come as SOCKS4_* environment variables and JSON on stdin
    #[cfg_attr(feature = "cli", arg(skip))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,

    /// Commands running at once; past it, notifications wait in the queue
    #[cfg_attr(feature = "cli", arg(skip))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_running: Option<usize>,

    /// Notifications per client address in any window (N/DURATION); past
    /// it, suppressed and summed up
    #[cfg_attr(feature = "cli", arg(skip))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Text<socks4_acl::limit::ConnectionRate>>,

    /// A command running longer is killed
    #[cfg_attr(feature = "cli", arg(skip))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Seconds>,

    /// Notifications waiting for a free slot; past it, dropped (restart to
    /// change)
    #[cfg_attr(feature = "cli", arg(skip))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<usize>,
}

impl NotifyOptions {
    /// Every `[notify]` key's default but `command` (part of
    /// [`super::Options::defaults`]).
    pub(super) fn defaults() -> NotifyOptions {
        NotifyOptions {
            command: None,
            max_running: Some(4),
            rate: Some(Text("10/1m".parse().expect("a valid rate"))),
            timeout: Some(Seconds(Duration::from_secs(10))),
            queue: Some(256),
        }
    }

    /// Whether this layer sets nothing in the section (then it is left out
    /// when the layer is serialized).
    pub(super) fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}
