//! Run-time list entries that last: `ctl deny add NET [for DURATION]
//! [reason TEXT]` and the same for `exempt`. Each entry carries its reason,
//! who added it, when, and when it expires; the entries are laid over the
//! config file's lists in the policy of new connections, again after every
//! reload, and kept in the state file (section `runtime_lists`) so that a
//! restart restores them. Expired entries drop by themselves (the
//! housekeeping asks once a second) with a log line naming them. Each list
//! holds at most `[limits] runtime_list_entries` of them. With `[fleet]`,
//! every change is queued for Redis too, and the fleet's lists replace these
//! whenever they change ([`Daemon::set_runtime_lists`]).

use super::Daemon;
use serde::{Deserialize, Serialize};
use socks4_acl::Netmask;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The state file's section.
const SECTION: &str = "runtime_lists";

/// The longest reason an entry keeps, in bytes (so that full lists stay far
/// below the state file's bound).
pub(crate) const MAX_REASON: usize = 256;

/// Which list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListKind {
    /// The denial list (`ctl deny`).
    Deny,
    /// The exemption list (`ctl exempt`).
    Exempt,
}

impl ListKind {
    /// Its name in commands, metrics and logs: `deny` or `exempt`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ListKind::Deny => "deny",
            ListKind::Exempt => "exempt",
        }
    }

    /// Its name in sentences: `denial` or `exemption`.
    pub(crate) fn noun(self) -> &'static str {
        match self {
            ListKind::Deny => "denial",
            ListKind::Exempt => "exemption",
        }
    }
}

/// One run-time entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ListEntry {
    /// The client net, as the lists show it.
    pub(crate) net: String,
    /// Why it was added, if the operator said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    /// Who added it (`uid N`, or `control socket`).
    pub(crate) added_by: String,
    /// When, in seconds since the Unix epoch.
    pub(crate) added_at: u64,
    /// When it expires, in seconds since the Unix epoch; never if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) expires_at: Option<u64>,
}

impl ListEntry {
    /// Its net, if it parses.
    fn netmask(&self) -> Option<Netmask> {
        self.net.parse().ok()
    }
}

/// The run-time entries of both lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RuntimeLists {
    /// Run-time denials.
    #[serde(default)]
    pub(crate) deny: Vec<ListEntry>,
    /// Run-time exemptions.
    #[serde(default)]
    pub(crate) exempt: Vec<ListEntry>,
}

impl RuntimeLists {
    fn list(&mut self, kind: ListKind) -> &mut Vec<ListEntry> {
        match kind {
            ListKind::Deny => &mut self.deny,
            ListKind::Exempt => &mut self.exempt,
        }
    }
}

/// Seconds since the Unix epoch at `t`.
pub(crate) fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// Seconds since the Unix epoch at `t`, rounded up: an entry expires no
/// sooner than asked (and at most a second later).
fn unix_ceil(t: SystemTime) -> u64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// What `ctl deny add` asks for.
#[derive(Debug)]
pub(crate) struct Addition<'a> {
    pub(crate) kind: ListKind,
    pub(crate) net: Netmask,
    pub(crate) ttl: Option<Duration>,
    pub(crate) reason: Option<String>,
    pub(crate) who: &'a str,
}

