//! The end-to-end suite, quick tier: our server binaries started as child
//! processes on loopback, every scenario on every adapter (each a test of its
//! own: `bind::on_tokio::bind_exchange`, `bind::on_smol::bind_exchange`, ...;
//! adding an adapter is one line in `socks4_tests::on_every_adapter!`). It
//! runs as a normal user with nothing installed beyond the Rust toolchain:
//! the peers are loopback threads of the test itself, the certificates come
//! from a test authority, and assertions read the servers' JSON log lines.
//! What needs root or a third-party program is in the `peers` binary.
//!
//! One file per feature: `connect` (relays, bad clients, forwards), `bind`,
//! `rules`, `limits` (bandwidth, rate, quota, connection caps),
//! `limits_identity` (`[limits] key`: limits per certificate or IDENT
//! user), `tls`, `proxy_protocol`, `reuse_port`, `sniff` (names sniffed on
//! a forward listener), `notify` (notification commands), `logs` (with
//! `outputs`: the access log, the log file and its reopening),
//! `operations` (signals, control socket; `live_control`: `ctl conns`, `ctl
//! kill` and run-time lists; `reload_listeners`; `keepalive` timers seen
//! with `ss`;
//! systemd notifications, pid
//! file, `--version`), `preflight` (what `--check` and the start check
//! before binding, how a failed start ends, and errors that say what to do),
//! `security` (issue 26's boundaries: `client_table`, the table's bound
//! under 100,000 addresses and quota usage through eviction; `loops`,
//! CONNECTs to the server itself; `refusals`, refused sources hold no slot
//! and the last slot between listeners; `ops_limits`, the metrics and
//! control socket bounds; `operator_files`, durations, parents' passwords,
//! symbolic links and reloads), and `deploy` (`readiness`: `/ready`, `/live`, the `health`
//! subcommand; `dist`: the Grafana dashboard and the alert rules name
//! metrics a running server exports).

mod bind;
mod connect;
mod deploy;
mod limits;
mod limits_identity;
mod logs;
mod notify;
mod operations;
mod preflight;
mod proxy_protocol;
mod reuse_port;
mod rules;
mod security;
mod sniff;
mod tls;
