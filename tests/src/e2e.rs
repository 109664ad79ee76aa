//! Helpers for end-to-end tests against the built server binaries: start a server
//! on a free loopback port, loopback peers (echo, HTTP, slow source), and a
//! SOCKS4 client over std sockets. Everything stays on 127.0.0.1 and stops by
//! itself: servers are killed (by PID) when dropped, peers serve a bounded number
//! of connections.
//!
//! The helpers live in three files under `e2e/`: `server.rs` (our binaries as
//! child processes), `loopback.rs` (peers and ports) and `client.rs` (a SOCKS4
//! client over std sockets); everything is re-exported here, so tests import
//! `socks4_tests::e2e::*`.

mod client;
mod loopback;
mod server;

pub use client::*;
pub use loopback::*;
pub use server::*;

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command as Process, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Makes each scenario (a `fn(binary: &str)` in the calling test file) a test
/// per server binary: `on_tokio::scenario`, `on_smol::scenario`, ... Adding an
/// adapter is one line here.
#[macro_export]
macro_rules! on_every_adapter {
    ($($scenario:ident),* $(,)?) => {
        mod on_tokio { $( #[test] fn $scenario() { super::$scenario("socks4d-tokio") } )* }
        mod on_smol { $( #[test] fn $scenario() { super::$scenario("socks4d-smol") } )* }
        mod on_async_std { $( #[test] fn $scenario() { super::$scenario("socks4d-async-std") } )* }
    };
}

/// Makes each test in the block a test per runtime's client helpers
/// (`socks4_tokio::client`, `socks4_smol::client`,
/// `socks4_async_std::client`): `on_tokio::name`, `on_smol::name`, ... Inside,
/// `client` is that runtime's client module, `block_on` runs a future on the
/// runtime, its `AsyncReadExt` and `AsyncWriteExt` are in scope, and so is
/// everything of the calling module (`use super::*`).
#[macro_export]
macro_rules! on_every_client_runtime {
    ($($test:item)*) => {
        mod on_tokio {
            #[allow(unused_imports)]
            use super::*;
            #[allow(unused_imports)]
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            use socks4_tokio::client;

            fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(f)
            }

            $($test)*
        }
        mod on_smol {
            #[allow(unused_imports)]
            use super::*;
            #[allow(unused_imports)]
            use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
            use socks4_smol::client;

            fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
                smol::block_on(f)
            }

            $($test)*
        }
        mod on_async_std {
            #[allow(unused_imports)]
            use super::*;
            #[allow(unused_imports)]
            use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
            use socks4_async_std::client;

            fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
                async_std::task::block_on(f)
            }

            $($test)*
        }
    };
}

/// How long any single step may take before a test fails.
pub const STEP: Duration = Duration::from_secs(10);

/// Runs a command to completion with a time limit; returns (status, stdout, stderr).
pub fn run(cmd: &mut Process, stdin: &[u8]) -> (ExitStatus, Vec<u8>, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{cmd:?}: {e} (run `bash .ci/setup` to install the test clients)")
        });
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let pid = child.id();
    let watchdog_done = Arc::new(Mutex::new(false));
    let flag = watchdog_done.clone();
    thread::spawn(move || {
        let deadline = Instant::now() + STEP * 3;
        while Instant::now() < deadline {
            if *flag.lock().unwrap() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = Process::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    });
    let out = child.wait_with_output().unwrap();
    *watchdog_done.lock().unwrap() = true;
    writer.join().unwrap();
    (
        out.status,
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Fetches `http://localhost:PORT/` with curl through the SOCKS4a proxy at
/// `proxy` (the name resolved by the proxy): whether curl succeeded, and its
/// output and errors.
pub fn curl_socks4a(proxy: SocketAddr, port: u16) -> (bool, String) {
    let url = format!("http://localhost:{port}/");
    let (status, out, err) = run(
        Process::new("curl").args([
            "-sS",
            "--max-time",
            "10",
            "--socks4a",
            &proxy.to_string(),
            &url,
        ]),
        b"",
    );
    (
        status.success(),
        format!("{}{err}", String::from_utf8_lossy(&out)),
    )
}

/// Writes a config file whose only content is `rules` as the access rules,
/// in the scratch directory `name`; its path.
pub fn rules_config(name: &str, rules: &str) -> String {
    let conf = crate::scratch::dir(name).join("socks4d.toml");
    std::fs::write(
        &conf,
        format!("[access]\nrules = \"\"\"\n{rules}\n\"\"\"\n"),
    )
    .unwrap();
    conf.display().to_string()
}
