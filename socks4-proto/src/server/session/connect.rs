//! The connect phase: once access and identity are settled, a CONNECT asks
//! the driver to race every address the policy passed (Happy Eyeballs), or
//! to try the route's parents (healthy ones first, each within its attempt
//! deadline), and hears which one won; a BIND goes to [`bind`](super::bind).

use super::finish::reply_addr;
use super::{ServerSession, State};
use crate::codec::{Command, Reply, ReplyCode};
use crate::server::action::{Action, Destination, Hop, Won};
use crate::server::event::Event;
use crate::server::reason::CloseReason;
use crate::server::timer::Timer;
use socks4_acl::Parent;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

impl ServerSession {
    /// Access and identity are settled: connect (directly, or through the
    /// route's parents), or bind.
    pub(super) fn proceed(&mut self, now: Instant) {
        let via = self.route.clone().flatten();
        match self.req().command {
            Command::Connect => {
                self.state = State::Connecting;
                self.hs
                    .timers
                    .set_after(Timer::Connect, now, self.cfg.timeouts.connect);
                match via {
                    None => self.connect_direct(),
                    Some(routed) => self.connect_via(routed.parents, routed.balance),
                }
            }
            // A BIND listens here, for the client's peer to reach: it is not
            // forwarded to a parent.
            Command::Bind if via.is_some() => self.reject(
                ReplyCode::Rejected,
                CloseReason::ParentFailed(ErrorKind::Unsupported),
            ),
            Command::Bind => self.listen(now),
        }
    }

    /// What to ask of `parent`: the name when it takes names and none of the
    /// name's addresses is known (or the name was sniffed: the parent
    /// resolves it), else an address the policy passed (IPv4 for a SOCKS4
    /// parent); `None` when it can carry none of them.
    fn hop(&self, parent: Parent) -> Option<Hop> {
        let req = self.req();
        let dest = match &req.host {
            Some(host)
                if parent.kind.takes_names() && (self.hs.candidates.is_empty() || self.sniffed) =>
            {
                Destination::Name(host.clone(), req.port)
            }
            _ => Destination::Addr(
                *self
                    .hs
                    .candidates
                    .iter()
                    .find(|a| a.is_ipv4() || parent.kind.takes_names())?,
            ),
        };
        let user_id = parent
            .user
            .as_ref()
            .map_or_else(|| req.user_id.clone(), |u| u.as_bytes().to_vec());
        Some(Hop {
            parent,
            dest,
            user_id,
        })
    }

    /// Asks for the route's parents that can carry the request; 91 when none
    /// can.
    fn connect_via(&mut self, parents: Vec<Parent>, balance: socks4_acl::Balance) {
        let hops: Vec<Hop> = parents.into_iter().filter_map(|p| self.hop(p)).collect();
        if hops.is_empty() {
            return self.reject(
                ReplyCode::Rejected,
                CloseReason::ParentFailed(ErrorKind::Unsupported),
            );
        }
        self.hs.hops = Some(hops.clone());
        self.actions.push_back(Action::ConnectVia { hops, balance });
    }

    fn connect_direct(&mut self) {
        if self.hs.candidates.is_empty() {
            return self.reject(ReplyCode::Rejected, CloseReason::ConnectFailed(None));
        }
        let all = self.hs.candidates.iter().copied().collect();
        self.actions.push_back(Action::Connect(all));
    }

    /// The driver's answer to `Connect` or `ConnectVia`.
    pub(super) fn on_connect_outcome(&mut self, outcome: Result<Won, ErrorKind>) {
        match (outcome, self.hs.hops.take()) {
            (Ok(won), None) => match self.hs.candidates.get(won.index).copied() {
                Some(dest) => self.on_connected(dest, won.attempts),
                None => self.reject(ReplyCode::Rejected, CloseReason::ConnectFailed(None)),
            },
            (Ok(won), Some(mut hops)) if won.index < hops.len() => {
                let hop = hops.swap_remove(won.index);
                self.on_connected_via(hop, won.attempts);
            }
            (Ok(_), Some(_)) => self.reject(
                ReplyCode::Rejected,
                CloseReason::ParentFailed(ErrorKind::InvalidInput),
            ),
            (Err(kind), None) => {
                self.reject(ReplyCode::Rejected, CloseReason::ConnectFailed(Some(kind)))
            }
            (Err(kind), Some(_)) => {
                self.reject(ReplyCode::Rejected, CloseReason::ParentFailed(kind))
            }
        }
    }

    fn on_connected(&mut self, dest: SocketAddr, attempts: u32) {
        self.hs.timers.clear();
        self.reply(Reply::new(ReplyCode::Granted, reply_addr(dest)));
        self.events.push_back(Event::Attempts { attempts });
        self.events.push_back(Event::SockUp {
            dest,
            source: self.source,
        });
        self.start_relay();
    }

    fn on_connected_via(&mut self, hop: Hop, attempts: u32) {
        // Through a parent, a name's address is the parent's business: the
        // reply carries 0.0.0.0 and the port (clients ignore CONNECT's).
        let addr = match &hop.dest {
            Destination::Addr(a) => *a,
            Destination::Name(_, port) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), *port),
        };
        self.hs.timers.clear();
        self.reply(Reply::new(ReplyCode::Granted, reply_addr(addr)));
        self.events.push_back(Event::Attempts { attempts });
        self.events.push_back(Event::Routed {
            parent: hop.parent,
            dest: hop.dest,
        });
        self.events.push_back(Event::SockUp {
            dest: addr,
            source: self.source,
        });
        self.start_relay();
    }
}
