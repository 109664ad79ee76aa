//! Outbound connections with more than one way to go: a destination's
//! addresses raced as Happy Eyeballs does ([`connect_any`]: the next address
//! `attempt_delay` after the previous one, each within `connect_attempt`,
//! counted by family and result), and a route's parents tried one at a time
//! ([`connect_parents`]: healthy ones first in the route's `balance` order,
//! each within `connect_attempt`, every attempt's end recorded in the
//! parent's health).

use crate::conn::exit::Exit;
use crate::conn::parent::{self, Reach};
use crate::conn::race::{race, AttemptEnd, More};
use crate::daemon::outbound::ParentOpen;
use crate::daemon::Daemon;
use crate::runtime::endpoint::Endpoint;
use crate::runtime::own_sockets::Mark;
use crate::runtime::{socket, Runtime};
use socks4_acl::Balance;
use socks4_proto::eyeballs::RaceConfig;
use socks4_proto::server::{Hop, Timeouts, Won};
use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Instant;

/// A TCP connection to one of `addrs` (in the order to try them), or of
/// those `more` brings later (they join the race: the other family's
/// addresses, RFC 8305 §3; numbered after `addrs`), each leaving by `exit`:
/// the stream and which one won.
pub(crate) async fn connect_any<R: Runtime>(
    rt: &R,
    daemon: &Daemon,
    addrs: Vec<SocketAddr>,
    more: Option<More<'_, SocketAddr>>,
    timeouts: &Timeouts,
    exit: &Exit,
) -> io::Result<(R::Stream, Mark, Won)> {
    let ours = daemon.own_sockets().clone();
    let cfg = RaceConfig::new(timeouts.attempt_delay, timeouts.connect_attempt);
    let raced = race(rt, addrs, more, cfg, |_, &to| {
        let (rt, ours) = (rt.clone(), ours.clone());
        let egress = exit.egress(to);
        Box::pin(async move { socket::connect_marked(&rt, to, &egress?, &ours).await })
    })
    .await;
    let books = daemon.outbound();
    for (i, end) in &raced.attempts {
        books.count_attempt(raced.candidates[*i].ip(), end.label());
    }
    raced
        .result
        .map(|((stream, mark), won)| (stream, mark, won))
}

/// A tunnel through one of a route's parents.
pub(crate) struct Tunnel<S> {
    /// The tunnel.
    pub(crate) endpoint: Endpoint<S>,
    /// Bytes the parent sent after granting.
    pub(crate) leftover: Vec<u8>,
    /// Which hop (index into the action's) won, after how many attempts.
    pub(crate) won: Won,
    /// The connection counted as open through the parent.
    pub(crate) open: ParentOpen,
    /// The connection to the parent, marked as the server's own.
    pub(crate) mark: Mark,
}

/// Tells the fleet of a parent marked down (or down again), or up after it
/// was down.
fn share_health(
    fleet: &crate::daemon::fleet_link::FleetLink,
    parent: &socks4_acl::Parent,
    health: Option<socks4_proto::health::Health>,
    was_down: bool,
    now: Instant,
) {
    use crate::daemon::fleet_link::SharedChange;
    let Some(health) = health else { return };
    match (health.down_until, health.backoff) {
        (Some(until), Some(backoff)) => {
            let unix_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis();
            let left = until.saturating_duration_since(now).as_millis();
            let ms = |v: u128| u64::try_from(v).unwrap_or(u64::MAX);
            fleet.changed(SharedChange::ParentDown(
                parent.to_string(),
                ms(unix_ms + left),
                ms(backoff.as_millis()),
            ));
        }
        _ if was_down => fleet.changed(SharedChange::ParentUp(parent.to_string())),
        _ => {}
    }
}

/// Connects through one of `hops` (a route's parents, in its order), one at
/// a time, each within `connect_attempt`, in the order the parents' health
/// and `balance` give. A SOCKS4a name that cannot be a host is refused
/// before any parent is tried (no parent's health counts it).
pub(crate) async fn connect_parents<R: Runtime>(
    rt: &R,
    hops: &[Hop],
    balance: Balance,
    how: Reach<'_>,
) -> io::Result<Tunnel<R::Stream>> {
    if let Some(first) = hops.first() {
        parent::refuse_bad_name(&first.parent, &first.dest)?;
    }
    let daemon = how.daemon;
    let book = daemon.outbound().parents.clone();
    let parents: Vec<&socks4_acl::Parent> = hops.iter().map(|h| &h.parent).collect();
    let order = book.order(&parents, balance, rt.now());
    let timeouts = daemon.server_config().timeouts;
    let started: Mutex<Vec<Instant>> = Mutex::new(vec![rt.now(); order.len()]);
    let cfg = RaceConfig::sequential(timeouts.connect_attempt);
    let raced = race(rt, order.clone(), None, cfg, |k, &index| {
        let hop = &hops[index];
        let (rt, how) = (rt.clone(), how.clone());
        if let Ok(mut s) = started.lock() {
            s[k] = rt.now();
        }
        Box::pin(async move {
            parent::connect_via(&rt, &hop.parent, &hop.dest, &hop.user_id, how).await
        })
    })
    .await;
    let now = rt.now();
    let started = started.into_inner().unwrap_or_else(|e| e.into_inner());
    for (k, end) in &raced.attempts {
        let parent = &hops[order[*k]].parent;
        let error = match end {
            AttemptEnd::Failed(e) => Some(e.to_string()),
            AttemptEnd::TimedOut => Some(format!(
                "no answer within {}",
                humantime::format_duration(timeouts.connect_attempt)
            )),
            _ => None,
        };
        let took = now.saturating_duration_since(started[*k]);
        let was_down = book.health(parent).is_some_and(|h| h.is_marked_down());
        if book.record(parent, end.label(), error.clone(), took, now) {
            tracing::warn!(target: "socks4d", conn = how.conn, %parent, error = error.as_deref().unwrap_or(""), "parent marked down");
        }
        if let Some(fleet) = daemon.fleet() {
            share_health(fleet, parent, book.health(parent), was_down, now);
        }
    }
    let ((endpoint, leftover, mark), won) = raced.result?;
    let hop = &hops[order[won.index]];
    Ok(Tunnel {
        endpoint,
        leftover,
        won: Won {
            index: order[won.index],
            attempts: won.attempts,
        },
        open: book.opened(&hop.parent),
        mark,
    })
}
