//! [`Endpoint`]: one side of a proxied connection, plain TCP or TLS over TCP,
//! with the non-blocking operations the driver, the parents' handshakes and
//! the relay use on either kind.
//!
//! TLS is rustls driven over the runtime seam's readiness ([`Stream`]): TLS
//! records move between the socket and rustls in non-blocking reads and
//! writes, and an operation that would block reports `WouldBlock` only when
//! the socket did, so that waiting for the socket's readiness is always right.
//! Plaintext rustls already holds counts as readable without the socket.
//! A read of a TLS socket takes up to [`TLS_READ_SIZE`] (64 KiB: four full
//! records) into a per-thread buffer and has rustls take and decrypt it
//! record by record, so a fast sender costs one system call per 64 KiB, not
//! one per record; an idle TLS connection holds none of that buffer.
//! Writes hand rustls up to 64 KiB of plaintext at once (it cuts 16 KiB
//! records) and send the records in one `sendmsg`.
//!
//! Only a plain endpoint can splice: the relay asks [`Endpoint::plain`]. Over
//! TLS the relay copies through user space (the bytes must be encrypted or
//! decrypted there anyway).

use crate::runtime::{recv, send, shutdown_write, Direction, Stream};
use rustls::pki_types::ServerName;
use socks4_proto::server::TlsFailure;
use std::cell::RefCell;
use std::fmt;
use std::future::poll_fn;
use std::io::{self, ErrorKind, IoSlice, Read, Write};
use std::os::fd::BorrowedFd;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

/// Plaintext rustls may hold for writing before a write waits for the socket.
const TLS_BUFFER_LIMIT: usize = 64 * 1024;

/// The most ciphertext one read of a TLS socket takes: four full records, so
/// a fast sender costs one system call per 64 KiB rather than one per record.
const TLS_READ_SIZE: usize = 64 * 1024;

/// The least one read of a TLS socket asks for, however little the caller
/// wants (rustls's own read size).
const TLS_MIN_READ: usize = 4 * 1024;

thread_local! {
    /// The per-thread buffer TLS records are read into before rustls takes
    /// them: shared by every connection on the thread, so an idle TLS
    /// connection holds none of it.
    static CIPHERTEXT: RefCell<Box<[u8]>> =
        RefCell::new(vec![0u8; TLS_READ_SIZE].into_boxed_slice());
}

/// One side of a connection.
pub(crate) enum Endpoint<S> {
    /// Plain TCP.
    Plain(S),
    /// TLS over TCP.
    Tls(Box<TlsStream<S>>),
}

/// A TLS connection over a registered socket.
pub(crate) struct TlsStream<S> {
    io: S,
    conn: rustls::Connection,
    /// Plaintext (or the peer's close) may be waiting in rustls.
    readable: bool,
    /// `close_notify` is queued.
    closing: bool,
    /// Ciphertext read from the socket that rustls could not take yet (the
    /// reader's buffer was full), from `kept_from` on; empty, with nothing
    /// allocated, whenever the reader keeps up.
    kept: Vec<u8>,
    kept_from: usize,
}

impl<S> fmt::Debug for Endpoint<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Endpoint::Plain(_) => "Endpoint::Plain",
            Endpoint::Tls(_) => "Endpoint::Tls",
        })
    }
}

/// A socket's descriptor as `Read`/`Write` for rustls: `recv`, and `sendmsg`
/// with `MSG_NOSIGNAL` (several records in one call).
struct Fd<'a>(BorrowedFd<'a>);

impl Read for Fd<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        recv(self.0, buf)
    }
}

