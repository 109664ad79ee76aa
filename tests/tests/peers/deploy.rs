//! The artefacts of `dist/`, built with the commands `docs/deploy.md` gives
//! and used as an operator would, once each (not per adapter: the image
//! holds the tokio server, the package all three). Both need root; both
//! leave the machine as they found it.
//!
//! - The container image (`dist/container/build`, podman and runc): under
//!   15 MB; run in a network namespace of the test's own with a mounted
//!   config and explicit ulimits, it proxies `curl --socks4a` to an HTTP
//!   server in that namespace, its health check passes, its process runs as
//!   uid 10001, and `podman stop` ends it with status 0 well within the
//!   grace. The sample config passes `--check --strict` inside it.
//! - The Debian package (`dist/debian/build`, cargo-deb): lintian finds no
//!   error; `dpkg -i` installs it, creates the `socks4d` user and enables
//!   `socks4d.service`; `systemd-analyze verify` passes on its units; `man
//!   -l` renders its pages; the installed binaries answer `--version`; the
//!   installed config passes `--check --strict`; `dpkg --purge` removes it
//!   all (and the user, unless it was there before).

use socks4_tests::e2e::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

/// The image's size the issue aims under (bytes).
const IMAGE_SIZE_LIMIT: u64 = 15_000_000;

/// The uid the image runs as (dist/container/Containerfile).
const IMAGE_UID: u32 = 10001;

