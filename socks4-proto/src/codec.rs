//! The wire format: decode and encode SOCKS4 and SOCKS4a requests and replies.
//!
//! Everything here is a pure function of a byte slice. Decoding is incremental and
//! zero-copy, in the style of `httparse`: a buffer that holds only a prefix of a
//! frame decodes to [`Status::Incomplete`], and a complete frame decodes to
//! [`Status::Complete`] with a value that borrows from the buffer and the number of
//! bytes it used. Bytes after that count belong to the caller (a client may pipeline
//! application data right behind its request; a server may send data right behind
//! its reply).
//!
//! Decoding is *bounded*: past the [`Limits`] the answer is an error, never
//! `Incomplete`, so a peer cannot make its reader buffer without end. The longest
//! buffer that can still be `Incomplete` is [`Limits::max_request_len`] − 1 bytes.
//!
//! # Request (client → server)
//!
//! ```text
//! +----+----+----+----+----+----+----+----+----+----+....+----+
//! | VN | CD | DSTPORT |      DSTIP        | USERID       |NULL|
//! +----+----+----+----+----+----+----+----+----+----+....+----+
//!    1    1      2              4           variable       1
//! ```
//!
//! SOCKS4a: when DSTIP is `0.0.0.x` with `x != 0`, the NUL after USERID is followed
//! by the destination host name and another NUL.
//!
//! # Reply (server → client)
//!
//! ```text
//! +----+----+----+----+----+----+----+----+
//! | VN | CD | DSTPORT |      DSTIP        |
//! +----+----+----+----+----+----+----+----+
//!    1    1      2              4
//! ```

use bytes::BufMut;
use core::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};

/// The protocol version byte (VN) of every SOCKS4 request.
pub const REQUEST_VERSION: u8 = 4;

/// The version byte (VN) of a reply, as the protocol text specifies it.
pub const REPLY_VERSION: u8 = 0;

/// The reply version byte that some servers send instead of [`REPLY_VERSION`].
///
/// [`Reply::decode`] accepts it, so that this crate works as a client against
/// those servers; [`Reply::encode`] never produces it.
pub const LENIENT_REPLY_VERSION: u8 = 4;

/// The outcome of decoding from a buffer that may hold only part of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<T> {
    /// The buffer is a strict prefix of a frame that may still be valid: read more
    /// bytes, append them, and decode again from the start.
    Incomplete,
    /// A whole frame, and the number of bytes of the buffer it used.
    Complete(T, usize),
}

impl<T> Status<T> {
    /// Whether a whole frame was decoded.
    pub fn is_complete(&self) -> bool {
        matches!(self, Status::Complete(..))
    }

    /// The frame and the bytes it used, or `None` when incomplete.
    pub fn complete(self) -> Option<(T, usize)> {
        match self {
            Status::Complete(value, used) => Some((value, used)),
            Status::Incomplete => None,
        }
    }
}

/// Bounds on what a request decoder accepts.
///
/// Every field is a limit that a server administrator may tune; the defaults follow
/// common practice (Dante and the SOCKS4a text both use 255-byte names).
/// Construct with [`Limits::default`] and set the fields you want to change:
///
/// ```
/// let mut limits = socks4_proto::Limits::default();
/// limits.max_user_id = 64;
/// assert_eq!(limits.max_request_len(), 8 + 65 + 256);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The longest USERID accepted, in bytes, not counting its NUL. Default 255.
    pub max_user_id: usize,
    /// The longest SOCKS4a host name accepted, in bytes, not counting its NUL.
    /// Default 255 (the longest DNS name is 253 characters).
    pub max_host: usize,
}

impl Limits {
    /// The limits used when nothing is configured: 255 bytes each.
    pub const DEFAULT: Limits = Limits {
        max_user_id: 255,
        max_host: 255,
    };

