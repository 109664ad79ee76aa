//! Looking up the user and group a server runs as after a privilege drop, in
//! the system's user databases: for the privilege drop itself, and for
//! checks made before it (may that user run the notification command?).

/// The user's uid and the group's gid (the user's primary group by default),
/// from the system's user databases (getpwnam, getgrnam).
pub(crate) fn ids(user: &str, group: Option<&str>) -> Result<(u32, u32), String> {
    use nix::unistd::{Group, User};
    let u = User::from_name(user)
        .map_err(|e| format!("looking up user {user}: {e}"))?
        .ok_or_else(|| format!("no user named {user}"))?;
    let gid = match group {
        Some(g) => {
            Group::from_name(g)
                .map_err(|e| format!("looking up group {g}: {e}"))?
                .ok_or_else(|| format!("no group named {g}"))?
                .gid
        }
        None => u.gid,
    };
    Ok((u.uid.as_raw(), gid.as_raw()))
}
