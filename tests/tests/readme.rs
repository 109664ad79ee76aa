//! The examples of the README and of the pages under `docs/` work as
//! written: every TOML block is a config file the server accepts (`--check
//! --strict`: no warning either; a block fenced as ```` ```toml Cargo.toml ````
//! is a Cargo manifest, and is not one), the complete example of
//! `docs/configuration.md` names every config key, every policy block
//! parses, every `socks4d-tokio` command line (other than `ctl`) is accepted
//! by `--check` (certificate files it names are made by a test authority),
//! and every flag in an option table exists. Since `--check` makes the
//! start's own checks, each example is checked as the account it is written
//! for: as root if it switches users, as a normal user otherwise
//! (`socks4_tests::e2e::example_command`).

use socks4_tests::e2e::{example_command, own_account, run, server_binary};
use std::process::Command as Process;

/// The workspace's root folder.
fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One page's text, by its path from the workspace's root.
fn page(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The pages whose examples are checked, with their paths: the README and
/// every Markdown page under `docs/`.
fn pages() -> Vec<(String, String)> {
    let mut paths = vec!["README.md".to_owned()];
    let mut docs: Vec<String> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths
        .into_iter()
        .map(|path| {
            let text = page(&path);
            (path, text)
        })
        .collect()
}

/// The fenced blocks of `text` with this language tag, with the line each
/// starts on.
fn blocks(text: &str, lang: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        match &mut current {
            None if line.trim() == format!("```{lang}") => current = Some((i + 2, String::new())),
            Some(_) if line.trim() == "```" => out.push(current.take().unwrap()),
            Some((_, body)) => {
                body.push_str(line);
                body.push('\n');
            }
            None => {}
        }
    }
    out
}

fn check(args: &[&str]) -> (bool, String) {
    let (status, out, err) = run(Process::new(server_binary("socks4d-tokio")).args(args), b"");
    (
        status.success(),
        format!("{}{err}", String::from_utf8_lossy(&out)),
    )
}

/// `--check`s an example as the account it is written for
/// ([`example_command`]): `args`, with `--user` and `--group` made the tests'
/// own account when the tests are not root and the example switches users.
fn check_as_meant(args: &[&str]) -> (bool, String) {
    let switches = args.contains(&"--user");
    let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    if let (true, Some((user, group))) = (switches, own_account()) {
        for i in 1..args.len() {
            match args[i - 1].as_str() {
                "--user" => args[i] = user.clone(),
                "--group" => args[i] = group.clone(),
                _ => {}
            }
        }
    }
    let (status, out, err) = run(example_command("socks4d-tokio", switches).args(&args), b"");
    (
        status.success(),
        format!("{}{err}", String::from_utf8_lossy(&out)),
    )
}

/// A config example as the account it is written for ([`example_command`]):
/// its `user` and `group` made the tests' own when the tests are not root.
fn config_as_meant(body: &str) -> (String, bool) {
    let switches = body.lines().any(|l| l.trim_start().starts_with("user ="));
    let Some((user, group)) = own_account().filter(|_| switches) else {
        return (body.to_owned(), switches);
    };
    let body = body
        .lines()
        .map(|l| match l.trim_start() {
            t if t.starts_with("user =") => format!("user = \"{user}\""),
            t if t.starts_with("group =") => format!("group = \"{group}\""),
            _ => l.to_owned(),
        })
        .map(|l| l + "\n")
        .collect();
    (body, switches)
}

#[test]
fn every_config_example_is_accepted_without_warnings() {
    let dir = socks4_tests::scratch::dir("readme");
    let mut seen = 0;
    for (page, text) in pages() {
        for (line, body) in blocks(&text, "toml") {
            let name = page.replace('/', "-");
            let path = dir.join(format!("{name}-example-{line}.toml"));
            let (body, switches) = config_as_meant(&body);
            std::fs::write(&path, &body).unwrap();
            let args = ["--check", "--strict", "--config", path.to_str().unwrap()];
            let (status, out, err) =
                run(example_command("socks4d-tokio", switches).args(args), b"");
            let (ok, out) = (
                status.success(),
                format!("{}{err}", String::from_utf8_lossy(&out)),
            );
            assert!(
                ok,
                "{page} line {line}: the server refuses its example:\n{out}"
            );
            seen += 1;
        }
    }
    assert!(seen > 0, "no TOML example in the README or docs/");
}

