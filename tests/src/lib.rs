//! Helpers shared by the workspace's cross-crate tests (in `tests/tests/`).
//!
//! Everything here works without sockets or on loopback only, and stops by itself.

pub mod e2e;
pub mod sim;
