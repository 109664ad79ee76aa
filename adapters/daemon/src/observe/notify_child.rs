//! A notification command's process: its process group killed whole
//! ([`kill_group`]), its exit seen without reaping it ([`exited`]), and its
//! JSON fed to it without ever blocking ([`Feed`]). The queue, the bounds and
//! the supervision are in [`notify`](super::notify).

use std::io::Write;

/// Kills the process group `pid` leads (a notification command's, started
/// with `process_group(0)`). Called only while the leader is not reaped, so
/// that the id cannot name another group yet.
pub(crate) fn kill_group(pid: u32) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

/// Whether the child `pid` has exited, without reaping it (`waitid` with
/// `WNOWAIT`): its zombie keeps its id, and so its process group's, from
/// being reused until [`std::process::Child::wait`] reaps it. `None`: it
/// cannot be asked (not our child any more).
pub(crate) fn exited(pid: u32) -> Option<bool> {
    use rustix::process::{waitid, Pid, WaitId, WaitIdOptions};
    let pid = i32::try_from(pid).ok().and_then(Pid::from_raw)?;
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    match waitid(WaitId::Pid(pid), options) {
        Ok(status) => Some(status.is_some()),
        Err(_) => None,
    }
}

/// The JSON still to write to a command's standard input, on a non-blocking
/// pipe.
pub(crate) struct Feed {
    pipe: Option<std::process::ChildStdin>,
    json: Vec<u8>,
    written: usize,
}

impl Feed {
    pub(crate) fn new(pipe: Option<std::process::ChildStdin>, json: &str) -> Feed {
        let pipe = pipe.filter(|p| rustix::io::ioctl_fionbio(p, true).is_ok());
        Feed {
            pipe,
            json: json.as_bytes().to_vec(),
            written: 0,
        }
    }

    /// Writes what the pipe takes now; closes it when all is written or the
    /// command will not read (it then sees the end of its input).
    pub(crate) fn pump(&mut self) {
        let Some(pipe) = self.pipe.as_mut() else {
            return;
        };
        while self.written < self.json.len() {
            match pipe.write(&self.json[self.written..]) {
                Ok(0) => break,
                Ok(n) => self.written += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        self.pipe = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};

    #[test]
    fn a_command_that_never_reads_never_blocks_the_feed() {
        let mut child = Command::new("sleep")
            .arg("30")
            .stdin(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id();
        // Far more than a pipe holds: a blocking write would never return.
        let json = "x".repeat(4 << 20);
        let mut feed = Feed::new(child.stdin.take(), &json);
        feed.pump();
        assert!(
            feed.pipe.is_some(),
            "the rest waits for the command to read"
        );
        assert!(feed.written > 0 && feed.written < json.len());
        assert_eq!(exited(pid), Some(false));
        kill_group(pid);
        assert!(!child.wait().unwrap().success());
        feed.pump(); // the reader is gone: the pipe is closed, nothing waits
        assert!(feed.pipe.is_none());
    }
}
