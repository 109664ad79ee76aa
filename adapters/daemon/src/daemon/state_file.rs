//! The state file (`--state-file`): per-client traffic in the current quota
//! periods, kept across restarts and reloads. JSON, written atomically (a
//! temporary file renamed over the old one) every few seconds while it changes
//! and at shutdown; a missing or unreadable file starts from zero with a
//! warning and never stops the server from starting.

use crate::limits::client_table::{ClientKey, ClientTable};
use serde::{Deserialize, Serialize};
use socks4_acl::limit::Period;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

#[derive(Debug, Serialize, Deserialize)]
struct File {
    version: u32,
    usage: Vec<Record>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    /// The client: an IPv4 address or an IPv6 /64 (`2001:db8:1:2::/64`).
    client: String,
    period: String,
    index: u64,
    used: u64,
}

fn key_text(k: ClientKey) -> String {
    k.to_string()
}

fn key_from(s: &str) -> Option<ClientKey> {
    if let Some(prefix) = s.strip_suffix("/64") {
        let v6: Ipv6Addr = prefix.parse().ok()?;
        return Some(ClientKey::of(IpAddr::V6(v6)));
    }
    let v4: Ipv4Addr = s.parse().ok()?;
    Some(ClientKey::of(IpAddr::V4(v4)))
}

/// What the table's usage looks like, for telling whether it changed.
pub(crate) fn fingerprint(clients: &ClientTable) -> Vec<(ClientKey, Period, u64, u64)> {
    clients.usage()
}

/// Writes the table's usage to `path` atomically.
pub(crate) fn save(path: &Path, clients: &ClientTable) -> io::Result<()> {
    let usage = clients
        .usage()
        .into_iter()
        .map(|(k, p, index, used)| Record {
            client: key_text(k),
            period: p.name().to_owned(),
            index,
            used,
        })
        .collect();
    let text =
        serde_json::to_string_pretty(&File { version: 1, usage }).map_err(io::Error::other)?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Restores usage from `path` into the table; how many records were restored.
/// Records of periods that are over are dropped.
pub(crate) fn load(path: &Path, clients: &ClientTable) -> io::Result<usize> {
    restore(&std::fs::read_to_string(path)?, clients)
}

/// Restores usage from a state file's `text` into the table; how many
/// records were restored (records of periods that are over are dropped, and
/// so are records that do not parse). An error when the text is not a
/// state file at all. For tools that read state files, and the fuzz target.
pub fn restore(text: &str, clients: &ClientTable) -> io::Result<usize> {
    let file: File =
        serde_json::from_str(text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let mut n = 0;
    for r in file.usage {
        let (Some(key), Ok(period)) = (key_from(&r.client), r.period.parse::<Period>()) else {
            continue;
        };
        clients.restore_usage(key, period, r.index, r.used);
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::client_table::ClientLimits;
    use crate::limits::meter::unix_now;

    #[test]
    fn usage_survives_a_save_and_a_load() {
        let path = std::env::temp_dir().join(format!("socks4-state-{}.json", std::process::id()));
        let a = ClientTable::new(ClientLimits::caps(10, 1, 100));
        let today = Period::Day.index(unix_now());
        let k4 = ClientKey::of("192.0.2.7".parse().unwrap());
        let k6 = ClientKey::of("2001:db8:1:2::9".parse().unwrap());
        a.restore_usage(k4, Period::Day, today, 1234);
        a.restore_usage(k6, Period::Day, today, 99);
        a.restore_usage(k6, Period::Day, today - 1, 5); // over: dropped
        save(&path, &a).unwrap();
        let b = ClientTable::new(ClientLimits::caps(10, 1, 100));
        assert_eq!(load(&path, &b).unwrap(), 2);
        assert_eq!(b.usage(), a.usage());
        std::fs::write(&path, "garbage").unwrap();
        assert!(load(&path, &b).is_err());
        let _ = std::fs::remove_file(&path);
    }
}
