//! The container image: built by `dist/container/build` under a tag of the
//! test's own, run in a network namespace of the test's own, and removed
//! with everything the test made.

use crate::{build, hard_limit, must, root, sh};
use socks4_tests::e2e::*;
use std::path::Path;
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

/// The image's size the issue aims under (bytes).
const IMAGE_SIZE_LIMIT: u64 = 15_000_000;

/// The uid the image runs as (dist/container/Containerfile).
const IMAGE_UID: u32 = 10001;

/// What `podman stop` waits before SIGKILL; the server must be gone well
/// before.
const STOP_TIMEOUT_SECS: u64 = 20;

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
/// refuses cgroups v1), ulimits within the host's own (the shipped config
/// needs about 4,200 descriptors: `--check --strict` says so below that).
fn run_flags(netns: &str) -> Vec<String> {
    let nofile = hard_limit("Max open files").min(8192);
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
