//! Running with no more privilege than needed: after every listener is bound
//! (ports below 1024 included), switch to `--user`/`--group` (supplementary
//! groups cleared, with `privdrop`), or refuse to start when the switch fails.
//! Running as root with a listener beyond loopback and no `--user` is refused
//! unless `--allow-root` says it is meant.

use crate::config::settings::Settings;
use std::path::Path;

/// Drops privileges as `settings` say; the control socket (if any) is first
/// given to the new user, so that `ctl` run as that user can use it.
/// `listeners` are the addresses actually listened on (socket activation's
/// included), which the root check looks at.
pub(crate) fn apply(
    settings: &Settings,
    control_socket: Option<&Path>,
    listeners: &[std::net::SocketAddr],
) -> Result<(), String> {
    let root = rustix::process::geteuid().is_root();
    let Some(user) = &settings.user else {
        let public = listeners
            .iter()
            .chain(settings.metrics_listen.iter())
            .any(|a| !a.ip().is_loopback());
        if root && public && !settings.allow_root {
            return Err(
                "refusing to run as root with a listener beyond loopback: give --user NAME \
                 (and --group NAME) to run as after binding, or --allow-root if root is meant"
                    .to_owned(),
            );
        }
        return Ok(());
    };
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
