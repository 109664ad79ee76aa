//! The PROXY protocol header that a load balancer (HAProxy, a cloud balancer,
//! a Kubernetes Service with it on) sends before a client's first byte, to say
//! who the client is: version 1 (a text line, at most 107 bytes) and version 2
//! (binary: a 16-byte head and the length it gives). See HAProxy's
//! `proxy-protocol.txt`.
//!
//! [`parse`] takes what has arrived so far and says whether the header is
//! complete (and how long it is: bytes behind it are the client's own),
//! incomplete (every byte so far is part of it: consume them and read on), or
//! invalid. It is bounded: v1 past 107 bytes without its line end, and v2
//! announcing more than the caller's cap, are invalid at once, never
//! "incomplete". The `ppp` crate parses the header itself; this module frames
//! it and bounds it.
//!
//! ```
//! use socks4_proto::proxy_header::{parse, Accept, Parsed};
//! let bytes = b"PROXY TCP4 192.0.2.7 192.0.2.1 40000 1080\r\n\x04\x01";
//! match parse(&bytes[..20], Accept::Any, 536) {
//!     Parsed::Incomplete => {}
//!     other => panic!("{other:?}"),
//! }
//! let Parsed::Complete { header, len } = parse(bytes, Accept::Any, 536) else { panic!() };
//! assert_eq!(header.source, Some("192.0.2.7:40000".parse().unwrap()));
//! assert_eq!(&bytes[len..], b"\x04\x01"); // the client's own bytes
//! ```

use core::fmt;
use std::net::{IpAddr, SocketAddr};

/// The v2 header's signature: its first 12 bytes.
pub const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The v1 header's first bytes.
pub const V1_PREFIX: &[u8; 6] = b"PROXY ";
/// The longest v1 header, line end included (the specification's bound).
pub const V1_MAX: usize = 107;
/// The v2 header's fixed part: signature, version and command, family and
/// protocol, length.
pub const V2_HEAD: usize = 16;

/// Which versions a listener accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Accept {
    /// The text header only.
    V1,
    /// The binary header only.
    V2,
    /// Either.
    Any,
}

impl Accept {
    fn v1(self) -> bool {
        matches!(self, Accept::V1 | Accept::Any)
    }

    fn v2(self) -> bool {
        matches!(self, Accept::V2 | Accept::Any)
    }
}

impl core::str::FromStr for Accept {
    type Err = String;

    fn from_str(s: &str) -> Result<Accept, String> {
        match s {
            "v1" => Ok(Accept::V1),
            "v2" => Ok(Accept::V2),
            "any" => Ok(Accept::Any),
            _ => Err(format!("'{s}': expected v1, v2 or any")),
        }
    }
}

impl fmt::Display for Accept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Accept::V1 => "v1",
            Accept::V2 => "v2",
            Accept::Any => "any",
        })
    }
}

/// What a complete header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// 1 or 2.
    pub version: u8,
    /// The client's address; `None` for a `LOCAL` header (v2: a health check
    /// or the balancer's own connection) and `UNKNOWN` (v1), which are served
    /// as from the balancer itself.
    pub source: Option<SocketAddr>,
    /// The address the client connected to (on the balancer); `None` as for
    /// `source`.
    pub destination: Option<SocketAddr>,
}

/// Why a header is not acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HeaderError {
    /// The bytes are not a PROXY header of either version.
    NotProxy,
    /// A header of a version the listener does not accept.
    Version(u8),
    /// Longer than allowed: v1 past 107 bytes, v2 past the cap.
    TooLong,
    /// A header that does not parse, or has addresses of a family that is not
    /// TCP over IPv4 or IPv6.
    Malformed,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::NotProxy => f.write_str("not a PROXY protocol header"),
            HeaderError::Version(v) => write!(
                f,
                "a v{v} PROXY header, which this listener does not accept"
            ),
            HeaderError::TooLong => f.write_str("PROXY header too long"),
            HeaderError::Malformed => f.write_str("malformed PROXY header"),
        }
    }
}

