//! [`ClientError`]: why a request through the proxy did not succeed, told
//! apart so that a caller can act on it: a refusal with its code, a timeout,
//! a broken protocol, an address that cannot be sent, an I/O error.

use socks4_proto::ReplyCode;
use std::fmt;
use std::io;

/// Why a request through the proxy did not succeed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// The proxy answered with a refusal: 91 (rejected or failed), 92 (identd
    /// unreachable) or 93 (identd named another user).
    Refused(ReplyCode),
    /// The whole exchange took longer than the timeout.
    TimedOut,
    /// The proxy sent something that is not a SOCKS4 reply, or closed before
    /// replying.
    Protocol(String),
    /// The proxy or the target is not something SOCKS4 can name: text that
    /// is not `HOST:PORT`, or an IPv6 target (SOCKS4 carries IPv4 addresses
    /// and, with SOCKS4a, names).
    Address(String),
    /// Connecting to the proxy, or reading or writing, failed.
    Io(io::Error),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Refused(code) => write!(f, "the proxy refused: {code}"),
            ClientError::TimedOut => f.write_str("the proxy did not answer in time"),
            ClientError::Protocol(why) => write!(f, "the proxy broke the protocol: {why}"),
            ClientError::Address(why) => write!(f, "not an address SOCKS4 can send: {why}"),
            ClientError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> ClientError {
        ClientError::Io(e)
    }
}

impl From<ClientError> for io::Error {
    /// As an I/O error (`ConnectionRefused`, `TimedOut`, `InvalidData`,
    /// `InvalidInput`), for callers that only deal in those.
    fn from(e: ClientError) -> io::Error {
        let kind = match e {
            ClientError::Io(e) => return e,
            ClientError::TimedOut => io::ErrorKind::TimedOut,
            ClientError::Refused(_) => io::ErrorKind::ConnectionRefused,
            ClientError::Protocol(_) => io::ErrorKind::InvalidData,
            ClientError::Address(_) => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, e.to_string())
    }
}
