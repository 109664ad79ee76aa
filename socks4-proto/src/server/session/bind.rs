//! The BIND phase: a listener on the interface the client reached (first
//! reply 90 with its address), then the one inbound connection it takes
//! (second reply 90 and the relay if it comes from the request's DSTIP, else
//! 91 and the close).

use super::finish::reply_addr;
use super::{ServerSession, State};
use crate::codec::{Reply, ReplyCode};
use crate::server::action::Action;
use crate::server::event::Event;
use crate::server::reason::CloseReason;
use crate::server::timer::Timer;
use socks4_acl::canonical;
use std::net::SocketAddr;
use std::time::Instant;

impl ServerSession {
    /// Listens for the client's peer on the interface the client reached us
    /// on (or the configured bind address), within the accept timeout.
    pub(super) fn listen(&mut self, now: Instant) {
        self.state = State::Binding;
        self.hs
            .timers
            .set_after(Timer::Accept, now, self.cfg.timeouts.bind_accept);
        let ip = self.cfg.bind_address.unwrap_or(self.local.ip());
        self.actions.push_back(Action::Bind(SocketAddr::new(ip, 0)));
    }

    pub(super) fn on_bound(&mut self, addr: SocketAddr) {
        // The listener's own address; if bound to a wildcard, the interface the
        // client reached us on is the truth.
        let addr = if addr.ip().is_unspecified() {
            SocketAddr::new(self.local.ip(), addr.port())
        } else {
            addr
        };
        self.state = State::Accepting;
        self.reply(Reply::new(ReplyCode::Granted, reply_addr(addr)));
        self.events.push_back(Event::BindUp { listen: addr });
        self.actions.push_back(Action::Accept);
    }

    pub(super) fn on_accepted(&mut self, from: SocketAddr) {
        if !self.hs.allowed_peers.contains(&canonical(from.ip())) {
            return self.reject(ReplyCode::Rejected, CloseReason::BindWrongPeer(from));
        }
        self.hs.timers.clear();
        self.reply(Reply::new(ReplyCode::Granted, reply_addr(from)));
        self.events.push_back(Event::SockUp {
            dest: from,
            source: self.source,
        });
        self.start_relay();
    }
}