/// What `podman stop` waits before SIGKILL; the server must be gone well
/// before.
const STOP_TIMEOUT_SECS: u64 = 20;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs one of the `dist/` build scripts (no time limit: it may build
/// release binaries); its standard output. Fails the test if it fails.
fn build(script: &str, env: &[(&str, &str)]) -> String {
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
fn sh(program: &str, args: &[&str]) -> (bool, String, String) {
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
fn slow(program: &str, args: &[&str]) -> (bool, String) {
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
fn must(program: &str, args: &[&str]) -> String {
    let (ok, out, err) = sh(program, args);
    assert!(ok, "{program} {args:?} failed:\n{out}{err}");
    out
}

/// This process's hard limit named `what` in /proc/self/limits.
fn hard_limit(what: &str) -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with(what))
        .unwrap_or_else(|| panic!("no {what} in /proc/self/limits"));
    let hard = line[what.len()..].split_whitespace().nth(1).unwrap();
    hard.parse().unwrap_or(u64::MAX) // "unlimited"
}

/// What the container test made, removed when dropped.
struct ContainerTest {
    netns: String,
    container: String,
    image: String,
    http: Option<Child>,
}

impl Drop for ContainerTest {
    fn drop(&mut self) {
        let _ = sh("podman", &["rm", "--force", "--time", "0", &self.container]);
        let _ = sh("podman", &["rmi", "--force", &self.image]);
        if let Some(mut http) = self.http.take() {
            let _ = http.kill();
            let _ = http.wait();
        }
        let _ = sh("ip", &["netns", "del", &self.netns]);
    }
}

impl ContainerTest {
    /// Runs `args` inside the test's network namespace (at most 30 s).
    fn in_ns(&self, args: &[&str]) -> (bool, String, String) {
        let mut all = vec!["netns", "exec", &self.netns];
        all.extend_from_slice(args);
        sh("ip", &all)
    }

    /// `GET url` with curl inside the namespace until it answers `code`
    /// (at most [`STEP`]).
    fn wait_http(&self, url: &str, code: &str) {
        let deadline = Instant::now() + STEP;
        loop {
            let (_, out, _) =
                self.in_ns(&["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url]);
            if out == code {
                return;
            }
            if Instant::now() > deadline {
                let logs = self.logs();
                panic!("{url} answered {out:?}, not {code}; the container's log:\n{logs}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The `podman run` flags the test needs on this machine: runc (crun
/// refuses cgroups v1), ulimits within the host's own.
fn run_flags(netns: &str) -> Vec<String> {
    let nofile = hard_limit("Max open files").min(4096);
    let nproc = hard_limit("Max processes").min(4096);
    vec![
        "--runtime".into(),
        "runc".into(),
        "--network".into(),
        format!("ns:/run/netns/{netns}"),
        "--ulimit".into(),
        format!("nofile={nofile}:{nofile}"),
        "--ulimit".into(),
        format!("nproc={nproc}:{nproc}"),
    ]
}

impl ContainerTest {
    /// Builds the image under the test's own tag; checks its size.
    fn build_image(&self) {
        let built = build("dist/container/build", &[("SOCKS4_IMAGE", &self.image)]);
        eprintln!("{}", built.trim());
        let size: u64 = must(
            "podman",
            &["image", "inspect", "--format", "{{.Size}}", &self.image],
        )
        .trim()
        .parse()
        .unwrap();
        assert!(size < IMAGE_SIZE_LIMIT, "the image is {size} bytes");
    }

    /// `podman run` with the test's flags, `extra` and the config at
    /// `config` mounted where the image reads it, then `args` after the
    /// image; the command's output.
    fn podman_run(&self, extra: &[&str], config: &Path, args: &[&str]) -> String {
        let flags = run_flags(&self.netns);
        let mount = format!("{}:/etc/socks4d/socks4d.toml:ro", config.display());
        let mut all: Vec<&str> = vec!["run"];
        all.extend(flags.iter().map(String::as_str));
        all.extend_from_slice(extra);
        all.extend(["-v", &mount, &self.image]);
        all.extend_from_slice(args);
        must("podman", &all)
    }

    /// Serves `dir` over HTTP on the namespace's 127.0.0.1:8080.
    fn serve_http(&mut self, dir: &Path) {
        let ns = self.netns.clone();
        self.http = Some(
            Process::new("ip")
                .args(["netns", "exec", &ns, "python3", "-m", "http.server"])
                .args(["8080", "--bind", "127.0.0.1", "--directory"])
                .arg(dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("python3 -m http.server"),
        );
        self.wait_http("http://127.0.0.1:8080/page.txt", "200");
    }

    /// The uids (real, effective, saved, filesystem) of the container's
    /// process, as the host sees them.
    fn uids(&self) -> Vec<u32> {
        let pid = must(
            "podman",
            &["inspect", "--format", "{{.State.Pid}}", &self.container],
        );
        let status = std::fs::read_to_string(format!("/proc/{}/status", pid.trim())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .unwrap()
            .split_whitespace()
            .map(|u| u.parse().unwrap())
            .collect()
    }

    /// What the container wrote to its standard output and error.
    fn logs(&self) -> String {
        let (ok, out, err) = sh("podman", &["logs", &self.container]);
        assert!(ok, "podman logs: {err}");
        out + &err
    }

    /// `podman stop`: how long it took and the container's exit status.
    fn stop(&self) -> (Duration, String) {
        let stopping = Instant::now();
        let time = STOP_TIMEOUT_SECS.to_string();
        must("podman", &["stop", "--time", &time, &self.container]);
        let took = stopping.elapsed();
        let code = must(
            "podman",
            &[
                "inspect",
                "--format",
                "{{.State.ExitCode}}",
                &self.container,
            ],
        );
        (took, code.trim().to_owned())
    }
}

/// The config the test mounts: the image's defaults (0.0.0.0:1080, metrics
/// on 9101) with loopback among the clients.
const TEST_CONFIG: &str = "listen = [\"0.0.0.0:1080\"]\nmetrics_listen = \"0.0.0.0:9101\"\n\
    metrics_allow = [\"10.0.0.0/8\"]\nlog_format = \"json\"\n[timeouts]\nshutdown_grace = 10\n\
    [access]\nallow = [\"127.0.0.0/8\", \"10.0.0.0/8\"]\n";

#[test]
fn the_container_image_proxies_as_a_non_root_user_and_stops_cleanly() {
    let id = std::process::id();
    let mut t = ContainerTest {
        netns: format!("s4img{id}"),
        container: format!("socks4d-test-{id}"),
        image: format!("localhost/socks4d-test-{id}:latest"),
        http: None,
    };
    t.build_image();
    must("ip", &["netns", "add", &t.netns]);
    must("ip", &["-n", &t.netns, "link", "set", "lo", "up"]);

    // The sample config is accepted as it is by the binary in the image.
    let sample = root().join("dist/container/socks4d.toml");
    t.podman_run(&["--rm"], &sample, &["--check", "--strict"]);

    let dir = socks4_tests::scratch::fresh("container-image");
    let marker = format!("served through the image, test {id}\n");
    std::fs::write(dir.join("page.txt"), &marker).unwrap();
    t.serve_http(&dir);
    let config = dir.join("socks4d.toml");
    std::fs::write(&config, TEST_CONFIG).unwrap();
    // The health check runs on demand below (its timer needs systemd).
    let name = t.container.clone();
    let detached = ["--detach", "--name", &name, "--health-interval", "disable"];
    t.podman_run(&detached, &config, &[]);
    t.wait_http("http://127.0.0.1:9101/ready", "200");
    let logs = t.logs();
    assert!(logs.contains("\"message\":\"listening\""), "{logs}");

    let (healthy, out, err) = sh("podman", &["healthcheck", "run", &t.container]);
    assert!(healthy, "health check: {out}{err}");
    let (ok, page, err) = t.in_ns(&[
        "curl",
        "-sS",
        "--max-time",
        "10",
        "--socks4a",
        "127.0.0.1:1080",
        "http://localhost:8080/page.txt",
    ]);
    assert!(ok && page == marker, "curl --socks4a: {page}{err}");
    assert_eq!(t.uids(), [IMAGE_UID; 4], "real, effective, saved, fs uid");

    let (took, code) = t.stop();
    let logs = t.logs();
    assert!(took < STEP, "podman stop took {took:?}");
    assert_eq!(code, "0", "exit status\n{logs}");
    assert!(logs.contains("shutting down"), "{logs}");
}

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

/// What `dpkg -i` put in place: the user, the units (verified), the
/// enabled service, the pages, the completions, the binaries, the config.
fn check_installed() {
    let user = must("getent", &["passwd", "socks4d"]);
    assert!(user.trim_end().ends_with(":/usr/sbin/nologin"), "{user}");
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
    let _restore = PackageTest {
        user_existed: sh("getent", &["passwd", "socks4d"]).0,
    };
    let (ok, out) = slow("dpkg", &["-i", &deb]);
    assert!(ok, "dpkg -i {deb}:\n{out}");
    check_installed();

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