impl Write for Fd<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        send(self.0, buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        rustix::net::sendmsg(
            self.0,
            bufs,
            &mut rustix::net::SendAncillaryBuffer::default(),
            rustix::net::SendFlags::NOSIGNAL,
        )
        .map_err(io::Error::from)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Why a TLS handshake failed: the socket, or TLS itself.
#[derive(Debug)]
pub(crate) enum HandshakeError {
    /// Reading or writing the socket failed, or the peer closed.
    Io(io::Error),
    /// TLS failed (a certificate, a protocol error, the peer's alert).
    Tls(rustls::Error),
}

impl HandshakeError {
    /// The kind of TLS failure, for counters; `None` for a socket error.
    pub(crate) fn failure(&self) -> Option<TlsFailure> {
        match self {
            HandshakeError::Io(_) => None,
            HandshakeError::Tls(e) => Some(crate::runtime::tls::failure(e)),
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Io(e) => write!(f, "TLS handshake: {e}"),
            HandshakeError::Tls(e) => write!(f, "TLS handshake: {e}"),
        }
    }
}

impl std::error::Error for HandshakeError {}

impl From<HandshakeError> for io::Error {
    /// An I/O error that carries the handshake error (see [`tls_failure_of`]).
    fn from(e: HandshakeError) -> io::Error {
        match e {
            HandshakeError::Io(e) => e,
            tls => io::Error::new(ErrorKind::InvalidData, tls),
        }
    }
}

/// The TLS failure an I/O error made [`From`] a [`HandshakeError`] carries.
pub(crate) fn tls_failure_of(e: &io::Error) -> Option<TlsFailure> {
    e.get_ref()?.downcast_ref::<HandshakeError>()?.failure()
}

impl<S: Stream> Endpoint<S> {
    /// The server side of TLS over `io`, with `config`; the handshake is
    /// still to do ([`handshake`](Self::handshake)).
    pub(crate) fn tls_server(io: S, config: Arc<rustls::ServerConfig>) -> io::Result<Endpoint<S>> {
        let conn = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
        Ok(Endpoint::tls(io, conn.into()))
    }

    /// The client side of TLS over `io` towards `host` (its name for SNI and
    /// the certificate check, or an IP address), with `config`.
    pub(crate) fn tls_client(
        io: S,
        config: Arc<rustls::ClientConfig>,
        host: &str,
    ) -> io::Result<Endpoint<S>> {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| io::Error::new(ErrorKind::InvalidInput, format!("{host}: {e}")))?;
        let conn = rustls::ClientConnection::new(config, name).map_err(io::Error::other)?;
        Ok(Endpoint::tls(io, conn.into()))
    }

    fn tls(io: S, mut conn: rustls::Connection) -> Endpoint<S> {
        conn.set_buffer_limit(Some(TLS_BUFFER_LIMIT));
        Endpoint::Tls(Box::new(TlsStream {
            io,
            conn,
            readable: false,
            closing: false,
            kept: Vec::new(),
            kept_from: 0,
        }))
    }

    /// The socket.
    pub(crate) fn stream(&self) -> &S {
        match self {
            Endpoint::Plain(s) => s,
            Endpoint::Tls(t) => &t.io,
        }
    }

    /// The socket itself, for a plain endpoint; `None` for TLS.
    pub(crate) fn into_plain(self) -> Option<S> {
        match self {
            Endpoint::Plain(s) => Some(s),
            Endpoint::Tls(_) => None,
        }
    }

    /// The socket, when bytes move on it as they are (splice may move them).
    pub(crate) fn plain(&self) -> Option<&S> {
        match self {
            Endpoint::Plain(s) => Some(s),
            Endpoint::Tls(_) => None,
        }
    }

    /// The peer's verified certificate chain (TLS with a client certificate,
    /// or a server's).
    pub(crate) fn peer_certificates(
        &self,
    ) -> Option<&[rustls::pki_types::CertificateDer<'static>]> {
        match self {
            Endpoint::Plain(_) => None,
            Endpoint::Tls(t) => t.conn.peer_certificates(),
        }
    }

    /// Polls until a read or write may make progress (spuriously, at times).
    pub(crate) fn poll_ready(&self, dir: Direction, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Endpoint::Tls(t) if dir == Direction::Read && t.readable => Poll::Ready(Ok(())),
            _ => self.stream().poll_ready(dir, cx),
        }
    }

    /// Reads what is there without waiting: at least one byte, 0 at the end
    /// of the stream, `WouldBlock` when nothing is there.
    ///
    /// Over TLS, the end of the stream is the peer's `close_notify` or, as
    /// for a plain connection, its TCP FIN (many TLS peers close without the
    /// alert; the relay passes either on as a half-close).
    pub(crate) fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Endpoint::Plain(s) => s.try_io(Direction::Read, |fd| recv(fd, buf)),
            Endpoint::Tls(t) => t.try_read(buf),
        }
    }

    /// Writes what it can of `buf` without waiting; `WouldBlock` when nothing
    /// could be taken. Over TLS, bytes taken may still wait in rustls (see
    /// [`wants_flush`](Self::wants_flush)).
    pub(crate) fn try_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Endpoint::Plain(s) => s.try_io(Direction::Write, |fd| send(fd, buf)),
            Endpoint::Tls(t) => t.try_write(buf),
        }
    }

    /// Whether bytes taken by a write still wait to go out.
    pub(crate) fn wants_flush(&self) -> bool {
        match self {
            Endpoint::Plain(_) => false,
            Endpoint::Tls(t) => t.conn.wants_write(),
        }
    }

    /// Sends what waits to go out; `WouldBlock` while some still waits.
    pub(crate) fn try_flush(&mut self) -> io::Result<()> {
        match self {
            Endpoint::Plain(_) => Ok(()),
            Endpoint::Tls(t) => t.try_flush(),
        }
    }

    /// Ends the sending half: over TLS, `close_notify` and what waits before
    /// it go out first (`WouldBlock` until they have; call again).
    pub(crate) fn try_shutdown_write(&mut self) -> io::Result<()> {
        if let Endpoint::Tls(t) = self {
            if !t.closing {
                t.closing = true;
                t.conn.send_close_notify();
            }
            t.try_flush()?;
        }
        shutdown_write(self.stream().as_fd())
    }

    /// Runs `op` until it does not report `WouldBlock`, waiting for readiness
    /// for `dir` in between.
    pub(crate) fn poll_op<T>(
        &mut self,
        dir: Direction,
        cx: &mut Context<'_>,
        mut op: impl FnMut(&mut Self) -> io::Result<T>,
    ) -> Poll<io::Result<T>> {
        loop {
            match op(self) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    ready!(self.poll_ready(dir, cx))?;
                }
                r => return Poll::Ready(r),
            }
        }
    }

    /// Reads what is there, waiting for it (0: end of stream).
    pub(crate) async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_op(Direction::Read, cx, |e| e.try_read(buf))).await
    }

    /// Writes all of `buf` and sends it on.
    pub(crate) async fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = poll_fn(|cx| self.poll_op(Direction::Write, cx, |e| e.try_write(buf))).await?;
            buf = &buf[n..];
        }
        poll_fn(|cx| self.poll_op(Direction::Write, cx, Endpoint::try_flush)).await
    }

    /// Completes a TLS handshake (a plain endpoint has none).
    pub(crate) fn poll_handshake(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), HandshakeError>> {
        match self {
            Endpoint::Plain(_) => Poll::Ready(Ok(())),
            Endpoint::Tls(t) => t.poll_handshake(cx),
        }
    }

    /// [`poll_handshake`](Self::poll_handshake) as a future.
    pub(crate) async fn handshake(&mut self) -> Result<(), HandshakeError> {
        poll_fn(|cx| self.poll_handshake(cx)).await
    }
}

