//! A name's answer in two parts (RFC 8305 §3): the driver reports one
//! family's addresses first ([`ActionOutcome::ResolvedFirst`]) and the other
//! family's later ([`ServerSession::handle_late_addresses`]).
//!
//! A direct CONNECT that the policy passes for an address of the first part
//! goes on at once ([`Late::Joining`]); each late address is put to the
//! policy, and those it passes join the race ([`Action::ConnectMore`]).
//! Every other request waits for the whole answer and is decided on it, as
//! on a one-part answer ([`Late::Held`]): a BIND (its client's peer may come
//! from any address), a route through parents (a parent takes one address,
//! and a SOCKS4 parent only an IPv4 one), and a first part the policy passes
//! none of (the other family's may pass).
//!
//! [`ActionOutcome::ResolvedFirst`]: crate::server::ActionOutcome::ResolvedFirst

use super::policy::connectable;
use super::{ServerSession, State};
use crate::codec::Command;
use crate::server::action::Action;
use crate::server::event::Event;
use crate::server::timer::Timer;
use socks4_acl::canonical;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// Whether the rest of a name's answer is to come, and what waits for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) enum Late {
    /// Nothing is to come.
    #[default]
    None,
    /// The request went on with the first part; late addresses join it.
    Joining,
    /// The request waits for the rest, the first part held.
    Held(Vec<IpAddr>),
}

impl ServerSession {
    /// The first part of a two-part answer.
    pub(super) fn on_resolved_first(&mut self, now: Instant, addrs: Vec<IpAddr>) {
        if self.starts_early(&addrs) {
            self.hs.timers.stop(Timer::Resolve);
            self.hs.late = Late::Joining;
            self.on_resolved(now, Ok(addrs));
        } else {
            // The resolve timer keeps running: it bounds the wait.
            self.hs.late = Late::Held(addrs);
        }
    }

    /// Whether a request can go on with `addrs` before the rest of the
    /// answer: a CONNECT, passed for one of them, whose route is direct.
    fn starts_early(&self, addrs: &[IpAddr]) -> bool {
        if self.req().command != Command::Connect {
            return false;
        }
        let first = addrs
            .iter()
            .map(|a| canonical(*a))
            .find(|&a| connectable(a) && (self.decided || self.verdict_for(a).is_pass()));
        let Some(first) = first else {
            return false;
        };
        match &self.route {
            Some(routed) => routed.is_none(),
            None => self.route_for(first).is_none(),
        }
    }

    /// The rest of a two-part answer: see [`handle_late_addresses`](Self::handle_late_addresses).
    pub(super) fn on_late(&mut self, now: Instant, addrs: Vec<IpAddr>) {
        let late = self.hs.get_mut().map(|hs| std::mem::take(&mut hs.late));
        match late.unwrap_or_default() {
            Late::None => {}
            Late::Held(mut first) => {
                if self.state == State::Resolving {
                    self.hs.timers.stop(Timer::Resolve);
                    first.extend(addrs);
                    self.on_resolved(now, Ok(first));
                }
            }
            Late::Joining => self.join(addrs),
        }
    }

    /// Late addresses for a request that went on without them: those the
    /// policy passes become candidates, and join the race when it runs.
    fn join(&mut self, addrs: Vec<IpAddr>) {
        let going_on = matches!(
            self.state,
            State::Admitting | State::Identing | State::Connecting
        );
        if addrs.is_empty() || !going_on {
            return;
        }
        let host = self.req().host.clone().unwrap_or_default();
        self.events.push_back(Event::LateAddresses {
            host,
            addrs: addrs.clone(),
        });
        let port = self.req().port;
        let mut joined = Vec::new();
        for addr in addrs.into_iter().map(canonical) {
            let dest = SocketAddr::new(addr, port);
            if !connectable(addr) || self.hs.candidates.contains(&dest) {
                continue;
            }
            // Passed by a rule that wants IDENT: only when IDENT was
            // required anyway (asked, and matched, before connecting).
            let verdict = self.verdict_for(addr);
            if verdict.is_pass() && (!verdict.require_ident || self.ident_required) {
                self.hs.candidates.push_back(dest);
                self.hs.allowed_peers.push(addr);
                joined.push(dest);
            }
        }
        if !joined.is_empty() && self.state == State::Connecting && self.hs.hops.is_none() {
            self.actions.push_back(Action::ConnectMore(joined));
        }
    }
}
