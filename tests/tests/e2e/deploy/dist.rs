//! What `dist/` ships for monitoring matches the server, on every adapter:
//! the Grafana dashboard (`dist/grafana/socks4d.json`) is a well-formed
//! dashboard of schema version 36 or later, and every metric name that it
//! and the Prometheus alert rules (`dist/prometheus/`, rules and their unit
//! tests) use is in a real scrape of a running server, so that renaming a
//! metric breaks the build rather than a board or an alert. The configs
//! shipped for the image, the Debian package and Kubernetes pass `--check
//! --strict`.

use socks4_tests::e2e::*;
use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::process::Command as Process;

socks4_tests::on_every_adapter!(
    the_dashboard_is_valid_and_its_metrics_exist,
    the_alert_rules_use_metrics_that_exist,
    the_shipped_configs_pass_check_strict,
);

/// The oldest dashboard schema the board may use (Grafana 9).
const MIN_SCHEMA_VERSION: u64 = 36;

/// Grafana's own variables, which a dashboard does not define.
const BUILTIN_VARIABLES: [&str; 4] = ["__rate_interval", "__interval", "__range", "__all"];

fn dist(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../dist")
        .join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(dist(path)).unwrap_or_else(|e| panic!("dist/{path}: {e}"))
}

/// The metric names of a scrape's samples (a histogram's as `_bucket`,
/// `_sum`, `_count`; a counter's with `_total`).
fn scraped_names(bin: &str) -> HashSet<String> {
    let server = Server::start(bin, &["--metrics-listen", "127.0.0.1:0"]);
    let response = server.metrics();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    let names: HashSet<String> = body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap_or_default().to_owned())
        .collect();
    assert!(
        names.contains("socks4_build_info"),
        "{bin}: not a scrape:\n{response}"
    );
    names
}

/// Every `socks4_...` metric name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("socks4_") {
        let before = rest[..at].chars().next_back();
        let name: String = rest[at..].chars().take_while(|&c| word(c)).collect();
        if !before.is_some_and(word) {
            names.insert(name.clone());
        }
        rest = &rest[at + name.len()..];
    }
    names
}

/// Every `$name` and `${name}` in `text`.
fn variables(text: &str) -> BTreeSet<String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.split('$')
        .skip(1)
        .map(|after| {
            let after = after.strip_prefix('{').unwrap_or(after);
            after.chars().take_while(|&c| word(c)).collect::<String>()
        })
        .filter(|v| !v.is_empty())
        .collect()
}

/// The dashboard's panels, those inside collapsed rows too.
fn all_panels(board: &serde_json::Value) -> Vec<&serde_json::Value> {
    let mut out = Vec::new();
    for panel in board["panels"].as_array().expect("panels") {
        out.push(panel);
        if let Some(inner) = panel["panels"].as_array() {
            out.extend(inner);
        }
    }
    out
}

