//! Watching the server: the counters it keeps ([`counters`]), the event
//! stream an embedder subscribes to ([`events`]), the per-connection
//! observer that turns a session's events into counts, events and the one
//! `closed` log line ([`books`]), the open connections for `ctl conns` and
//! `ctl kill` ([`conns`]), the administrator's notification command
//! ([`notify`], its process in `notify_child`), and the log output
//! ([`logging`]).
//!
//! Layer: above `runtime` and `limits`; never imports `config`, `daemon`,
//! `conn`, `ops` or `server`. Nothing here calls back into a connection.

pub mod books;
pub mod conns;
pub mod counters;
pub mod events;
pub mod logging;
pub mod notify;
mod notify_child;
