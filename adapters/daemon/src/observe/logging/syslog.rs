//! Log lines to a syslog server as RFC 5424 messages: `<PRI>1 TIMESTAMP
//! HOSTNAME APP-NAME PROCID MSGID - MSG`, facility `daemon`, the severity
//! from the line's level, MSGID `log` for the diagnostic log and `access` for
//! the access log, and the line itself (JSON, or text without its time) as
//! MSG. Over `unix:PATH` and `udp:` one datagram is one message; over `tcp:`
//! each message is octet-counted (`LEN SP MSG`, RFC 6587), so a server reads
//! it whole whatever it holds.
//!
//! The header is put on by [`SyslogMakeWriter`] as the line is formatted, and
//! the message queued to a non-blocking worker, whose [`Transport`] sends it
//! (waiting at most [`SEND_TIMEOUT`]). A message the transport cannot send
//! (no server, a broken connection, tried again at most once a second) is
//! dropped and counted ([`lost`]); so is one the full queue refuses.
//!
//! The syslog crate does the same formatting but frames nothing on TCP and
//! takes a number as MSGID; this is the small part it would have done.

use super::outputs::SyslogTarget;
use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tracing::{Level, Metadata};
use tracing_appender::non_blocking::NonBlocking;
use tracing_subscriber::fmt::MakeWriter;

/// How long sending one message, or connecting, may take.
pub(crate) const SEND_TIMEOUT: Duration = Duration::from_secs(1);

/// RFC 5424's facility `daemon` (3), times 8.
const FACILITY_DAEMON: u8 = 3 << 3;

static LOST: AtomicU64 = AtomicU64::new(0);

/// Messages dropped because they could not be sent.
pub(crate) fn lost() -> u64 {
    LOST.load(Ordering::Relaxed)
}

/// What every message of this process says about where it comes from.
#[derive(Debug)]
struct Origin {
    hostname: String,
    app: String,
    pid: u32,
}

