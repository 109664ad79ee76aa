//! The state file (`--state-file`): what the server keeps across restarts and
//! reloads: per-client traffic in the current quota periods
//! (`quota_usage`), and the run-time deny and exempt entries
//! (`runtime_lists`, [`super::runtime_lists`]). The file is a versioned JSON
//! object of sections, so that later ones are added beside them (a file
//! without a section reads as an empty one, and older servers keep a
//! section they do not know), and a section this version does not know is
//! kept as it was when the file is rewritten.
//!
//! ```json
//! {
//!   "version": 2,
//!   "quota_usage": [
//!     { "client": "192.0.2.7", "period": "day", "index": 19700, "used": 1234 },
//!     { "client": "cert:alice", "period": "day", "index": 19700, "used": 99 }
//!   ],
//!   "runtime_lists": {
//!     "deny": [
//!       { "net": "192.0.2.66", "reason": "scanning", "added_by": "uid 0",
//!         "added_at": 1796290200, "expires_at": 1796293800 }
//!     ],
//!     "exempt": []
//!   }
//! }
//! ```
//!
//! The server often runs as root, in a directory others may be able to write,
//! so the file is handled with care: written atomically (a temporary file in
//! the same directory, created exclusively, never through a symbolic link,
//! mode 0600; written, flushed to disk, renamed over the old file, and the
//! directory flushed too), every few seconds while it changes and at
//! shutdown; read only if it is a regular file (not a symbolic link) of at
//! most [`MAX_STATE_FILE_BYTES`]. The server reads and writes it off the
//! runtime's threads ([`Runtime::spawn_blocking`]). A missing or unreadable
//! file starts from zero with a warning and never stops the server from
//! starting. Version 1 files (the section was called `usage`) are read.