impl<S: Stream> TlsStream<S> {
    /// Plaintext into `buf`: what rustls holds, then what it decrypts from
    /// ciphertext kept from an earlier read, then from one large read of the
    /// socket (several records per system call: [`TLS_READ_SIZE`]).
    fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut filled = 0;
        loop {
            if filled == buf.len() {
                // rustls may hold more, or ciphertext may be kept.
                self.readable = true;
                return Ok(filled);
            }
            match self.conn.reader().read(&mut buf[filled..]) {
                // The peer's close_notify (the plaintext before it first).
                Ok(0) => {
                    self.readable = true;
                    return Ok(filled);
                }
                Ok(n) => {
                    filled += n;
                    continue;
                }
                // A TCP FIN without close_notify: the end, as on plain TCP.
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                    self.readable = true;
                    return Ok(filled);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            // rustls holds no plaintext now: feed it what was kept, else
            // read the socket (unless there is something to return already).
            if self.kept_from < self.kept.len() {
                let kept = std::mem::take(&mut self.kept);
                let mut rest = &kept[self.kept_from..];
                let fed = self.absorb(&mut rest, buf, &mut filled);
                if rest.is_empty() {
                    self.kept_from = 0;
                } else {
                    self.kept_from = kept.len() - rest.len();
                    self.kept = kept;
                }
                fed?;
                continue;
            }
            self.readable = false;
            if filled > 0 {
                return Ok(filled);
            }
            self.read_socket(buf, &mut filled)?;
        }
    }

