//! The client helpers stay light: a program that only connects through a
//! SOCKS4 proxy takes a runtime crate with its `client` feature alone, and
//! gets no server with it (no daemon, rustls, ring, prometheus-client,
//! privdrop, clap, toml). Read from `cargo tree -e normal`:
//!
//! - tokio: at most [`BOUND`] crates in all (tokio itself included);
//! - smol and async-std, whose own trees are already larger than that: the
//!   client adds to the runtime's tree no crate but ours
//!   ([`OURS`]: the runtime crate, `socks4-client`, `socks4-proto`, and
//!   `bytes`).

use std::collections::BTreeSet;
use std::process::Command;

/// The most crates a tokio client's tree may hold.
const BOUND: usize = 15;

/// The crates a client adds to its runtime's, besides the runtime crate of
/// ours (`socks4-tokio`, ...).
const OURS: [&str; 3] = ["socks4-client", "socks4-proto", "bytes"];

/// Crates that belong to the server only.
const SERVER: [&str; 9] = [
    "socks4-daemon",
    "rustls",
    "ring",
    "prometheus-client",
    "privdrop",
    "clap",
    "toml",
    "x509-parser",
    "tracing-subscriber",
];

/// The names of the crates in `cargo tree -e normal` with `args`.
fn tree(args: &[&str]) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let out = Command::new(cargo)
        .args(["tree", "--locked", "--manifest-path", manifest])
        .args(["-e", "normal", "--prefix", "none"])
        .args(args)
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// A client's tree: `package` with its `client` feature alone.
fn client_tree(package: &str) -> BTreeSet<String> {
    let crates = tree(&[
        "-p",
        package,
        "--no-default-features",
        "--features",
        "client",
    ]);
    let server: Vec<&String> = crates
        .iter()
        .filter(|c| SERVER.contains(&c.as_str()))
        .collect();
    assert!(
        server.is_empty(),
        "{package} with `client` alone pulls in the server's {server:?}"
    );
    crates
}

#[test]
fn a_tokio_client_holds_at_most_the_bound() {
    let crates = client_tree("socks4-tokio");
    assert!(
        crates.len() <= BOUND,
        "a tokio client pulls in {} crates, more than {BOUND}: {crates:?}",
        crates.len()
    );
}

/// What a client on `package` adds to the tree of `runtime`, besides ours.
fn added_to_runtime(package: &str, runtime: &str) -> Vec<String> {
    let runtime_tree = tree(&["-p", runtime]);
    client_tree(package)
        .into_iter()
        .filter(|c| !runtime_tree.contains(c) && c != package && !OURS.contains(&c.as_str()))
        .collect()
}

#[test]
fn a_smol_client_adds_only_ours_to_smol() {
    let added = added_to_runtime("socks4-smol", "smol");
    assert!(
        added.is_empty(),
        "a smol client adds {added:?} to smol's tree"
    );
}

#[test]
fn an_async_std_client_adds_only_ours_to_async_std() {
    let added = added_to_runtime("socks4-async-std", "async-std");
    assert!(
        added.is_empty(),
        "an async-std client adds {added:?} to async-std's tree"
    );
}

#[test]
fn the_bound_sees_a_server() {
    // With its default features, a runtime crate is the server too.
    let all = tree(&["-p", "socks4-tokio"]);
    assert!(all.len() > BOUND && all.contains("rustls"), "{all:?}");
}
