#![doc = include_str!("../README.md")]
//!
//! # What an embedder uses
//!
//! Everything a program needs to run a server is re-exported here:
//! - [`Daemon`]: the handle a server runs with and the program holds
//!   (run-time deny/exempt lists and rules at a [`Position`], reload,
//!   counters as a [`Snapshot`], [`DaemonEvent`]s from
//!   [`Daemon::subscribe`], shutdown);
//! - [`Settings`] (from [`Options`] built in code, or `Settings::from_args`
//!   with the `cli` feature) and [`ConfigError`];
//! - [`run`] (bind and serve on a [`Runtime`]), or [`bind`] then [`serve`]
//!   with the [`Bound`] sockets; [`main`] for a server binary (and
//!   [`command`], its command line as clap describes it);
//! - [`control_answer`] (one control-socket request, answered without the
//!   socket) and [`restore_state`] (a state file's text into a client
//!   table), for tools and the fuzz targets;
//! - the core crates' types a program meets on the way: [`Netmask`],
//!   [`Policy`], [`Rule`], [`ParseError`], [`Event`], [`CloseReason`],
//!   [`ReplyCode`].
//!
//! ```
//! use socks4_daemon::{Daemon, Options, Position, Settings};
//!
//! let options = Options {
//!     listen: Some(vec!["127.0.0.1:0".parse()?]),
//!     ..Options::default()
//! };
//! let daemon = Daemon::new(Settings::from_options(options)?);
//! daemon.add_rules("pass from 127.0.0.0/8 to any port eq 80", Position::First)?;
//! assert_eq!(daemon.active(), 0);
//! // Serve it with a runtime crate: socks4_tokio::run(daemon, |addrs| ...).await
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Public modules, for what goes beyond running a server:
//! - [`runtime`]: the seam an adapter implements ([`Runtime`], its
//!   [`runtime::Stream`]);
//! - [`config`]: every option and its value types, the listener kinds, the
//!   command line and `--check`;
//! - [`observe`]: counters, events, notifications and the log format;
//! - [`limits`]: the per-client table and the meters relays move under.
//!
//! The rest (the connection driver, the daemon's handle internals, the
//! operator's interfaces and the server's life) is private; ARCHITECTURE.md
//! at the repository's root maps every folder.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod config;
mod conn;
mod daemon;
mod fleet;
pub mod limits;
pub mod observe;
mod ops;
pub mod runtime;
mod server;

pub use config::options::Options;
pub use config::settings::{ConfigError, Settings};
pub use daemon::state_file::restore as restore_state;
pub use daemon::{Daemon, Position};
pub use observe::counters::Snapshot;
pub use observe::events::{DaemonEvent, EventStream};
pub use ops::control::answer as control_answer;
pub use runtime::Runtime;
pub use server::{bind, run, serve, Bound};
#[cfg(feature = "cli")]
pub use server::{command, main};
pub use socks4_acl::{Netmask, ParseError, Policy, Rule};
pub use socks4_proto::server::{CloseReason, Event};
pub use socks4_proto::ReplyCode;
