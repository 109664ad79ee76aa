#![doc = include_str!("../README.md")]
//!
//! # Features
//!
//! - `client` (default): [`client`], the SOCKS4/4a client helpers, returning
//!   smol's `TcpStream` (`smol::net::TcpStream`, which is
//!   `async_net::TcpStream`). Alone it pulls in no server:
//!   `default-features = false, features = ["client"]`.
//! - `server` (default): the smol [`Smol`] runtime for the shared server,
//!   [`run`], and what an embedder needs, re-exported from `socks4-daemon`
//!   ([`Daemon`], [`Settings`], [`Options`], ...; the rest under [`daemon`]),
//!   so that embedding takes this one dependency.
//! - `cli` (default): the `socks4d-smol` binary's command line and config
//!   file (`Settings::from_args`).
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "server")]
mod server;

#[cfg(feature = "server")]
pub use server::{run, Smol};
#[cfg(feature = "server")]
pub use socks4_daemon::{
    self as daemon, ConfigError, Daemon, DaemonEvent, EventStream, Options, Position, Settings,
    Snapshot,
};
