//! Notifications to the administrator: when a rule with `notify` decides a
//! request, the configured command (`[notify] command`) runs with the
//! request's details, as "Using SOCKS for Proxying" asked of a SOCKS server
//! ("notify an administrator of incoming access attempts").
//!
//! Safe by construction, unlike the `: shell_cmd` of CSTC sockd 4.3 (whose
//! `%u` put a client's user id into `/bin/sh`):
//! - the command is an argv run directly (no shell, no launcher): each run is
//!   a direct child of the server, with a cleared environment, leading a
//!   process group of its own;
//! - what a client sent reaches it only as environment variables (`SOCKS4_*`)
//!   and as one JSON object on its standard input, never in its arguments;
//! - its output goes nowhere (it cannot write into the server's log).
//!
//! Bounded and never in the way: raising a notification (on the connection's
//! path) only counts and queues it; a task of its own takes queued
//! notifications off the queue, at most `max_running` commands at once, each
//! killed past `timeout` and always reaped before its slot frees. Nothing a
//! command forks outlives it: when the command ends (or is killed at its
//! timeout), its whole process group is killed before it is reaped (a
//! process that leaves the group on purpose, with `setsid` or `setpgid`,
//! is the command's own business). Its JSON is written without ever
//! blocking the server: the pipe is non-blocking and written to as the
//! command reads. Per client
//! address (IPv6 by /64) at most `rate` notifications run; the rest are
//! suppressed and summed up in one `suppressed` notification no later than one
//! rate window after the last of them. A full queue drops (counted).

use crate::limits::client_table::ClientKey;
use crate::limits::log_budget::Throttle;
use crate::observe::notify_child::{exited, kill_group, Feed};
use crate::runtime::Runtime;
use socks4_acl::limit::{ConnectionRate, RateWindow};
use std::collections::HashMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// The results notifications are counted by: `sent` (the command ran and
/// exited 0), `failed` (it could not start, or exited otherwise),
/// `timed_out` (killed past `timeout`), `dropped` (the queue was full),
/// `suppressed` (over the client's `rate`).
pub const NOTIFY_RESULTS: [&str; 5] = ["sent", "failed", "timed_out", "dropped", "suppressed"];

/// How often a running command is checked for its end.
const POLL: Duration = Duration::from_millis(20);

/// The notification command and its bounds, resolved and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySettings {
    /// The program, as an absolute path (found in `PATH` at start when
    /// configured as a bare name).
    pub program: PathBuf,
    /// Its arguments (the configured argv after the program).
    pub args: Vec<String>,
    /// Commands running at once.
    pub max_running: usize,
    /// Notifications per client address in a sliding window.
    pub rate: ConnectionRate,
    /// A command running longer is killed.
    pub timeout: Duration,
    /// Notifications waiting for a free slot; past it, dropped (restart to
    /// change).
    pub queue: usize,
}

/// Finds the program of `argv` (an absolute path, or a name searched in
/// `PATH`) and checks that a process running as `uid`/`gid` may execute it.
pub fn resolve_program(argv: &[String], uid: u32, gid: u32) -> Result<PathBuf, String> {
    let Some(first) = argv.first() else {
        return Err(
            "is empty: name the program to run, e.g. [\"/usr/local/bin/socks-alert\"]".into(),
        );
    };
    let path = if first.contains('/') {
        let p = PathBuf::from(first);
        if !p.is_absolute() {
            return Err(format!(
                "'{first}': give an absolute path, or a name found in PATH"
            ));
        }
        p
    } else {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .map(|d| d.join(first))
            .find(|p| p.is_file())
            .ok_or_else(|| format!("'{first}' is not in PATH"))?
    };
    let meta = std::fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{}: not a file", path.display()));
    }
    if !executable_by(&meta, uid, gid) {
        return Err(format!(
            "{}: not executable by the user the server runs as (uid {uid}, gid {gid})",
            path.display()
        ));
    }
    Ok(path)
}

fn executable_by(meta: &std::fs::Metadata, uid: u32, gid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    let mode = meta.mode();
    if uid == 0 {
        return mode & 0o111 != 0;
    }
    let bit = if meta.uid() == uid {
        0o100
    } else if meta.gid() == gid {
        0o010
    } else {
        0o001
    };
    mode & bit != 0
}

