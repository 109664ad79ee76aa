//! The client side of the handshake, as a machine that does no IO.
//!
//! [`Handshake`] turns a [`Request`] into the bytes to send and reads the server's
//! reply (or, for BIND, two replies) from bytes in whatever pieces they arrive.
//! The caller moves the bytes with any IO it has, blocking or async.
//!
//! Call order: [`Handshake::new`]; send what [`Handshake::poll_transmit`] returns;
//! then, for every chunk read from the server, [`Handshake::handle_input`] followed
//! by [`Handshake::poll_event`] until it returns `None`. On EOF call
//! [`Handshake::handle_eof`]. Once [`Handshake::is_finished`], the connection is
//! the relayed stream (after a grant) or dead (after a refusal).
//!
//! # Example over `std::net::TcpStream`
//!
//! A CONNECT through a SOCKS4 proxy, with a toy proxy on loopback standing in for a
//! real one so the example runs:
//!
//! ```
//! use socks4_proto::client::{Event, Handshake};
//! use socks4_proto::{Command, Dest, Reply, ReplyCode, Request};
//! use std::io::{Read, Write};
//! use std::net::{TcpListener, TcpStream};
//!
//! # let listener = TcpListener::bind("127.0.0.1:0")?;
//! # let proxy_addr = listener.local_addr()?;
//! # let proxy = std::thread::spawn(move || -> std::io::Result<()> {
//! #     let (mut s, _) = listener.accept()?;
//! #     let mut req = [0u8; 13];
//! #     s.read_exact(&mut req)?; // b"\x04\x01\x00\x50\x7f\x00\x00\x01anne\0"
//! #     // the reply in two pieces, then the destination's first bytes
//! #     s.write_all(&Reply::with_code(ReplyCode::Granted).to_bytes()[..3])?;
//! #     s.flush()?;
//! #     std::thread::sleep(std::time::Duration::from_millis(20));
//! #     s.write_all(&Reply::with_code(ReplyCode::Granted).to_bytes()[3..])?;
//! #     s.write_all(b"hello")?;
//! #     Ok(())
//! # });
//! let mut stream = TcpStream::connect(proxy_addr)?;
//! let request = Request {
//!     command: Command::Connect,
//!     dest: Dest::Addr("127.0.0.1:80".parse().unwrap()),
//!     user_id: b"anne",
//! };
//! let mut handshake = Handshake::new(&request).expect("valid request");
//! while let Some(bytes) = handshake.poll_transmit() {
//!     stream.write_all(bytes)?;
//! }
//!
//! let mut buf = [0u8; 512];
//! let mut early_data = Vec::new(); // what the destination sent behind the reply
//! let mut granted = false;
//! while !handshake.is_finished() {
//!     let n = stream.read(&mut buf)?;
//!     if n == 0 {
//!         handshake.handle_eof().expect_err("EOF before a reply is an error");
//!         break;
//!     }
//!     let used = handshake.handle_input(&buf[..n]).expect("well-formed reply");
//!     early_data.extend_from_slice(&buf[used..n]);
//!     while let Some(event) = handshake.poll_event() {
//!         match event {
//!             Event::Granted(_) => granted = true,
//!             Event::Rejected(reply) => eprintln!("refused: {}", reply.code),
//!             Event::BindListening(_) => unreachable!("only for BIND"),
//!         }
//!     }
//! }
//! assert!(granted);
//! // From here on `stream` talks to the destination.
//! while early_data.len() < 5 {
//!     let n = stream.read(&mut buf)?;
//!     if n == 0 { break }
//!     early_data.extend_from_slice(&buf[..n]);
//! }
//! assert_eq!(early_data, b"hello");
//! # proxy.join().unwrap()?;
//! # Ok::<(), std::io::Error>(())
//! ```

use crate::codec::{Command, DecodeError, Reply, Request, Status};
use core::fmt;

/// What the handshake learned from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// BIND only, first reply: the proxy listens at `reply.addr` for the inbound
    /// connection (use [`Reply::bind_address`] to replace a DSTIP of 0 with the
    /// proxy's address). A second reply follows.
    BindListening(Reply),
    /// The request is granted and the stream now relays: the proxy connected to
    /// the destination (CONNECT), or the inbound connection arrived (BIND).
    Granted(Reply),
    /// The server refused or failed the request (code 91, 92 or 93) and closes.
    Rejected(Reply),
}

