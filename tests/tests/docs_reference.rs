//! `docs/configuration.md` stays true to the binaries. Its reference tables
//! (header `| flag | config key | default | example | what |`) have one row per
//! config key. For each server binary:
//!
//! - every `(config: KEY)` that `--help` names has a row, which lists the
//!   option's flag and, where `--help` gives one, the same `[default: ...]`;
//! - every key the tables list is accepted by `--check`: the test writes each
//!   row's example value under its key into one config file and runs `BINARY
//!   --config FILE --check`, expecting exit 0. Paths under `/etc/socks4d/`,
//!   `/run/socks4d/`, `/var/lib/socks4d/` and `/var/log/socks4d/` in the
//!   examples are replaced by files the test makes (certificates and keys of
//!   a test authority, a rules file) or by paths in its scratch folder, as the
//!   page says.
//!
//! A misspelled key, one in the wrong section, an example the server refuses,
//! or a key `--help` names and the page lacks fails, naming the key.

use socks4_tests::e2e::{example_command, own_account, run, server_binary};
use std::path::{Path, PathBuf};
use std::process::Command as Process;

/// The header row of every reference table.
const HEADER: &str = "| flag | config key | default | example | what |";

/// Where the examples' paths live on a real host; the test replaces them.
const HOST_DIRS: [&str; 4] = [
    "/etc/socks4d/",
    "/run/socks4d/",
    "/var/lib/socks4d/",
    "/var/log/socks4d/",
];

/// One row of a reference table.
#[derive(Debug, Clone)]
struct Row {
    /// The page's line (from 1).
    line: usize,
    /// The flags the row names (`--listen`, `-l`), none for config-only keys.
    flags: Vec<String>,
    /// The key as `--help` writes it: `listen`, `[limits] max_host`.
    key: String,
    /// The default cell, as written.
    default: String,
    /// The example value, a TOML value.
    example: String,
}

impl Row {
    /// The key's section (`limits`) and its name in it; no section for a
    /// top-level key.
    fn place(&self) -> (Option<&str>, &str) {
        match self.key.strip_prefix('[').and_then(|k| k.split_once("] ")) {
            Some((section, name)) => (Some(section), name),
            None => (None, self.key.as_str()),
        }
    }
}

fn page() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/configuration.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A table row's cells, split at `|` that is not escaped (`\|`).
fn cells(row: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = row.trim().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                out.last_mut().unwrap().push('|');
                chars.next();
            }
            '|' => out.push(String::new()),
            c => out.last_mut().unwrap().push(c),
        }
    }
    // The text before the first `|` and after the last one.
    out.remove(0);
    out.pop();
    out.into_iter().map(|c| c.trim().to_owned()).collect()
}

/// The text inside the first pair of backticks of `cell`.
fn code(cell: &str) -> Option<&str> {
    let start = cell.find('`')? + 1;
    let len = cell[start..].find('`')?;
    Some(&cell[start..start + len])
}

/// Every row of the page's reference tables.
fn rows(text: &str) -> Vec<Row> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() != HEADER {
            i += 1;
            continue;
        }
        i += 2; // the header and the |---| line
        while i < lines.len() && lines[i].starts_with('|') {
            let c = cells(lines[i]);
            assert!(
                c.len() >= 5,
                "docs/configuration.md line {}: a reference row needs 5 cells: {}",
                i + 1,
                lines[i]
            );
            let key = code(&c[1]).unwrap_or_else(|| {
                panic!("docs/configuration.md line {}: no `key` in {}", i + 1, c[1])
            });
            let example = code(&c[3]).unwrap_or_else(|| {
                panic!(
                    "docs/configuration.md line {}: no `example` for {key}",
                    i + 1
                )
            });
            let flags = c[0]
                .split('`')
                .skip(1)
                .step_by(2)
                .filter(|t| t.starts_with('-'))
                .map(|t| t.split_whitespace().next().unwrap_or(t).to_owned())
                .collect();
            out.push(Row {
                line: i + 1,
                flags,
                key: key.to_owned(),
                default: c[2].clone(),
                example: example.to_owned(),
            });
            i += 1;
        }
    }
    out
}

