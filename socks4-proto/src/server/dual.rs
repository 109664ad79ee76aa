//! [`FirstByte`]: what a dual listener (one port, two services) makes of a new
//! connection, from the first byte the client sends and how long it stays
//! silent.
//!
//! Net::Proxy's `dual` connector chose by who speaks first: a client that
//! speaks within the timeout is SOCKS, a silent one goes to the other service
//! (a server-first protocol, which waits for the server's greeting). Today's
//! SSH clients speak first too (`SSH-2.0-...`), so, as sslh does, the first
//! byte decides as well:
//!
//! | the client | decision |
//! |---|---|
//! | sends `0x04` first (a SOCKS4 request's version byte) | [`Protocol::Socks`] |
//! | sends `0x16` first (a TLS handshake record) | [`Protocol::Tls`] |
//! | sends anything else first | [`Protocol::Other`] |
//! | sends nothing until the timeout | [`Protocol::Other`] |
//!
//! The machine reads no socket and no clock: the caller passes the bytes it
//! peeked and the time. Once made, a decision never changes.

use std::time::{Duration, Instant};

/// The SOCKS4 version byte, first in every request.
const SOCKS4_VERSION: u8 = 0x04;
/// The TLS record type of a handshake message, first in a ClientHello.
const TLS_HANDSHAKE: u8 = 0x16;

/// What a dual listener's connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// A SOCKS4/4a request: serve it as SOCKS.
    Socks,
    /// A TLS handshake: SOCKS inside TLS where a certificate is configured,
    /// otherwise the other service's.
    Tls,
    /// Anything else, or silence: relay it to the other service, with the
    /// bytes the client already sent going first.
    Other,
}

/// The decision for one connection: see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirstByte {
    deadline: Instant,
    decided: Option<Protocol>,
}

impl FirstByte {
    /// A connection accepted at `now`; it is [`Protocol::Other`] if it sends
    /// nothing for `wait`.
    pub fn new(now: Instant, wait: Duration) -> FirstByte {
        FirstByte {
            deadline: crate::server::timer::later(now, wait),
            decided: None,
        }
    }

    /// The client's first bytes (peeked, so that they stay for whoever serves
    /// the connection). An empty slice decides nothing. Bytes decide even when
    /// they are handed over after the deadline passed: the client did speak.
    pub fn handle_input(&mut self, _now: Instant, bytes: &[u8]) -> Option<Protocol> {
        if self.decided.is_none() {
            self.decided = bytes.first().map(|b| match *b {
                SOCKS4_VERSION => Protocol::Socks,
                TLS_HANDSHAKE => Protocol::Tls,
                _ => Protocol::Other,
            });
        }
        self.decided
    }

    /// Time has passed: a client still silent at the deadline is
    /// [`Protocol::Other`].
    pub fn handle_timeout(&mut self, now: Instant) -> Option<Protocol> {
        if self.decided.is_none() && now >= self.deadline {
            self.decided = Some(Protocol::Other);
        }
        self.decided
    }

    /// When [`handle_timeout`](Self::handle_timeout) decides, if nothing has yet.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.decided.is_none().then_some(self.deadline)
    }

    /// The decision, once made.
    pub fn decision(&self) -> Option<Protocol> {
        self.decided
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests need a point in time to start from
mod tests {
    use super::*;

    #[test]
    fn the_table_of_the_module_docs() {
        let t0 = Instant::now();
        let wait = Duration::from_secs(2);
        let first = |bytes: &[u8]| FirstByte::new(t0, wait).handle_input(t0, bytes);
        assert_eq!(first(&[4, 1, 0, 80]), Some(Protocol::Socks));
        assert_eq!(first(&[0x16, 3, 1]), Some(Protocol::Tls));
        assert_eq!(first(b"SSH-2.0-OpenSSH_9.2\r\n"), Some(Protocol::Other));
        assert_eq!(first(&[5, 1, 0]), Some(Protocol::Other));
        assert_eq!(first(&[]), None);
        let mut silent = FirstByte::new(t0, wait);
        assert_eq!(silent.poll_timeout(), Some(t0 + wait));
        assert_eq!(silent.handle_timeout(t0 + wait / 2), None);
        assert_eq!(silent.handle_timeout(t0 + wait), Some(Protocol::Other));
        assert_eq!(silent.poll_timeout(), None);
        // Decided: later bytes change nothing.
        assert_eq!(silent.handle_input(t0 + wait, &[4]), Some(Protocol::Other));
    }
}
