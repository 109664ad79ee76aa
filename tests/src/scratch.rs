//! Scratch directories for the tests and the load tool: every file a test
//! writes (configs, certificates, sockets, logs) goes under one root per
//! process, `$TMPDIR/socks4-tests-<pid>`. A test process cannot clean up
//! after its last test, so the next one does: the first call in a process
//! removes the roots of processes that have ended, and a machine keeps at
//! most the files of the runs still going and of the last one.

use std::path::{Path, PathBuf};
use std::sync::Once;

/// The name of every root, followed by its process's ID.
const PREFIX: &str = "socks4-tests-";

/// The most entries of the temporary directory looked at for ended roots.
const SWEEP_LIMIT: usize = 100_000;

/// The directory `name` under this process's root, created if missing (and
/// left as it is otherwise: tests of one process may share it).
pub fn dir(name: &str) -> PathBuf {
    let path = root().join(name);
    std::fs::create_dir_all(&path).expect("scratch directory");
    path
}

/// The directory `name` under this process's root, emptied first: for a test
/// that must not see what an earlier test of the process left there.
pub fn fresh(name: &str) -> PathBuf {
    let path = root().join(name);
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path).expect("scratch directory");
    path
}

/// This process's root, created if missing; the first call removes the roots
/// of ended processes.
pub fn root() -> PathBuf {
    static SWEEP: Once = Once::new();
    SWEEP.call_once(sweep);
    let root = std::env::temp_dir().join(format!("{PREFIX}{}", std::process::id()));
    std::fs::create_dir_all(&root).expect("scratch root");
    root
}

/// Removes the roots whose process has ended.
fn sweep() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten().take(SWEEP_LIMIT) {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_of_ended_processes_go_and_live_ones_stay() {
        // A process that has ended: a child that was waited for. (Its PID
        // could be reused before the sweep; then its root just stays.)
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let ended = child.id();
        child.wait().unwrap();
        let gone = std::env::temp_dir().join(format!("{PREFIX}{ended}"));
        std::fs::create_dir_all(gone.join("inner")).unwrap();
        // PID 1 is alive for as long as the machine is.
        let alive = std::env::temp_dir().join(format!("{PREFIX}1"));
        let alive_existed = alive.exists();
        std::fs::create_dir_all(&alive).unwrap();
        sweep();
        assert!(!gone.exists() || Path::new(&format!("/proc/{ended}")).exists());
        assert!(alive.exists());
        if !alive_existed {
            std::fs::remove_dir_all(&alive).unwrap();
        }
        let mine = dir("scratch-self-test");
        assert!(mine.starts_with(root()) && mine.is_dir());
    }
}