/// Why a handshake failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The server sent bytes that are not a reply.
    Decode(DecodeError),
    /// The connection ended before the handshake finished.
    UnexpectedEof,
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Decode(e) => write!(f, "bad reply from the SOCKS server: {e}"),
            HandshakeError::UnexpectedEof => {
                f.write_str("the SOCKS server closed the connection during the handshake")
            }
        }
    }
}

impl std::error::Error for HandshakeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HandshakeError::Decode(e) => Some(e),
            HandshakeError::UnexpectedEof => None,
        }
    }
}

impl From<DecodeError> for HandshakeError {
    fn from(e: DecodeError) -> Self {
        HandshakeError::Decode(e)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the first (CONNECT: only) reply.
    First,
    /// BIND: waiting for the second reply.
    Second,
    /// Granted or rejected: nothing more is read.
    Done,
    /// A protocol error or EOF ended the handshake.
    Failed,
}

/// A SOCKS4/4a client handshake: see the [module docs](self) for the call order
/// and an example.
#[derive(Debug, Clone)]
pub struct Handshake {
    request: Vec<u8>,
    transmitted: bool,
    command: Command,
    phase: Phase,
    /// The part of a reply received so far.
    partial: [u8; Reply::LEN],
    partial_len: usize,
    /// At most two events are ever produced (BIND); kept in order.
    events: [Option<Event>; 2],
}

impl Handshake {
    /// A handshake for `request`, or the reason it cannot be encoded
    /// (see [`Request::validate`]).
    pub fn new(request: &Request<'_>) -> Result<Handshake, DecodeError> {
        request.validate()?;
        Ok(Handshake {
            request: request.to_vec(),
            transmitted: false,
            command: request.command,
            phase: Phase::First,
            partial: [0; Reply::LEN],
            partial_len: 0,
            events: [None, None],
        })
    }

    /// The bytes to send to the server: the encoded request, returned by the first
    /// call only. The caller must send all of them.
    pub fn poll_transmit(&mut self) -> Option<&[u8]> {
        if self.transmitted {
            return None;
        }
        self.transmitted = true;
        Some(&self.request)
    }

    /// Takes bytes received from the server and returns how many belong to the
    /// handshake. Bytes past that count (possible only once the handshake
    /// [`is_finished`](Self::is_finished)) are the first bytes of the relayed
    /// stream and belong to the caller.
    ///
    /// After an error, or once finished, nothing more is consumed.
    pub fn handle_input(&mut self, input: &[u8]) -> Result<usize, HandshakeError> {
        let mut used = 0;
        while matches!(self.phase, Phase::First | Phase::Second) && used < input.len() {
            let take = (Reply::LEN - self.partial_len).min(input.len() - used);
            self.partial[self.partial_len..self.partial_len + take]
                .copy_from_slice(&input[used..used + take]);
            self.partial_len += take;
            used += take;
            let reply = match Reply::decode(&self.partial[..self.partial_len]) {
                Ok(Status::Incomplete) => continue,
                Ok(Status::Complete(reply, _)) => reply,
                Err(e) => {
                    self.phase = Phase::Failed;
                    return Err(e.into());
                }
            };
            self.partial_len = 0;
            let event = match (self.phase, self.command, reply.code.is_granted()) {
                (_, _, false) => {
                    self.phase = Phase::Done;
                    Event::Rejected(reply)
                }
                (Phase::First, Command::Bind, true) => {
                    self.phase = Phase::Second;
                    Event::BindListening(reply)
                }
                (_, _, true) => {
                    self.phase = Phase::Done;
                    Event::Granted(reply)
                }
            };
            let slot = if self.events[0].is_none() { 0 } else { 1 };
            self.events[slot] = Some(event);
        }
        Ok(used)
    }

    /// Reports that the server closed the connection. An error unless the handshake
    /// had already finished.
    pub fn handle_eof(&mut self) -> Result<(), HandshakeError> {
        match self.phase {
            Phase::Done => Ok(()),
            _ => {
                self.phase = Phase::Failed;
                Err(HandshakeError::UnexpectedEof)
            }
        }
    }

    /// The next thing learned from the server, in order.
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events[0].take();
        self.events.swap(0, 1);
        event
    }

    /// Whether the server's last reply has been read, granting or refusing
    /// (events may still be waiting in [`poll_event`](Self::poll_event)).
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Whether the handshake ended in an error from `handle_input` or `handle_eof`.
    pub fn is_failed(&self) -> bool {
        self.phase == Phase::Failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Dest, ReplyCode};
    use std::net::SocketAddrV4;