/// One notification, ready to hand to the command.
#[derive(Debug, Clone)]
struct Job {
    /// `SOCKS4_*` variables, values as bytes (a user id is not always UTF-8).
    env: Vec<(&'static str, Vec<u8>)>,
    /// The same as one JSON object, for standard input.
    json: String,
    /// `denied`, `granted` or `suppressed`, for log lines.
    event: &'static str,
}

/// A request a `notify` rule decided, as the observer saw it.
#[derive(Debug, Clone)]
pub(crate) struct Notice<'a> {
    /// The client's address.
    pub(crate) client: SocketAddr,
    /// The listener it came to.
    pub(crate) listener: SocketAddr,
    /// The reply of a denied request; `None`: granted.
    pub(crate) reply: Option<u8>,
    /// The request's USERID.
    pub(crate) user_id: &'a [u8],
    /// The destination as given.
    pub(crate) dest: &'a str,
    /// `connect` or `bind`.
    pub(crate) command: &'static str,
    /// The deciding rule and its line.
    pub(crate) rule: String,
}

impl Notice<'_> {
    fn job(&self) -> Job {
        let event = if self.reply.is_some() {
            "denied"
        } else {
            "granted"
        };
        let mut env: Vec<(&'static str, Vec<u8>)> = vec![
            ("SOCKS4_EVENT", event.into()),
            ("SOCKS4_CLIENT", self.client.to_string().into_bytes()),
            ("SOCKS4_LISTENER", self.listener.to_string().into_bytes()),
            ("SOCKS4_USER", self.user_id.to_vec()),
            ("SOCKS4_DEST", self.dest.as_bytes().to_vec()),
            ("SOCKS4_COMMAND", self.command.into()),
            ("SOCKS4_RULE", self.rule.clone().into_bytes()),
        ];
        if let Some(code) = self.reply {
            env.push(("SOCKS4_REPLY", code.to_string().into_bytes()));
        }
        let mut json = serde_json::json!({
            "event": event,
            "client": self.client.to_string(),
            "listener": self.listener.to_string(),
            "user": String::from_utf8_lossy(self.user_id),
            "dest": self.dest,
            "command": self.command,
            "rule": self.rule,
        });
        if let Some(code) = self.reply {
            json["reply"] = code.into();
        }
        Job {
            env,
            json: json.to_string(),
            event,
        }
    }
}

/// One client address's notifications in the rate window, and what was
/// suppressed.
#[derive(Debug)]
struct ClientRate {
    window: RateWindow,
    suppressed: u64,
    last_suppressed: Option<Instant>,
    last_client: SocketAddr,
}

/// The raising side of notifications, shared by every connection: the
/// settings (replaced on reload), the per-client rate, the queue.
#[derive(Debug)]
pub struct Notifier {
    settings: RwLock<Option<Arc<NotifySettings>>>,
    tx: async_channel::Sender<Job>,
    rx: async_channel::Receiver<Job>,
    clients: Mutex<HashMap<ClientKey, ClientRate>>,
    /// Log lines about failures, timeouts and drops.
    complaints: Throttle,
    running: Mutex<Vec<u32>>,
    slot_freed: event_listener::Event,
    counts: [std::sync::atomic::AtomicU64; NOTIFY_RESULTS.len()],
}

/// Most client addresses whose notification rate is remembered; beyond it,
/// those with nothing suppressed are forgotten first.
const TRACKED: usize = 65_536;

impl Notifier {
    /// A notifier with `settings` (`None`: events and log lines only).
    pub fn new(settings: Option<NotifySettings>) -> Notifier {
        let queue = settings.as_ref().map_or(256, |s| s.queue.max(1));
        let (tx, rx) = async_channel::bounded(queue);
        Notifier {
            settings: RwLock::new(settings.map(Arc::new)),
            tx,
            rx,
            clients: Mutex::default(),
            complaints: Throttle::new(
                10,
                "notification problems not logged one by one (over 10 lines a second)",
            ),
            running: Mutex::default(),
            slot_freed: event_listener::Event::new(),
            counts: Default::default(),
        }
    }

    /// Replaces the settings (a reload): new notifications get them.
    pub fn configure(&self, settings: Option<NotifySettings>) {
        *self.settings.write().unwrap_or_else(|e| e.into_inner()) = settings.map(Arc::new);
        self.slot_freed.notify(usize::MAX);
    }

