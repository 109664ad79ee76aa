//! Reading a sniffing listener's client's first bytes for the name it means
//! (a TLS ClientHello's SNI, an HTTP/1.x request's Host), parsed by
//! [`socks4_proto::sniff`]: until a name is found, the bytes cannot hold
//! one, `[limits] max_sniff` bytes are read, the client closes, or
//! `[timeouts] sniff` passes (a server-first protocol sends nothing: the
//! connection goes on with the address only). The bytes read are taken out
//! of the socket and handed to the session, which sends them first to the
//! destination, unchanged.

use crate::runtime::{before, poll_io, recv, Direction, Runtime};
use socks4_proto::sniff::{NameKind, Sniffed, Sniffer};
use std::future::poll_fn;
use std::time::Instant;

/// The most bytes one read takes.
const CHUNK: usize = 4096;

/// What sniffing found: the bytes read (for the destination) and the name,
/// if any, with where it was found.
pub(crate) struct Sniff {
    /// The client's first bytes, as read.
    pub(crate) bytes: Vec<u8>,
    /// The name they gave.
    pub(crate) name: Option<(String, NameKind)>,
}

/// Reads `client`'s first bytes, at most `max`, before `deadline`.
pub(crate) async fn read<R: Runtime>(
    rt: &R,
    client: &R::Stream,
    max: usize,
    deadline: Instant,
) -> Sniff {
    let mut sniffer = Sniffer::new(max);
    let mut buf = vec![0u8; CHUNK.min(max)];
    while sniffer.room() > 0 {
        let room = sniffer.room().min(buf.len());
        let chunk = &mut buf[..room];
        let read = poll_fn(|cx| poll_io(client, Direction::Read, cx, &mut |fd| recv(fd, chunk)));
        match before(rt, Some(deadline), read).await {
            Some(Ok(n)) if n > 0 => {
                sniffer.feed(&buf[..n]);
            }
            // Time is up, the client closed or failed: the driver sees
            // which when it reads on.
            _ => break,
        }
    }
    sniffer.finish();
    let (bytes, verdict) = sniffer.into_parts();
    let name = match verdict {
        Sniffed::Name(name, kind) => Some((name, kind)),
        Sniffed::NeedMore | Sniffed::NotFound => None,
    };
    Sniff { bytes, name }
}
