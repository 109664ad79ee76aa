//! The IDENT phase: when the configuration or the deciding rule asks for it,
//! identd on the client's host is asked who owns the connection, and in
//! `require` mode its answer must name the request's user id.

use super::{ServerSession, State};
use crate::codec::ReplyCode;
use crate::server::action::Action;
use crate::server::config::IdentMode;
use crate::server::event::Event;
use crate::server::reason::CloseReason;
use crate::server::timer::Timer;
use socks4_ident::{Comparison, Query};
use std::net::SocketAddr;
use std::time::Instant;

impl ServerSession {
    /// Access is settled: ask identd when configured to, then connect or bind.
    pub(super) fn identify(&mut self, now: Instant) {
        self.ident_required |= self.cfg.ident == IdentMode::Require;
        if self.ident_required || self.cfg.ident == IdentMode::Log {
            self.state = State::Identing;
            self.timers
                .set_after(Timer::Ident, now, self.cfg.timeouts.ident);
            let to = SocketAddr::new(self.peer.ip(), self.cfg.ident_port);
            let server_port = self.reached.unwrap_or(self.local).port();
            let query = Query::new(self.peer.port(), server_port);
            self.actions.push_back(Action::IdentQuery { to, query });
        } else {
            self.proceed(now);
        }
    }

    pub(super) fn on_ident(&mut self, now: Instant, outcome: Option<socks4_ident::Outcome>) {
        let comparison = outcome
            .as_ref()
            .map_or(Comparison::Unavailable, |o| o.compare(&self.req().user_id));
        self.events.push_back(Event::Ident { outcome });
        if !self.ident_required {
            return self.proceed(now);
        }
        match comparison {
            Comparison::Match => self.proceed(now),
            Comparison::Mismatch => {
                self.reject(ReplyCode::IdentMismatch, CloseReason::IdentMismatch)
            }
            Comparison::Unavailable => {
                self.reject(ReplyCode::IdentUnreachable, CloseReason::IdentUnavailable)
            }
        }
    }
}
