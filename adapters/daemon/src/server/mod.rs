//! A server's life: binding its sockets ([`bind`]), serving them until a
//! graceful stop ([`serve`], [`run`] for a program that embeds a server on a
//! runtime it already has), and the binaries' [`main`].
//!
//! Layer: the top; it may use every other folder, and nothing uses it.

mod bind;
mod listeners;
#[cfg(feature = "cli")]
mod main;
mod serve;

pub use bind::{bind, Bound};
#[cfg(feature = "cli")]
pub use main::{command, main};
pub use serve::{run, serve};