impl Origin {
    fn current() -> Origin {
        let nodename = rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned();
        let app = std::env::args_os()
            .next()
            .and_then(|a| {
                std::path::Path::new(&a)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_default();
        Origin {
            hostname: header_field(&nodename, 255),
            app: header_field(&app, 48),
            pid: std::process::id(),
        }
    }
}

/// A header field as RFC 5424 allows it: printable US-ASCII, no space, at
/// most `max` characters; `-` when nothing is left.
fn header_field(s: &str, max: usize) -> String {
    let s: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if s.is_empty() {
        "-".to_owned()
    } else {
        s
    }
}

/// The severity of a level: error 3, warning 4, informational 6, debug 7.
fn severity(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// Puts the RFC 5424 header on each formatted line and queues it.
#[derive(Debug, Clone)]
pub(crate) struct SyslogMakeWriter {
    queue: NonBlocking,
    origin: Arc<Origin>,
    msgid: &'static str,
}

impl SyslogMakeWriter {
    /// Lines with MSGID `msgid`, queued to `queue` (whose worker sends them
    /// with a [`Transport`]).
    pub(crate) fn new(queue: NonBlocking, msgid: &'static str) -> SyslogMakeWriter {
        SyslogMakeWriter {
            queue,
            origin: Arc::new(Origin::current()),
            msgid,
        }
    }
}

impl<'a> MakeWriter<'a> for SyslogMakeWriter {
    type Writer = SyslogLine;

    fn make_writer(&'a self) -> SyslogLine {
        self.line(6)
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> SyslogLine {
        self.line(severity(meta.level()))
    }
}

impl SyslogMakeWriter {
    fn line(&self, severity: u8) -> SyslogLine {
        let o = &self.origin;
        let now = super::now_rfc3339();
        let header = format!(
            "<{}>1 {now} {} {} {} {} - ",
            FACILITY_DAEMON | severity,
            o.hostname,
            o.app,
            o.pid,
            self.msgid
        );
        SyslogLine {
            queue: self.queue.clone(),
            header,
        }
    }
}

/// One message being written: the header, then the formatted line.
#[derive(Debug)]
pub(crate) struct SyslogLine {
    queue: NonBlocking,
    header: String,
}

impl Write for SyslogLine {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let mut message = Vec::with_capacity(self.header.len() + body.len());
        message.extend_from_slice(self.header.as_bytes());
        message.extend_from_slice(body);
        self.queue.write(&message)?;
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The connection to the syslog server, made again after a failure (at most
/// once a second); owned by the non-blocking worker, which hands it one
/// message per write.
#[derive(Debug)]
pub(crate) struct Transport {
    target: SyslogTarget,
    conn: Option<Conn>,
    /// When a connect was last tried (the wall clock: this thread is no
    /// runtime's, and a clock step only makes a retry come sooner or later).
    last_try: Option<SystemTime>,
}

#[derive(Debug)]
enum Conn {
    Unix(UnixDatagram),
    Udp(UdpSocket),
    Tcp(TcpStream),
}

impl Transport {
    /// A transport to `target`, connected now if it can be (an error says
    /// why not; it is tried again as messages come).
    pub(crate) fn new(target: SyslogTarget) -> (Transport, Option<io::Error>) {
        let mut t = Transport {
            target,
            conn: None,
            last_try: None,
        };
        let error = t.connect().err();
        (t, error)
    }

    fn connect(&mut self) -> io::Result<&mut Conn> {
        self.last_try = Some(SystemTime::now());
        let conn = match &self.target {
            SyslogTarget::Unix(path) => {
                let s = UnixDatagram::unbound()?;
                s.connect(path)?;
                s.set_write_timeout(Some(SEND_TIMEOUT))?;
                Conn::Unix(s)
            }
            SyslogTarget::Udp(addr) => {
                let to = resolve(addr)?;
                let any: std::net::SocketAddr = if to.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    ([0u16; 8], 0).into()
                };
                let s = UdpSocket::bind(any)?;
                s.connect(to)?;
                Conn::Udp(s)
            }
            SyslogTarget::Tcp(addr) => {
                let s = TcpStream::connect_timeout(&resolve(addr)?, SEND_TIMEOUT)?;
                s.set_write_timeout(Some(SEND_TIMEOUT))?;
                s.set_nodelay(true)?;
                Conn::Tcp(s)
            }
        };
        Ok(self.conn.insert(conn))
    }

    fn send(&mut self, message: &[u8]) -> io::Result<()> {
        let conn = match self.conn.as_mut() {
            Some(c) => c,
            None if self
                .last_try
                .is_none_or(|t| t.elapsed().map_or(true, |e| e >= Duration::from_secs(1))) =>
            {
                self.connect()?
            }
            None => return Err(io::ErrorKind::NotConnected.into()),
        };
        let sent = match conn {
            Conn::Unix(s) => s.send(message).map(drop),
            Conn::Udp(s) => s.send(message).map(drop),
            Conn::Tcp(s) => {
                let mut framed = format!("{} ", message.len()).into_bytes();
                framed.extend_from_slice(message);
                s.write_all(&framed)
            }
        };
        if sent.is_err() {
            self.conn = None;
        }
        sent
    }
}

fn resolve(addr: &str) -> io::Result<std::net::SocketAddr> {
    addr.to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::other(format!("{addr}: no address")))
}

impl Write for Transport {
    /// Sends `message` whole, or drops and counts it: an error here would
    /// only be printed by the worker, on a standard error nobody reads.
    fn write(&mut self, message: &[u8]) -> io::Result<usize> {
        if self.send(message).is_err() {
            LOST.fetch_add(1, Ordering::Relaxed);
        }
        Ok(message.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_are_printable_ascii_without_spaces() {
        assert_eq!(header_field("socks4d-tokio", 48), "socks4d-tokio");
        assert_eq!(header_field("my host", 255), "myhost");
        assert_eq!(header_field("", 48), "-");
        assert_eq!(header_field(&"a".repeat(60), 48).len(), 48);
        assert_eq!(severity(&Level::WARN) | FACILITY_DAEMON, 28);
    }

    #[test]
    fn unix_and_udp_send_one_datagram_per_message() {
        let path = std::env::temp_dir().join(format!("socks4-syslog-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let unix = UnixDatagram::bind(&path).unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let targets = [
            SyslogTarget::Unix(path.clone()),
            SyslogTarget::Udp(udp.local_addr().unwrap().to_string()),
        ];
        for target in targets {
            let (mut t, error) = Transport::new(target);
            assert!(error.is_none(), "{error:?}");
            t.write_all(b"<30>1 - - - - - - one").unwrap();
            t.write_all(b"<30>1 - - - - - - two").unwrap();
        }
        let mut buf = [0u8; 64];
        for want in ["<30>1 - - - - - - one", "<30>1 - - - - - - two"] {
            let n = unix.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], want.as_bytes());
            let n = udp.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], want.as_bytes());
        }
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn tcp_messages_are_octet_counted_and_a_missing_server_counts_as_lost() {
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let target = SyslogTarget::Tcp(server.local_addr().unwrap().to_string());
        let (mut t, error) = Transport::new(target);
        assert!(error.is_none(), "{error:?}");
        let (mut peer, _) = server.accept().unwrap();
        t.write_all(b"<30>1 - - - - - - one").unwrap();
        t.write_all("<30>1 - - - - - - d\u{e9}j\u{e0}".as_bytes())
            .unwrap();
        drop(t);
        let mut got = String::new();
        std::io::Read::read_to_string(&mut peer, &mut got).unwrap();
        assert_eq!(
            got,
            "21 <30>1 - - - - - - one24 <30>1 - - - - - - d\u{e9}j\u{e0}"
        );
        let before = lost();
        let (mut nowhere, error) =
            Transport::new(SyslogTarget::Unix("/nonexistent/socks4-log".into()));
        assert!(error.is_some());
        nowhere.write_all(b"x").unwrap();
        assert_eq!(lost(), before + 1);
    }
}
