//! The server session under arbitrary sequences of client bytes, EOFs, action
//! outcomes (expected or not; a name's answer whole or in two parts, the
//! late addresses at any time) and clock steps. Invariants: at most one Close and
//! nothing after it; no reply 90 before a successful connect, bind or accept was
//! reported; no deadline after close; and every session can be brought to exactly
//! one Close.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use socks4_ident::{ErrorCode, Outcome, UserId};
use socks4_proto::server::{
    Action, ActionOutcome, IdentMode, RelayEnd, RelayStats, ResolveError, ServerConfig,
    ServerSession,
};
use socks4_proto::ReplyCode;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Arbitrary)]
enum Op {
    Input(Vec<u8>),
    Eof,
    Advance(u16),
    Resolved(Option<Vec<[u8; 4]>>),
    ResolvedFirst(Vec<[u8; 4]>),
    Late(Vec<[u8; 16]>),
    Ident(Option<(bool, Vec<u8>)>),
    Connected(bool),
    Bound(bool),
    Accepted(Option<[u8; 4]>),
    RelayEnd(bool),
}

#[derive(Debug, Arbitrary)]
struct Script {
    ident: u8,
    policy: u8,
    small_limits: bool,
    ops: Vec<Op>,
}

fn sa(ip: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port)
}

struct Checker {
    session: ServerSession,
    closes: usize,
    success: bool,
}

impl Checker {
    fn drain(&mut self) {
        while let Some(a) = self.session.poll_action() {
            assert_eq!(self.closes, 0, "action {a:?} after Close");
            match a {
                Action::Close(_) => self.closes += 1,
                Action::SendReply(r) if r.code == ReplyCode::Granted => {
                    assert!(self.success, "90 before success")
                }
                _ => {}
            }
        }
        while self.session.poll_event().is_some() {}
        assert_eq!(self.session.is_closed(), self.closes == 1);
        if self.session.is_closed() {
            assert_eq!(self.session.poll_timeout(), None);
        }
    }

    /// One step of the script: a call on the session, or an action's outcome
    /// (expected or not); then the invariants.
    fn step(&mut self, op: Op, now: &mut Instant) {
        match op {
            Op::Input(bytes) => self.session.handle_input(*now, &bytes),
            Op::Eof => self.session.handle_eof(*now),
            Op::Advance(ms) => {
                *now += Duration::from_millis(u64::from(ms) * 16);
                self.session.handle_timeout(*now);
            }
            Op::Late(addrs) => {
                let addrs = addrs.into_iter().map(|ip| IpAddr::from(ip)).collect();
                self.session.handle_late_addresses(*now, addrs);
            }
            Op::RelayEnd(reset) => {
                let end = if reset {
                    RelayEnd::Error(ErrorKind::ConnectionReset)
                } else {
                    RelayEnd::Finished
                };
                // Err outside a relay: the invariants below still hold.
                let _ = self
                    .session
                    .handle_relay_end(*now, RelayStats::default(), end);
            }
            op => {
                if let Some(o) = outcome(op) {
                    let success = matches!(
                        o,
                        ActionOutcome::Connected(Ok(_))
                            | ActionOutcome::Bound(Ok(_))
                            | ActionOutcome::Accepted(Ok(_))
                    );
                    if self.session.handle_outcome(*now, o).is_ok() && success {
                        self.success = true;
                    }
                }
            }
        }
        self.drain();
    }

    /// Brings the session to an end: a relay that ends, or a client that goes
    /// away.
    fn finish(&mut self, now: Instant) {
        if !self.session.is_closed() {
            if self
                .session
                .handle_relay_end(now, RelayStats::default(), RelayEnd::Finished)
                .is_err()
            {
                self.session.handle_eof(now);
            }
            self.drain();
        }
    }
}

/// The action outcome an op reports; `None` for an op that is a call.
fn outcome(op: Op) -> Option<ActionOutcome> {
    Some(match op {
        Op::Resolved(r) => ActionOutcome::Resolved(
            r.map(|v| v.into_iter().map(|ip| IpAddr::V4(ip.into())).collect())
                .ok_or(ResolveError::NoSuchHost),
        ),
        Op::ResolvedFirst(v) => {
            ActionOutcome::ResolvedFirst(v.into_iter().map(|ip| IpAddr::V4(ip.into())).collect())
        }
        Op::Ident(r) => ActionOutcome::Ident(
            r.map(|(err, user)| {
                if err || user.is_empty() {
                    Outcome::Error(ErrorCode::NoUser)
                } else {
                    Outcome::UserId(UserId {
                        opsys: "UNIX".into(),
                        charset: None,
                        user_id: user,
                    })
                }
            })
            .ok_or(ErrorKind::ConnectionRefused),
        ),
        Op::Connected(ok) => ActionOutcome::Connected(
            ok.then_some(socks4_proto::server::Won::FIRST)
                .ok_or(ErrorKind::ConnectionRefused),
        ),
        Op::Bound(ok) => ActionOutcome::Bound(
            ok.then(|| sa([127, 0, 0, 1], 6000))
                .ok_or(ErrorKind::AddrInUse),
        ),
        Op::Accepted(from) => {
            ActionOutcome::Accepted(from.map(|ip| sa(ip, 7000)).ok_or(ErrorKind::TimedOut))
        }
        Op::Input(_) | Op::Eof | Op::Advance(_) | Op::RelayEnd(_) | Op::Late(_) => return None,
    })
}

/// The server's configuration the script asks for: IDENT mode, policy,
/// limits.
fn config(script: &Script) -> ServerConfig {
    let mut cfg = ServerConfig::default();
    cfg.ident = match script.ident % 3 {
        0 => IdentMode::Off,
        1 => IdentMode::Log,
        _ => IdentMode::Require,
    };
    cfg.policy = match script.policy % 3 {
        0 => socks4_acl::Policy::loopback_only(),
        1 => "pass from any to any".parse().unwrap(),
        _ => "block from any to any port lt 10 reply 93\npass from 127.0.0.2 to any ident\npass from any to .x command connect\npass from any to 127.0.0.0/8"
            .parse()
            .unwrap(),
    };
    if script.small_limits {
        cfg.limits.max_user_id = 4;
        cfg.limits.max_host = 4;
        cfg.max_early_data = 4;
    }
    cfg
}

fuzz_target!(|script: Script| {
    let cfg = config(&script);
    let mut now = Instant::now();
    let peer = if script.policy % 2 == 0 {
        sa([127, 0, 0, 2], 4000)
    } else {
        sa([192, 0, 2, 1], 4000)
    };
    let session = ServerSession::new(Arc::new(cfg), peer, sa([127, 0, 0, 1], 1080), now);
    let mut c = Checker {
        session,
        closes: 0,
        success: false,
    };
    c.drain();
    for op in script.ops {
        c.step(op, &mut now);
    }
    c.finish(now);
    assert_eq!(c.closes, 1, "exactly one close");
});
