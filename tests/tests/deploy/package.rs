//! The Debian package: built by `dist/debian/build`, checked by lintian,
//! installed, verified and purged; the machine is put back as it was.

use crate::{build, must, sh, slow};
use socks4_tests::e2e::*;
use std::path::Path;
use std::process::Command as Process;

/// What the package test changed, put back when dropped: the package
/// purged, and the user removed unless it was there before.
struct PackageTest {
    user_existed: bool,
}

impl Drop for PackageTest {
    fn drop(&mut self) {
        let _ = slow("dpkg", &["--purge", "socks4d"]);
        if !self.user_existed && sh("getent", &["passwd", "socks4d"]).0 {
            let _ = sh("userdel", &["socks4d"]);
        }
        if !self.user_existed && sh("getent", &["group", "socks4d"]).0 {
            let _ = sh("groupdel", &["socks4d"]);
        }
    }
}

fn installed(path: &str) -> bool {
    Path::new(path).exists()
}

/// Renders an installed man page with `man -l`: its text.
fn man_page(page: &str) -> String {
    let path = format!("/usr/share/man/man8/{page}.8.gz");
    let (status, text, err) = run(
        Process::new("man")
            .args(["-l", &path])
            .env("MANWIDTH", "200"),
        b"",
    );
    let text = String::from_utf8_lossy(&text).into_owned();
    assert!(
        status.success() && text.contains("NAME") && text.contains(page),
        "{path}: {err}"
    );
    text
}

/// What `dpkg -i` put in place (`user_existed`: the user was there
/// before): the user, the units (verified), the enabled service, the pages,
/// the completions, the binaries, the config.
fn check_installed(user_existed: bool) {
    let user = must("getent", &["passwd", "socks4d"]);
    // A user that was there before is left as it was (systemd-sysusers
    // changes no existing user); a new one has no login shell.
    if !user_existed {
        assert!(user.trim_end().ends_with(":/usr/sbin/nologin"), "{user}");
    }
    assert!(installed(
        "/etc/systemd/system/multi-user.target.wants/socks4d.service"
    ));
    assert!(!installed(
        "/etc/systemd/system/sockets.target.wants/socks4d.socket"
    ));
    let verify = [
        "verify",
        "/usr/lib/systemd/system/socks4d.service",
        "/usr/lib/systemd/system/socks4d.socket",
        "/usr/lib/systemd/system/socks4d@.service",
    ];
    let (ok, out, err) = sh("systemd-analyze", &verify);
    assert!(
        ok && out.is_empty() && err.is_empty(),
        "systemd-analyze verify:\n{out}{err}"
    );
    for page in [
        "socks4d-tokio-ctl",
        "socks4d-smol-health",
        "socks4d-async-std",
    ] {
        man_page(page);
    }
    assert!(man_page("socks4d-tokio").contains("--max-connections"));
    assert!(installed(
        "/usr/share/bash-completion/completions/socks4d-tokio"
    ));
    assert!(installed(
        "/usr/share/zsh/vendor-completions/_socks4d-tokio"
    ));
    assert!(installed(
        "/usr/share/fish/vendor_completions.d/socks4d-tokio.fish"
    ));
    for bin in ["socks4d-tokio", "socks4d-smol", "socks4d-async-std"] {
        let version = must(&format!("/usr/bin/{bin}"), &["--version"]);
        assert!(
            version.starts_with(&format!("{bin} {}", env!("CARGO_PKG_VERSION"))),
            "{version}"
        );
    }
    let check = must(
        "/usr/bin/socks4d-tokio",
        &[
            "--check",
            "--strict",
            "--config",
            "/etc/socks4d/socks4d.toml",
        ],
    );
    assert!(check.contains("127.0.0.1:1080"), "{check}");
}

#[test]
fn the_debian_package_installs_verifies_and_purges() {
    let deb = build("dist/debian/build", &[]);
    let deb = deb
        .lines()
        .last()
        .expect("the .deb's path")
        .trim()
        .to_owned();
    assert!(deb.ends_with(".deb"), "{deb}");
    let (clean, out) = slow("lintian", &["--fail-on", "error", &deb]);
    assert!(clean, "lintian:\n{out}");

    assert!(
        !sh("dpkg", &["-s", "socks4d"]).0,
        "socks4d is installed already: purge it first"
    );
    let user_existed = sh("getent", &["passwd", "socks4d"]).0;
    let _restore = PackageTest { user_existed };
    let (ok, out) = slow("dpkg", &["-i", &deb]);
    assert!(ok, "dpkg -i {deb}:\n{out}");
    check_installed(user_existed);

    let (ok, out) = slow("dpkg", &["--purge", "socks4d"]);
    assert!(ok, "dpkg --purge socks4d:\n{out}");
    assert!(!sh("dpkg", &["-s", "socks4d"]).0);
    for gone in [
        "/usr/bin/socks4d-tokio",
        "/etc/socks4d",
        "/usr/lib/systemd/system/socks4d.service",
        "/etc/systemd/system/multi-user.target.wants/socks4d.service",
    ] {
        assert!(!installed(gone), "{gone} is left after the purge");
    }
}