impl Daemon {
    /// The run-time entries now.
    pub(crate) fn runtime_lists(&self) -> RuntimeLists {
        self.inner
            .runtime
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether `net` is on the config file's list of `kind` (as last loaded).
    pub(crate) fn on_file_list(&self, kind: ListKind, net: &Netmask) -> bool {
        let current = self.current();
        let policy = &current.server.policy;
        match kind {
            ListKind::Deny => policy.denials.iter().any(|n| n == *net),
            ListKind::Exempt => policy.exemptions.iter().any(|n| n == *net),
        }
    }

    /// Adds a run-time entry at `now`: `Ok(false)` when it was there (its
    /// reason and expiry are renewed), an error when the file's list holds
    /// it or the list is full.
    pub(crate) fn add_runtime(&self, add: Addition<'_>, now: SystemTime) -> Result<bool, String> {
        let Addition {
            kind,
            net,
            ttl,
            reason,
            who,
        } = add;
        if reason.as_ref().is_some_and(|r| r.len() > MAX_REASON) {
            return Err(format!("a reason is at most {MAX_REASON} bytes"));
        }
        if self.on_file_list(kind, &net) {
            return Err(format!(
                "{net} is on the config file's {} list already",
                kind.noun()
            ));
        }
        let expires_at = match ttl {
            Some(d) => Some(unix_ceil(
                now.checked_add(d).ok_or("that duration is too long")?,
            )),
            None => None,
        };
        let entry = ListEntry {
            net: net.to_string(),
            reason,
            added_by: who.to_owned(),
            added_at: unix(now),
            expires_at,
        };
        let bound = self.current().runtime_list_entries;
        let shared = entry.clone();
        let added = {
            let mut lists = self.inner.runtime.lock().unwrap_or_else(|e| e.into_inner());
            let list = lists.list(kind);
            let len = list.len();
            match list.iter_mut().find(|e| e.netmask() == Some(net)) {
                Some(old) => {
                    *old = entry;
                    false
                }
                None if len >= bound => {
                    return Err(format!(
                        "the {} list holds {bound} run-time entries already ([limits] runtime_list_entries)",
                        kind.noun()
                    ))
                }
                None => {
                    list.push(entry);
                    true
                }
            }
        };
        self.update_policy(|p| match kind {
            ListKind::Deny => p.add_denial(net),
            ListKind::Exempt => p.add_exemption(net),
        });
        self.keep_runtime_lists();
        self.share_list_set(kind, shared);
        Ok(added)
    }

    /// Deletes a run-time entry; an error when there is none for `net` (a
    /// file entry changes in the file).
    pub(crate) fn del_runtime(&self, kind: ListKind, net: &Netmask) -> Result<ListEntry, String> {
        let removed = {
            let mut lists = self.inner.runtime.lock().unwrap_or_else(|e| e.into_inner());
            let list = lists.list(kind);
            let at = list.iter().position(|e| e.netmask() == Some(*net));
            at.map(|i| list.remove(i))
        };
        let Some(removed) = removed else {
            return Err(match self.on_file_list(kind, net) {
                true => format!(
                    "{net} is on the config file's {} list: change it in the file",
                    kind.noun()
                ),
                false => format!(
                    "{net} is not on the {} list (run-time entries)",
                    kind.noun()
                ),
            });
        };
        self.unlist(kind, net);
        self.keep_runtime_lists();
        self.share_list_del(kind, removed.net.clone());
        Ok(removed)
    }

    /// Takes `net` off the policy's list, unless the file's list holds it.
    fn unlist(&self, kind: ListKind, net: &Netmask) {
        if !self.on_file_list(kind, net) {
            self.update_policy(|p| match kind {
                ListKind::Deny => p.del_denial(net),
                ListKind::Exempt => p.del_exemption(net),
            });
        }
    }

    /// Drops the entries expired at `now`, each logged.
    pub(crate) fn expire_runtime(&self, now: SystemTime) {
        let now = unix(now);
        let mut expired = Vec::new();
        {
            let mut lists = self.inner.runtime.lock().unwrap_or_else(|e| e.into_inner());
            for kind in [ListKind::Deny, ListKind::Exempt] {
                lists.list(kind).retain(|e| {
                    let keep = e.expires_at.is_none_or(|t| t > now);
                    if !keep {
                        expired.push((kind, e.clone()));
                    }
                    keep
                });
            }
        }
        for (kind, entry) in &expired {
            if let Some(net) = entry.netmask() {
                self.unlist(*kind, &net);
            }
            tracing::info!(
                target: "socks4d", list = kind.name(), net = entry.net.as_str(),
                reason = entry.reason.as_deref().unwrap_or("-"), added_by = entry.added_by.as_str(),
                "run-time {} entry {} expired", kind.name(), entry.net
            );
        }
        if !expired.is_empty() {
            self.keep_runtime_lists();
        }
    }

    /// Lays the run-time entries over the policy of new connections (after
    /// a reload, which replaced the lists with the file's).
    pub(crate) fn apply_runtime_lists(&self) {
        let lists = self.runtime_lists();
        self.update_policy(|p| {
            for net in lists.deny.iter().filter_map(ListEntry::netmask) {
                p.add_denial(net);
            }
            for net in lists.exempt.iter().filter_map(ListEntry::netmask) {
                p.add_exemption(net);
            }
        });
    }

    /// Replaces the run-time entries with the fleet's (loaded from Redis),
    /// at most `[limits] runtime_list_entries` of each list, dropping those
    /// expired at `now`: the policy loses the nets that left and gains
    /// those that came. Nothing goes back to the fleet.
    pub(crate) fn set_runtime_lists(&self, mut lists: RuntimeLists, now: SystemTime) {
        let bound = self.current().runtime_list_entries;
        let now = unix(now);
        for kind in [ListKind::Deny, ListKind::Exempt] {
            let list = lists.list(kind);
            list.retain(|e| e.expires_at.is_none_or(|t| t > now) && e.netmask().is_some());
            list.sort_by_key(|e| e.added_at);
            list.truncate(bound);
        }
        let old = std::mem::replace(
            &mut *self.inner.runtime.lock().unwrap_or_else(|e| e.into_inner()),
            lists.clone(),
        );
        for kind in [ListKind::Deny, ListKind::Exempt] {
            let (was, is) = match kind {
                ListKind::Deny => (&old.deny, &lists.deny),
                ListKind::Exempt => (&old.exempt, &lists.exempt),
            };
            for gone in was.iter().filter(|e| !is.iter().any(|n| n.net == e.net)) {
                if let Some(net) = gone.netmask() {
                    self.unlist(kind, &net);
                }
            }
        }
        self.apply_runtime_lists();
        if old != lists {
            tracing::info!(target: "socks4d", deny = lists.deny.len(), exempt = lists.exempt.len(), "fleet: run-time lists loaded");
            self.keep_runtime_lists();
        }
    }

    /// Restores the run-time entries the state file holds (once it is
    /// read, at start).
    pub(crate) fn restore_runtime_lists(&self) {
        let Some(section) = self.state_file().and_then(|f| f.section(SECTION)) else {
            return;
        };
        match serde_json::from_value::<RuntimeLists>(section) {
            Ok(mut lists) => {
                let bound = self.settings().runtime_list_entries;
                lists.deny.truncate(bound);
                lists.exempt.truncate(bound);
                tracing::info!(target: "socks4d", deny = lists.deny.len(), exempt = lists.exempt.len(), "run-time list entries restored");
                *self.inner.runtime.lock().unwrap_or_else(|e| e.into_inner()) = lists;
                self.apply_runtime_lists();
            }
            Err(e) => {
                tracing::warn!(target: "socks4d", error = %e, "state file: the run-time lists do not parse; starting without them")
            }
        }
    }

    /// Hands the entries to the state file, if there is one (written with
    /// its next write).
    fn keep_runtime_lists(&self) {
        if let Some(file) = self.state_file() {
            let lists = self.runtime_lists();
            file.set_section(SECTION, serde_json::to_value(&lists).unwrap_or_default());
        }
    }

    /// How many run-time entries each list holds.
    pub(crate) fn runtime_list_len(&self, kind: ListKind) -> usize {
        let lists = self.inner.runtime.lock().unwrap_or_else(|e| e.into_inner());
        match kind {
            ListKind::Deny => lists.deny.len(),
            ListKind::Exempt => lists.exempt.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::options::Options;
    use crate::config::settings::Settings;

    fn daemon(toml: &str) -> Daemon {
        let options = Options::from_toml(toml).unwrap();
        Daemon::new(Settings::from_options(options).unwrap())
    }

    fn add(d: &Daemon, net: &str, ttl: Option<Duration>, now: SystemTime) -> Result<bool, String> {
        let addition = Addition {
            kind: ListKind::Deny,
            net: net.parse().unwrap(),
            ttl,
            reason: Some("test".into()),
            who: "uid 0",
        };
        d.add_runtime(addition, now)
    }

    #[test]
    fn entries_expire_stay_bounded_and_leave_the_files_alone() {
        let d = daemon("[access]\ndeny = [\"192.0.2.0/24\"]\n[limits]\nruntime_list_entries = 2\n");
        let t0 = UNIX_EPOCH + Duration::from_millis(1_000_000_900);
        let ip = "198.51.100.7".parse().unwrap();
        assert_eq!(
            add(&d, "198.51.100.7", Some(Duration::from_secs(2)), t0),
            Ok(true)
        );
        assert!(d.denied(ip));
        assert_eq!(
            add(&d, "198.51.100.7", Some(Duration::from_secs(2)), t0),
            Ok(false)
        );
        assert!(add(&d, "198.51.100.8", Some(Duration::MAX), t0).is_err());
        let long = Addition {
            kind: ListKind::Deny,
            net: "198.51.100.8".parse().unwrap(),
            ttl: None,
            reason: Some("x".repeat(MAX_REASON + 1)),
            who: "uid 0",
        };
        assert!(d.add_runtime(long, t0).is_err());
        assert!(add(&d, "192.0.2.0/24", None, t0).is_err(), "a file entry");
        assert_eq!(add(&d, "198.51.100.8", None, t0), Ok(true));
        let full = add(&d, "198.51.100.9", None, t0).unwrap_err();
        assert!(full.contains("runtime_list_entries"), "{full}");
        // A reload keeps them.
        d.reload().unwrap();
        assert!(d.denied(ip));
        d.expire_runtime(t0 + Duration::from_millis(1999));
        assert!(d.denied(ip), "not before its 2 s");
        d.expire_runtime(t0 + Duration::from_secs(3));
        assert!(!d.denied(ip), "expired at most a second late");
        assert_eq!(d.runtime_list_len(ListKind::Deny), 1);
        // Deleting: run-time entries only.
        let file: Netmask = "192.0.2.0/24".parse().unwrap();
        assert!(d.del_runtime(ListKind::Deny, &file).is_err());
        assert!(d.denied("192.0.2.1".parse().unwrap()));
        assert!(d
            .del_runtime(ListKind::Deny, &"198.51.100.8".parse().unwrap())
            .is_ok());
        assert_eq!(d.runtime_list_len(ListKind::Deny), 0);
    }

    #[test]
    fn the_fleets_lists_replace_these_and_the_policy_follows() {
        let d = daemon("");
        let t0 = UNIX_EPOCH + Duration::from_secs(2_000_000_000);
        assert_eq!(add(&d, "198.51.100.7", None, t0), Ok(true));
        let entry = |net: &str, expires_at: Option<u64>| ListEntry {
            net: net.into(),
            reason: None,
            added_by: "uid 0".into(),
            added_at: unix(t0),
            expires_at,
        };
        let lists = RuntimeLists {
            deny: vec![
                entry("203.0.113.0/24", None),
                entry("192.0.2.9/32", Some(unix(t0) - 1)),
                entry("not a net", None),
            ],
            exempt: vec![entry("203.0.113.5/32", Some(unix(t0) + 60))],
        };
        d.set_runtime_lists(lists, t0);
        assert!(
            !d.denied("198.51.100.7".parse().unwrap()),
            "gone from the fleet's"
        );
        assert!(d.denied("203.0.113.9".parse().unwrap()));
        assert!(!d.denied("192.0.2.9".parse().unwrap()), "expired");
        assert!(d.exempted("203.0.113.5".parse().unwrap()));
        assert_eq!(d.runtime_list_len(ListKind::Deny), 1);
        // Emptied: the policy holds none of them.
        d.set_runtime_lists(RuntimeLists::default(), t0);
        assert!(!d.denied("203.0.113.9".parse().unwrap()));
        assert!(!d.exempted("203.0.113.5".parse().unwrap()));
    }
}
