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
//! `rules`, `limits` (bandwidth, rate, quota, connection caps), `tls`,
//! `proxy_protocol`, `reuse_port`, `notify` (notification commands), `logs`,
//! `operations` (signals, control socket, systemd notifications, pid
//! file), `readiness` (`/ready`, `/live`, the `health` subcommand), and
//! `dist` (the Grafana dashboard and the alert rules name metrics a running
//! server exports).

mod bind;
mod connect;
mod dist;
mod limits;
mod logs;
mod notify;
mod operations;
mod proxy_protocol;
mod readiness;
mod reuse_port;
mod rules;
mod tls;