/// Checks the dashboard's shape; returns the queries it runs (panel
/// targets and variable queries).
fn check_dashboard(board: &serde_json::Value) -> Vec<String> {
    assert!(board["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(board["uid"].as_str().is_some_and(|t| !t.is_empty()));
    let schema = board["schemaVersion"].as_u64().expect("schemaVersion");
    assert!(schema >= MIN_SCHEMA_VERSION, "schemaVersion {schema}");
    let defined: BTreeSet<String> = board["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .map(|v| v["name"].as_str().expect("a variable's name").to_owned())
        .collect();
    let mut queries: Vec<String> = board["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["type"] == "query")
        .map(|v| {
            v["query"]["query"]
                .as_str()
                .or(v["query"].as_str())
                .expect("a query variable's query")
                .to_owned()
        })
        .collect();
    let mut ids = HashSet::new();
    for panel in all_panels(board) {
        let title = panel["title"].as_str().expect("every panel has a title");
        assert!(ids.insert(panel["id"].as_u64().expect("id")), "{title}: id");
        let pos = &panel["gridPos"];
        let (x, w, h) = (pos["x"].as_u64(), pos["w"].as_u64(), pos["h"].as_u64());
        assert!(
            matches!((x, w, h), (Some(x), Some(w), Some(h)) if w > 0 && h > 0 && x + w <= 24),
            "{title}: gridPos {pos}"
        );
        if let Some(repeat) = panel["repeat"].as_str() {
            assert!(defined.contains(repeat), "{title}: repeats ${repeat}");
        }
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no query");
        for t in targets {
            let expr = t["expr"].as_str().expect("a target's expr");
            assert!(!expr.trim().is_empty(), "{title}: empty query");
            queries.push(expr.to_owned());
        }
        queries.push(title.to_owned());
    }
    for q in &queries {
        for v in variables(q) {
            assert!(
                defined.contains(&v) || BUILTIN_VARIABLES.contains(&v.as_str()),
                "${v} in `{q}` is not a variable of the dashboard"
            );
        }
    }
    queries
}

/// Fails naming every name in `used` (from `what`) that the scrape lacks.
fn assert_scraped(bin: &str, what: &str, used: &BTreeSet<String>, scraped: &HashSet<String>) {
    assert!(!used.is_empty(), "{what} names no metric");
    let missing: Vec<_> = used.iter().filter(|n| !scraped.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "{bin}: {what} uses metrics the server does not export: {missing:?}"
    );
}

fn the_dashboard_is_valid_and_its_metrics_exist(bin: &str) {
    let board: serde_json::Value =
        serde_json::from_str(&read("grafana/socks4d.json")).expect("valid JSON");
    let queries = check_dashboard(&board);
    let used: BTreeSet<String> = queries.iter().flat_map(|q| metric_names(q)).collect();
    for needed in [
        "socks4_handshake_duration_seconds_bucket",
        "socks4_relayed_bytes_total",
        "socks4_limited_total",
        "socks4_closes_total",
        "socks4_reloads_total",
        "socks4_tls_failures_total",
        "socks4_connections_opened_total",
    ] {
        assert!(used.contains(needed), "the dashboard shows no {needed}");
    }
    assert_scraped(bin, "dist/grafana/socks4d.json", &used, &scraped_names(bin));
}

fn the_alert_rules_use_metrics_that_exist(bin: &str) {
    let scraped = scraped_names(bin);
    for file in [
        "prometheus/socks4d-alerts.yml",
        "prometheus/socks4d-alerts.test.yml",
    ] {
        assert_scraped(bin, file, &metric_names(&read(file)), &scraped);
    }
}

/// The config file inside the Kubernetes ConfigMap (its `socks4d.toml: |`
/// block), as text.
fn configmap_toml() -> String {
    let yaml = read("kubernetes/configmap.yaml");
    let lines: Vec<&str> = yaml
        .lines()
        .skip_while(|l| l.trim() != "socks4d.toml: |")
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect();
    assert!(lines.len() > 3, "no socks4d.toml in the ConfigMap");
    lines.join("\n") + "\n"
}

fn the_shipped_configs_pass_check_strict(bin: &str) {
    let dir = socks4_tests::scratch::fresh(&format!("dist-configs-{bin}"));
    let k8s = dir.join("kubernetes.toml");
    std::fs::write(&k8s, configmap_toml()).unwrap();
    for config in [
        dist("container/socks4d.toml"),
        dist("debian/socks4d.toml"),
        k8s,
    ] {
        let mut check = Process::new(server_binary(bin));
        check.args(["--check", "--strict", "--config"]).arg(&config);
        // The image runs as user 10001 and the package's unit as its own
        // user: as root, `--check` rightly refuses a listener beyond
        // loopback, so the check runs as an unprivileged user, as they do.
        if socks4_tests::e2e::running_as_root() {
            use std::os::unix::process::CommandExt as _;
            check.uid(65534).gid(65534);
        }
        let (status, out, err) = run(&mut check, b"");
        let out = String::from_utf8_lossy(&out);
        assert!(
            status.success(),
            "{bin}: {}: {status:?}\n{out}{err}",
            config.display()
        );
        assert!(out.contains("\npolicy"), "{bin}: {out}");
        if config.ends_with("debian/socks4d.toml") {
            // The package's default serves loopback only.
            let passes: Vec<&str> = out.lines().filter(|l| l.contains("pass from")).collect();
            assert_eq!(
                passes,
                [
                    "  pass from 127.0.0.0/8 to any",
                    "  pass from ::1/128 to any"
                ],
                "{bin}: {out}"
            );
        }
    }
}

#[test]
fn metric_names_and_variables_are_found_in_queries() {
    let q = r#"sum(rate(socks4_closes_total{job=~"$job", listener=~"${listener}"}[$__rate_interval])) / xsocks4_no"#;
    assert_eq!(
        metric_names(q).into_iter().collect::<Vec<_>>(),
        ["socks4_closes_total"]
    );
    assert_eq!(
        variables(q).into_iter().collect::<Vec<_>>(),
        ["__rate_interval", "job", "listener"]
    );
}
