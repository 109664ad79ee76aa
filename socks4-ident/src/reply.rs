//! The reply line: parsing it as a client, building it as a responder, and what a
//! SOCKS server makes of it.
//!
//! ```text
//! <port-on-server> , <port-on-client> : USERID : <opsys>[,<charset>] : <user-id>
//! <port-on-server> , <port-on-client> : ERROR : <error-type>
//! ```
//!
//! White space (space, tab) is allowed around every token. The user id is taken
//! verbatim from after the colon that follows the opsys field to the end of the
//! line, leading white space excepted (the RFC's own examples put a space there),
//! so it may contain colons and spaces. A line ends in CRLF; a bare LF is accepted
//! too.

use crate::query::{parse_port, strip_eol, trim, Query};
use core::fmt;

/// The longest reply line accepted, in bytes, end of line included. RFC 1413 lets a
/// client give up after 1000 characters without an end of line, and requires it to
/// accept user ids of at least 512 octets; 1000 satisfies both.
pub const MAX_LINE_LEN: usize = 1000;

/// The longest OPSYS, charset or error token, in characters (RFC 1413: 1–64).
pub const MAX_TOKEN_LEN: usize = 64;

/// A `USERID` answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserId {
    /// The operating system token, e.g. `UNIX` or `OTHER`.
    pub opsys: String,
    /// The character set token, when the identd named one (default US-ASCII).
    pub charset: Option<String>,
    /// The user id's bytes, verbatim; never empty, never contains CR, LF or NUL.
    pub user_id: Vec<u8>,
}

/// The error types of an `ERROR` answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// `INVALID-PORT`: the port pair is not valid on the identd host.
    InvalidPort,
    /// `NO-USER`: no connection with that port pair, or no identifiable owner.
    NoUser,
    /// `HIDDEN-USER`: the owner asked not to be identified.
    HiddenUser,
    /// `UNKNOWN-ERROR`: any other failure; also the meaning of a premature close.
    UnknownError,
    /// A non-standard error token, beginning with `X`.
    Other(String),
}

impl ErrorCode {
    /// The token as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::InvalidPort => "INVALID-PORT",
            ErrorCode::NoUser => "NO-USER",
            ErrorCode::HiddenUser => "HIDDEN-USER",
            ErrorCode::UnknownError => "UNKNOWN-ERROR",
            ErrorCode::Other(token) => token,
        }
    }

    fn from_token(token: &str) -> Option<ErrorCode> {
        Some(match token {
            "INVALID-PORT" => ErrorCode::InvalidPort,
            "NO-USER" => ErrorCode::NoUser,
            "HIDDEN-USER" => ErrorCode::HiddenUser,
            "UNKNOWN-ERROR" => ErrorCode::UnknownError,
            x if x.len() >= 2 && (x.starts_with('X') || x.starts_with('x')) => {
                ErrorCode::Other(x.to_owned())
            }
            _ => return None,
        })
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a reply could not be understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InvalidReply {
    /// [`MAX_LINE_LEN`] bytes arrived without an end of line.
    TooLong,
    /// The reply's port pair is not the query's.
    PortMismatch {
        /// The port pair the reply named.
        got: Query,
    },
    /// The line does not follow the grammar; the text says what was expected.
    Malformed(&'static str),
}

impl fmt::Display for InvalidReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidReply::TooLong => write!(f, "reply line longer than {MAX_LINE_LEN} bytes"),
            InvalidReply::PortMismatch { got } => {
                write!(f, "reply is for port pair {got}, not the query's")
            }
            InvalidReply::Malformed(what) => write!(f, "malformed reply: expected {what}"),
        }
    }
}

/// What an IDENT exchange ended with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// The identd named the connection's owner.
    UserId(UserId),
    /// The identd answered with an error (or closed early: `UnknownError`).
    Error(ErrorCode),
    /// The reply could not be understood or was for another port pair.
    Invalid(InvalidReply),
}

/// What a SOCKS server makes of an [`Outcome`] in IDENT `require` mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Comparison {
    /// identd names the same user as the request's USERID: grant.
    Match,
    /// identd names another user: reply 93.
    Mismatch,
    /// No usable answer (error, invalid reply; the caller adds "unreachable" and
    /// "timed out"): reply 92.
    Unavailable,
}

