//! The IDENT phase: when the configuration or the deciding rule asks for it,
//! identd on the client's host is asked who owns the connection, and in
//! `require` mode its answer must name the request's user id. Asked after
//! admission, or before it when the adapter keys its limits on the verified
//! user (`ServerConfig::ident_before_admission`).

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
        if self.identified {
            // Asked before admission already.
            self.proceed(now);
        } else if self.ident_required || self.cfg.ident == IdentMode::Log {
            self.ask_ident(now);
        } else {
            self.proceed(now);
        }
    }

    /// Whether admission waits for identd's answer: IDENT is required and
    /// the adapter keys its limits on the verified user
    /// ([`ServerConfig::ident_before_admission`](crate::server::ServerConfig::ident_before_admission)).
    pub(super) fn ident_before_admission(&self) -> bool {
        self.cfg.ident_before_admission && self.cfg.ident == IdentMode::Require && !self.identified
    }

    /// Asks identd who owns the connection, within the IDENT timeout.
    pub(super) fn ask_ident(&mut self, now: Instant) {
        self.ident_required |= self.cfg.ident == IdentMode::Require;
        self.state = State::Identing;
        self.hs
            .timers
            .set_after(Timer::Ident, now, self.cfg.timeouts.ident);
        let to = SocketAddr::new(self.peer.ip(), self.cfg.ident_port);
        let server_port = self.reached.unwrap_or(self.local).port();
        let query = Query::new(self.peer.port(), server_port);
        self.actions.push_back(Action::IdentQuery { to, query });
    }

    pub(super) fn on_ident(&mut self, now: Instant, outcome: Option<socks4_ident::Outcome>) {
        let comparison = outcome
            .as_ref()
            .map_or(Comparison::Unavailable, |o| o.compare(&self.req().user_id));
        self.events.push_back(Event::Ident { outcome });
        self.identified = true;
        if self.ident_required {
            match comparison {
                Comparison::Match => self.ident_matched = true,
                Comparison::Mismatch => {
                    return self.reject(ReplyCode::IdentMismatch, CloseReason::IdentMismatch)
                }
                Comparison::Unavailable => {
                    return self.reject(ReplyCode::IdentUnreachable, CloseReason::IdentUnavailable)
                }
            }
        }
        match self.hs.admit_after_ident.take() {
            Some((verdict, next)) => self.request_admission(verdict, next),
            None => self.proceed(now),
        }
    }
}
