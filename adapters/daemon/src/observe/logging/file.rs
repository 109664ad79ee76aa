//! A log file (`log_file`, an access log's path) that logrotate can move
//! away: opened before a privilege drop, appended to, never through a
//! symbolic link (`O_NOFOLLOW`), created with mode 0640 (and given to the
//! user the server switches to, so that it can reopen it), and reopened on
//! SIGUSR1. Each line is written whole to one file, under a lock the reopen
//! takes too, so that a rotation neither loses nor repeats a line.

use rustix::fs::{Mode, OFlags};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// An open log file, shared by the thread that writes it and the one that
/// reopens it.
#[derive(Debug)]
pub(crate) struct LogFile {
    path: PathBuf,
    owner: Option<(u32, u32)>,
    file: Mutex<File>,
}

impl LogFile {
    /// Opens (or creates) the file at `path` for appending.
    pub(crate) fn open(path: &Path, owner: Option<(u32, u32)>) -> io::Result<Arc<LogFile>> {
        let file = open(path, owner)?;
        Ok(Arc::new(LogFile {
            path: path.to_owned(),
            owner,
            file: Mutex::new(file),
        }))
    }

    /// Its path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the path again (logrotate moved the file away) and writes the
    /// next lines there; on failure, lines go on to the file open so far.
    pub(crate) fn reopen(&self) -> io::Result<()> {
        let fresh = open(&self.path, self.owner)?;
        *self.file.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }
}

/// The writer the non-blocking worker owns: each call writes one whole line.
#[derive(Debug, Clone)]
pub(crate) struct FileWriter(pub(crate) Arc<LogFile>);

impl Write for FileWriter {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let mut file = self.0.file.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(line)?;
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Opens `path` for appending without following a link; a file it creates
/// gets mode 0640 and, while the process is root, `owner`.
fn open(path: &Path, owner: Option<(u32, u32)>) -> io::Result<File> {
    let flags = OFlags::WRONLY | OFlags::APPEND | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mode = Mode::from_raw_mode(0o640);
    let opened = match rustix::fs::open(path, flags | OFlags::CREATE | OFlags::EXCL, mode) {
        Ok(fd) => Ok((fd, true)),
        Err(rustix::io::Errno::EXIST) => rustix::fs::open(path, flags, mode).map(|fd| (fd, false)),
        Err(e) => Err(e),
    };
    let (fd, created) = opened.map_err(|e| open_error(path, e))?;
    let file = File::from(fd);
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(io::Error::other(format!(
            "{} is not a regular file ({})",
            path.display(),
            kind(&meta.file_type())
        )));
    }
    if created {
        // Exactly 0640, whatever the umask.
        rustix::fs::fchmod(&file, mode)?;
        if let Some((uid, gid)) = owner.filter(|_| rustix::process::geteuid().is_root()) {
            std::os::unix::fs::fchown(&file, Some(uid), Some(gid))?;
        }
    }
    Ok(file)
}

/// `O_NOFOLLOW`'s error said as what it means.
fn open_error(path: &Path, e: rustix::io::Errno) -> io::Error {
    if e == rustix::io::Errno::LOOP {
        io::Error::other(format!(
            "{} is a symbolic link: refusing to follow it",
            path.display()
        ))
    } else {
        e.into()
    }
}

/// What a file type is, for an error.
fn kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a directory"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_fifo() {
        "a named pipe"
    } else {
        "a special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn a_log_file_is_0640_never_follows_a_link_and_reopens_after_a_move() {
        let dir = std::env::temp_dir().join(format!("socks4-logfile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        let link = dir.join("link.log");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let e = LogFile::open(&link, None).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        assert!(LogFile::open(&dir, None).is_err(), "a directory");

        let path = dir.join("server.log");
        let log = LogFile::open(&path, None).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o640);
        let mut w = FileWriter(log.clone());
        w.write_all(b"one\n").unwrap();
        std::fs::rename(&path, dir.join("server.log.1")).unwrap();
        w.write_all(b"two\n").unwrap();
        log.reopen().unwrap();
        w.write_all(b"three\n").unwrap();
        let old = std::fs::read_to_string(dir.join("server.log.1")).unwrap();
        assert_eq!(old, "one\ntwo\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\n");
        // An existing file is appended to, its mode left as it is.
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        log.reopen().unwrap();
        w.write_all(b"four\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\nfour\n");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
