//! The tree's shape, checked: within every crate, the files' imports form no
//! cycle (no two files import each other, directly or around a loop), and only
//! the runtimes' `now()` reads the clock in the server layer.
//!
//! A file's imports are the sibling modules it names through `crate::`,
//! `super::` or `self::` paths in its code (comments and strings excluded). A
//! crate root or `mod.rs` re-exporting its children is the crate's facade, not
//! an import.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const CRATES: &[&str] = &[
    "socks4-proto",
    "socks4-acl",
    "socks4-ident",
    "adapters/daemon",
    "adapters/tokio",
    "adapters/smol",
    "adapters/async-std",
    "tests",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// `src/a/b.rs` and `src/a/b/mod.rs` → `a::b`; `src/lib.rs` → ``.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The code of a file without comments and string literals.
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '"' => {
                let mut escaped = false;
                for c in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        break;
                    }
                }
                out.push_str("\"\"");
            }
            c => out.push(c),
        }
    }
    out
}

/// The modules `file` (module path `me`) names, resolved against `modules`.
fn imports(me: &[String], text: &str, modules: &BTreeSet<Vec<String>>) -> BTreeSet<Vec<String>> {
    let code = code(text);
    let mut found = BTreeSet::new();
    let bytes = code.as_bytes();
    for (start, prefix) in code
        .match_indices("crate::")
        .chain(code.match_indices("super::"))
        .chain(code.match_indices("self::"))
    {
        // Only whole path segments: not `my_crate::`.
        if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
            continue;
        }
        let mut base: Vec<String> = match prefix {
            "crate::" => Vec::new(),
            "super::" => me[..me.len().saturating_sub(1)].to_vec(),
            _ => me.to_vec(),
        };
        let rest = &code[start + prefix.len()..];
        // A `{a, b::c}` group names several paths.
        let heads: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            group[..end].split(',').map(str::trim).collect()
        } else {
            vec![rest]
        };
        for head in heads {
            let mut path = base.clone();
            for seg in head.split("::") {
                let seg: String = seg
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if seg.is_empty() {
                    break;
                }
                path.push(seg);
                if !modules.contains(&path) {
                    path.pop();
                    break;
                }
            }
            if path != me && !path.is_empty() && !me.starts_with(&path) {
                found.insert(path.clone());
            }
        }
        base.clear();
    }
    found
}