    fn count(&self, result: &str) {
        if let Some(i) = NOTIFY_RESULTS.iter().position(|r| *r == result) {
            self.counts[i].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Notifications so far, by result ([`NOTIFY_RESULTS`]).
    pub fn counts(&self) -> Vec<(&'static str, u64)> {
        NOTIFY_RESULTS
            .iter()
            .zip(&self.counts)
            .map(|(l, n)| (*l, n.load(std::sync::atomic::Ordering::Relaxed)))
            .collect()
    }

    fn settings(&self) -> Option<Arc<NotifySettings>> {
        self.settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Queues the command for `notice`, within its client's rate; counts what
    /// happens. Never waits.
    pub(crate) fn raise(&self, notice: &Notice<'_>, now: Instant) {
        let Some(settings) = self.settings() else {
            return; // events and the log line only
        };
        let key = ClientKey::of(notice.client.ip());
        {
            let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
            if clients.len() >= TRACKED && !clients.contains_key(&key) {
                clients.retain(|_, c| c.suppressed > 0);
            }
            let entry = clients.entry(key).or_insert_with(|| ClientRate {
                window: RateWindow::new(),
                suppressed: 0,
                last_suppressed: None,
                last_client: notice.client,
            });
            if entry.window.acquire(now, settings.rate).is_none() {
                entry.suppressed += 1;
                entry.last_suppressed = Some(now);
                entry.last_client = notice.client;
                self.count("suppressed");
                return;
            }
        }
        self.queue(notice.job(), now);
    }

    fn queue(&self, job: Job, now: Instant) {
        if self.tx.try_send(job).is_err() {
            self.count("dropped");
            if self.complaints.allow(now) {
                tracing::warn!(target: "socks4d::notify", "notification dropped: the queue is full");
            }
        }
    }

    /// Sums up suppressed notifications whose client has been quiet for a
    /// rate window (called every second), and forgets idle clients.
    pub(crate) fn tick(&self, now: Instant) {
        self.complaints.flush(now);
        let Some(settings) = self.settings() else {
            return;
        };
        let window = settings.rate.window;
        let mut summaries = Vec::new();
        {
            let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
            for c in clients.values_mut() {
                // Ticks come every second: sum up a second early rather than
                // a second late.
                let due = c
                    .last_suppressed
                    .and_then(|at| at.checked_add(window))
                    .is_some_and(|end| now + Duration::from_secs(1) >= end);
                if c.suppressed > 0 && due {
                    summaries.push((c.last_client, c.suppressed));
                    c.suppressed = 0;
                    c.last_suppressed = None;
                }
            }
            clients.retain(|_, c| {
                c.window.expire(now, window);
                c.suppressed > 0 || !c.window.is_empty()
            });
        }
        for (client, n) in summaries {
            let json = serde_json::json!({
                "event": "suppressed",
                "client": client.to_string(),
                "suppressed": n,
            });
            let job = Job {
                env: vec![
                    ("SOCKS4_EVENT", b"suppressed".to_vec()),
                    ("SOCKS4_CLIENT", client.to_string().into_bytes()),
                    ("SOCKS4_SUPPRESSED", n.to_string().into_bytes()),
                ],
                json: json.to_string(),
                event: "suppressed",
            };
            self.queue(job, now);
        }
    }

    /// Kills the commands still running and everything they forked (the
    /// server is stopping). Each is not reaped yet, so its process group
    /// still exists under its id.
    pub(crate) fn kill_running(&self) {
        for pid in self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            kill_group(*pid);
        }
    }
}

/// Runs queued notifications until the server shuts down: each command a
/// direct child, at most `max_running` at once, killed past `timeout`,
/// reaped before its slot frees.
pub(crate) async fn run<R: Runtime>(
    rt: R,
    notifier: Arc<Notifier>,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut stop = std::pin::pin!(stop);
    loop {
        let recv = notifier.rx.recv();
        let next = futures_lite::future::or(async { recv.await.ok() }, async {
            stop.as_mut().await;
            None
        });
        let Some(job) = next.await else {
            return;
        };
        let Some(settings) = notifier.settings() else {
            continue; // notifications were turned off by a reload
        };
        notifier.free_slot(settings.max_running).await;
        let Some((child, pid, feed)) = notifier.start(&settings, &job, rt.now()) else {
            continue;
        };
        let supervise = supervise(
            rt.clone(),
            notifier.clone(),
            settings,
            (child, pid, feed),
            job.event,
        );
        rt.spawn(supervise);
    }
}

impl Notifier {
    /// Completes once fewer than `max_running` commands are not yet reaped.
    async fn free_slot(&self, max_running: usize) {
        loop {
            let freed = self.slot_freed.listen();
            let running = self.running.lock().unwrap_or_else(|e| e.into_inner()).len();
            if running < max_running.max(1) {
                return;
            }
            freed.await;
        }
    }

    /// Starts the command for `job` (counted as running) and hands it its
    /// JSON; `None` (counted, and logged within budget) when it cannot start.
    fn start(
        &self,
        settings: &NotifySettings,
        job: &Job,
        now: Instant,
    ) -> Option<(std::process::Child, u32, Feed)> {
        let child = Command::new(&settings.program)
            .args(&settings.args)
            .env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
            )
            .envs(
                job.env
                    .iter()
                    .map(|(k, v)| (*k, OsString::from_vec(v.clone()))),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                self.count("failed");
                if self.complaints.allow(now) {
                    tracing::warn!(target: "socks4d::notify", program = %settings.program.display(), error = %e, "notification command did not start");
                }
                return None;
            }
        };
        let pid = child.id();
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(pid);
        // Written as the command reads, never waiting on it.
        let mut feed = Feed::new(child.stdin.take(), &job.json);
        feed.pump();
        Some((child, pid, feed))
    }
}