#[test]
fn the_complete_example_names_every_config_key() {
    let text = page("docs/configuration.md");
    let complete = blocks(&text, "toml")
        .into_iter()
        .map(|(_, b)| b)
        .max_by_key(String::len)
        .unwrap();
    let help = check(&["--help"]).1;
    // The help says "(config: KEY)" or "(config: [section] key)" for each.
    let mut keys = Vec::new();
    for part in help.split("(config: ").skip(1) {
        let key = part.split(')').next().unwrap();
        keys.push(key.rsplit(' ').next().unwrap().to_owned());
    }
    assert!(keys.len() > 20, "{keys:?}");
    for key in keys {
        let written = complete.lines().any(|l| {
            l.trim_start_matches("# ")
                .trim_start()
                .starts_with(&format!("{key} ="))
        });
        assert!(
            written,
            "the complete config example of docs/configuration.md lacks `{key}`"
        );
    }
}

#[test]
fn every_policy_example_parses() {
    let mut seen = 0;
    for (page, text) in pages() {
        for (line, body) in blocks(&text, "text") {
            body.parse::<socks4_acl::Policy>()
                .unwrap_or_else(|e| panic!("{page} line {line}: {e}"));
            seen += 1;
        }
    }
    assert!(seen > 0, "no policy example in the README or docs/");
}

/// Files a page's commands name, with their text: a line "with `PATH`:"
/// followed by a fenced block gives PATH's content. Written to a temporary
/// folder; the commands get their temporary paths.
fn named_files(page: &str, text: &str) -> Vec<(String, std::path::PathBuf)> {
    let dir = socks4_tests::scratch::dir("readme-files").join(page.replace('/', "-"));
    std::fs::create_dir_all(&dir).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let Some(rest) = l.trim().strip_prefix("with `") else {
            continue;
        };
        let Some(path) = rest.strip_suffix("`:") else {
            continue;
        };
        let body: String = lines[i + 1..]
            .iter()
            .skip_while(|l| !l.starts_with("```"))
            .skip(1)
            .take_while(|l| !l.starts_with("```"))
            .map(|l| format!("{l}\n"))
            .collect();
        let local = dir.join(format!("file-{i}"));
        std::fs::write(&local, body).unwrap();
        out.push((path.to_owned(), local));
    }
    out
}

#[test]
fn every_server_command_line_is_accepted() {
    let mut seen = 0;
    // Certificates and keys the examples name: made here, by a test
    // authority (an authority's file for names with "ca", a server's
    // certificate and key for the rest).
    let tls_dir = socks4_tests::scratch::dir("readme-tls");
    let ca = socks4_tests::tls::TestCa::new(&tls_dir, "readme-ca");
    let issued = ca.issue("server", "proxy.example", &["proxy.example"]);
    for (page, text) in pages() {
        let mut files = named_files(&page, &text);
        for word in text.split_whitespace() {
            let local = if word.ends_with("ca.pem") {
                &ca.cert
            } else if word.ends_with(".pem") {
                &issued.cert
            } else if word.ends_with(".key") {
                &issued.key
            } else {
                continue;
            };
            if word.starts_with('/') && !files.iter().any(|(p, _)| p == word) {
                files.push((word.to_owned(), local.clone()));
            }
        }
        for (line, body) in blocks(&text, "sh") {
            for cmd in body
                .lines()
                .map(|l| l.split(" #").next().unwrap_or(l).trim())
            {
                let Some(rest) = cmd.strip_prefix("socks4d-tokio") else {
                    continue;
                };
                if rest.trim_start().starts_with("ctl") {
                    continue; // needs a running server: tests/tests/e2e/operations.rs
                }
                let mut rest = rest.to_owned();
                for (path, local) in &files {
                    rest = rest.replace(path.as_str(), local.to_str().unwrap());
                }
                let mut args: Vec<&str> = rest.split_whitespace().collect();
                // An example may show `--check` itself; clap takes it once.
                if !args.contains(&"--check") {
                    args.push("--check");
                }
                let (ok, out) = check_as_meant(&args);
                assert!(ok, "{page} line {line}: `{cmd}` is refused:\n{out}");
                seen += 1;
            }
        }
    }
    assert!(
        seen > 0,
        "no socks4d-tokio command line in the README or docs/"
    );
}

#[test]
fn every_flag_in_the_option_table_exists() {
    let help = check(&["--help"]).1;
    let mut seen = 0;
    for (page, text) in pages() {
        for row in text.lines().filter(|l| l.starts_with("| `--")) {
            let first = row.split('|').nth(1).unwrap();
            for flag in first.split('`').filter(|t| t.starts_with("--")) {
                let name = flag.split_whitespace().next().unwrap();
                assert!(
                    help.contains(name),
                    "{page}: the option table names {name}, which --help does not"
                );
                seen += 1;
            }
        }
    }
    assert!(seen > 20, "hardly any option table rows found ({seen})");
}