    /// The longest request, in bytes, that these limits allow (a SOCKS4a request
    /// with the longest user id and host name). A reader never needs to buffer more.
    pub fn max_request_len(&self) -> usize {
        Request::FIXED_LEN + self.max_user_id + 1 + self.max_host + 1
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// A request's command code (CD).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// CD = 1: connect to the destination and relay.
    Connect,
    /// CD = 2: listen for one inbound connection from the destination and relay it.
    Bind,
}

impl Command {
    /// The command for a CD byte, or `None` for an unknown code.
    pub fn from_u8(code: u8) -> Option<Command> {
        match code {
            1 => Some(Command::Connect),
            2 => Some(Command::Bind),
            _ => None,
        }
    }

    /// The CD byte of this command.
    pub fn as_u8(self) -> u8 {
        match self {
            Command::Connect => 1,
            Command::Bind => 2,
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Command::Connect => "connect",
            Command::Bind => "bind",
        })
    }
}

/// Where a request wants to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dest<'a> {
    /// SOCKS4: an IPv4 address and port.
    Addr(SocketAddrV4),
    /// SOCKS4a: a host name for the server to resolve, and a port.
    ///
    /// The host name is non-empty UTF-8 without control characters or white space
    /// (the decoder checks this; see [`Request::validate`]).
    Domain(&'a str, u16),
}

impl Dest<'_> {
    /// The destination port.
    pub fn port(&self) -> u16 {
        match *self {
            Dest::Addr(addr) => addr.port(),
            Dest::Domain(_, port) => port,
        }
    }
}

impl fmt::Display for Dest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dest::Addr(addr) => addr.fmt(f),
            Dest::Domain(host, port) => write!(f, "{host}:{port}"),
        }
    }
}

/// A SOCKS4 or SOCKS4a request, borrowing its user id and host name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Request<'a> {
    /// CONNECT or BIND.
    pub command: Command,
    /// The destination: for BIND, the address the inbound connection must come from.
    pub dest: Dest<'a>,
    /// The USERID field without its NUL; may be empty, never contains NUL.
    pub user_id: &'a [u8],
}

/// The DSTIP that [`Request::encode`] writes for a SOCKS4a request: `0.0.0.1`.
pub const SOCKS4A_MARKER: Ipv4Addr = Ipv4Addr::new(0, 0, 0, 1);

/// Whether a DSTIP marks a SOCKS4a request (`0.0.0.x` with `x != 0`).
pub fn is_socks4a_marker(ip: Ipv4Addr) -> bool {
    let [a, b, c, d] = ip.octets();
    a == 0 && b == 0 && c == 0 && d != 0
}

impl<'a> Request<'a> {
    /// Length of the fixed part of a request: VN, CD, DSTPORT and DSTIP.
    pub const FIXED_LEN: usize = 8;

