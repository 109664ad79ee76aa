//! The crates' examples run: the blocking std server built on the sans-IO
//! session serves the blocking std client example, and the tokio embedding
//! example serves the tokio client example (each fetching a page from a
//! loopback HTTP peer). The other examples are built by `cargo test`.

use socks4_tests::e2e::{free_port, http, run, STEP};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

/// An example's binary, built on first use.
fn example(package: &str, name: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let status = Process::new(cargo)
        .args([
            "build",
            "--quiet",
            "--manifest-path",
            manifest,
            "-p",
            package,
            "--example",
            name,
        ])
        .status()
        .unwrap();
    assert!(status.success(), "cargo build --example {name}");
    let mut dir = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join("examples").join(name)
}

/// A running example server, stopped (by PID) when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(binary: PathBuf, listen: &str) -> Running {
    let child = Process::new(binary)
        .arg(listen)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + STEP;
    while TcpStream::connect(listen).is_err() {
        assert!(
            Instant::now() < deadline,
            "the example server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Running(child)
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
    let listen = format!("127.0.0.1:{}", free_port());
    let _server = serve(example("socks4-proto", "server_std"), &listen);
    fetch(
        example("socks4-proto", "client_std"),
        &listen,
        "served by server_std",
    );
}

#[test]
fn the_tokio_embedding_example_serves_the_tokio_client_example() {
    let listen = format!("127.0.0.1:{}", free_port());
    let _server = serve(example("socks4-tokio", "tokio_embed"), &listen);
    fetch(
        example("socks4-tokio", "tokio_client"),
        &listen,
        "served by tokio_embed",
    );
}
