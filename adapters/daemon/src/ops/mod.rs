//! The server's interfaces for its operator: the Prometheus endpoint
//! ([`metrics`], also `/ready` and `/live`) and its probe ([`health`]), the
//! control socket and its client ([`control`], [`ctl`]), the open
//! connections listed and killed through it ([`conns_ctl`]), outbound state
//! shown through both ([`outbound_ctl`]), signals ([`signals`]), systemd's
//! readiness and socket activation ([`systemd`]), the privilege drop
//! ([`privileges`]), the file-descriptor limit ([`rlimit`]), the pid
//! file ([`pid_file`]) and the binary upgrade that hands the listening
//! sockets to a new process ([`upgrade`]).
//!
//! Layer: above `daemon` (each works on the daemon's handle); never imports
//! `conn` or `server`.

pub(crate) mod conns_ctl;
pub(crate) mod control;
#[cfg(feature = "cli")]
pub(crate) mod ctl;
pub(crate) mod fleet_ctl;
#[cfg(feature = "cli")]
pub(crate) mod health;
pub(crate) mod metrics;
pub(crate) mod outbound_ctl;
#[cfg(feature = "cli")]
pub(crate) mod pid_file;
#[cfg(feature = "cli")]
pub(crate) mod privileges;
#[cfg(feature = "cli")]
pub(crate) mod rlimit;
#[cfg(feature = "cli")]
pub(crate) mod signals;
pub(crate) mod systemd;
pub(crate) mod upgrade;
