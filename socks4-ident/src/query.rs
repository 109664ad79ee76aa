//! The query line: which connection the querier asks about.
//!
//! RFC 1413 names the ports from the identd host's point of view: the "server" is
//! the host running identd (for a SOCKS proxy, the SOCKS client's machine), the
//! "client" is the host asking (the proxy). So a proxy asks about
//! `<SOCKS client's source port> , <proxy port the client connected to>`.

use core::fmt;

/// The port pair of an IDENT query, in RFC 1413 order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Query {
    /// The port on the identd host: a SOCKS client's source port.
    pub port_on_server: u16,
    /// The port on the querying host: the proxy port the SOCKS client connected to.
    pub port_on_client: u16,
}

/// The longest query line [`Query::encode`] produces: `"65535 , 65535\r\n"`.
pub const MAX_QUERY_LEN: usize = 15;

impl Query {
    /// A query for the connection between `port_on_server` (on the identd host) and
    /// `port_on_client` (on the querying host).
    pub fn new(port_on_server: u16, port_on_client: u16) -> Query {
        Query {
            port_on_server,
            port_on_client,
        }
    }

    /// The query line, `"<port-on-server> , <port-on-client>\r\n"`.
    ///
    /// ```
    /// let q = socks4_ident::Query::new(6193, 23);
    /// assert_eq!(q.encode(), b"6193 , 23\r\n");
    /// ```
    pub fn encode(&self) -> Vec<u8> {
        format!("{} , {}\r\n", self.port_on_server, self.port_on_client).into_bytes()
    }

    /// Parses a query line, as an identd does. `line` may end in CRLF or LF; white
    /// space around the tokens is allowed. A port outside 1–65535 is
    /// [`QueryError::InvalidPort`], which an identd answers with `INVALID-PORT`.
    ///
    /// ```
    /// use socks4_ident::Query;
    /// assert_eq!(Query::parse(b" 6191,23\r\n"), Ok(Query::new(6191, 23)));
    /// ```
    pub fn parse(line: &[u8]) -> Result<Query, QueryError> {
        let line = strip_eol(line);
        let mut parts = line.split(|&b| b == b',');
        let (Some(a), Some(b), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(QueryError::Malformed);
        };
        Ok(Query::new(parse_port(a)?, parse_port(b)?))
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} , {}", self.port_on_server, self.port_on_client)
    }
}

/// Why a query line cannot be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QueryError {
    /// Not two comma-separated numbers.
    Malformed,
    /// A port is 0, over 65535, or longer than five digits.
    InvalidPort,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QueryError::Malformed => "expected '<port> , <port>'",
            QueryError::InvalidPort => "port outside 1-65535",
        })
    }
}

impl std::error::Error for QueryError {}

/// Removes a trailing LF or CRLF.
pub(crate) fn strip_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Removes RFC 1413 white space (space and tab) at both ends.
pub(crate) fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !is_space(*b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_space(*b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

pub(crate) fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// A port token: 1–5 digits, value 1–65535, white space around it allowed.
pub(crate) fn parse_port(token: &[u8]) -> Result<u16, QueryError> {
    let digits = trim(token);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(QueryError::Malformed);
    }
    if digits.len() > 5 {
        return Err(QueryError::InvalidPort);
    }
    let value = digits
        .iter()
        .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
    match u16::try_from(value) {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(QueryError::InvalidPort),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_in_rfc_order() {
        assert_eq!(Query::new(6195, 23).encode(), b"6195 , 23\r\n");
        assert_eq!(Query::new(65535, 65535).encode().len(), MAX_QUERY_LEN);
        assert_eq!(Query::new(6195, 23).to_string(), "6195 , 23");
    }

    #[test]
    fn parses_with_liberal_white_space() {
        for line in [
            &b"6195, 23\r\n"[..],
            b"6195,23",
            b" \t6195 ,\t23 \r\n",
            b"6195 , 23\n",
        ] {
            assert_eq!(Query::parse(line), Ok(Query::new(6195, 23)), "{line:?}");
        }
    }

    #[test]
    fn rejects_bad_queries() {
        assert_eq!(Query::parse(b"6195 23"), Err(QueryError::Malformed));
        assert_eq!(Query::parse(b"6195,23,1"), Err(QueryError::Malformed));
        assert_eq!(Query::parse(b"6195,"), Err(QueryError::Malformed));
        assert_eq!(Query::parse(b"61 95,23"), Err(QueryError::Malformed));
        assert_eq!(Query::parse(b"-1,23"), Err(QueryError::Malformed));
        assert_eq!(Query::parse(b"0,23"), Err(QueryError::InvalidPort));
        assert_eq!(Query::parse(b"65536,23"), Err(QueryError::InvalidPort));
        assert_eq!(Query::parse(b"123456,23"), Err(QueryError::InvalidPort));
    }
}
