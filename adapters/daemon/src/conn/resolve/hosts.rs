//! The hosts file, read first by the own resolver: parsed into names and
//! their addresses, and read again when its modification time changes
//! (checked at most once a second).

use crate::daemon::outbound::HostsSnapshot;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// How often the file's modification time is looked at.
const RECHECK: Duration = Duration::from_secs(1);

/// Lines of the hosts file read at most (a bound on memory).
const MAX_LINES: usize = 100_000;

/// The addresses the hosts file at `path` gives `name`, refreshing
/// `snapshot` when the file changed; `None` when it does not name it.
pub(crate) fn lookup(
    snapshot: &mut HostsSnapshot,
    path: &Path,
    name: &str,
    now: Instant,
) -> Option<Vec<IpAddr>> {
    if snapshot
        .checked
        .is_none_or(|t| now.saturating_duration_since(t) >= RECHECK)
    {
        snapshot.checked = Some(now);
        refresh(snapshot, path);
    }
    find(snapshot, name)
}

/// Reads the file again if its modification time changed.
fn refresh(snapshot: &mut HostsSnapshot, path: &Path) {
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    if modified != snapshot.modified {
        snapshot.modified = modified;
        snapshot.names = std::fs::read_to_string(path)
            .map(|text| parse(&text))
            .unwrap_or_default();
    }
}

fn find(snapshot: &HostsSnapshot, name: &str) -> Option<Vec<IpAddr>> {
    snapshot
        .names
        .get(&name.trim_end_matches('.').to_ascii_lowercase())
        .cloned()
}

/// `ADDRESS NAME [ALIAS...]` lines, `#` comments; names in lower case, each
/// name's addresses in file order.
pub(crate) fn parse(text: &str) -> HashMap<String, Vec<IpAddr>> {
    let mut names: HashMap<String, Vec<IpAddr>> = HashMap::new();
    for line in text.lines().take(MAX_LINES) {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) else {
            continue;
        };
        for name in words {
            let list = names.entry(name.to_ascii_lowercase()).or_default();
            if !list.contains(&ip) {
                list.push(ip);
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lines() {
        let names =
            parse("127.0.0.1 localhost Me # comment\n::1 localhost\n# 10.0.0.1 gone\nbad line\n");
        assert_eq!(
            names["localhost"],
            [
                "127.0.0.1".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        assert!(names.contains_key("me"));
        assert!(!names.contains_key("gone"));
    }

    #[test]
    fn the_file_is_read_again_when_it_changes() {
        let dir = std::env::temp_dir().join(format!("socks4-hosts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hosts");
        std::fs::write(&path, "192.0.2.1 one\n").unwrap();
        let mut snap = HostsSnapshot::default();
        refresh(&mut snap, &path);
        assert_eq!(find(&snap, "ONE.").unwrap().len(), 1);
        std::fs::write(&path, "192.0.2.2 two\n").unwrap();
        // Another modification time, whatever the filesystem's resolution.
        let later = std::time::SystemTime::now() + Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert!(
            find(&snap, "two").is_none(),
            "not read again until refreshed"
        );
        refresh(&mut snap, &path);
        assert!(find(&snap, "two").is_some());
        assert!(find(&snap, "one").is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
