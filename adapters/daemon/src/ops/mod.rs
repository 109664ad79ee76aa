//! The server's interfaces for its operator: the Prometheus endpoint
//! ([`metrics`], also `/ready` and `/live`) and its probe ([`health`]), the
//! control socket and its client ([`control`], [`ctl`]), signals ([`signals`]), systemd's readiness and socket activation
//! ([`systemd`]), and the privilege drop ([`privileges`]).
//!
//! Layer: above `daemon` (each works on the daemon's handle); never imports
//! `conn` or `server`.

pub(crate) mod control;
#[cfg(feature = "cli")]
pub(crate) mod ctl;
#[cfg(feature = "cli")]
pub(crate) mod health;
pub(crate) mod metrics;
#[cfg(feature = "cli")]
pub(crate) mod privileges;
#[cfg(feature = "cli")]
pub(crate) mod signals;
pub(crate) mod systemd;
