//! The name a client means, read from its first bytes: the server name (SNI)
//! of a TLS ClientHello, or the `Host` header of an HTTP/1.x request. A
//! transparent, redirected or forwarded connection arrives with an address
//! only; its first bytes often name the host, and rules and routes written
//! with names can then match it (as redsocks, gost's `sniffing`, sing-box
//! and clash do).
//!
//! Sans-IO: the caller reads the client's bytes and feeds them in
//! ([`Sniffer::feed`]), or asks [`sniff`] of what it has; the answer is
//! [`Sniffed::NeedMore`] while the bytes so far are the start of a
//! ClientHello or request that has not yet named the host,
//! [`Sniffed::Name`] once one did, [`Sniffed::NotFound`] when the bytes are
//! neither (another protocol), carry no name, or the name did not come
//! within the bound. The caller owns the deadline: a server-first protocol
//! sends nothing, and the caller goes on without a name when its time is up.
//! Nothing here is trusted beyond its bounds: a name is at most 253 bytes
//! of letters, digits, `-`, `_` and `.`, and an IP literal is not a name.
//!
//! A ClientHello may span several TLS records (post-quantum key shares make
//! it larger than one packet); their payloads are joined until the SNI
//! extension is read, or the bytes reach the bound.
//!
//! ```
//! use socks4_proto::sniff::{sniff, NameKind, Sniffed};
//! let get = b"GET / HTTP/1.1\r\nHost: Name.Test:8080\r\n\r\n";
//! assert_eq!(sniff(get, 16 * 1024), Sniffed::Name("name.test".into(), NameKind::Host));
//! assert_eq!(sniff(&get[..20], 16 * 1024), Sniffed::NeedMore);
//! assert_eq!(sniff(b"SSH-2.0-OpenSSH_9.6\r\n", 16 * 1024), Sniffed::NotFound);
//! ```

use core::fmt;

/// The longest host name taken (RFC 1035's 253 characters in text form).
pub const MAX_NAME: usize = 253;

/// Where a name was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NameKind {
    /// The server name indication of a TLS ClientHello.
    Sni,
    /// The `Host` header of an HTTP/1.x request.
    Host,
}

impl NameKind {
    /// Its label in logs: `sni` or `host`.
    pub fn label(self) -> &'static str {
        match self {
            NameKind::Sni => "sni",
            NameKind::Host => "host",
        }
    }
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// What the bytes so far say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sniffed {
    /// They are the start of a ClientHello or an HTTP request that has not
    /// named its host yet: more bytes may.
    NeedMore,
    /// The host name (lower case, no trailing dot, no port) and where it was
    /// found.
    Name(String, NameKind),
    /// No name: another protocol, a ClientHello without SNI, a request
    /// without `Host`, a name that is not a host name, or no name within
    /// the bound.
    NotFound,
}

/// What the bytes in `bytes` say, looking at no more than `max` of them: a
/// name, more needed, or none (`NeedMore` becomes `NotFound` once `max`
/// bytes are there).
pub fn sniff(bytes: &[u8], max: usize) -> Sniffed {
    let bytes = &bytes[..bytes.len().min(max)];
    let found = match bytes.first() {
        None => Sniffed::NeedMore,
        Some(0x16) => tls(bytes),
        Some(b'A'..=b'Z') => http(bytes),
        Some(_) => Sniffed::NotFound,
    };
    match found {
        Sniffed::NeedMore if bytes.len() >= max => Sniffed::NotFound,
        other => other,
    }
}

/// A client's first bytes gathered up to a bound, and what they say.
#[derive(Debug, Clone)]
pub struct Sniffer {
    max: usize,
    buf: Vec<u8>,
    verdict: Sniffed,
}

impl Sniffer {
    /// A sniffer that looks at no more than `max` bytes.
    pub fn new(max: usize) -> Sniffer {
        Sniffer {
            max,
            buf: Vec::new(),
            verdict: if max == 0 {
                Sniffed::NotFound
            } else {
                Sniffed::NeedMore
            },
        }
    }

    /// How many more bytes it takes before its bound (0 once it has
    /// decided): read no more than this from the client.
    pub fn room(&self) -> usize {
        match self.verdict {
            Sniffed::NeedMore => self.max - self.buf.len(),
            _ => 0,
        }
    }

