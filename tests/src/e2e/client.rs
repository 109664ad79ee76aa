//! A SOCKS4 client over std sockets, driven by `socks4_proto`'s client
//! handshake: requests, the replies they got, and relayed bytes.

use super::STEP;
use socks4_proto::client::{Event, Handshake};
use socks4_proto::{Command, Dest, Reply, ReplyCode, Request};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};

/// A SOCKS4 client connection through `proxy`, as far as the handshake.
pub struct Client {
    /// The stream (relayed once granted).
    pub stream: TcpStream,
    /// Replies in order.
    pub events: Vec<Event>,
    /// Relayed bytes that came with the last reply.
    pub early: Vec<u8>,
}

/// Whether the proxy's last reply granted the request.
pub fn granted(c: &Client) -> bool {
    matches!(c.events.last(), Some(Event::Granted(_)))
}

/// The code of the proxy's last reply when it refused the request.
pub fn rejected_with(c: &Client) -> Option<ReplyCode> {
    match c.events.last() {
        Some(Event::Rejected(r)) => Some(r.code),
        _ => None,
    }
}

/// Whether the proxy's last reply refused the request with 91.
pub fn refused(c: &Client) -> bool {
    rejected_with(c) == Some(ReplyCode::Rejected)
}

/// Connects to `proxy`, sends `request` and reads replies until the handshake is
/// over (or the proxy closes). `on_listen` runs at a BIND's first reply.
pub fn socks_request(
    proxy: SocketAddr,
    request: &Request<'_>,
    on_listen: impl FnMut(&Reply),
) -> Client {
    let stream = TcpStream::connect_timeout(&proxy, STEP).unwrap();
    socks_request_on(stream, request, on_listen)
}

/// Like [`socks_request`], over a connection already made.
pub fn socks_request_on(
    mut stream: TcpStream,
    request: &Request<'_>,
    mut on_listen: impl FnMut(&Reply),
) -> Client {
    stream.set_read_timeout(Some(STEP)).unwrap();
    let mut h = Handshake::new(request).unwrap();
    stream.write_all(h.poll_transmit().unwrap()).unwrap();
    let (mut events, mut early, mut buf) = (Vec::new(), Vec::new(), [0u8; 256]);
    while !h.is_finished() {
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(_) => break, // reset by the proxy
        };
        if n == 0 {
            break;
        }
        let used = h.handle_input(&buf[..n]).expect("well-formed replies");
        early.extend_from_slice(&buf[used..n]);
        while let Some(ev) = h.poll_event() {
            if let Event::BindListening(r) = &ev {
                on_listen(r);
            }
            events.push(ev);
        }
    }
    Client {
        stream,
        events,
        early,
    }
}

/// A CONNECT request to `dest` with `user_id`.
pub fn connect_to(dest: SocketAddr, user_id: &[u8]) -> Request<'_> {
    let SocketAddr::V4(v4) = dest else {
        panic!("IPv4 only")
    };
    Request {
        command: Command::Connect,
        dest: Dest::Addr(v4),
        user_id,
    }
}

/// Sends `data`, half-closes, and reads everything back.
pub fn round_trip(mut stream: TcpStream, early: &[u8], data: &[u8]) -> Vec<u8> {
    stream.write_all(data).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let mut back = early.to_vec();
    stream.read_to_end(&mut back).unwrap();
    back
}

/// The SOCKS handshake over any stream (a TLS one, say): the replies, and
/// relayed bytes that came with the last.
pub fn socks_over(
    stream: &mut (impl Read + Write),
    request: &Request<'_>,
) -> (Vec<Event>, Vec<u8>) {
    let mut h = Handshake::new(request).unwrap();
    stream.write_all(h.poll_transmit().unwrap()).unwrap();
    stream.flush().unwrap();
    let (mut events, mut early, mut buf) = (Vec::new(), Vec::new(), [0u8; 256]);
    while !h.is_finished() {
        let n = match stream.read(&mut buf) {
            Ok(n) if n > 0 => n,
            _ => break,
        };
        let used = h.handle_input(&buf[..n]).expect("well-formed replies");
        early.extend_from_slice(&buf[used..n]);
        while let Some(ev) = h.poll_event() {
            events.push(ev);
        }
    }
    (events, early)
}

/// Sends `data` and reads the same amount back (an echo through the proxy).
pub fn echo_through(stream: &mut (impl Read + Write), data: &[u8]) -> Vec<u8> {
    let mut back = vec![0u8; data.len()];
    for chunk in data.chunks(64 * 1024) {
        stream.write_all(chunk).unwrap();
    }
    stream.flush().unwrap();
    stream.read_exact(&mut back).unwrap();
    back
}
