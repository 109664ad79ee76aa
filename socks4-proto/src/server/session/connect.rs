//! The connect phase: once access and identity are settled, a CONNECT tries
//! each address the policy passed in turn, or the route's parents one after
//! another, until one connects; a BIND goes to [`bind`](super::bind).

use super::finish::reply_addr;
use super::{ServerSession, State};
use crate::codec::{Command, Reply, ReplyCode};
use crate::server::action::{Action, Destination};
use crate::server::event::Event;
use crate::server::reason::CloseReason;
use crate::server::timer::Timer;
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
                self.timers
                    .set_after(Timer::Connect, now, self.cfg.timeouts.connect);
                match via {
                    None => self.connect_next(),
                    Some(routed) => {
                        self.parents_left = routed.parents.into();
                        self.connect_next_parent();
                    }
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

    /// Tries the next parent of the route; 91 when none is left.
    pub(super) fn connect_next_parent(&mut self) {
        while let Some(parent) = self.parents_left.pop_front() {
            let req = self.req();
            let dest = match &req.host {
                Some(host) if parent.kind.takes_names() && self.candidates.is_empty() => {
                    Destination::Name(host.clone(), req.port)
                }
                _ => {
                    // An address the policy passed; a SOCKS4 parent needs IPv4.
                    let found = self
                        .candidates
                        .iter()
                        .find(|a| a.is_ipv4() || parent.kind.takes_names());
                    match found {
                        Some(a) => Destination::Addr(*a),
                        None => {
                            self.last_connect_error = Some(ErrorKind::Unsupported);
                            continue;
                        }
                    }
                }
            };
            let user_id = parent
                .user
                .as_ref()
                .map_or_else(|| req.user_id.clone(), |u| u.as_bytes().to_vec());
            self.via = Some((parent.clone(), dest.clone()));
            self.actions.push_back(Action::ConnectVia {
                parent,
                dest,
                user_id,
            });
            return;
        }
        self.via = None;
        self.reject(
            ReplyCode::Rejected,
            CloseReason::ParentFailed(self.last_connect_error.unwrap_or(ErrorKind::Unsupported)),
        );
    }

    pub(super) fn connect_next(&mut self) {
        match self.candidates.pop_front() {
            Some(addr) => self.actions.push_back(Action::Connect(addr)),
            None => self.reject(
                ReplyCode::Rejected,
                CloseReason::ConnectFailed(self.last_connect_error),
            ),
        }
    }

    pub(super) fn on_connected(&mut self) {
        // Connect pops its candidate; the one connected is the last popped.
        let dest = self.connected_dest();
        self.timers.clear();
        self.reply(Reply::new(ReplyCode::Granted, reply_addr(dest)));
        self.events.push_back(Event::SockUp {
            dest,
            source: self.source,
        });
        self.start_relay();
    }

    pub(super) fn on_connected_via(&mut self) {
        let Some((parent, dest)) = self.via.take() else {
            return;
        };
        // Through a parent, a name's address is the parent's business: the
        // reply carries 0.0.0.0 and the port (clients ignore CONNECT's).
        let addr = match &dest {
            Destination::Addr(a) => *a,
            Destination::Name(_, port) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), *port),
        };
        self.timers.clear();
        self.reply(Reply::new(ReplyCode::Granted, reply_addr(addr)));
        self.events.push_back(Event::Routed { parent, dest });
        self.events.push_back(Event::SockUp {
            dest: addr,
            source: self.source,
        });
        self.start_relay();
    }

    fn connected_dest(&self) -> SocketAddr {
        let tried = self.allowed_peers.len() - self.candidates.len();
        SocketAddr::new(self.allowed_peers[tried - 1], self.req().port)
    }
}