    /// Decodes one request from the start of `buf`.
    ///
    /// Errors are reported as early as the bytes allow: a wrong version after one
    /// byte, an unknown command after two, an over-long user id or host name as
    /// soon as the limit is passed without a NUL.
    ///
    /// ```
    /// use socks4_proto::{Command, Dest, Limits, Request, Status};
    /// let bytes = b"\x04\x01\x00\x50\x7f\x00\x00\x01fred\0GET /";
    /// let Status::Complete(req, used) = Request::decode(bytes, &Limits::default())? else {
    ///     panic!("complete")
    /// };
    /// assert_eq!(req.command, Command::Connect);
    /// assert_eq!(req.dest, Dest::Addr("127.0.0.1:80".parse().unwrap()));
    /// assert_eq!(req.user_id, b"fred");
    /// assert_eq!(&bytes[used..], b"GET /"); // pipelined data is the caller's
    /// # Ok::<(), socks4_proto::DecodeError>(())
    /// ```
    pub fn decode(buf: &'a [u8], limits: &Limits) -> Result<Status<Request<'a>>, DecodeError> {
        let Some(&version) = buf.first() else {
            return Ok(Status::Incomplete);
        };
        if version != REQUEST_VERSION {
            return Err(DecodeError::Version(version));
        }
        let Some(&code) = buf.get(1) else {
            return Ok(Status::Incomplete);
        };
        let command = Command::from_u8(code).ok_or(DecodeError::Command(code))?;
        let Some(fixed) = buf.get(..Self::FIXED_LEN) else {
            return Ok(Status::Incomplete);
        };
        let port = u16::from_be_bytes([fixed[2], fixed[3]]);
        let ip = Ipv4Addr::new(fixed[4], fixed[5], fixed[6], fixed[7]);

        let mut used = Self::FIXED_LEN;
        let user_id = match take_nul_terminated(&buf[used..], limits.max_user_id) {
            Field::Complete(field) => field,
            Field::Incomplete => return Ok(Status::Incomplete),
            Field::TooLong => return Err(DecodeError::UserIdTooLong),
        };
        used += user_id.len() + 1;

        if !is_socks4a_marker(ip) {
            let dest = Dest::Addr(SocketAddrV4::new(ip, port));
            return Ok(Status::Complete(
                Request {
                    command,
                    dest,
                    user_id,
                },
                used,
            ));
        }

        let host = match take_nul_terminated(&buf[used..], limits.max_host) {
            Field::Complete(field) => field,
            Field::Incomplete => return Ok(Status::Incomplete),
            Field::TooLong => return Err(DecodeError::HostTooLong),
        };
        used += host.len() + 1;
        let host = check_host(host)?;
        let dest = Dest::Domain(host, port);
        Ok(Status::Complete(
            Request {
                command,
                dest,
                user_id,
            },
            used,
        ))
    }

    /// Checks what [`Request::encode`] cannot express: a user id without NUL bytes
    /// and, for SOCKS4a, a host name that [`Request::decode`] would accept.
    /// Limits are not checked: they are the receiver's business.
    pub fn validate(&self) -> Result<(), DecodeError> {
        if self.user_id.contains(&0) {
            return Err(DecodeError::UserIdNul);
        }
        if let Dest::Domain(host, _) = self.dest {
            if host.as_bytes().contains(&0) {
                return Err(DecodeError::BadHost);
            }
            check_host(host.as_bytes())?;
        }
        Ok(())
    }

    /// The number of bytes [`Request::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        let host = match self.dest {
            Dest::Addr(_) => 0,
            Dest::Domain(host, _) => host.len() + 1,
        };
        Self::FIXED_LEN + self.user_id.len() + 1 + host
    }

    /// Writes the request. A SOCKS4a request gets DSTIP [`SOCKS4A_MARKER`].
    ///
    /// The caller is responsible for validity (see [`Request::validate`]): a user
    /// id or host name with a NUL in it produces a frame that decodes differently.
    ///
    /// # Panics
    /// When `dst` has less than [`Request::encoded_len`] bytes of room (as every
    /// `BufMut` does when it runs out); a `Vec<u8>` grows as needed.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        let (ip, port, host) = match self.dest {
            Dest::Addr(addr) => (*addr.ip(), addr.port(), None),
            Dest::Domain(host, port) => (SOCKS4A_MARKER, port, Some(host)),
        };
        dst.put_u8(REQUEST_VERSION);
        dst.put_u8(self.command.as_u8());
        dst.put_u16(port);
        dst.put_slice(&ip.octets());
        dst.put_slice(self.user_id);
        dst.put_u8(0);
        if let Some(host) = host {
            dst.put_slice(host.as_bytes());
            dst.put_u8(0);
        }
    }

    /// The encoded request in a new vector of exactly [`Request::encoded_len`] bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode(&mut out);
        out
    }
}

/// A reply's result code (CD).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReplyCode {
    /// 90: request granted.
    Granted,
    /// 91: request rejected or failed.
    Rejected,
    /// 92: rejected because the server cannot connect to identd on the client.
    IdentUnreachable,
    /// 93: rejected because the client program and identd report different user ids.
    IdentMismatch,
}

impl ReplyCode {
    /// Every reply code, in numeric order.
    pub const ALL: [ReplyCode; 4] = [
        ReplyCode::Granted,
        ReplyCode::Rejected,
        ReplyCode::IdentUnreachable,
        ReplyCode::IdentMismatch,
    ];