/// An option as `--help` shows it.
#[derive(Debug)]
struct HelpOption {
    /// Its long flag (`--listen`).
    flag: String,
    /// `(config: KEY)`.
    key: String,
    /// `[default: ...]`, if any.
    default: Option<String>,
}

/// Every option of `binary --help` that names a config key.
fn help_options(binary: &str) -> Vec<HelpOption> {
    let (status, out, err) = run(Process::new(server_binary(binary)).arg("--help"), b"");
    assert!(status.success(), "{binary} --help failed: {err}");
    let help = String::from_utf8(out).unwrap();
    // An option starts with a line indented by at most six spaces whose text
    // starts with `-`; its description follows, indented deeper.
    let mut options: Vec<(String, String)> = Vec::new();
    for line in help.lines() {
        let text = line.trim_start();
        let indent = line.len() - text.len();
        if text.starts_with('-') && (1..=6).contains(&indent) {
            let flag = text
                .split([',', ' '])
                .find(|t| t.starts_with("--"))
                .unwrap_or(text)
                .to_owned();
            options.push((flag, String::new()));
        } else if let Some((_, description)) = options.last_mut() {
            description.push_str(text);
            description.push(' ');
        }
    }
    let mut out = Vec::new();
    for (flag, description) in options {
        let Some((_, rest)) = description.split_once("(config: ") else {
            continue;
        };
        let key = rest.split(')').next().unwrap().to_owned();
        let default = description
            .split_once("[default: ")
            .map(|(_, d)| d.split(']').next().unwrap().to_owned());
        out.push(HelpOption { flag, key, default });
    }
    assert!(
        out.len() > 40,
        "{binary} --help names only {} config keys: {out:?}",
        out.len()
    );
    out
}

fn every_help_key_is_documented(binary: &str) {
    let rows = rows(&page());
    for option in help_options(binary) {
        let HelpOption { flag, key, default } = &option;
        let Some(row) = rows.iter().find(|r| &r.key == key) else {
            panic!("docs/configuration.md has no row for `{key}` ({flag}), which {binary} --help names");
        };
        assert!(
            row.flags.contains(flag),
            "docs/configuration.md line {}: `{key}` is set with {flag} ({binary} --help), the row names {:?}",
            row.line,
            row.flags
        );
        if let Some(default) = default {
            assert!(
                row.default.contains(&format!("`{default}`")),
                "docs/configuration.md line {}: `{key}` defaults to `{default}` ({binary} --help), the row says {}",
                row.line,
                row.default
            );
        }
    }
}

/// Files standing in for the host's: a test authority's certificates, a
/// rules file, and paths in the scratch folder `dir`.
struct Stand {
    dir: PathBuf,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    rules: PathBuf,
}

impl Stand {
    fn new(dir: &Path) -> Stand {
        let ca = socks4_tests::tls::TestCa::new(dir, "docs-ca");
        let issued = ca.issue("server", "proxy.example", &["proxy.example"]);
        let rules = dir.join("socks4d.rules");
        std::fs::write(&rules, "pass from 10.0.0.0/8 to any\n").unwrap();
        Stand {
            dir: dir.to_path_buf(),
            ca: ca.cert,
            cert: issued.cert,
            key: issued.key,
            rules,
        }
    }

    /// What stands in for the host path `path`.
    fn for_path(&self, path: &str) -> PathBuf {
        let name = path.rsplit('/').next().unwrap();
        if name.ends_with("ca.pem") {
            self.ca.clone()
        } else if name.ends_with(".pem") {
            self.cert.clone()
        } else if name.ends_with(".key") {
            self.key.clone()
        } else if name.ends_with(".rules") {
            self.rules.clone()
        } else {
            self.dir.join(name)
        }
    }

    /// `value` with every quoted host path replaced.
    fn replace(&self, value: &str) -> String {
        let mut out = String::new();
        let mut rest = value;
        while let Some(start) = rest.find('"') {
            let Some(len) = rest[start + 1..].find('"') else {
                break;
            };
            let inner = &rest[start + 1..start + 1 + len];
            out.push_str(&rest[..=start]);
            if HOST_DIRS.iter().any(|d| inner.starts_with(d)) {
                out.push_str(self.for_path(inner).to_str().unwrap());
            } else {
                out.push_str(inner);
            }
            out.push('"');
            rest = &rest[start + len + 2..];
        }
        out.push_str(rest);
        out
    }
}

