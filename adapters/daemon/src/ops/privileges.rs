//! Running with no more privilege than needed: after every listener is bound
//! (ports below 1024 included), switch to `--user`/`--group` (supplementary
//! groups cleared, with `privdrop`), or refuse to start when the switch fails.
//! Switching to the user the process already is does nothing. Whether the
//! switch can work (the user exists; root, or already that user) and whether
//! root may run without one were checked before binding, by the start's
//! checks ([`crate::config::preflight`]).

use crate::config::settings::Settings;
use std::path::Path;

/// Drops privileges as `settings` say; the control socket (if any) is first
/// given to the new user, so that `ctl` run as that user can use it.
pub(crate) fn apply(settings: &Settings, control_socket: Option<&Path>) -> Result<(), String> {
    let Some(user) = &settings.user else {
        return Ok(());
    };
    if already(user, settings.group.as_deref())? {
        tracing::info!(target: "socks4d", user, "already running as the user to switch to");
        return Ok(());
    }
    let mut drop = privdrop::PrivDrop::default().user(user);
    if let Some(group) = &settings.group {
        drop = drop.group(group);
    }
    if let Some(path) = control_socket {
        let (uid, gid) = crate::config::users::ids(user, settings.group.as_deref())?;
        // lchown: a link put at the path is never followed (and its owner
        // is all that changes).
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))
            .map_err(|e| format!("control socket {}: {e}", path.display()))?;
    }
    drop.apply()
        .map_err(|e| format!("cannot switch to user {user}: {e}"))?;
    tracing::info!(target: "socks4d", user, group = settings.group.as_deref().unwrap_or("(the user's)"), "privileges dropped");
    Ok(())
}

/// Whether this process, not root, already runs as `user` and `group` (the
/// user's own group by default): then there is nothing to switch.
fn already(user: &str, group: Option<&str>) -> Result<bool, String> {
    let ids = crate::config::users::ids(user, group)?;
    let euid = rustix::process::geteuid();
    Ok(!euid.is_root() && ids == (euid.as_raw(), rustix::process::getegid().as_raw()))
}
