//! The server's interfaces for its operator: the Prometheus endpoint
//! ([`metrics`]), the control socket and its client ([`control`], [`ctl`]),
//! signals ([`signals`]), systemd's readiness and socket activation
//! ([`systemd`]), the privilege drop ([`privileges`]) and the pid file
//! ([`pid_file`]).
//!
//! Layer: above `daemon` (each works on the daemon's handle); never imports
//! `conn` or `server`.

pub(crate) mod control;
#[cfg(feature = "cli")]
pub(crate) mod ctl;
pub(crate) mod metrics;
#[cfg(feature = "cli")]
pub(crate) mod pid_file;
#[cfg(feature = "cli")]
pub(crate) mod privileges;
#[cfg(feature = "cli")]
pub(crate) mod signals;
pub(crate) mod systemd;
