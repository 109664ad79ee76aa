//! How a session ends its handshake: replies (only to a SOCKS client), the
//! hand-off to the relay with the client's early data, or a refusal and the
//! close, which frees what only the handshake needed.

use super::{ServerSession, State};
use crate::codec::{Reply, ReplyCode};
use crate::server::action::Action;
use crate::server::event::Event;
use crate::server::reason::CloseReason;
use socks4_acl::canonical;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

impl ServerSession {
    pub(super) fn start_relay(&mut self) {
        self.state = State::Relaying;
        let client_leftover = std::mem::take(&mut self.hs.buf);
        // What only the handshake needed goes, so that a long relay holds little.
        self.hs.release();
        self.actions
            .push_back(Action::StartRelay { client_leftover });
    }

    /// Sends a reply, unless the connection has no SOCKS client (transparent,
    /// redirected and forwarded connections get none).
    pub(super) fn reply(&mut self, reply: Reply) {
        if self.replies {
            self.actions.push_back(Action::SendReply(reply));
        }
    }

    pub(super) fn reject(&mut self, code: ReplyCode, reason: CloseReason) {
        self.reply(Reply::with_code(code));
        self.events.push_back(Event::Rejected { code, reason });
        self.close(reason);
    }

    pub(super) fn close(&mut self, reason: CloseReason) {
        if self.state == State::Closed {
            return;
        }
        self.state = State::Closed;
        if let Some(hs) = self.hs.get_mut() {
            hs.timers.clear();
            hs.buf = Vec::new();
            hs.candidates.clear();
        }
        self.actions.push_back(Action::Close(reason));
        self.events.push_back(Event::Disconnected { reason });
    }
}

/// The address fields of a reply: IPv4 as is, IPv4-mapped IPv6 as IPv4, and
/// anything else (a real IPv6 address, which SOCKS4 cannot carry) as 0.0.0.0 with
/// the port, which tells a BIND client to use the proxy's address.
pub(super) fn reply_addr(addr: SocketAddr) -> SocketAddrV4 {
    match canonical(addr.ip()) {
        IpAddr::V4(v4) => SocketAddrV4::new(v4, addr.port()),
        IpAddr::V6(_) => SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, addr.port()),
    }
}