impl Outcome {
    /// Compares the identd's answer with a SOCKS request's USERID, byte for byte.
    ///
    /// An empty request USERID matches no identd answer (identd never reports an
    /// empty user id), so a client that sends none is refused with 93 in `require`
    /// mode: the protocol text's "different user-ids" case. No case folding and no
    /// trimming: `Fred` is not `fred`.
    ///
    /// ```
    /// use socks4_ident::{Comparison, ErrorCode, Outcome, UserId};
    /// let joe = Outcome::UserId(UserId { opsys: "UNIX".into(), charset: None, user_id: b"joe".to_vec() });
    /// assert_eq!(joe.compare(b"joe"), Comparison::Match);
    /// assert_eq!(joe.compare(b"Joe"), Comparison::Mismatch);
    /// assert_eq!(joe.compare(b""), Comparison::Mismatch);
    /// assert_eq!(Outcome::Error(ErrorCode::NoUser).compare(b"joe"), Comparison::Unavailable);
    /// ```
    pub fn compare(&self, request_user_id: &[u8]) -> Comparison {
        match self {
            Outcome::UserId(u) if u.user_id == request_user_id => Comparison::Match,
            Outcome::UserId(_) => Comparison::Mismatch,
            Outcome::Error(_) | Outcome::Invalid(_) => Comparison::Unavailable,
        }
    }

    /// The user id, when identd named one.
    pub fn user_id(&self) -> Option<&[u8]> {
        match self {
            Outcome::UserId(u) => Some(&u.user_id),
            _ => None,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::UserId(u) => write!(
                f,
                "USERID {} ({})",
                String::from_utf8_lossy(&u.user_id),
                u.opsys
            ),
            Outcome::Error(e) => write!(f, "ERROR {e}"),
            Outcome::Invalid(e) => e.fmt(f),
        }
    }
}

/// Parses one reply line (with or without its CRLF) to a query.
///
/// ```
/// use socks4_ident::{parse_reply, ErrorCode, Outcome, Query};
/// let q = Query::new(6193, 23);
/// let out = parse_reply(b"6193, 23 : USERID : UNIX : stjohns\r\n", &q);
/// assert_eq!(out.user_id(), Some(&b"stjohns"[..]));
/// assert_eq!(parse_reply(b"6195, 23 : ERROR : NO-USER", &Query::new(6195, 23)), Outcome::Error(ErrorCode::NoUser));
/// ```
pub fn parse_reply(line: &[u8], query: &Query) -> Outcome {
    match parse_line(line, query) {
        Ok(outcome) => outcome,
        Err(invalid) => Outcome::Invalid(invalid),
    }
}

fn parse_line(line: &[u8], query: &Query) -> Result<Outcome, InvalidReply> {
    if line.len() > MAX_LINE_LEN {
        return Err(InvalidReply::TooLong);
    }
    let line = strip_eol(line);
    if line.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(InvalidReply::Malformed(
            "one line without CR, LF or NUL inside",
        ));
    }
    let mut fields = line.splitn(3, |&b| b == b':');
    let ports = fields.next().unwrap_or_default();
    let (Some(kind), Some(info)) = (fields.next(), fields.next()) else {
        return Err(InvalidReply::Malformed("'<ports> : <USERID|ERROR> : ...'"));
    };
    let got = parse_ports(ports)?;
    if got != *query {
        return Err(InvalidReply::PortMismatch { got });
    }
    let kind = trim(kind);
    if kind.eq_ignore_ascii_case(b"ERROR") {
        let token = token(info, "an error token")?;
        return ErrorCode::from_token(&token)
            .map(Outcome::Error)
            .ok_or(InvalidReply::Malformed(
                "INVALID-PORT, NO-USER, HIDDEN-USER, UNKNOWN-ERROR or X...",
            ));
    }
    if !kind.eq_ignore_ascii_case(b"USERID") {
        return Err(InvalidReply::Malformed("USERID or ERROR"));
    }
    let Some(colon) = info.iter().position(|&b| b == b':') else {
        return Err(InvalidReply::Malformed(
            "'<opsys> : <user-id>' after USERID",
        ));
    };
    let (opsys_field, user_id) = (&info[..colon], &info[colon + 1..]);
    let (opsys, charset) = match opsys_field.iter().position(|&b| b == b',') {
        Some(comma) => (
            token(&opsys_field[..comma], "an opsys token")?,
            Some(token(&opsys_field[comma + 1..], "a charset token")?),
        ),
        None => (token(opsys_field, "an opsys token")?, None),
    };
    let start = user_id
        .iter()
        .position(|b| !crate::query::is_space(*b))
        .unwrap_or(user_id.len());
    let user_id = &user_id[start..];
    if user_id.is_empty() {
        return Err(InvalidReply::Malformed("a non-empty user id"));
    }
    Ok(Outcome::UserId(UserId {
        opsys,
        charset,
        user_id: user_id.to_vec(),
    }))
}

