//! The file-descriptor limit at start: the soft limit is raised to the hard
//! one, as nginx's `worker_rlimit_nofile` does, so that `max_connections` is
//! not cut short by a shell's default of 1024. Whether the hard limit is enough
//! is `--check`'s concern ([`crate::config::preflight`]).

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// Raises `RLIMIT_NOFILE`'s soft limit to its hard limit; the limits before
/// and after when it changed.
pub(crate) fn raise_nofile() -> Option<(u64, Option<u64>)> {
    let limit = getrlimit(Resource::Nofile);
    let soft = limit.current?;
    if limit.maximum.is_some_and(|hard| hard <= soft) {
        return None;
    }
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => Some((soft, limit.maximum)),
        Err(e) => {
            tracing::warn!(target: "socks4d", error = %e, soft, "cannot raise the file descriptor limit");
            None
        }
    }
}