    /// More of the client's bytes: what they say now. Bytes past
    /// [`room`](Self::room) are kept too (they go to the destination with
    /// the rest) but not looked at; once decided, the answer stays.
    pub fn feed(&mut self, bytes: &[u8]) -> &Sniffed {
        self.buf.extend_from_slice(bytes);
        if self.verdict == Sniffed::NeedMore {
            self.verdict = sniff(&self.buf, self.max);
        }
        &self.verdict
    }

    /// The client closed, or the caller's time is up: no more bytes will
    /// come, and a name not found yet is not found.
    pub fn finish(&mut self) -> &Sniffed {
        if self.verdict == Sniffed::NeedMore {
            self.verdict = Sniffed::NotFound;
        }
        &self.verdict
    }

    /// What the bytes so far say.
    pub fn verdict(&self) -> &Sniffed {
        &self.verdict
    }

    /// The bytes fed, unchanged: they go first to the destination.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The bytes fed and the verdict, taking them.
    pub fn into_parts(self) -> (Vec<u8>, Sniffed) {
        (self.buf, self.verdict)
    }
}

/// A host name as a client wrote it, checked and made canonical: lower
/// case, no trailing dot; `None` for an IP literal or anything that is not
/// a host name.
fn host_name(raw: &[u8]) -> Option<String> {
    let raw = raw.strip_suffix(b".").unwrap_or(raw);
    if raw.is_empty() || raw.len() > MAX_NAME {
        return None;
    }
    let ok = raw
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !ok || raw.starts_with(b".") || raw.windows(2).any(|w| w == b"..") {
        return None;
    }
    let name = String::from_utf8(raw.to_ascii_lowercase()).ok()?;
    // An IPv4 literal (the only one the characters above allow) names no
    // host.
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return None;
    }
    Some(name)
}

/// Reads big-endian numbers and slices off the front, `None` past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<usize> {
        self.take(1).map(|b| b[0] as usize)
    }

    fn u16(&mut self) -> Option<usize> {
        self.take(2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
    }

    fn u24(&mut self) -> Option<usize> {
        self.take(3)
            .map(|b| (b[0] as usize) << 16 | (b[1] as usize) << 8 | b[2] as usize)
    }
}

/// The longest TLS record payload a ClientHello's records may carry
/// (RFC 8446: 2^14 bytes).
const MAX_RECORD: usize = 1 << 14;

/// A TLS ClientHello: its handshake bytes joined from its records, then its
/// SNI extension.
fn tls(bytes: &[u8]) -> Sniffed {
    let mut records = Reader(bytes);
    let mut hello = Vec::new();
    // A record that cannot be the ClientHello's: what came before it must
    // hold the name.
    let mut bad = false;
    while !records.0.is_empty() {
        let Some(header) = records.take(5) else {
            break;
        };
        // Handshake records only, TLS 1.0 to 1.3 on the wire (3.1 to 3.4;
        // 3.0 too, as some clients put it in the first record).
        let len = u16::from_be_bytes([header[3], header[4]]) as usize;
        if header[0] != 0x16 || header[1] != 3 || header[2] > 4 || len == 0 || len > MAX_RECORD {
            bad = true;
            break;
        }
        match records.take(len) {
            Some(payload) => hello.extend_from_slice(payload),
            // The record's start: what it holds so far counts.
            None => {
                hello.extend_from_slice(records.0);
                break;
            }
        }
    }
    match client_hello(&hello) {
        Some(found) => found,
        None if bad => Sniffed::NotFound,
        // Stopped short: a record (or the next one) is still coming.
        None => Sniffed::NeedMore,
    }
}