/// Waits for a started command (its group killed past its timeout) while
/// feeding it its JSON, kills what is left of its process group, reaps it,
/// frees its slot and counts how it ended.
async fn supervise<R: Runtime>(
    rt: R,
    notifier: Arc<Notifier>,
    settings: Arc<NotifySettings>,
    (mut child, pid, mut feed): (std::process::Child, u32, Feed),
    event: &'static str,
) {
    let deadline = rt.now().checked_add(settings.timeout);
    let mut killed = false;
    while exited(pid) == Some(false) {
        feed.pump();
        if !killed && deadline.is_some_and(|d| rt.now() >= d) {
            kill_group(pid);
            killed = true;
        }
        rt.sleep_until(rt.now() + POLL).await;
    }
    drop(feed);
    // The leader has exited and is not reaped yet: whatever it forked dies
    // with its group, then the leader is reaped.
    kill_group(pid);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) => kill_group(pid), // not seen to exit: it dies now
            Err(_) => break None,
        }
        rt.sleep_until(rt.now() + POLL).await;
    };
    notifier
        .running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|p| *p != pid);
    notifier.slot_freed.notify(usize::MAX);
    let result = match status {
        _ if killed => "timed_out",
        Some(s) if s.success() => "sent",
        _ => "failed",
    };
    notifier.count(result);
    if result != "sent" && notifier.complaints.allow(rt.now()) {
        let status = status.map_or("unknown".to_owned(), |s| s.to_string());
        tracing::warn!(target: "socks4d::notify", event, result, %status, timeout = ?settings.timeout, "notification command did not succeed");
    }
}

/// The command and its bounds, as `--check` prints them.
pub fn describe(settings: &NotifySettings) -> String {
    let mut argv = vec![settings.program.display().to_string()];
    argv.extend(settings.args.iter().cloned());
    format!(
        "notify: {:?} (max_running {}, rate {}, timeout {}, queue {})",
        argv,
        settings.max_running,
        settings.rate,
        humantime::format_duration(settings.timeout),
        settings.queue
    )
}

/// Where `key` of `[notify]` is written in a config file's `text`: its line
/// and column (from 1), for error messages.
pub fn key_position(text: &str, key: &str) -> Option<(usize, usize)> {
    // The key's own line within the [notify] section.
    let mut in_section = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            in_section = t == "[notify]";
            continue;
        }
        if in_section && t.starts_with(key) && t[key.len()..].trim_start().starts_with('=') {
            let col = line.len() - line.trim_start().len() + 1;
            return Some((i + 1, col));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_and_checked() {
        let sh = resolve_program(&["sh".into()], 0, 0).unwrap();
        assert!(sh.is_absolute());
        assert!(resolve_program(&[], 0, 0).unwrap_err().contains("empty"));
        assert!(resolve_program(&["./x".into()], 0, 0)
            .unwrap_err()
            .contains("absolute"));
        assert!(resolve_program(&["no-such-program-here".into()], 0, 0)
            .unwrap_err()
            .contains("not in PATH"));
        let dir = std::env::temp_dir().join(format!("socks4-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("not-executable");
        std::fs::write(&file, "#!/bin/sh\n").unwrap();
        let e = resolve_program(&[file.display().to_string()], 0, 0).unwrap_err();
        assert!(e.contains("not executable"), "{e}");
        // Executable by its owner only: not by another user.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(resolve_program(&[file.display().to_string()], 0, 0).is_ok());
        let e = resolve_program(&[file.display().to_string()], 65534, 65534).unwrap_err();
        assert!(e.contains("uid 65534"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_key_is_found_in_its_section() {
        let text = "listen = [\"127.0.0.1:1\"]\n[notify]\n  command = []\n";
        assert_eq!(key_position(text, "command"), Some((3, 3)));
        assert_eq!(key_position("[limits]\ncommand = 1\n", "command"), None);
    }
}
