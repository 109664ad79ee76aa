//! The request phase: the request read from the client (or made up for a
//! connection whose destination is known), the cap on early data, and for a
//! SOCKS4a name what can be decided before it resolves, then the lookup.

use super::policy::{acl_command, Next, Routed};
use super::{Req, ServerSession, State};
use crate::codec::{Dest, ReplyCode, Request, Status};
use crate::server::action::Action;
use crate::server::event::Event;
use crate::server::reason::{CloseReason, ResolveError};
use crate::server::timer::Timer;
use socks4_acl::Subject;
use std::net::IpAddr;
use std::time::Instant;

impl ServerSession {
    pub(super) fn try_request(&mut self, now: Instant) {
        let (req, used, ip) = match Request::decode(&self.hs.buf, &self.cfg.limits) {
            Ok(Status::Incomplete) => return,
            Err(e) => return self.reject(e.reply_code(), CloseReason::Protocol(e)),
            Ok(Status::Complete(r, used)) => {
                let (host, ip) = match r.dest {
                    Dest::Addr(a) => (None, Some(*a.ip())),
                    Dest::Domain(h, _) => (Some(h.to_owned()), None),
                };
                let req = Req {
                    command: r.command,
                    host,
                    port: r.dest.port(),
                    user_id: r.user_id.to_vec(),
                    shown: r.dest.to_string(),
                };
                (req, used, ip)
            }
        };
        self.hs.timers.stop(Timer::Handshake);
        self.hs.buf.drain(..used);
        self.on_request(now, req, ip.map(IpAddr::V4));
    }

    /// A request is known (read from the client, or made up for a connection
    /// whose destination is known): decide it.
    pub(super) fn on_request(&mut self, now: Instant, req: Req, ip: Option<IpAddr>) {
        self.events.push_back(Event::Request {
            command: req.command,
            dest: req.shown.clone(),
            user_id: req.user_id.clone(),
        });
        self.hs.req = Some(req);
        if self.check_early_data() {
            return;
        }
        match ip {
            // SOCKS4: the address is in the request.
            Some(ip) => self.on_addresses(now, vec![ip]),
            // SOCKS4a: the request named a host instead. Decide what can be
            // decided before resolving it: a refused client costs no lookup.
            None => {
                let cfg = self.cfg.clone();
                let req = self.req();
                let subject = Subject {
                    client: self.peer,
                    dest_addr: None,
                    dest_host: req.host.as_deref(),
                    dest_port: req.port,
                    command: acl_command(req.command),
                    user_id: &req.user_id,
                    cert: self.cert.as_deref(),
                };
                let decision = cfg.policy.decide_without_address(&subject);
                // The route, too, if the address cannot change it: a parent
                // that takes names gets the name unresolved.
                let found = cfg.policy.routes.find_without_address(&subject);
                let route = found.map(|r| (r.and_then(Routed::of), Routed::exit_of(r)));
                match decision {
                    Some(verdict) if !verdict.is_pass() => self.deny(verdict),
                    Some(verdict) => {
                        self.decided = true;
                        let mut next = Next::Resolve;
                        if let Some((routed, exit)) = route {
                            if Routed::all_take_names(&routed) {
                                next = Next::Identify;
                            }
                            self.route = Some(routed);
                            self.exit = exit;
                        }
                        self.admit(now, verdict, next);
                    }
                    None => self.resolve(now),
                }
            }
        }
    }

    /// Refuses the request when the client has sent too much early data.
    pub(super) fn check_early_data(&mut self) -> bool {
        if self.hs.buf.len() > self.cfg.max_early_data + self.hs.sniffed_bytes {
            self.reject(ReplyCode::Rejected, CloseReason::EarlyDataOverflow);
            return true;
        }
        false
    }

    pub(super) fn resolve(&mut self, now: Instant) {
        let req = self.req();
        let action = Action::Resolve {
            host: req.host.clone().unwrap_or_default(),
            port: req.port,
        };
        self.state = State::Resolving;
        self.hs
            .timers
            .set_after(Timer::Resolve, now, self.cfg.timeouts.resolve);
        self.actions.push_back(action);
    }

    pub(super) fn on_resolved(&mut self, now: Instant, result: Result<Vec<IpAddr>, ResolveError>) {
        let host = self.req().host.clone().unwrap_or_default();
        match result {
            Ok(addrs) if !addrs.is_empty() => {
                self.events.push_back(Event::DnsLookup {
                    host,
                    addrs: addrs.clone(),
                });
                self.on_addresses(now, addrs);
            }
            Ok(_) => self.reject(
                ReplyCode::Rejected,
                CloseReason::ResolveFailed(ResolveError::NoAddress),
            ),
            Err(e) => self.reject(ReplyCode::Rejected, CloseReason::ResolveFailed(e)),
        }
    }
}