fn parse_ports(field: &[u8]) -> Result<Query, InvalidReply> {
    const WHAT: &str = "'<port> , <port>' before the first colon";
    let mut parts = field.split(|&b| b == b',');
    let (Some(a), Some(b), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(InvalidReply::Malformed(WHAT));
    };
    match (parse_port(a), parse_port(b)) {
        (Ok(a), Ok(b)) => Ok(Query::new(a, b)),
        _ => Err(InvalidReply::Malformed(WHAT)),
    }
}

/// An RFC 1413 token: 1–64 printable US-ASCII characters, white space around it.
fn token(field: &[u8], what: &'static str) -> Result<String, InvalidReply> {
    let t = trim(field);
    if t.is_empty()
        || t.len() > MAX_TOKEN_LEN
        || !t.iter().all(|b| b.is_ascii_graphic() && *b != b':')
    {
        return Err(InvalidReply::Malformed(what));
    }
    Ok(String::from_utf8_lossy(t).into_owned())
}

/// The reply line an identd sends for `query`: the responder's side, used by tests
/// and by software that answers IDENT queries.
///
/// ```
/// use socks4_ident::{encode_reply, ErrorCode, Outcome, Query, UserId};
/// let q = Query::new(6193, 23);
/// let ok = Ok(UserId { opsys: "UNIX".into(), charset: None, user_id: b"stjohns".to_vec() });
/// assert_eq!(encode_reply(&q, &ok), b"6193 , 23 : USERID : UNIX : stjohns\r\n");
/// let err = Err(ErrorCode::HiddenUser);
/// assert_eq!(encode_reply(&q, &err), b"6193 , 23 : ERROR : HIDDEN-USER\r\n");
/// ```
pub fn encode_reply(query: &Query, answer: &Result<UserId, ErrorCode>) -> Vec<u8> {
    let mut out = format!("{query} : ").into_bytes();
    match answer {
        Ok(u) => {
            out.extend_from_slice(b"USERID : ");
            out.extend_from_slice(u.opsys.as_bytes());
            if let Some(charset) = &u.charset {
                out.push(b',');
                out.extend_from_slice(charset.as_bytes());
            }
            out.extend_from_slice(b" : ");
            out.extend_from_slice(&u.user_id);
        }
        Err(e) => {
            out.extend_from_slice(b"ERROR : ");
            out.extend_from_slice(e.as_str().as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: Query = Query {
        port_on_server: 6193,
        port_on_client: 23,
    };

    fn user(opsys: &str, charset: Option<&str>, id: &[u8]) -> Outcome {
        Outcome::UserId(UserId {
            opsys: opsys.into(),
            charset: charset.map(Into::into),
            user_id: id.to_vec(),
        })
    }

    #[test]
    fn rfc_examples() {
        // RFC 1413 section 7, with the ports of its examples.
        assert_eq!(
            parse_reply(b"6193, 23 : USERID : UNIX : stjohns\r\n", &Q),
            user("UNIX", None, b"stjohns")
        );
        let q = Query::new(6195, 23);
        assert_eq!(
            parse_reply(b"6195, 23 : ERROR : NO-USER\r\n", &q),
            Outcome::Error(ErrorCode::NoUser)
        );
    }

    #[test]
    fn table() {
        let cases: Vec<(&[u8], Outcome)> = vec![
            (b"6193,23:USERID:UNIX:joe", user("UNIX", None, b"joe")),
            (
                b"  6193 ,\t23 :  USERID : UNIX , UTF-8 : joe\r\n",
                user("UNIX", Some("UTF-8"), b"joe"),
            ),
            // The user id runs to the end of line: colons, spaces, trailing blanks.
            (
                b"6193,23:USERID:OTHER:a:b c  \r\n",
                user("OTHER", None, b"a:b c  "),
            ),
            (
                b"6193,23:userid:UNIX:\xc3\xa9t\xc3\xa9",
                user("UNIX", None, "été".as_bytes()),
            ),
            (
                b"6193,23:ERROR:INVALID-PORT",
                Outcome::Error(ErrorCode::InvalidPort),
            ),
            (
                b"6193,23 : ERROR : HIDDEN-USER ",
                Outcome::Error(ErrorCode::HiddenUser),
            ),
            (
                b"6193,23:ERROR:UNKNOWN-ERROR\n",
                Outcome::Error(ErrorCode::UnknownError),
            ),
            (
                b"6193,23:ERROR:X-BUSY",
                Outcome::Error(ErrorCode::Other("X-BUSY".into())),
            ),
            (
                b"6193,24:USERID:UNIX:joe",
                Outcome::Invalid(InvalidReply::PortMismatch {
                    got: Query::new(6193, 24),
                }),
            ),
            (
                b"23,6193:USERID:UNIX:joe",
                Outcome::Invalid(InvalidReply::PortMismatch {
                    got: Query::new(23, 6193),
                }),
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(
                parse_reply(line, &Q),
                expected,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn malformed() {
        for line in [
            &b""[..],
            b"6193,23",
            b"6193,23:USERID",
            b"6193,23:USERID:UNIX",
            b"6193,23:USERID:UNIX:",
            b"6193,23:USERID:UNIX:   ",
            b"6193,23:USERID::joe",
            b"6193,23:USERID:UN IX:joe",
            b"6193,23:MAYBE:joe",
            b"6193,23:ERROR:",
            b"6193,23:ERROR:NOPE",
            b"6193:USERID:UNIX:joe",
            b"x,23:USERID:UNIX:joe",
            b"6193,23:USERID:UNIX:jo\0e",
            b"6193,23:USERID:UNIX:jo\re",
        ] {
            assert!(
                matches!(
                    parse_reply(line, &Q),
                    Outcome::Invalid(InvalidReply::Malformed(_))
                ),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
        let long_token = format!("6193,23:ERROR:X{}", "A".repeat(64));
        assert!(matches!(
            parse_reply(long_token.as_bytes(), &Q),
            Outcome::Invalid(_)
        ));
    }

    #[test]
    fn user_ids_of_512_octets_are_accepted_and_lines_over_1000_are_not() {
        let mut line = b"6193 , 23 : USERID : UNIX : ".to_vec();
        line.extend(std::iter::repeat_n(b'u', 512));
        line.extend_from_slice(b"\r\n");
        assert_eq!(parse_reply(&line, &Q).user_id().map(<[u8]>::len), Some(512));
        let mut long = b"6193,23:USERID:UNIX:".to_vec();
        long.resize(MAX_LINE_LEN + 1, b'u');
        assert_eq!(
            parse_reply(&long, &Q),
            Outcome::Invalid(InvalidReply::TooLong)
        );
    }

    #[test]
    fn compare_is_byte_for_byte() {
        let joe = user("UNIX", None, b"joe");
        assert_eq!(joe.compare(b"joe"), Comparison::Match);
        assert_eq!(joe.compare(b"joe "), Comparison::Mismatch);
        assert_eq!(joe.compare(b""), Comparison::Mismatch);
        assert_eq!(
            Outcome::Invalid(InvalidReply::TooLong).compare(b"joe"),
            Comparison::Unavailable
        );
        assert_eq!(
            Outcome::Error(ErrorCode::HiddenUser).compare(b""),
            Comparison::Unavailable
        );
    }

    #[test]
    fn encode_then_parse() {
        let answers = [
            Ok(UserId {
                opsys: "UNIX".into(),
                charset: Some("US-ASCII".into()),
                user_id: b"a b:c".to_vec(),
            }),
            Err(ErrorCode::InvalidPort),
            Err(ErrorCode::Other("XYZ".into())),
        ];
        for a in answers {
            let line = encode_reply(&Q, &a);
            let expected = match a.clone() {
                Ok(u) => Outcome::UserId(u),
                Err(e) => Outcome::Error(e),
            };
            assert_eq!(parse_reply(&line, &Q), expected);
        }
    }
}
