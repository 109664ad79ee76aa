//! Names the build for `--version`: the crate's version and the git commit
//! the binaries were built from, with ", dirty" when the sources the
//! binaries are built from differ from that commit. Outside a git checkout
//! of this repository (a crate from a registry, a source tarball) it says so,
//! unless `SOCKS4_BUILD_COMMIT` names the commit (for packagers).
//!
//! The result is the compile-time variable `SOCKS4_VERSION`, e.g.
//! `0.2.0 (commit 1a2b3c4d5e6f)` or `0.2.0 (commit 1a2b3c4d5e6f, dirty)`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The folders (and files) of the workspace the binaries are built from: a
/// change there makes a build "dirty", and reruns this script.
const SOURCES: [&str; 7] = [
    "socks4-proto",
    "socks4-acl",
    "socks4-ident",
    "socks4-client",
    "adapters",
    "Cargo.toml",
    "Cargo.lock",
];

/// `git ARGS` in `dir`: its output, trimmed, if it ran and succeeded.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The commit and whether the sources differ from it, when this crate is in
/// a git checkout of the repository (its own build script is tracked there).
fn from_git(crate_dir: &Path) -> Option<String> {
    let root = PathBuf::from(git(crate_dir, &["rev-parse", "--show-toplevel"])?);
    // Rerun when HEAD moves, the branch gets a commit, or the index changes.
    // Only files that exist are named: cargo reruns a script on every build
    // while a file it names is missing (a checkout without packed-refs, a
    // branch whose ref is packed), which would rebuild the crate each time.
    let mut paths = vec![
        "HEAD".to_owned(),
        "index".to_owned(),
        "packed-refs".to_owned(),
    ];
    paths.extend(git(&root, &["symbolic-ref", "-q", "HEAD"]));
    for path in paths {
        if let Some(p) = git(&root, &["rev-parse", "--git-path", &path]) {
            let p = root.join(p);
            if p.exists() {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
    }
    // A checkout of this repository tracks this very script.
    git(crate_dir, &["ls-files", "--error-unmatch", "build.rs"])?;
    let commit = git(&root, &["rev-parse", "--short=12", "HEAD"])?;
    let workspace = crate_dir.join("../..");
    let mut status = vec!["status", "--porcelain", "--untracked-files=no", "--"];
    status.extend(SOURCES);
    for source in SOURCES {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(source).display()
        );
    }
    let dirty = git(&workspace, &status).is_none_or(|changes| !changes.is_empty());
    Some(if dirty {
        format!("commit {commit}, dirty")
    } else {
        format!("commit {commit}")
    })
}

fn main() {
    let crate_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SOCKS4_BUILD_COMMIT");
    let built = match std::env::var("SOCKS4_BUILD_COMMIT") {
        Ok(commit) if !commit.trim().is_empty() => format!("commit {}", commit.trim()),
        _ => from_git(&crate_dir).unwrap_or_else(|| "not built from a git checkout".to_owned()),
    };
    let version = std::env::var("CARGO_PKG_VERSION").expect("cargo sets it");
    println!("cargo:rustc-env=SOCKS4_VERSION={version} ({built})");
}
