//! The release artefacts of `dist/`, built with the commands
//! `docs/deploy.md` gives and used as an operator would, once each (not per
//! adapter: the image holds the tokio server, the package all three). Part
//! of the full tier (the `peers` feature: they need root, podman, cargo-deb,
//! lintian), but a test binary of its own: cargo runs test binaries one
//! after another, so their builds (xz, lintian) never load the machine under
//! the timing-sensitive tests of `peers`. Both leave the machine as they
//! found it.
//!
//! - `image`: the container image (`dist/container/build`, podman and runc):
//!   under 15 MB; run in a network namespace of the test's own with a
//!   mounted config and explicit ulimits, it proxies `curl --socks4a` to an
//!   HTTP server in that namespace, its health check passes, its process
//!   runs as uid 10001, and `podman stop` ends it with status 0 well within
//!   the grace. The sample config passes `--check --strict` inside it.
//! - `package`: the Debian package (`dist/debian/build`, cargo-deb): lintian
//!   finds no error; `dpkg -i` installs it, creates the `socks4d` user and
//!   enables `socks4d.service`; `systemd-analyze verify` passes on its units;
//!   `man -l` renders its pages; the installed binaries answer `--version`;
//!   the installed config passes `--check --strict`; `dpkg --purge` removes
//!   it all (and the user, unless it was there before).

mod image;
mod package;

use socks4_tests::e2e::*;
use std::path::PathBuf;
use std::process::{Command as Process, Stdio};

/// The workspace's root folder.
pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs one of the `dist/` build scripts (no time limit: it may build
/// release binaries); its standard output. Fails the test if it fails.
pub(crate) fn build(script: &str, env: &[(&str, &str)]) -> String {
    let mut cmd = Process::new("bash");
    cmd.arg(root().join(script)).current_dir(root());
    without_test_env(&mut cmd);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("{script}: {e}"));
    assert!(
        out.status.success(),
        "{script} failed ({:?}); see docs/deploy.md for what it needs",
        out.status
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a short command (at most 30 s): whether it succeeded, its standard
/// output and its standard error.
pub(crate) fn sh(program: &str, args: &[&str]) -> (bool, String, String) {
    let (status, out, err) = run(Process::new(program).args(args), b"");
    (
        status.success(),
        String::from_utf8_lossy(&out).into_owned(),
        err,
    )
}

/// Runs a command that may take longer than [`sh`] allows (lintian, dpkg
/// and its triggers), to its end: whether it succeeded, and its output and
/// errors.
pub(crate) fn slow(program: &str, args: &[&str]) -> (bool, String) {
    let out = Process::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (run .ci/setup to install it)"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Like [`sh`], failing the test unless the command succeeds; its output.
pub(crate) fn must(program: &str, args: &[&str]) -> String {
    let (ok, out, err) = sh(program, args);
    assert!(ok, "{program} {args:?} failed:\n{out}{err}");
    out
}

/// This process's hard limit named `what` in /proc/self/limits.
pub(crate) fn hard_limit(what: &str) -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with(what))
        .unwrap_or_else(|| panic!("no {what} in /proc/self/limits"));
    let hard = line[what.len()..].split_whitespace().nth(1).unwrap();
    hard.parse().unwrap_or(u64::MAX) // "unlimited"
}