/// The SNI in a ClientHello's handshake bytes: `None` when they stop before
/// it is read.
fn client_hello(hs: &[u8]) -> Option<Sniffed> {
    let mut r = Reader(hs);
    // Handshake type 1: ClientHello.
    if r.u8()? != 1 {
        return Some(Sniffed::NotFound);
    }
    let len = r.u24()?;
    if len < 38 {
        return Some(Sniffed::NotFound);
    }
    // Only the message's own bytes count (what follows is another message).
    if r.0.len() > len {
        r.0 = &r.0[..len];
    }
    let whole = r.0.len() == len;
    // Past the end of a whole message, the answer is no; of a partial one,
    // more bytes.
    let short = |whole: bool| if whole { Some(Sniffed::NotFound) } else { None };
    let Some(version) = r.take(2) else {
        return short(whole);
    };
    if version[0] != 3 {
        return Some(Sniffed::NotFound);
    }
    if r.take(32).is_none() {
        return short(whole);
    }
    for width in [1, 2, 1] {
        let n = if width == 1 { r.u8() } else { r.u16() };
        let Some(n) = n else {
            return short(whole);
        };
        if r.take(n).is_none() {
            return short(whole);
        }
    }
    // No extensions (in a whole message): no SNI.
    let Some(ext_len) = r.u16() else {
        return short(whole);
    };
    let whole_exts = whole || r.0.len() >= ext_len;
    if r.0.len() >= ext_len {
        r.0 = &r.0[..ext_len];
    }
    loop {
        let Some(kind) = r.u16() else {
            return short(whole_exts);
        };
        let Some(n) = r.u16() else {
            return short(whole_exts);
        };
        let Some(data) = r.take(n) else {
            return short(whole_exts);
        };
        if kind == 0 {
            return Some(server_name(data));
        }
    }
}

/// The server_name extension's host name (RFC 6066, section 3).
fn server_name(data: &[u8]) -> Sniffed {
    let mut r = Reader(data);
    let Some(list) = r.u16().and_then(|n| r.take(n)) else {
        return Sniffed::NotFound;
    };
    let mut list = Reader(list);
    while let Some(kind) = list.u8() {
        let Some(name) = list.u16().and_then(|n| list.take(n)) else {
            break;
        };
        if kind == 0 {
            return match host_name(name) {
                Some(name) => Sniffed::Name(name, NameKind::Sni),
                None => Sniffed::NotFound,
            };
        }
    }
    Sniffed::NotFound
}

/// The longest method token taken (`OPTIONS`, `CONNECT` and extension
/// methods fit).
const MAX_METHOD: usize = 24;

/// An HTTP/1.x request: its request line, then its headers until `Host`.
fn http(bytes: &[u8]) -> Sniffed {
    // The method: upper-case letters (and `-`, `_`), then a space.
    let method = bytes
        .iter()
        .take(MAX_METHOD + 1)
        .position(|b| !(b.is_ascii_uppercase() || matches!(b, b'-' | b'_')));
    match method {
        None if bytes.len() <= MAX_METHOD => return Sniffed::NeedMore,
        Some(i) if bytes[i] == b' ' && i > 0 => {}
        _ => return Sniffed::NotFound,
    }
    let mut lines = Lines(bytes);
    let request_line = match lines.next_line() {
        Some(line) if line.len() <= MAX_REQUEST_LINE => line,
        Some(_) => return Sniffed::NotFound,
        None if bytes.len() > MAX_REQUEST_LINE => return Sniffed::NotFound,
        None => return Sniffed::NeedMore,
    };
    // `METHOD TARGET HTTP/1.x`.
    let Some(version) = request_line.rsplit(|b| *b == b' ').next() else {
        return Sniffed::NotFound;
    };
    if version.len() != 8 || !version.starts_with(b"HTTP/1.") {
        return Sniffed::NotFound;
    }
    loop {
        let Some(line) = lines.next_line() else {
            return Sniffed::NeedMore;
        };
        if line.is_empty() {
            // The headers ended without Host.
            return Sniffed::NotFound;
        }
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            return Sniffed::NotFound;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.eq_ignore_ascii_case(b"host") {
            return match host_name(strip_port(value.trim_ascii())) {
                Some(name) => Sniffed::Name(name, NameKind::Host),
                None => Sniffed::NotFound,
            };
        }
    }
}

/// The longest request line taken, as common servers allow (8 KiB).
const MAX_REQUEST_LINE: usize = 8 * 1024;

/// `host[:port]` without its port; an `[IPv6]` literal is left whole (and
/// then is no host name).
fn strip_port(value: &[u8]) -> &[u8] {
    if value.starts_with(b"[") {
        return value;
    }
    match value.iter().rposition(|b| *b == b':') {
        Some(i) if value[i + 1..].iter().all(u8::is_ascii_digit) => &value[..i],
        _ => value,
    }
}

/// Lines ended by LF (a CR before it dropped), complete ones only.
struct Lines<'a>(&'a [u8]);

impl<'a> Lines<'a> {
    fn next_line(&mut self) -> Option<&'a [u8]> {
        let end = self.0.iter().position(|b| *b == b'\n')?;
        let line = &self.0[..end];
        self.0 = &self.0[end + 1..];
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    }
}

#[cfg(test)]
mod tests;
