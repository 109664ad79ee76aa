//! The policy phase: the access rules applied to each destination address
//! (or decided before a SOCKS4a name resolves), the route to take, admission
//! by the adapter (per-client limits), and a denial with its notification.

use super::{ServerSession, State};
use crate::codec::{Command, ReplyCode};
use crate::server::action::Action;
use crate::server::event::Event;
use crate::server::reason::CloseReason;
use socks4_acl::{canonical, Exit, Parent, Source, Subject, Target, Verdict};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

impl ServerSession {
    /// The destination's addresses are known: apply the policy to each (unless
    /// it was decided before resolving).
    pub(super) fn on_addresses(&mut self, now: Instant, addrs: Vec<IpAddr>) {
        let req = self.req().clone();
        // A CONNECT to the server itself would come back in as a new
        // connection, and another, each holding a slot: refused whatever the
        // rules say.
        if req.command == Command::Connect
            && addrs
                .iter()
                .any(|a| self.cfg.own.contains(SocketAddr::new(*a, req.port)))
        {
            return self.reject(ReplyCode::Rejected, CloseReason::Loop);
        }
        let command = acl_command(req.command);
        let mut first_block: Option<Verdict> = None;
        let mut first_bad: Option<IpAddr> = None;
        let mut passed: Option<Verdict> = None;
        for addr in addrs.into_iter().map(canonical) {
            // BIND's DSTIP names who may connect in, not where to go.
            if req.command == Command::Connect && !connectable(addr) {
                first_bad.get_or_insert(addr);
                continue;
            }
            if self.decided {
                self.hs
                    .candidates
                    .push_back(SocketAddr::new(addr, req.port));
                self.hs.allowed_peers.push(addr);
                continue;
            }
            let subject = Subject {
                client: self.peer,
                dest_addr: Some(addr),
                dest_host: req.host.as_deref(),
                dest_port: req.port,
                command,
                user_id: &req.user_id,
                cert: self.cert.as_deref(),
            };
            let verdict = self.cfg.policy.evaluate(&subject);
            if verdict.is_pass() {
                self.ident_required |= verdict.require_ident;
                passed.get_or_insert(verdict);
                self.hs
                    .candidates
                    .push_back(SocketAddr::new(addr, req.port));
                self.hs.allowed_peers.push(addr);
            } else {
                first_block.get_or_insert(verdict);
            }
        }
        self.choose_route();
        if self.decided {
            // Decided and admitted before resolving.
            return match first_bad {
                _ if !self.hs.candidates.is_empty() => self.identify(now),
                Some(ip) => self.reject(ReplyCode::Rejected, CloseReason::BadDestination(ip)),
                None => self.reject(ReplyCode::Rejected, CloseReason::ConnectFailed(None)),
            };
        }
        let Some(pass) = passed else {
            return match (first_block, first_bad) {
                (Some(verdict), _) => self.deny(verdict),
                (None, Some(ip)) => {
                    self.reject(ReplyCode::Rejected, CloseReason::BadDestination(ip))
                }
                (None, None) => self.reject(ReplyCode::Rejected, CloseReason::ConnectFailed(None)),
            };
        };
        self.decided = true;
        self.admit(now, pass, Next::Identify);
    }

    /// The route, from the first address the policy passed, unless it was
    /// chosen before resolving.
    fn choose_route(&mut self) {
        if self.route.is_some() {
            return;
        }
        let Some(first) = self.hs.candidates.front().copied() else {
            return;
        };
        let cfg = self.cfg.clone();
        let found = cfg.policy.routes.find(&self.subject_for(first.ip()));
        self.exit = Routed::exit_of(found);
        self.route = Some(found.and_then(Routed::of));
    }

