//! The end-to-end suite, full tier (the `peers` feature of `socks4-tests`):
//! tests that need root or a third-party program, every scenario on every
//! adapter. `.ci/setup` installs the programs from Debian packages and starts
//! none: each test starts what it needs on loopback ports of its own and
//! stops it. `.ci/test` runs this tier as root, in full, on every CI run:
//!
//! ```sh
//! sudo bash .ci/test    # or, set up: cargo test --workspace --features socks4-tests/peers
//! ```
//!
//! One file per feature, with what it needs:
//! - `clients`: curl, PySocks (python3), OpenBSD nc, proxychains4.
//! - `ident`: oidentd (started by each test on a free port).
//! - `parents`: tinyproxy, Dante (runs as root), stunnel, curl.
//! - `tls`: stunnel, OpenSSH's sshd and ssh, curl.
//! - `proxy_protocol`: HAProxy.
//! - `operations`: Prometheus and promtool, systemd-socket-activate and curl,
//!   root (the privilege drop; root with a public listener and no user).
//! - `interception`: root, network namespaces (iproute2), nftables with
//!   TPROXY, python3.
//! - `sniff` (in the namespaces of `interception`): root, iproute2,
//!   nftables (a `redirect`), python3, curl, openssl.
//! - `client_helpers`: Dante (runs as root).
//! - `eyeballs`, `outbound_ops` and `late_answers` (in the namespace of
//!   `dns_ns`): root, a network namespace (iproute2), nftables, dnsmasq,
//!   python3, curl.
//! - `keepalive`: root, a network namespace and a veth pair (iproute2),
//!   nftables, python3.
//! - `reuse_port_stop`: root, a network namespace (iproute2) with
//!   `net.ipv4.tcp_migrate_req`, python3.
//! - `log_outputs`: logrotate and rsyslogd (each started by the test, its
//!   config in a scratch folder, stopped by PID).
//! - `balance`: nothing but our servers (a route's parents on loopback).
//! - `fleet`: redis-server (started by each test on a free port, without
//!   persistence).
//! - `loops`: root, a network namespace (iproute2), nftables (a `redirect`
//!   of the server's own connections), python3.
//! - `upgrade`: systemd-socket-activate and curl (a socket-activated
//!   server's binary upgrade).
//! - `exits`: root, two network namespaces and two veth pairs (iproute2),
//!   nftables (a `meta mark` counter), python3.
//!
//! The release artefacts (the container image, the Debian package) are
//! tried in the same tier by a test binary of their own, `deploy`.

mod balance;
mod client_helpers;
mod clients;
mod dns_ns;
mod exits;
mod eyeballs;
mod fleet;
mod ident;
mod interception;
mod keepalive;
mod late_answers;
mod log_outputs;
mod loops;
mod operations;
mod outbound_ops;
mod parents;
mod proxy_protocol;
mod reuse_port_stop;
mod sniff;
mod tls;
mod upgrade;
