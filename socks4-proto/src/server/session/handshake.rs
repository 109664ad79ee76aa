//! [`Handshake`]: what a session needs only until its relay starts (the
//! phase timers, the request and its bytes, the candidate addresses, identd's
//! pending admission, the parents asked for, a name's late answer), kept in a
//! box ([`HandshakeBox`]) that the relay's start frees: a relay that lasts
//! for hours holds none of it.

use super::late::Late;
use super::policy::Next;
use super::Req;
use crate::server::action::Hop;
use crate::server::timer::TimerTable;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::ops::{Deref, DerefMut};

/// The session's handshake-only state.
#[derive(Debug, Default)]
pub(super) struct Handshake {
    /// One deadline per phase.
    pub(super) timers: TimerTable,
    /// Request bytes while reading it; afterwards the client's early data.
    pub(super) buf: Vec<u8>,
    pub(super) req: Option<Req>,
    /// Addresses the policy passed, in order: CONNECT tries them, BIND accepts an
    /// inbound connection from any of them.
    pub(super) candidates: VecDeque<SocketAddr>,
    pub(super) allowed_peers: Vec<IpAddr>,
    /// Admission waiting for identd's answer
    /// ([`ServerConfig::ident_before_admission`](crate::server::ServerConfig::ident_before_admission)).
    pub(super) admit_after_ident: Option<(socks4_acl::Verdict, Next)>,
    /// The route's parents asked for (`ConnectVia`), until the answer.
    pub(super) hops: Option<Vec<Hop>>,
    /// The rest of a two-part answer, while it is to come.
    pub(super) late: Late,
    /// The client's first bytes read to sniff them, which count beside
    /// `max_early_data` (the sniff's own bound, `max_sniff`, holds them).
    pub(super) sniffed_bytes: usize,
}

/// What a session without its handshake state reads: nothing armed, nothing
/// held.
static RELEASED: Handshake = Handshake {
    timers: TimerTable::new(),
    buf: Vec::new(),
    req: None,
    candidates: VecDeque::new(),
    allowed_peers: Vec::new(),
    admit_after_ident: None,
    hops: None,
    late: Late::None,
    sniffed_bytes: 0,
};

/// The box [`Handshake`] lives in while the handshake lasts. Reading a
/// released one gives an empty state; changing it allocates a new one (only
/// a caller that changes a relaying or closed session would).
#[derive(Debug)]
pub(super) struct HandshakeBox(Option<Box<Handshake>>);

impl HandshakeBox {
    pub(super) fn new() -> HandshakeBox {
        HandshakeBox(Some(Box::default()))
    }

    /// Frees the handshake state (the relay starts).
    pub(super) fn release(&mut self) {
        self.0 = None;
    }

    /// The state, unless released.
    pub(super) fn get_mut(&mut self) -> Option<&mut Handshake> {
        self.0.as_deref_mut()
    }
}

impl Deref for HandshakeBox {
    type Target = Handshake;

    fn deref(&self) -> &Handshake {
        self.0.as_deref().unwrap_or(&RELEASED)
    }
}

impl DerefMut for HandshakeBox {
    fn deref_mut(&mut self) -> &mut Handshake {
        self.0.get_or_insert_with(Box::default)
    }
}

#[cfg(test)]
mod tests {
    use crate::server::{Action, ActionOutcome, ServerConfig, ServerSession, Won};
    use std::sync::Arc;
    use std::time::Instant;

    /// The handshake's box is there while the request is read and connected,
    /// and gone once the relay starts, with the early data handed over.
    #[test]
    #[allow(clippy::disallowed_methods)] // a point in time to start from
    fn a_relaying_session_holds_no_handshake_state() {
        let now = Instant::now();
        let mut s = ServerSession::new(
            Arc::new(ServerConfig::default()),
            "127.0.0.1:40000".parse().unwrap(),
            "127.0.0.1:1080".parse().unwrap(),
            now,
        );
        assert!(s.hs.0.is_some());
        // CONNECT 127.0.0.1:80, USERID "u", then two bytes of early data.
        s.handle_input(now, &[4, 1, 0, 80, 127, 0, 0, 1, b'u', 0, b'h', b'i']);
        let mut relayed = None;
        for _ in 0..16 {
            match s.poll_action() {
                Some(Action::Connect(to)) => {
                    assert_eq!(to, vec!["127.0.0.1:80".parse().unwrap()]);
                    assert!(s.hs.0.is_some(), "connecting still needs the candidates");
                    s.handle_outcome(now, ActionOutcome::Connected(Ok(Won::FIRST)))
                        .unwrap();
                }
                Some(Action::StartRelay { client_leftover }) => relayed = Some(client_leftover),
                Some(_) => {}
                None => break,
            }
        }
        assert_eq!(relayed.as_deref(), Some(&b"hi"[..]), "the relay started");
        assert!(s.hs.0.is_none(), "the relay holds no handshake state");
        assert_eq!(s.poll_timeout(), None);
        assert_eq!(s.early_data_room(), 0);
        // A late answer after the start is ignored and allocates nothing.
        s.handle_late_addresses(now, vec!["127.0.0.2".parse().unwrap()]);
        s.handle_timeout(now + std::time::Duration::from_secs(3600));
        assert!(s.hs.0.is_none());
    }
}