impl std::error::Error for HeaderError {}

/// The outcome of [`parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// More is needed, and every byte so far belongs to the header.
    Incomplete,
    /// The header, and its length: bytes after it are the client's.
    Complete {
        /// What it says.
        header: Header,
        /// Its length in bytes.
        len: usize,
    },
    /// Not acceptable: close the connection.
    Invalid(HeaderError),
}

/// Reads a header at the start of `input` (everything received so far),
/// accepting the versions of `accept` and a v2 header of at most `max_v2`
/// bytes (at least [`V2_HEAD`]).
pub fn parse(input: &[u8], accept: Accept, max_v2: usize) -> Parsed {
    let starts = |prefix: &[u8]| {
        let n = input.len().min(prefix.len());
        input[..n] == prefix[..n]
    };
    if input.is_empty() {
        Parsed::Incomplete
    } else if starts(V2_SIGNATURE) {
        if !accept.v2() {
            Parsed::Invalid(HeaderError::Version(2))
        } else {
            v2(input, max_v2.max(V2_HEAD))
        }
    } else if starts(V1_PREFIX) {
        if !accept.v1() {
            Parsed::Invalid(HeaderError::Version(1))
        } else {
            v1(input)
        }
    } else {
        Parsed::Invalid(HeaderError::NotProxy)
    }
}

fn v1(input: &[u8]) -> Parsed {
    let window = &input[..input.len().min(V1_MAX)];
    let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
        return if input.len() >= V1_MAX {
            Parsed::Invalid(HeaderError::TooLong)
        } else {
            Parsed::Incomplete
        };
    };
    let len = end + 2;
    match ppp::v1::Header::try_from(&input[..len]) {
        Ok(h) => {
            let (source, destination) = match h.addresses {
                ppp::v1::Addresses::Tcp4(a) => (
                    Some(SocketAddr::new(IpAddr::V4(a.source_address), a.source_port)),
                    Some(SocketAddr::new(
                        IpAddr::V4(a.destination_address),
                        a.destination_port,
                    )),
                ),
                ppp::v1::Addresses::Tcp6(a) => (
                    Some(SocketAddr::new(IpAddr::V6(a.source_address), a.source_port)),
                    Some(SocketAddr::new(
                        IpAddr::V6(a.destination_address),
                        a.destination_port,
                    )),
                ),
                ppp::v1::Addresses::Unknown => (None, None),
            };
            Parsed::Complete {
                header: Header {
                    version: 1,
                    source,
                    destination,
                },
                len,
            }
        }
        Err(_) => Parsed::Invalid(HeaderError::Malformed),
    }
}