use crate::limits::client_table::{ClientKey, ClientTable};
use crate::runtime::Runtime;
use serde::{Deserialize, Serialize};
use socks4_acl::limit::Period;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The largest state file read, in bytes (64 MiB: about half a million quota
/// records); a larger one is refused as unreadable.
pub(crate) const MAX_STATE_FILE_BYTES: u64 = 64 << 20;

/// The version this server writes.
const VERSION: u32 = 2;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Doc {
    version: u32,
    /// Clients' traffic in the current quota periods.
    #[serde(default, alias = "usage")]
    quota_usage: Vec<Record>,
    /// Sections this version does not know: kept as they were.
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    /// The client: an IPv4 address, an IPv6 /64 (`2001:db8:1:2::/64`), or
    /// with `[limits] key` a verified identity: `cert:NAME`, `ident:NAME`
    /// (the name as given; a server older than `[limits] key` skips them).
    client: String,
    period: String,
    index: u64,
    used: u64,
}

fn key_from(s: &str) -> Option<ClientKey> {
    ClientKey::from_record(s)
}

/// One server's state file: its path, what was last written, and the
/// sections it keeps without knowing them.
#[derive(Debug)]
pub(crate) struct StateFile {
    path: PathBuf,
    inner: Mutex<Kept>,
}

#[derive(Debug, Default)]
struct Kept {
    /// What the last write wrote (to skip writes that change nothing).
    saved: Vec<(ClientKey, Period, u64, u64)>,
    other: serde_json::Map<String, serde_json::Value>,
    /// A section changed since the last write.
    dirty: bool,
}

impl StateFile {
    /// The state file at `path` (nothing read yet).
    pub(crate) fn new(path: PathBuf) -> Arc<StateFile> {
        Arc::new(StateFile {
            path,
            inner: Mutex::default(),
        })
    }

    /// Its path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The section `name` as last read or set (not `quota_usage`, which
    /// lives in the client table).
    pub(crate) fn section(&self, name: &str) -> Option<serde_json::Value> {
        self.kept().other.get(name).cloned()
    }

    /// Sets the section `name`: written with the next write.
    pub(crate) fn set_section(&self, name: &str, value: serde_json::Value) {
        let mut kept = self.kept();
        if kept.other.get(name) != Some(&value) {
            kept.other.insert(name.to_owned(), value);
            kept.dirty = true;
        }
    }

    /// Restores what the file holds into `clients`; how many quota records
    /// were restored. Blocks: call it off the runtime ([`load_on`]).
    pub(crate) fn load(&self, clients: &ClientTable) -> io::Result<usize> {
        let text = read_bounded(&self.path, MAX_STATE_FILE_BYTES)?;
        let (n, other) = restore_doc(&text, clients)?;
        let mut kept = self.kept();
        kept.other = other;
        kept.saved = clients.usage();
        Ok(n)
    }

    /// Writes `clients`' usage (and the sections kept) atomically, unless
    /// nothing changed since the last write and `always` is off. Blocks:
    /// call it off the runtime ([`save_on`]).
    pub(crate) fn save(&self, clients: &ClientTable, always: bool) -> io::Result<()> {
        let mut kept = self.kept();
        let usage = clients.usage();
        if !always && usage == kept.saved && !kept.dirty {
            return Ok(());
        }
        let doc = Doc {
            version: VERSION,
            quota_usage: usage
                .iter()
                .map(|(k, p, index, used)| Record {
                    client: k.to_record(),
                    period: p.name().to_owned(),
                    index: *index,
                    used: *used,
                })
                .collect(),
            other: kept.other.clone(),
        };
        let mut text = serde_json::to_vec_pretty(&doc).map_err(io::Error::other)?;
        text.push(b'\n');
        write_atomically(&self.path, &text)?;
        kept.saved = usage;
        kept.dirty = false;
        Ok(())
    }
}

/// Restores usage from a state file's `text` into `clients`; how many quota
/// records were restored (records of periods that are over are dropped, and
/// so are records that do not parse). An error when the text is not a state
/// file this version reads. It reads no file: for tools that read state
/// files, and the fuzz target; the server reads its own state file
/// (`state_file`) bounded and never through a link.
pub fn restore(text: &str, clients: &ClientTable) -> io::Result<usize> {
    restore_doc(text.as_bytes(), clients).map(|(n, _)| n)
}

/// Parses a state file and restores its quota records into `clients`: how
/// many, and the sections this version does not know.
fn restore_doc(
    text: &[u8],
    clients: &ClientTable,
) -> io::Result<(usize, serde_json::Map<String, serde_json::Value>)> {
    let doc: Doc =
        serde_json::from_slice(text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    if doc.version == 0 || doc.version > VERSION {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("version {} (this server reads 1 to {VERSION})", doc.version),
        ));
    }
    let mut n = 0;
    for r in doc.quota_usage {
        let (Some(key), Ok(period)) = (key_from(&r.client), r.period.parse::<Period>()) else {
            continue;
        };
        clients.restore_usage(key, period, r.index, r.used);
        n += 1;
    }
    Ok((n, doc.other))
}

/// Loads the state file into `clients` on `rt`'s blocking threads, and says
/// how it went in the log.
pub(crate) async fn load_on<R: Runtime>(rt: &R, file: Arc<StateFile>, clients: Arc<ClientTable>) {
    let path = file.path().display().to_string();
    let loaded = rt
        .spawn_blocking(move || file.load(&clients))
        .await
        .and_then(|r| r);
    match loaded {
        Ok(n) => {
            tracing::info!(target: "socks4d", state_file = %path, restored = n, "quota usage restored")
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            tracing::info!(target: "socks4d", state_file = %path, "no state file yet: quota usage starts from zero")
        }
        Err(e) => {
            tracing::warn!(target: "socks4d", state_file = %path, error = %e, "state file unreadable: quota usage starts from zero")
        }
    }
}

/// Writes the state file on `rt`'s blocking threads if usage changed (or
/// `always`); a failure is logged.
pub(crate) async fn save_on<R: Runtime>(
    rt: &R,
    file: Arc<StateFile>,
    clients: Arc<ClientTable>,
    always: bool,
) {
    let path = file.path().display().to_string();
    let saved = rt
        .spawn_blocking(move || file.save(&clients, always))
        .await
        .and_then(|r| r);
    if let Err(e) = saved {
        tracing::warn!(target: "socks4d", state_file = %path, error = %e, "cannot write the state file");
    }
}

