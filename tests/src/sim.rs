//! A harness for simulation tests of `ServerSession`: a fake clock, a scripted
//! peer, and the machine's invariants checked after every call.

use socks4_proto::server::{
    Action, ActionOutcome, CloseReason, Event, ServerConfig, ServerSession,
};
use socks4_proto::{Reply, ReplyCode};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A session under test with a hand-driven clock.
pub struct Sim {
    /// The machine.
    pub session: ServerSession,
    /// The fake "now".
    pub now: Instant,
    /// Every action so far, in order.
    pub actions: Vec<Action>,
    /// Every event so far, in order.
    pub events: Vec<Event>,
    /// Set when the harness reports a successful connect or bind.
    success_reported: bool,
}

impl Sim {
    /// A session for a client at `peer` that connected to `local`.
    pub fn new(cfg: ServerConfig, peer: &str, local: &str) -> Sim {
        let now = Instant::now();
        let session = ServerSession::new(
            Arc::new(cfg),
            peer.parse().unwrap(),
            local.parse().unwrap(),
            now,
        );
        let mut sim = Sim {
            session,
            now,
            actions: Vec::new(),
            events: Vec::new(),
            success_reported: false,
        };
        sim.drain();
        sim
    }

    /// A session made otherwise (`with_destination`, `with_sniffed`) at
    /// `now`.
    pub fn of(session: ServerSession, now: Instant) -> Sim {
        let mut sim = Sim {
            session,
            now,
            actions: Vec::new(),
            events: Vec::new(),
            success_reported: false,
        };
        sim.drain();
        sim
    }

    /// A loopback client (127.0.0.1:40000) on 127.0.0.1:1080 with `cfg`.
    pub fn local(cfg: ServerConfig) -> Sim {
        Sim::new(cfg, "127.0.0.1:40000", "127.0.0.1:1080")
    }

    /// Collects what the last call produced and checks the invariants: at most
    /// one `Close`, always last; nothing after it; every `poll_timeout` in the
    /// future or absent once closed.
    pub fn drain(&mut self) -> Vec<Action> {
        let mut new = Vec::new();
        while let Some(a) = self.session.poll_action() {
            assert!(
                !matches!(self.actions.last(), Some(Action::Close(_))),
                "action {a:?} after Close"
            );
            if let Action::SendReply(r) = &a {
                assert!(
                    r.code != ReplyCode::Granted || self.success_reported,
                    "reply 90 before a successful connect or bind"
                );
            }
            self.actions.push(a.clone());
            new.push(a);
        }
        while let Some(e) = self.session.poll_event() {
            assert!(
                !matches!(self.events.last(), Some(Event::Disconnected { .. })),
                "event {e:?} after Disconnected"
            );
            self.events.push(e);
        }
        let closes = self
            .actions
            .iter()
            .filter(|a| matches!(a, Action::Close(_)))
            .count();
        assert!(closes <= 1, "{closes} closes");
        assert_eq!(closes == 1, self.session.is_closed());
        if self.session.is_closed() {
            assert_eq!(self.session.poll_timeout(), None);
        }
        new
    }

    /// Client bytes.
    pub fn input(&mut self, bytes: &[u8]) -> Vec<Action> {
        self.session.handle_input(self.now, bytes);
        self.drain()
    }

    /// Client EOF.
    pub fn eof(&mut self) -> Vec<Action> {
        self.session.handle_eof(self.now);
        self.drain()
    }

    /// An action's outcome; panics on `UnexpectedOutcome`.
    pub fn outcome(&mut self, o: ActionOutcome) -> Vec<Action> {
        if matches!(
            o,
            ActionOutcome::Connected(Ok(_)) | ActionOutcome::Bound(Ok(_))
        ) {
            self.success_reported = true;
        }
        self.session
            .handle_outcome(self.now, o)
            .expect("expected outcome");
        self.drain()
    }

    /// The rest of a two-part answer (after `ResolvedFirst`).
    pub fn late(&mut self, addrs: &[&str]) -> Vec<Action> {
        let addrs = addrs.iter().map(|a| a.parse().unwrap()).collect();
        self.session.handle_late_addresses(self.now, addrs);
        self.drain()
    }

    /// Moves the clock and fires what is due.
    pub fn advance(&mut self, by: Duration) -> Vec<Action> {
        self.now += by;
        self.session.handle_timeout(self.now);
        self.drain()
    }

    /// The close reason, if closed.
    pub fn closed(&self) -> Option<CloseReason> {
        self.actions.iter().find_map(|a| match a {
            Action::Close(r) => Some(*r),
            _ => None,
        })
    }

    /// The reply codes sent, in order.
    pub fn replies(&self) -> Vec<Reply> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::SendReply(r) => Some(*r),
                _ => None,
            })
            .collect()
    }
}

/// A parsed socket address, for brevity.
pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}