fn v2(input: &[u8], max: usize) -> Parsed {
    if input.len() < V2_HEAD {
        return Parsed::Incomplete;
    }
    let len = V2_HEAD + usize::from(u16::from_be_bytes([input[14], input[15]]));
    if len > max {
        return Parsed::Invalid(HeaderError::TooLong);
    }
    if input.len() < len {
        return Parsed::Incomplete;
    }
    let Ok(h) = ppp::v2::Header::try_from(&input[..len]) else {
        return Parsed::Invalid(HeaderError::Malformed);
    };
    let (source, destination) = match (h.command, h.addresses) {
        (ppp::v2::Command::Local, _) => (None, None),
        (ppp::v2::Command::Proxy, ppp::v2::Addresses::IPv4(a)) => (
            Some(SocketAddr::new(IpAddr::V4(a.source_address), a.source_port)),
            Some(SocketAddr::new(
                IpAddr::V4(a.destination_address),
                a.destination_port,
            )),
        ),
        (ppp::v2::Command::Proxy, ppp::v2::Addresses::IPv6(a)) => (
            Some(SocketAddr::new(IpAddr::V6(a.source_address), a.source_port)),
            Some(SocketAddr::new(
                IpAddr::V6(a.destination_address),
                a.destination_port,
            )),
        ),
        // PROXY with no address (UNSPEC) is to be served as LOCAL; a UNIX
        // socket's addresses are not a client a SOCKS server can name.
        (ppp::v2::Command::Proxy, ppp::v2::Addresses::Unspecified) => (None, None),
        (ppp::v2::Command::Proxy, ppp::v2::Addresses::Unix(_)) => {
            return Parsed::Invalid(HeaderError::Malformed)
        }
    };
    Parsed::Complete {
        header: Header {
            version: 2,
            source,
            destination,
        },
        len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2_header(command: u8, family: u8, addrs: &[u8], extra: usize) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(0x20 | command);
        h.push(family);
        h.extend_from_slice(&((addrs.len() + extra) as u16).to_be_bytes());
        h.extend_from_slice(addrs);
        h.extend(std::iter::repeat_n(0u8, extra));
        h
    }

    #[test]
    fn v1_and_v2_headers_and_what_follows() {
        let line = b"PROXY TCP6 2001:db8::7 2001:db8::1 40000 1080\r\n";
        let Parsed::Complete { header, len } = parse(line, Accept::V1, 536) else {
            panic!()
        };
        assert_eq!(len, line.len());
        assert_eq!(header.source, Some("[2001:db8::7]:40000".parse().unwrap()));
        assert_eq!(
            parse(b"PROXY UNKNOWN\r\n", Accept::Any, 536),
            Parsed::Complete {
                header: Header {
                    version: 1,
                    source: None,
                    destination: None
                },
                len: 15
            }
        );
        // v2 PROXY over TCP4: 12 address bytes, and 4 bytes of a TLV.
        let mut addrs = vec![192, 0, 2, 7, 192, 0, 2, 1];
        addrs.extend_from_slice(&40000u16.to_be_bytes());
        addrs.extend_from_slice(&1080u16.to_be_bytes());
        let mut h = v2_header(1, 0x11, &addrs, 0);
        h.extend_from_slice(b"\x04\x01");
        let Parsed::Complete { header, len } = parse(&h, Accept::V2, 536) else {
            panic!()
        };
        assert_eq!(header.source, Some("192.0.2.7:40000".parse().unwrap()));
        assert_eq!(&h[len..], b"\x04\x01");
        // Every prefix is incomplete, never wrong.
        for n in 0..len {
            assert_eq!(parse(&h[..n], Accept::Any, 536), Parsed::Incomplete, "{n}");
        }
        // LOCAL (a health check): no address.
        let local = v2_header(0, 0x00, &[], 0);
        assert!(matches!(
            parse(&local, Accept::Any, 536),
            Parsed::Complete {
                header: Header { source: None, .. },
                len: 16
            }
        ));
    }

    #[test]
    fn bounds_and_garbage_are_invalid_at_once() {
        assert_eq!(
            parse(b"\x04\x01\x00\x50", Accept::Any, 536),
            Parsed::Invalid(HeaderError::NotProxy)
        );
        assert_eq!(
            parse(b"PROXY TCP4 ", Accept::V2, 536),
            Parsed::Invalid(HeaderError::Version(1))
        );
        assert_eq!(parse(&[b'P'; 1], Accept::Any, 536), Parsed::Incomplete);
        let mut long = b"PROXY TCP4 ".to_vec();
        long.extend(std::iter::repeat_n(b'1', 200));
        assert_eq!(
            parse(&long, Accept::Any, 536),
            Parsed::Invalid(HeaderError::TooLong)
        );
        // v2 announcing 60000 bytes: refused from its 16-byte head.
        let mut head = V2_SIGNATURE.to_vec();
        head.extend_from_slice(&[0x21, 0x11]);
        head.extend_from_slice(&60000u16.to_be_bytes());
        assert_eq!(
            parse(&head, Accept::Any, 536),
            Parsed::Invalid(HeaderError::TooLong)
        );
        assert_eq!(
            parse(b"PROXY TCP4 not an address\r\n", Accept::Any, 536),
            Parsed::Invalid(HeaderError::Malformed)
        );
    }
}