    /// The code for a CD byte, or `None` when it is none of 90–93.
    pub fn from_u8(code: u8) -> Option<ReplyCode> {
        match code {
            90 => Some(ReplyCode::Granted),
            91 => Some(ReplyCode::Rejected),
            92 => Some(ReplyCode::IdentUnreachable),
            93 => Some(ReplyCode::IdentMismatch),
            _ => None,
        }
    }

    /// The CD byte of this code.
    pub fn as_u8(self) -> u8 {
        match self {
            ReplyCode::Granted => 90,
            ReplyCode::Rejected => 91,
            ReplyCode::IdentUnreachable => 92,
            ReplyCode::IdentMismatch => 93,
        }
    }

    /// Whether this code grants the request (90).
    pub fn is_granted(self) -> bool {
        self == ReplyCode::Granted
    }
}

impl fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            ReplyCode::Granted => "request granted",
            ReplyCode::Rejected => "request rejected or failed",
            ReplyCode::IdentUnreachable => "rejected: cannot connect to identd on the client",
            ReplyCode::IdentMismatch => "rejected: identd reports a different user id",
        };
        write!(f, "{} ({text})", self.as_u8())
    }
}

/// A reply frame: a result code and an address.
///
/// The address is ignored by clients except in the replies to BIND, where it names
/// the proxy's listening socket (see [`Reply::bind_address`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reply {
    /// The result code.
    pub code: ReplyCode,
    /// DSTPORT and DSTIP.
    pub addr: SocketAddrV4,
}

impl Reply {
    /// Every reply is 8 bytes long.
    pub const LEN: usize = 8;

    /// A reply with the given code and address.
    pub fn new(code: ReplyCode, addr: SocketAddrV4) -> Reply {
        Reply { code, addr }
    }

    /// A reply with the given code and an all-zero address (the address fields of
    /// a CONNECT reply and of every refusal are ignored by clients).
    pub fn with_code(code: ReplyCode) -> Reply {
        Reply::new(code, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
    }

    /// Decodes one reply from the start of `buf`, as a client does.
    ///
    /// VN 0 is the specified value; VN 4 is accepted too, because some servers send
    /// it (see [`LENIENT_REPLY_VERSION`]). Any other VN, or a CD outside 90–93, is
    /// an error.
    ///
    /// ```
    /// use socks4_proto::{Reply, ReplyCode, Status};
    /// let status = Reply::decode(b"\x00\x5a\x04\x38\x0a\x00\x00\x01")?;
    /// let Status::Complete(reply, 8) = status else { panic!() };
    /// assert_eq!(reply.code, ReplyCode::Granted);
    /// assert_eq!(reply.addr.to_string(), "10.0.0.1:1080");
    /// assert_eq!(Reply::decode(b"\x00\x5b")?, Status::Incomplete);
    /// # Ok::<(), socks4_proto::DecodeError>(())
    /// ```
    pub fn decode(buf: &[u8]) -> Result<Status<Reply>, DecodeError> {
        let Some(&version) = buf.first() else {
            return Ok(Status::Incomplete);
        };
        if version != REPLY_VERSION && version != LENIENT_REPLY_VERSION {
            return Err(DecodeError::ReplyVersion(version));
        }
        let Some(&cd) = buf.get(1) else {
            return Ok(Status::Incomplete);
        };
        let code = ReplyCode::from_u8(cd).ok_or(DecodeError::UnknownReplyCode(cd))?;
        let Some(b) = buf.get(..Self::LEN) else {
            return Ok(Status::Incomplete);
        };
        let port = u16::from_be_bytes([b[2], b[3]]);
        let ip = Ipv4Addr::new(b[4], b[5], b[6], b[7]);
        Ok(Status::Complete(
            Reply::new(code, SocketAddrV4::new(ip, port)),
            Self::LEN,
        ))
    }

    /// The reply's 8 bytes, with VN 0.
    pub fn to_bytes(&self) -> [u8; Reply::LEN] {
        let [p0, p1] = self.addr.port().to_be_bytes();
        let [a, b, c, d] = self.addr.ip().octets();
        [REPLY_VERSION, self.code.as_u8(), p0, p1, a, b, c, d]
    }

    /// Writes the reply's 8 bytes, with VN 0.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_slice(&self.to_bytes());
    }

