//! Helpers shared by the workspace's cross-crate tests (in `tests/tests/`) and
//! its benchmark (`src/bin/socks4-load.rs`).
//!
//! Everything here works without sockets or on loopback only, and stops by itself.
//!
//! The test binaries: `sim` (the session machine on a fake clock), `library`
//! (the crates used as libraries), `e2e` (the end-to-end quick tier, as a
//! normal user), the single-file checks on the tree and the docs
//! (`architecture`, `light_client`, `readme`, `sample_config`, ...), and,
//! built only with this crate's `peers` feature, `peers` (the end-to-end full
//! tier: root and third-party programs) and `deploy` (the release artefacts
//! of `dist/`, built and tried).

pub mod e2e;
pub mod load;
pub mod log_lines;
pub mod netns;
pub mod peers;
pub mod procfs;
pub mod resolver_load;
pub mod samples;
pub mod scratch;
pub mod sim;
pub mod tls;
