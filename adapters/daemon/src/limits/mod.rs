//! What each client may use, and the books of what it used: the per-client
//! table ([`client_table`]: connection and BIND caps, connection rate,
//! bandwidth and quota accounting per client address), the meters a relay
//! moves bytes under ([`meter`]), and per-second budgets of log lines
//! (`log_budget`).
//!
//! Layer: above `runtime`; uses nothing else of this crate. No sockets, no
//! tasks: time comes in as an argument, like in the core crates.

pub mod client_key;
pub mod client_table;
pub(crate) mod log_budget;
pub mod meter;
pub mod quota_book;