    /// The request as the policy sees it, going to `addr`.
    fn subject_for(&self, addr: IpAddr) -> Subject<'_> {
        let req = self.req();
        Subject {
            client: self.peer,
            dest_addr: Some(addr),
            dest_host: req.host.as_deref(),
            dest_port: req.port,
            command: acl_command(req.command),
            user_id: &req.user_id,
            cert: self.cert.as_deref(),
        }
    }

    /// The route the request would take to `addr`.
    pub(super) fn route_for(&self, addr: IpAddr) -> Option<Routed> {
        let subject = self.subject_for(addr);
        self.cfg.policy.routes.find(&subject).and_then(Routed::of)
    }

    /// What the access rules say of the request going to `addr`.
    pub(super) fn verdict_for(&self, addr: IpAddr) -> Verdict {
        self.cfg.policy.evaluate(&self.subject_for(addr))
    }

    /// The policy passed the request: take its rule's options, ask the adapter
    /// to admit it when configured to (per-client limits), then go on.
    pub(super) fn admit(&mut self, now: Instant, verdict: Verdict, next: Next) {
        self.events.push_back(Event::Decided { verdict });
        self.notify(&verdict, None);
        self.source = verdict.source;
        self.ident_required |= verdict.require_ident;
        if !self.cfg.admission {
            return self.go_on(now, next);
        }
        if self.ident_before_admission() {
            // The limits key on who identd says the user is: ask first.
            self.hs.admit_after_ident = Some((verdict, next));
            return self.ask_ident(now);
        }
        self.request_admission(verdict, next);
    }

    /// Asks the adapter to admit the request the policy passed with
    /// `verdict`; `next` follows once it is admitted.
    pub(super) fn request_admission(&mut self, verdict: Verdict, next: Next) {
        self.state = State::Admitting;
        self.after_admission = next;
        self.actions.push_back(Action::Admit {
            command: self.req().command,
            verdict,
        });
    }

    pub(super) fn go_on(&mut self, now: Instant, next: Next) {
        match next {
            Next::Resolve => self.resolve(now),
            Next::Identify => self.identify(now),
        }
    }

    pub(super) fn deny(&mut self, verdict: Verdict) {
        let code = match verdict.action {
            socks4_acl::Action::Block { reply } => {
                ReplyCode::from_u8(reply).unwrap_or(ReplyCode::Rejected)
            }
            socks4_acl::Action::Pass => ReplyCode::Rejected,
        };
        self.events.push_back(Event::Decided { verdict });
        self.notify(&verdict, Some(code));
        self.events.push_back(Event::Denied {
            peer: self.peer,
            source: verdict.source,
            log: verdict.log,
        });
        self.reject(code, CloseReason::Denied(verdict.source));
    }

    /// A notification, when the deciding rule asks for one: `reply` is the
    /// code a denied request gets, `None` for a passed one.
    fn notify(&mut self, verdict: &Verdict, reply: Option<ReplyCode>) {
        if !verdict.notify {
            return;
        }
        let rule = match verdict.source {
            Source::Rule { number, .. } => self
                .cfg
                .policy
                .rules
                .rules()
                .get(number - 1)
                .map(|r| r.to_string())
                .unwrap_or_default(),
            _ => String::new(),
        };
        let req = self.req();
        let event = Event::Notify {
            peer: self.peer,
            reply,
            source: verdict.source,
            rule,
            command: req.command,
            dest: req.shown.clone(),
            user_id: req.user_id.clone(),
        };
        self.events.push_back(event);
    }
}

/// A route through parents, as chosen for one request.
#[derive(Debug, Clone)]
pub(super) struct Routed {
    /// The parents, in the route's order.
    pub(super) parents: Vec<Parent>,
    /// How they share connections.
    pub(super) balance: socks4_acl::Balance,
}

impl Routed {
    pub(super) fn of((_, _, route): (usize, Option<usize>, &socks4_acl::Route)) -> Option<Routed> {
        match &route.target {
            Target::Via(parents) => Some(Routed {
                parents: parents.clone(),
                balance: route.balance,
            }),
            _ => None,
        }
    }

    /// The exit clauses of a route found (the default without one).
    pub(super) fn exit_of(found: Option<(usize, Option<usize>, &socks4_acl::Route)>) -> Exit {
        found.map(|(_, _, r)| r.exit.clone()).unwrap_or_default()
    }

    pub(super) fn all_take_names(routed: &Option<Routed>) -> bool {
        routed
            .as_ref()
            .is_some_and(|r| r.parents.iter().all(|p| p.kind.takes_names()))
    }
}

/// What follows admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Next {
    /// Resolve the SOCKS4a name (the policy decided before resolving).
    Resolve,
    /// Ask identd, then connect or bind.
    Identify,
}

/// The request's command, as access control names it.
pub(super) fn acl_command(c: Command) -> socks4_acl::Command {
    match c {
        Command::Connect => socks4_acl::Command::Connect,
        Command::Bind => socks4_acl::Command::Bind,
    }
}

/// Whether a destination address can be connected to at all.
pub(super) fn connectable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    }
}
