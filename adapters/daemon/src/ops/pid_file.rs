//! The pid file (`--pid-file`), written by a server that may run as root in
//! a directory others can write: it is created, never opened through a
//! symbolic link (`O_NOFOLLOW`, `O_EXCL`), mode 0644. A regular file left by
//! a server that is gone is replaced; anything else at the path (a symbolic
//! link, a directory, a socket) is an error, never followed or removed. At
//! exit it is removed only if it is still the file this server wrote.

use rustix::fs::{Mode, OFlags};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// Writes this process's id to a new file at `path`.
pub(crate) fn write(path: &Path) -> io::Result<()> {
    let file = match create(path) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let meta = std::fs::symlink_metadata(path)?;
            if !meta.file_type().is_file() {
                return Err(io::Error::other(format!(
                    "{} is there and is not a regular file ({}): refusing to follow or \
                     replace it",
                    path.display(),
                    kind(&meta.file_type())
                )));
            }
            // A stale pid file: replaced by a new one, created afresh.
            std::fs::remove_file(path)?;
            create(path)?
        }
        other => other?,
    };
    // Exactly 0644, whatever the umask.
    rustix::fs::fchmod(&file, Mode::from_raw_mode(0o644))?;
    let mut file = std::fs::File::from(file);
    file.write_all(format!("{}\n", std::process::id()).as_bytes())?;
    file.sync_all()
}

/// Removes the pid file at exit, if it is still a regular file holding this
/// process's id (not a symbolic link or another server's file).
pub(crate) fn remove(path: &Path) {
    let ours = std::fs::symlink_metadata(path)
        .is_ok_and(|m| m.file_type().is_file() && m.nlink() == 1)
        && std::fs::read_to_string(path).is_ok_and(|t| t.trim() == std::process::id().to_string());
    if ours {
        let _ = std::fs::remove_file(path);
    }
}

fn create(path: &Path) -> io::Result<std::os::fd::OwnedFd> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    rustix::fs::open(path, flags, Mode::from_raw_mode(0o644)).map_err(io::Error::from)
}

/// What a file type is, for an error.
pub(crate) fn kind(t: &std::fs::FileType) -> &'static str {
    if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_file() {
        "a regular file"
    } else {
        "a special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pid_file_never_follows_a_link_and_replaces_a_stale_file() {
        let dir = std::env::temp_dir().join(format!("socks4-pid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        let link = dir.join("link.pid");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let e = write(&link).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        remove(&link);
        assert!(std::fs::symlink_metadata(&link).is_ok(), "not ours: left");
        let stale = dir.join("stale.pid");
        std::fs::write(&stale, "1\n").unwrap();
        write(&stale).unwrap();
        let meta = std::fs::metadata(&stale).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o644);
        assert_eq!(
            std::fs::read_to_string(&stale).unwrap().trim(),
            std::process::id().to_string()
        );
        remove(&stale);
        assert!(!stale.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
