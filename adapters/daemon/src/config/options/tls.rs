//! `[tls]` ([`TlsOptions`]): the PEM files of TLS listeners, and the
//! authorities trusted for TLS to destinations and parents.

#[cfg(feature = "cli")]
use clap::Args;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[tls]`: PEM files, read at start-up and on every reload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(Args))]
#[serde(deny_unknown_fields)]
pub struct TlsOptions {
    /// Certificate chain (PEM) that TLS listeners present; a reload loads it anew for new connections
    #[cfg_attr(
        feature = "cli",
        arg(id = "tls.cert", long = "tls-cert", value_name = "FILE")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,

    /// Private key (PEM) of --tls-cert
    #[cfg_attr(
        feature = "cli",
        arg(id = "tls.key", long = "tls-key", value_name = "FILE")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,

    /// Require a client certificate signed by this authority (PEM) on TLS listeners; rules and routes can match its subject CN with `cert NAME`
    #[cfg_attr(
        feature = "cli",
        arg(id = "tls.client_ca", long = "tls-client-ca", value_name = "FILE")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,

    /// Trust only these authorities (PEM) for TLS to destinations and parents (default: the system's)
    #[cfg_attr(
        feature = "cli",
        arg(id = "tls.ca", long = "tls-ca", value_name = "FILE")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
}

impl TlsOptions {
    /// Whether this layer sets nothing in the section (then it is left out
    /// when the layer is serialized).
    pub(super) fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}
