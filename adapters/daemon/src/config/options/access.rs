//! `[access]` ([`AccessOptions`]): who may use the proxy, to go where — the
//! denial and exemption lists and the rules. The one section whose lists add
//! up across layers ([`ADDING_KEYS`]).

use super::values::Net;
#[cfg(feature = "cli")]
use clap::Args;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[access]`: the denial and exemption lists and the rules. Unlike other
/// options, these lists add up across layers: the command line's entries come
/// after the file's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(Args))]
#[serde(deny_unknown_fields)]
pub struct AccessOptions {
    /// Serve clients from this net: adds the rule `pass from NET to any` (step 2, after the rules of the file); repeatable
    #[cfg_attr(
        feature = "cli",
        arg(id = "access.allow", long = "allow", value_name = "NET")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow: Option<Vec<Net>>,

    /// Refuse clients from this net before any rule is read (step 1, the lists), unless an --exempt net holds them; repeatable
    #[cfg_attr(
        feature = "cli",
        arg(id = "access.deny", long = "deny", value_name = "NET")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny: Option<Vec<Net>>,

    /// Exempt clients from this net from the --deny list (step 1 only: the rules still decide for them); repeatable
    #[cfg_attr(
        feature = "cli",
        arg(id = "access.exempt", long = "exempt", value_name = "NET")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exempt: Option<Vec<Net>>,

    /// Access rules in the socks4-acl text format (config file only)
    #[cfg_attr(feature = "cli", arg(skip))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<String>,

    /// A file of access rules in the socks4-acl format; repeatable (relative to the config file's folder)
    #[cfg_attr(
        feature = "cli",
        arg(id = "access.rules_file", long = "rules", value_name = "FILE")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules_file: Option<Vec<PathBuf>>,
}

/// Keys whose lists add up across layers rather than the upper layer replacing
/// the lower one's.
pub(super) const ADDING_KEYS: [&str; 4] = [
    "access.allow",
    "access.deny",
    "access.exempt",
    "access.rules_file",
];

impl AccessOptions {
    /// Whether this layer sets nothing in the section (then it is left out
    /// when the layer is serialized).
    pub(super) fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}
