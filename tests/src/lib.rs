//! Helpers shared by the workspace's cross-crate tests (in `tests/tests/`) and
//! its benchmark (`src/bin/socks4-load.rs`).
//!
//! Everything here works without sockets or on loopback only, and stops by itself.

pub mod e2e;
pub mod load;
pub mod peers;
pub mod procfs;
pub mod scratch;
pub mod sim;
pub mod tls;