    /// The address a BIND client tells its application server to connect to.
    ///
    /// The protocol text says a DSTIP of 0 (`INADDR_ANY`) means "the address of the
    /// SOCKS server the client is connected to", which only the caller knows.
    pub fn bind_address(&self, proxy_ip: Ipv4Addr) -> SocketAddrV4 {
        if self.addr.ip().is_unspecified() {
            SocketAddrV4::new(proxy_ip, self.addr.port())
        } else {
            self.addr
        }
    }
}

/// Why bytes are not a valid frame.
///
/// Every request error is the peer's fault; a server answers it with
/// [`DecodeError::reply_code`] (91) and closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DecodeError {
    /// A request's VN is not 4.
    Version(u8),
    /// A request's CD is neither 1 (CONNECT) nor 2 (BIND).
    Command(u8),
    /// The USERID passed [`Limits::max_user_id`] without a NUL.
    UserIdTooLong,
    /// A user id to encode contains a NUL byte (from [`Request::validate`] only).
    UserIdNul,
    /// The SOCKS4a host name passed [`Limits::max_host`] without a NUL.
    HostTooLong,
    /// The SOCKS4a host name is empty.
    EmptyHost,
    /// The SOCKS4a host name is not UTF-8, or holds a control character or white
    /// space.
    BadHost,
    /// A reply's VN is neither 0 nor 4.
    ReplyVersion(u8),
    /// A reply's CD is not one of 90–93.
    UnknownReplyCode(u8),
}

impl DecodeError {
    /// The reply code a server sends for this error: always
    /// [`ReplyCode::Rejected`] (91), the only code SOCKS4 has for a bad request.
    pub fn reply_code(&self) -> ReplyCode {
        ReplyCode::Rejected
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Version(v) => write!(f, "request version {v}, expected 4"),
            DecodeError::Command(c) => write!(f, "unknown command {c}, expected 1 or 2"),
            DecodeError::UserIdTooLong => f.write_str("user id longer than the limit"),
            DecodeError::UserIdNul => f.write_str("user id contains a NUL byte"),
            DecodeError::HostTooLong => f.write_str("SOCKS4a host name longer than the limit"),
            DecodeError::EmptyHost => f.write_str("SOCKS4a host name is empty"),
            DecodeError::BadHost => f.write_str(
                "SOCKS4a host name is not UTF-8 or holds control characters or white space",
            ),
            DecodeError::ReplyVersion(v) => write!(f, "reply version {v}, expected 0 (or 4)"),
            DecodeError::UnknownReplyCode(c) => write!(f, "unknown reply code {c}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// A NUL-terminated field scanned from the front of a buffer.
enum Field<'a> {
    /// The field's bytes, without the NUL.
    Complete(&'a [u8]),
    /// No NUL yet, and the limit is not yet passed.
    Incomplete,
    /// More than `max` bytes without a NUL.
    TooLong,
}

/// Scans `buf` for a field of at most `max` bytes followed by NUL. Looks at no
/// more than `max + 1` bytes, so a long buffer costs no more than a short one.
fn take_nul_terminated(buf: &[u8], max: usize) -> Field<'_> {
    let window = &buf[..buf.len().min(max.saturating_add(1))];
    match window.iter().position(|&b| b == 0) {
        Some(end) => Field::Complete(&buf[..end]),
        None if buf.len() > max => Field::TooLong,
        None => Field::Incomplete,
    }
}

/// Checks a SOCKS4a host name's bytes (without the NUL).
fn check_host(host: &[u8]) -> Result<&str, DecodeError> {
    if host.is_empty() {
        return Err(DecodeError::EmptyHost);
    }
    // Fast path: printable ASCII, what nearly every client sends.
    let ascii_ok = host.iter().all(|&b| b > b' ' && b < 0x7f);
    let host = std::str::from_utf8(host).map_err(|_| DecodeError::BadHost)?;
    if !ascii_ok && host.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(DecodeError::BadHost);
    }
    Ok(host)
}

#[cfg(test)]
mod tests;
