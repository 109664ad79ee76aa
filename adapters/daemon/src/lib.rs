#![doc = include_str!("../README.md")]
//!
//! The shared server of the `socks4d-*` binaries, written once over a small
//! runtime seam ([`runtime::Runtime`]): each adapter crate (tokio, smol,
//! async-std) only registers sockets with its reactor and provides a clock,
//! timers and tasks. This crate opens the sockets, drives each connection's
//! sans-IO session ([`socks4_proto::server::ServerSession`]) and relays bytes.
//!
//! Modules, by job:
//! - [`options`]: every setting, declared once as a flag and a config key;
//!   [`settings`]: the layers (defaults, file, command line) resolved and
//!   checked; [`cli`]: the command line; [`check`]: `--check`.
//! - [`daemon`]: [`Daemon`], the handle a server runs with and an embedding
//!   program holds (run-time deny/exempt lists, reload, counters, events,
//!   shutdown).
//! - [`serve`]: binding, accept loops, graceful stop, the binaries' `main`.
//! - `connection`: one connection's drive loop; `endpoint`: one side of it,
//!   plain or TLS; [`tls`]: certificates and TLS configuration; `relay`:
//!   moving bytes;
//!   `ident`, `resolve`: the IDENT exchange and name resolution; [`net`]:
//!   opening sockets.
//! - [`runtime`]: the seam.
//! - [`observe`]: bookkeeping that watches connections ([`counters`],
//!   [`events`], the per-connection log line); [`notify`]: the
//!   administrator's notification command; [`logging`]; [`signals`].
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod client;
pub mod config;
pub mod conn;
pub mod daemon;
pub mod limits;
pub mod observe;
pub mod ops;
pub mod runtime;
pub mod server;

pub use daemon::{Daemon, Position};
pub use observe::counters::Snapshot;
// What an embedder needs, so that it depends on this crate alone: netmasks and
// policies for the run-time lists and rules, the session's events and close
// reasons, and reply codes.
pub use config::options::Options;
pub use config::settings::{ConfigError, Settings};
pub use observe::events::{DaemonEvent, EventStream};
pub use runtime::Runtime;
#[cfg(feature = "cli")]
pub use server::main;
pub use server::{bind, run, serve, Bound};
pub use socks4_acl::{Netmask, ParseError, Policy, Rule};
pub use socks4_proto::server::{CloseReason, Event};
pub use socks4_proto::ReplyCode;