fn every_documented_key_passes_check(binary: &str) {
    let rows = rows(&page());
    assert!(rows.len() > 40, "only {} reference rows", rows.len());
    let dir = socks4_tests::scratch::fresh(&format!("docs-reference-{binary}"));
    let stand = Stand::new(&dir);
    // Top-level keys first, then each section's, each line with the row it
    // comes from (a section's header with its first row: a misspelled
    // section is reported there).
    let mut lines: Vec<(String, &Row)> = Vec::new();
    // The file switches users (`user`): checked as root, or, when the tests
    // are not root, switching to their own account (a no-op switch), since
    // only root may switch to another.
    let own = own_account();
    let entry = |row: &Row| {
        let (_, name) = row.place();
        match (name, &own) {
            ("user", Some((user, _))) => format!("user = \"{user}\""),
            ("group", Some((_, group))) => format!("group = \"{group}\""),
            _ => format!("{name} = {}", stand.replace(&row.example)),
        }
    };
    for row in rows.iter().filter(|r| r.place().0.is_none()) {
        lines.push((entry(row), row));
    }
    let mut sections: Vec<&str> = rows.iter().filter_map(|r| r.place().0).collect();
    sections.sort();
    sections.dedup();
    for section in sections {
        for (i, row) in rows
            .iter()
            .filter(|r| r.place().0 == Some(section))
            .enumerate()
        {
            if i == 0 {
                lines.push((format!("[{section}]"), row));
            }
            lines.push((entry(row), row));
        }
    }
    let text: String = lines.iter().map(|(l, _)| format!("{l}\n")).collect();
    let file = dir.join("every-key.toml");
    std::fs::write(&file, &text).unwrap();
    let (status, out, err) = run(
        example_command(binary, true)
            .arg("--config")
            .arg(&file)
            .arg("--check"),
        b"",
    );
    if status.success() {
        return;
    }
    let out = format!("{}{err}", String::from_utf8_lossy(&out));
    // A TOML error names the file's line: say which documented key that is.
    let culprit = out
        .split_once("at line ")
        .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse::<usize>().ok())
        .and_then(|n| lines.get(n.checked_sub(1)?))
        .map(|(_, row)| {
            format!(
                "docs/configuration.md line {}: `{}` = {} is refused by {binary} --check",
                row.line, row.key, row.example
            )
        })
        .unwrap_or_else(|| format!("{binary} --check refuses the documented examples"));
    panic!("{culprit}:\n{out}\nthe file:\n{text}");
}

socks4_tests::on_every_adapter!(
    every_help_key_is_documented,
    every_documented_key_passes_check
);

#[test]
fn reference_rows_are_read_as_written() {
    let row = "| `--ident MODE` | `ident` | `off` | `\"log\"` | `off`, `log` \\| `require` |";
    assert_eq!(
        cells(row),
        [
            "`--ident MODE`",
            "`ident`",
            "`off`",
            "`\"log\"`",
            "`off`, `log` | `require`"
        ]
    );
    let table = format!("{HEADER}\n| --- | --- | --- | --- | --- |\n{row}\n\ntext\n");
    let rows = rows(&table);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].key, "ident");
    assert_eq!(rows[0].flags, ["--ident"]);
    assert_eq!(rows[0].example, "\"log\"");
    assert_eq!(rows[0].line, 3);
    let stand = Stand {
        dir: "/scratch".into(),
        ca: "/scratch/ca.pem".into(),
        cert: "/scratch/server.pem".into(),
        key: "/scratch/server.key".into(),
        rules: "/scratch/r.rules".into(),
    };
    assert_eq!(
        stand.replace(r#"["/etc/socks4d/clients-ca.pem", "/etc/socks4d/server.key", "x"]"#),
        r#"["/scratch/ca.pem", "/scratch/server.key", "x"]"#
    );
    assert_eq!(
        stand.replace(r#""/run/socks4d/control.sock""#),
        r#""/scratch/control.sock""#
    );
}
