//! Helpers shared by the workspace's cross-crate tests (in `tests/tests/`).
//!
//! Everything here works on loopback only and stops by itself.