    fn bind_request() -> Request<'static> {
        Request {
            command: Command::Bind,
            dest: Dest::Addr("192.0.2.7:21".parse().unwrap()),
            user_id: b"",
        }
    }

    fn events(h: &mut Handshake) -> Vec<Event> {
        std::iter::from_fn(|| h.poll_event()).collect()
    }

    #[test]
    fn transmit_is_returned_once() {
        let mut h = Handshake::new(&bind_request()).unwrap();
        assert_eq!(
            h.poll_transmit(),
            Some(&b"\x04\x02\x00\x15\xc0\x00\x02\x07\0"[..])
        );
        assert_eq!(h.poll_transmit(), None);
    }

    #[test]
    fn invalid_request_is_refused() {
        let mut r = bind_request();
        r.user_id = b"a\0b";
        assert_eq!(Handshake::new(&r).unwrap_err(), DecodeError::UserIdNul);
        r.user_id = b"";
        r.dest = Dest::Domain("", 80);
        assert_eq!(Handshake::new(&r).unwrap_err(), DecodeError::EmptyHost);
    }

    #[test]
    fn bind_two_replies_in_one_read_then_data() {
        let listen = Reply::new(ReplyCode::Granted, "0.0.0.0:4000".parse().unwrap());
        let inbound = Reply::new(ReplyCode::Granted, "192.0.2.7:3999".parse().unwrap());
        let mut input = listen.to_bytes().to_vec();
        input.extend_from_slice(&inbound.to_bytes());
        input.extend_from_slice(b"data");
        let mut h = Handshake::new(&bind_request()).unwrap();
        assert_eq!(h.handle_input(&input), Ok(16));
        assert!(h.is_finished());
        let evs = events(&mut h);
        assert_eq!(
            evs,
            vec![Event::BindListening(listen), Event::Granted(inbound)]
        );
        assert_eq!(
            listen.bind_address("198.51.100.1".parse().unwrap()),
            "198.51.100.1:4000".parse::<SocketAddrV4>().unwrap()
        );
        assert_eq!(h.handle_input(b"more"), Ok(0));
        assert_eq!(h.handle_eof(), Ok(()));
    }

    #[test]
    fn bind_second_reply_rejected() {
        let mut h = Handshake::new(&bind_request()).unwrap();
        let listen = Reply::new(ReplyCode::Granted, "10.1.1.1:4000".parse().unwrap());
        assert_eq!(h.handle_input(&listen.to_bytes()), Ok(8));
        assert!(!h.is_finished());
        assert_eq!(events(&mut h), vec![Event::BindListening(listen)]);
        let no = Reply::with_code(ReplyCode::Rejected);
        assert_eq!(h.handle_input(&no.to_bytes()), Ok(8));
        assert_eq!(events(&mut h), vec![Event::Rejected(no)]);
        assert!(h.is_finished());
    }

    #[test]
    fn connect_rejected_with_each_code() {
        for code in [
            ReplyCode::Rejected,
            ReplyCode::IdentUnreachable,
            ReplyCode::IdentMismatch,
        ] {
            let mut r = bind_request();
            r.command = Command::Connect;
            let mut h = Handshake::new(&r).unwrap();
            let reply = Reply::with_code(code);
            assert_eq!(h.handle_input(&reply.to_bytes()), Ok(8));
            assert_eq!(events(&mut h), vec![Event::Rejected(reply)]);
        }
    }

    #[test]
    fn reply_byte_by_byte_with_version_4() {
        let mut r = bind_request();
        r.command = Command::Connect;
        let mut h = Handshake::new(&r).unwrap();
        let bytes = [4, 90, 0, 0, 0, 0, 0, 0];
        for (i, b) in bytes.iter().enumerate() {
            assert_eq!(h.handle_input(std::slice::from_ref(b)), Ok(1));
            assert_eq!(h.is_finished(), i == 7);
        }
        assert!(matches!(h.poll_event(), Some(Event::Granted(_))));
    }

    #[test]
    fn garbage_and_eof_fail() {
        let mut h = Handshake::new(&bind_request()).unwrap();
        assert_eq!(
            h.handle_input(b"HTTP/1.1 400"),
            Err(HandshakeError::Decode(DecodeError::ReplyVersion(b'H')))
        );
        assert!(h.is_failed());
        assert_eq!(h.handle_input(b"\0Z"), Ok(0));

        let mut h = Handshake::new(&bind_request()).unwrap();
        assert_eq!(h.handle_input(b"\0\x5a\0"), Ok(3));
        assert_eq!(h.handle_eof(), Err(HandshakeError::UnexpectedEof));
        assert!(h.is_failed());
    }
}