fn find_cycle(graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Option<Vec<Vec<String>>> {
    fn visit(
        node: &Vec<String>,
        graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        stack: &mut Vec<Vec<String>>,
        done: &mut BTreeSet<Vec<String>>,
    ) -> Option<Vec<Vec<String>>> {
        if let Some(i) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(node.clone());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(c) = visit(node, graph, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn no_import_cycles_in_any_crate() {
    for krate in CRATES {
        let src = workspace().join(krate).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(&src, f)).collect();
        let mut graph = BTreeMap::new();
        for f in &files {
            let name = f.file_name().unwrap().to_string_lossy();
            if matches!(&*name, "lib.rs" | "mod.rs" | "main.rs") {
                continue; // the facade: declarations and re-exports
            }
            let me = module_of(&src, f);
            let text = std::fs::read_to_string(f).unwrap();
            graph.insert(me.clone(), imports(&me, &text, &modules));
        }
        if let Some(cycle) = find_cycle(&graph) {
            let shown: Vec<String> = cycle.iter().map(|m| m.join("::")).collect();
            panic!("{krate}: import cycle {}", shown.join(" -> "));
        }
    }
}

#[test]
fn the_checker_sees_a_cycle() {
    let modules: BTreeSet<Vec<String>> = [vec!["a".to_owned()], vec!["b".to_owned()]].into();
    let a = imports(&["a".to_owned()], "use crate::b::X; // crate::c", &modules);
    let b = imports(
        &["b".to_owned()],
        "fn f() { super::a::g(\"crate::b\") }",
        &modules,
    );
    let graph = BTreeMap::from([(vec!["a".to_owned()], a), (vec!["b".to_owned()], b)]);
    assert!(find_cycle(&graph).is_some());
}

#[test]
fn only_the_runtimes_read_the_clock() {
    let mut files = Vec::new();
    rust_files(&workspace().join("adapters"), &mut files);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let code = code(&text);
        for (i, line) in code.lines().enumerate() {
            if line.contains("Instant::now") {
                let before: Vec<&str> = code.lines().take(i).collect();
                let in_now = before
                    .iter()
                    .rev()
                    .take(3)
                    .any(|l| l.contains("fn now(&self) -> Instant"));
                assert!(
                    in_now,
                    "{}:{}: reads the clock outside a runtime's now()",
                    f.display(),
                    i + 1
                );
            }
        }
    }
}

/// The daemon's folders, lowest layer first: a file may use its own folder
/// and the folders before it, never one after it (ARCHITECTURE.md).
const DAEMON_LAYERS: &[&str] = &[
    "runtime", "limits", "observe", "config", "daemon", "fleet", "conn", "ops", "server",
];

/// What sits beside the layers, and the only folders it may use (nothing,
/// since the client helpers moved to the `socks4-client` crate).
const DAEMON_SIDE: &[(&str, &[&str])] = &[];

/// The daemon's top-level folders (or side modules) that `text`, a file in
/// `folder`, names through `crate::` paths in its code, and that its layer
/// may not use.
fn layer_violations(folder: &str, text: &str) -> Vec<String> {
    let allowed: Vec<&str> = match DAEMON_LAYERS.iter().position(|l| *l == folder) {
        Some(i) => DAEMON_LAYERS[..=i].to_vec(),
        None => match DAEMON_SIDE.iter().find(|(m, _)| *m == folder) {
            Some((m, uses)) => std::iter::once(*m).chain(uses.iter().copied()).collect(),
            None => return vec![format!("{folder} is in no layer")],
        },
    };
    let code = code(text);
    let mut bad = Vec::new();
    for (start, _) in code.match_indices("crate::") {
        let bytes = code.as_bytes();
        if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
            continue;
        }
        let rest = &code[start + "crate::".len()..];
        let heads: Vec<&str> = match rest.strip_prefix('{') {
            Some(group) => group[..group.find('}').unwrap_or(group.len())]
                .split(',')
                .map(str::trim)
                .collect(),
            None => vec![rest],
        };
        for head in heads {
            let name: String = head
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let known = DAEMON_LAYERS.contains(&name.as_str())
                || DAEMON_SIDE.iter().any(|(m, _)| *m == name);
            if known && !allowed.contains(&name.as_str()) && !bad.contains(&name) {
                bad.push(name);
            }
        }
    }
    bad
}

#[test]
fn daemon_folders_use_only_the_layers_below_them() {
    let src = workspace().join("adapters/daemon/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut seen = BTreeSet::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let folder = first.trim_end_matches(".rs").to_owned();
        if folder == "lib" {
            continue; // the facade
        }
        seen.insert(folder.clone());
        let text = std::fs::read_to_string(f).unwrap();
        let bad = layer_violations(&folder, &text);
        assert!(
            bad.is_empty(),
            "{}: a `{folder}` file uses {bad:?}, a layer above it (see ARCHITECTURE.md)",
            rel.display()
        );
    }
    // Every layer exists: a renamed folder must be renamed here too.
    for layer in DAEMON_LAYERS {
        assert!(seen.contains(*layer), "no folder {layer} in the daemon");
    }
}

#[test]
fn the_layer_check_sees_an_upward_import() {
    assert!(
        layer_violations("conn", "use crate::daemon::Daemon; use crate::runtime::X;").is_empty()
    );
    assert_eq!(
        layer_violations(
            "observe",
            "use crate::{limits::meter, config::options::Options};"
        ),
        ["config"]
    );
    assert_eq!(
        layer_violations("runtime", "fn f() { crate::daemon::x() }"),
        ["daemon"]
    );
    // Comments and strings are not imports.
    assert!(layer_violations("runtime", "// crate::server\nlet s = \"crate::ops\";").is_empty());
}
