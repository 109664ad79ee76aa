//! The client side of an HTTP CONNECT parent proxy, without IO:
//! [`HttpConnect`] makes the `CONNECT host:port HTTP/1.1` request (with basic
//! authentication when given) and reads the response, bounded, in any split.
//! A `2xx` status grants the tunnel; bytes after the response's head belong to
//! the tunnel and are handed back, not swallowed. (A SOCKS4/4a parent is
//! spoken to with [`crate::client::Handshake`].)
//!
//! ```
//! use socks4_proto::upstream::{HttpConnect, HttpOutcome};
//! let mut c = HttpConnect::new("example.com", 443, None);
//! assert!(c.request().starts_with(b"CONNECT example.com:443 HTTP/1.1\r\n"));
//! let used = c.handle_input(b"HTTP/1.1 200 Connection established\r\n\r\nhello").unwrap();
//! assert_eq!(c.outcome(), Some(&HttpOutcome::Granted));
//! assert_eq!(&b"HTTP/1.1 200 Connection established\r\n\r\nhello"[used..], b"hello");
//! ```

use core::fmt;

/// The longest response head accepted (status line and headers).
pub const MAX_RESPONSE_HEAD: usize = 8192;

/// How many headers a response may have.
const MAX_HEADERS: usize = 64;

/// What the proxy answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpOutcome {
    /// A `2xx` status: the tunnel is open.
    Granted,
    /// Any other status, with its reason phrase (`407 Proxy Authentication
    /// Required`, `403 Forbidden`, ...).
    Refused {
        /// The status code.
        status: u16,
        /// The reason phrase, as sent (lossy UTF-8, at most 128 bytes).
        reason: String,
    },
}

/// Why a response is not HTTP, or too long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpError {
    /// Not an HTTP/1.x response.
    Malformed,
    /// The head is longer than [`MAX_RESPONSE_HEAD`].
    TooLong,
    /// The connection ended before the response was complete.
    Truncated,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HttpError::Malformed => "not an HTTP response",
            HttpError::TooLong => "response head too long",
            HttpError::Truncated => "connection closed before the response ended",
        })
    }
}

impl std::error::Error for HttpError {}

/// One CONNECT exchange.
#[derive(Debug, Clone)]
pub struct HttpConnect {
    request: Vec<u8>,
    head: Vec<u8>,
    outcome: Option<HttpOutcome>,
}

/// Base64 (RFC 4648, with padding), for basic authentication.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl HttpConnect {
    /// A CONNECT to `host:port`, with `Proxy-Authorization: Basic` when
    /// `auth` (user, password) is given. An IPv6 host is bracketed.
    pub fn new(host: &str, port: u16, auth: Option<(&str, &str)>) -> HttpConnect {
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        if let Some((user, password)) = auth {
            let token = base64(format!("{user}:{password}").as_bytes());
            request.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
        }
        request.push_str("\r\n");
        HttpConnect {
            request: request.into_bytes(),
            head: Vec::new(),
            outcome: None,
        }
    }

    /// The request's bytes, to send once.
    pub fn request(&self) -> &[u8] {
        &self.request
    }

    /// The proxy's bytes, in any split; how many of `input` belonged to the
    /// response (the rest, once there is an outcome, is the tunnel's).
    pub fn handle_input(&mut self, input: &[u8]) -> Result<usize, HttpError> {
        if self.outcome.is_some() {
            return Ok(0);
        }
        let before = self.head.len();
        let room = MAX_RESPONSE_HEAD - before;
        let take = input.len().min(room);
        self.head.extend_from_slice(&input[..take]);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&self.head) {
            Ok(httparse::Status::Complete(len)) => {
                let status = response.code.ok_or(HttpError::Malformed)?;
                self.outcome = Some(if (200..300).contains(&status) {
                    HttpOutcome::Granted
                } else {
                    let reason = response.reason.unwrap_or_default();
                    let reason: String = reason.chars().take(128).collect();
                    HttpOutcome::Refused { status, reason }
                });
                self.head.truncate(len);
                Ok(len - before)
            }
            Ok(httparse::Status::Partial)
                if take < input.len() || self.head.len() >= MAX_RESPONSE_HEAD =>
            {
                Err(HttpError::TooLong)
            }
            Ok(httparse::Status::Partial) => Ok(take),
            Err(_) => Err(HttpError::Malformed),
        }
    }

    /// The connection ended: an error unless the response is complete.
    pub fn handle_eof(&mut self) -> Result<(), HttpError> {
        match self.outcome {
            Some(_) => Ok(()),
            None => Err(HttpError::Truncated),
        }
    }

    /// The proxy's answer, once the response head is complete.
    pub fn outcome(&self) -> Option<&HttpOutcome> {
        self.outcome.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_with_and_without_authentication() {
        let c = HttpConnect::new("2001:db8::1", 443, Some(("Aladdin", "open sesame")));
        let text = String::from_utf8(c.request().to_vec()).unwrap();
        assert!(
            text.starts_with("CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n"),
            "{text}"
        );
        assert!(
            text.contains("Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n"),
            "{text}"
        );
        assert!(text.ends_with("\r\n\r\n"));
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b""), "");
    }

    #[test]
    fn responses_in_any_split() {
        let response = b"HTTP/1.0 200 OK\r\nProxy-Agent: tinyproxy\r\n\r\nTUNNEL";
        for cut in 0..response.len() {
            let mut c = HttpConnect::new("h", 1, None);
            let used1 = c.handle_input(&response[..cut]).unwrap();
            let used2 = c.handle_input(&response[cut..]).unwrap();
            assert_eq!(c.outcome(), Some(&HttpOutcome::Granted), "cut {cut}");
            assert_eq!(used1 + used2, response.len() - 6, "cut {cut}");
        }
        let mut c = HttpConnect::new("h", 1, None);
        c.handle_input(b"HTTP/1.1 403 Forbidden\r\n\r\n").unwrap();
        assert_eq!(
            c.outcome(),
            Some(&HttpOutcome::Refused {
                status: 403,
                reason: "Forbidden".into()
            })
        );
    }

    #[test]
    fn bad_responses_are_errors_not_waits() {
        let mut c = HttpConnect::new("h", 1, None);
        assert_eq!(
            c.handle_input(b"SSH-2.0-OpenSSH\r\n\r\n"),
            Err(HttpError::Malformed)
        );
        let mut c = HttpConnect::new("h", 1, None);
        let long = [b'X'; MAX_RESPONSE_HEAD + 10];
        let mut head = b"HTTP/1.1 200 OK\r\nX-Long: ".to_vec();
        head.extend_from_slice(&long);
        assert_eq!(c.handle_input(&head), Err(HttpError::TooLong));
        let mut c = HttpConnect::new("h", 1, None);
        c.handle_input(b"HTTP/1.1 200").unwrap();
        assert_eq!(c.handle_eof(), Err(HttpError::Truncated));
    }
}
