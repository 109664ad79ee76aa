//! The crates' examples run: the blocking std server built on the sans-IO
//! session serves the blocking std client example, and the tokio embedding
//! example serves the tokio client example (each fetching a page from a
//! loopback HTTP peer). The other examples are built by `cargo test`.

use socks4_tests::e2e::{cargo_build, http, run, target_dir, wait_listening, ChildGuard};
use std::path::PathBuf;
use std::process::{Command as Process, Stdio};

/// An example's binary, built on first use.
fn example(package: &str, name: &str) -> PathBuf {
    cargo_build(&["-p", package, "--example", name]);
    target_dir().join("examples").join(name)
}

/// Starts an example server on 127.0.0.1 port 0 and returns it with the
/// address it bound (read from /proc: the examples do not print it).
fn serve(binary: PathBuf) -> (ChildGuard, String) {
    let child = Process::new(binary)
        .arg("127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = ChildGuard(child);
    let addr = wait_listening(running.0.id(), "the example server");
    (running, addr.to_string())
}

fn fetch(client: PathBuf, proxy: &str, body: &'static str) {
    let web = http(1, body);
    let (status, out, err) = run(
        Process::new(client).args([proxy, "localhost", &web.port().to_string()]),
        b"",
    );
    let out = String::from_utf8_lossy(&out);
    assert!(
        status.success() && out.contains(body),
        "{status}: {out}{err}"
    );
}

#[test]
fn the_std_server_example_serves_the_std_client_example() {
    let (_server, listen) = serve(example("socks4-proto", "server_std"));
    fetch(
        example("socks4-proto", "client_std"),
        &listen,
        "served by server_std",
    );
}

#[test]
fn the_tokio_embedding_example_serves_the_tokio_client_example() {
    let (_server, listen) = serve(example("socks4-tokio", "tokio_embed"));
    fetch(
        example("socks4-tokio", "tokio_client"),
        &listen,
        "served by tokio_embed",
    );
}
