#![doc = include_str!("../README.md")]
//!
//! async-std is discontinued upstream in favour of smol and carries an
//! "unmaintained" advisory (RUSTSEC-2025-0052). It is kept working because the
//! project asks for it, and it is removable by deleting this folder and its line
//! in the workspace `Cargo.toml` and in the adapter lists of the conformance
//! suite (`on_every_adapter!` in `tests/src/e2e.rs`) and the load tool (`tests/src/bin/socks4-load.rs`).
//!
//! # Features
//!
//! - `client` (default): [`client`], the SOCKS4/4a client helpers, returning
//!   async-std's `TcpStream`. Alone it pulls in no server:
//!   `default-features = false, features = ["client"]`.
//! - `server` (default): the [`AsyncStd`] runtime for the shared server,
//!   [`run`], and what an embedder needs, re-exported from `socks4-daemon`
//!   ([`Daemon`], [`Settings`], [`Options`], ...; the rest under [`daemon`]),
//!   so that embedding takes this one dependency.
//! - `cli` (default): the `socks4d-async-std` binary's command line and
//!   config file (`Settings::from_args`).
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "server")]
mod server;

#[cfg(feature = "server")]
pub use server::{run, AsyncStd};
#[cfg(feature = "server")]
pub use socks4_daemon::{
    self as daemon, ConfigError, Daemon, DaemonEvent, EventStream, Options, Position, Settings,
    Snapshot,
};
