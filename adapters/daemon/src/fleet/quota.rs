//! Shared quota usage: once a second (with the heartbeat), soon after a
//! relay under a quota ends, and on shutdown,
//! each instance adds the bytes its clients moved since the last batch to
//! one counter per client and period in Redis (`INCRBY`), which answers
//! with the fleet's total; a client whose relay is running and that moved
//! nothing here is read (`GET`), so that another instance's traffic reaches
//! it too. The relays and the admission check hold a client to its quota
//! on this instance's bytes plus the others' (`Usage::total`). A counter
//! expires an hour after its period ends: periods roll over by themselves.

use super::redis::{cmd, int, Command};
use crate::limits::client_table::ClientTable;
use crate::limits::meter::{unix_now, Usage};
use redis_protocol::resp2::types::OwnedFrame;
use std::sync::Arc;

/// How long a period's counter outlives the period, in seconds.
const KEEP_AFTER: u64 = 3600;

/// A batch's question about one client's usage, to match with its answer.
pub(super) struct Asked {
    usage: Arc<Usage>,
    index: u64,
    /// The bytes told (0: only read).
    told: u64,
}

/// The commands of one batch (each asked item takes `INCRBY` and
/// `EXPIREAT`, or `GET` alone) and what they ask about.
pub(super) fn batch(prefix: &str, clients: &ClientTable) -> (Vec<Command>, Vec<Asked>) {
    let unix = unix_now();
    let mut commands = Vec::new();
    let mut asked = Vec::new();
    for (key, usage, held) in clients.quota_book().records() {
        let (period, index, delta) = usage.unpushed(unix);
        if delta == 0 && !held {
            continue;
        }
        let name = format!("{prefix}:quota:{}:{index}:{key}", period.name()).into_bytes();
        if delta > 0 {
            let end = period.start(index + 1) + KEEP_AFTER;
            commands.push(cmd([b"INCRBY", &name, delta.to_string().as_bytes()]));
            commands.push(cmd([b"EXPIREAT", &name, end.to_string().as_bytes()]));
        } else {
            commands.push(cmd([b"GET", &name]));
        }
        asked.push(Asked {
            usage,
            index,
            told: delta,
        });
    }
    (commands, asked)
}

/// Takes the answers of a batch from `replies`: each usage learns the
/// fleet's total. `false` when Redis refused a command.
pub(super) fn heard(asked: Vec<Asked>, replies: &mut impl Iterator<Item = OwnedFrame>) -> bool {
    let mut ok = true;
    for a in asked {
        let total = replies.next();
        if a.told > 0 {
            let _ = replies.next(); // EXPIREAT
        }
        match total {
            Some(OwnedFrame::Null) => a.usage.heard(a.index, a.told, 0),
            Some(f) => match int(&f) {
                Some(total) => a
                    .usage
                    .heard(a.index, a.told, u64::try_from(total).unwrap_or(0)),
                None => ok = false,
            },
            None => ok = false,
        }
    }
    ok
}

/// Counts the usage a server starts with (restored from the state file) as
/// told: the fleet's counters hold it already.
pub(super) fn all_told(clients: &ClientTable) {
    for (_, usage, _) in clients.quota_book().records() {
        usage.all_told();
    }
}