    /// One read of the socket (at most [`TLS_READ_SIZE`], or about what
    /// `buf` can take) through the per-thread buffer into rustls, and the
    /// plaintext into `buf` from `filled` on; what rustls cannot take yet is
    /// kept. `WouldBlock` when the socket has nothing.
    fn read_socket(&mut self, buf: &mut [u8], filled: &mut usize) -> io::Result<()> {
        CIPHERTEXT.with(|cipher| {
            let mut cipher = cipher.borrow_mut();
            let len = (buf.len() - *filled).clamp(TLS_MIN_READ, cipher.len());
            let n = self
                .io
                .try_io(Direction::Read, |fd| recv(fd, &mut cipher[..len]))?;
            if n == 0 {
                // The peer closed: rustls learns it from a read of nothing;
                // what it says now is final.
                self.conn.read_tls(&mut &[][..])?;
                self.readable = true;
                return self.process_read();
            }
            let mut rest = &cipher[..n];
            let fed = self.absorb(&mut rest, buf, filled);
            if !rest.is_empty() {
                self.kept = rest.to_vec();
                self.kept_from = 0;
            }
            fed
        })
    }

    /// Has rustls take ciphertext from `data` (advancing it) and decrypt it,
    /// the plaintext going into `buf` from `filled` on, until `data` is used
    /// up or `buf` is full. rustls holds no plaintext when this is called
    /// (so it always has room for more records).
    fn absorb(&mut self, data: &mut &[u8], buf: &mut [u8], filled: &mut usize) -> io::Result<()> {
        while !data.is_empty() && *filled < buf.len() {
            if self.conn.read_tls(data)? == 0 {
                // After the peer's close_notify: what follows is ignored.
                *data = &[];
                break;
            }
            self.process_read()?;
            match self.conn.reader().read(&mut buf[*filled..]) {
                Ok(n) => *filled += n,
                // Nothing decrypted yet, or the end (the caller sees it next).
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::UnexpectedEof) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// [`process`](Self::process) after a read: a TLS error as an
    /// `InvalidData` I/O error; what rustls wants to send now (a key update,
    /// say) goes out if the socket takes it (otherwise the next write or
    /// flush sends it).
    fn process_read(&mut self) -> io::Result<()> {
        self.process()
            .map_err(|e| io::Error::new(ErrorKind::InvalidData, e))?;
        if self.conn.wants_write() {
            let _ = self.try_flush();
        }
        Ok(())
    }

    /// Has rustls process what `read_tls` took; notes whether there is
    /// something to read now. On a TLS error, sends the alert rustls queued
    /// (if the socket takes it).
    fn process(&mut self) -> Result<(), rustls::Error> {
        match self.conn.process_new_packets() {
            Ok(state) => {
                self.readable |= state.plaintext_bytes_to_read() > 0 || state.peer_has_closed();
                Ok(())
            }
            Err(e) => {
                let _ = self.try_flush();
                Err(e)
            }
        }
    }

    fn try_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.try_flush()?;
        let n = self.conn.writer().write(buf)?;
        if n == 0 && !buf.is_empty() {
            return Err(ErrorKind::WouldBlock.into());
        }
        match self.try_flush() {
            Err(e) if e.kind() != ErrorKind::WouldBlock => Err(e),
            _ => Ok(n),
        }
    }

    fn try_flush(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            let conn = &mut self.conn;
            self.io
                .try_io(Direction::Write, |fd| conn.write_tls(&mut Fd(fd)))?;
        }
        Ok(())
    }

    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), HandshakeError>> {
        loop {
            if self.conn.wants_write() {
                match self.try_flush() {
                    Ok(()) => continue,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        ready!(self.io.poll_ready(Direction::Write, cx))
                            .map_err(HandshakeError::Io)?;
                        continue;
                    }
                    Err(e) => return Poll::Ready(Err(HandshakeError::Io(e))),
                }
            }
            if !self.conn.is_handshaking() {
                return Poll::Ready(Ok(()));
            }
            let conn = &mut self.conn;
            match self
                .io
                .try_io(Direction::Read, |fd| conn.read_tls(&mut Fd(fd)))
            {
                Ok(0) => {
                    return Poll::Ready(Err(HandshakeError::Io(ErrorKind::UnexpectedEof.into())))
                }
                Ok(_) => self.process().map_err(HandshakeError::Tls)?,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    ready!(self.io.poll_ready(Direction::Read, cx)).map_err(HandshakeError::Io)?;
                }
                Err(e) => return Poll::Ready(Err(HandshakeError::Io(e))),
            }
        }
    }
}