/// Reads `path` whole if it is a regular file (not a symbolic link) of at
/// most `max` bytes.
fn read_bounded(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
                io::Error::new(e.kind(), "a symbolic link: not followed")
            } else {
                e
            }
        })?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    if meta.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} bytes, more than the {max} read", meta.len()),
        ));
    }
    let mut text = Vec::new();
    file.take(max + 1).read_to_end(&mut text)?;
    if text.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("more than the {max} bytes read"),
        ));
    }
    Ok(text)
}

/// Replaces `path` with `bytes` atomically: a new temporary file beside it
/// (created exclusively, never through a link, mode 0600), flushed to disk,
/// renamed over `path`, then the directory flushed so that the rename lasts.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&tmp)?;
        // The mode asked for is masked by the umask; 0600 whatever it is.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    File::open(&dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::client_table::ClientLimits;
    use crate::limits::meter::unix_now;
    use std::os::unix::fs::MetadataExt;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("socks4-state-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn usage_survives_a_save_and_a_load() {
        let dir = scratch("roundtrip");
        let path = dir.join("state.json");
        let a = ClientTable::new(ClientLimits::caps(10, 1, 100));
        let today = Period::Day.index(unix_now());
        let k4 = ClientKey::of("192.0.2.7".parse().unwrap());
        let k6 = ClientKey::of("2001:db8:1:2::9".parse().unwrap());
        let alice = ClientKey::Cert("alice \"smith\"".into());
        a.restore_usage(k4, Period::Day, today, 1234);
        a.restore_usage(k6.clone(), Period::Day, today, 99);
        a.restore_usage(k6, Period::Day, today - 1, 5); // over: dropped
        a.restore_usage(alice, Period::Day, today, 7);
        StateFile::new(path.clone()).save(&a, true).unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600, "mode 0600");
        let b = ClientTable::new(ClientLimits::caps(10, 1, 100));
        assert_eq!(StateFile::new(path.clone()).load(&b).unwrap(), 3);
        assert_eq!(b.usage(), a.usage());
        std::fs::write(&path, "garbage").unwrap();
        assert!(StateFile::new(path.clone()).load(&b).is_err());
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_state_file_is_never_read_through_a_link_nor_past_its_bound() {
        let dir = scratch("links");
        let secret = dir.join("secret");
        std::fs::write(&secret, r#"{"version":2,"quota_usage":[]}"#).unwrap();
        let link = dir.join("state.json");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        let t = ClientTable::new(ClientLimits::caps(10, 1, 100));
        let e = StateFile::new(link.clone()).load(&t).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        // Writing replaces the link itself; the file it named is untouched.
        StateFile::new(link.clone()).save(&t, true).unwrap();
        assert!(!std::fs::symlink_metadata(&link).unwrap().is_symlink());
        assert_eq!(
            std::fs::read_to_string(&secret).unwrap(),
            r#"{"version":2,"quota_usage":[]}"#
        );
        let big = dir.join("big.json");
        std::fs::write(&big, vec![b' '; 100]).unwrap();
        let e = read_bounded(&big, 99).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn sections_this_version_does_not_know_are_kept_and_version_1_is_read() {
        let dir = scratch("sections");
        let path = dir.join("state.json");
        let today = Period::Day.index(unix_now());
        std::fs::write(
            &path,
            format!(
                r#"{{"version":1,"usage":[{{"client":"192.0.2.1","period":"day","index":{today},"used":7}}],"deny":[{{"net":"192.0.2.0/24"}}]}}"#
            ),
        )
        .unwrap();
        let t = ClientTable::new(ClientLimits::caps(10, 1, 100));
        let file = StateFile::new(path.clone());
        assert_eq!(file.load(&t).unwrap(), 1);
        file.save(&t, true).unwrap();
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(doc["version"], 2);
        assert_eq!(doc["quota_usage"][0]["used"], 7);
        assert_eq!(doc["deny"][0]["net"], "192.0.2.0/24", "{doc}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
