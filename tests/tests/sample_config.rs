//! `dist/socks4d.toml`, the sample configuration, stays true to the server:
//!
//! - every key of the configuration has a line in it (set, or commented out
//!   with an example), in its section: the keys come from the option structs
//!   themselves (`Options::keys`), so a new key without a sample line fails
//!   here, naming it;
//! - every value it sets is the key's default, and so is every commented-out
//!   value of a key that has a default (`Options::defaults`);
//! - each server binary passes it with `--check --strict`, and prints for it
//!   exactly what it prints with no config file at all (the defaults), and it
//!   serves loopback only.

use socks4_daemon::Options;
use socks4_tests::e2e::run_binary;

/// The sample's text.
fn sample() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../dist/socks4d.toml");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A commented-out key, section or table entry: `# key = ...`, `# [section]`,
/// `# "ADDR" = ...` (prose comments never start that way).
fn commented_out(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("# ")?;
    let key: String = rest
        .chars()
        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
        .collect();
    let entry = (!key.is_empty() && rest[key.len()..].starts_with(" = "))
        || rest.starts_with('[')
        || (rest.starts_with('"') && rest.contains("\" = "));
    entry.then_some(rest)
}

/// Every `(section, key)` the sample has a line for, set or commented out;
/// each section is also a top-level key.
fn sample_keys(text: &str) -> Vec<(String, String)> {
    let mut section = String::new();
    let mut keys = Vec::new();
    for line in text.lines() {
        let line = commented_out(line).unwrap_or(line);
        if let Some(rest) = line.strip_prefix('[') {
            section = rest.split(']').next().unwrap().to_owned();
            // The section itself, for a table key (`proxy_protocol_listeners`).
            keys.push((String::new(), section.clone()));
            continue;
        }
        if let Some((key, _)) = line.split_once(" = ") {
            let key = key.trim();
            if key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                keys.push((section.clone(), key.to_owned()));
            }
        }
    }
    keys
}

#[test]
fn every_key_has_a_line() {
    let written = sample_keys(&sample());
    let mut missing = Vec::new();
    for (section, key) in Options::keys() {
        if !written.iter().any(|(s, k)| s == section && k == key) {
            missing.push(match section {
                "" => key.to_owned(),
                s => format!("[{s}] {key}"),
            });
        }
    }
    assert!(
        missing.is_empty(),
        "dist/socks4d.toml has no line for {missing:?}: every key of the configuration \
         goes in the sample, set to its default or commented out with an example"
    );
}

#[test]
fn its_values_are_the_defaults() {
    let text = sample();
    let set = Options::from_toml(&text).unwrap_or_else(|e| panic!("dist/socks4d.toml: {e}"));
    let defaults = Options::defaults();
    let as_json = |o: &Options| serde_json::to_value(o).unwrap();
    assert_eq!(
        as_json(&defaults.layered(&set)),
        as_json(&defaults),
        "dist/socks4d.toml sets a value that is not its key's default"
    );
    // With every line uncommented, each key that has a default still shows it.
    let all: String = text
        .lines()
        .map(|l| commented_out(l).unwrap_or(l))
        .map(|l| format!("{l}\n"))
        .collect();
    let all = Options::from_toml(&all).unwrap_or_else(|e| panic!("uncommented: {e}"));
    let (all, defaults) = (as_json(&all), as_json(&defaults));
    let mut differ = Vec::new();
    for (section, key) in Options::keys() {
        let at = |v: &serde_json::Value| match section {
            "" => v[key].clone(),
            s => v[s][key].clone(),
        };
        let default = at(&defaults);
        if !default.is_null() && at(&all) != default {
            differ.push(format!(
                "[{section}] {key}: {} (default {default})",
                at(&all)
            ));
        }
    }
    assert!(
        differ.is_empty(),
        "dist/socks4d.toml shows other values than the defaults: {differ:?}"
    );
}

fn the_sample_passes_check_strict_with_the_defaults(bin: &str) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../dist/socks4d.toml");
    let (status, with_sample, err) = run_binary(bin, &["--config", path, "--check", "--strict"]);
    assert!(status.success(), "{bin}: {with_sample}\n{err}");
    let (status, defaults, err) = run_binary(bin, &["--check", "--strict"]);
    assert!(status.success(), "{bin}: {defaults}\n{err}");
    assert_eq!(
        with_sample, defaults,
        "{bin}: the sample makes the server run with other than its defaults"
    );
    let listeners = with_sample.lines().next().unwrap();
    assert_eq!(
        listeners, "listeners: socks 127.0.0.1:1080",
        "{bin}: loopback only"
    );
}

socks4_tests::on_every_adapter!(the_sample_passes_check_strict_with_the_defaults);
