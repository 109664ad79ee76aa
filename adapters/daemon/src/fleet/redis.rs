//! One connection to Redis over the runtime seam: connect (TCP, TLS over
//! TCP for `rediss://`, or a Unix socket) with AUTH and SELECT, then
//! pipelines of commands, each pipeline with a deadline. TLS is the
//! runtime's client [`Endpoint`] (rustls, as towards `https://` parents),
//! trusting `[tls] ca` and checking the certificate for the URL's host. RESP2 frames are encoded and decoded by
//! `redis-protocol`; the bytes move through [`crate::runtime`]'s reads and
//! writes, so the connection runs on every runtime.

use crate::config::options::RedisAt;
use crate::config::settings::fleet::FleetSettings;
use crate::runtime::endpoint::Endpoint;
use crate::runtime::{self, socket, Runtime};
use redis_protocol::resp2::decode::decode;
use redis_protocol::resp2::encode::encode;
use redis_protocol::resp2::types::{OwnedFrame, Resp2Frame};
use std::io::{self, ErrorKind};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Instant;

/// The most bytes one reply may take (the run-time lists in full are far
/// smaller); past it the connection is dropped.
const MAX_REPLY: usize = 16 << 20;

/// A command: its words.
pub(crate) type Command = Vec<Vec<u8>>;

/// A command from words.
pub(crate) fn cmd<const N: usize>(words: [&[u8]; N]) -> Command {
    words.iter().map(|w| w.to_vec()).collect()
}

/// A connection to Redis.
pub(crate) struct Redis<R: Runtime> {
    rt: R,
    stream: Endpoint<R::Stream>,
    buf: Vec<u8>,
}

fn timed_out() -> io::Error {
    io::Error::new(ErrorKind::TimedOut, "Redis did not answer in time")
}

fn protocol(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, format!("Redis protocol: {e}"))
}

impl<R: Runtime> Redis<R> {
    /// Connects to `[fleet] redis` (over TLS with `tls`, the `[tls] ca`
    /// trust, for `rediss://`), authenticates and selects the database, all
    /// before `deadline`.
    pub(crate) async fn connect(
        rt: &R,
        fleet: &FleetSettings,
        tls: Option<Arc<rustls::ClientConfig>>,
        deadline: Instant,
    ) -> io::Result<Redis<R>> {
        let stream = match &fleet.redis.at {
            RedisAt::Unix(path) => {
                runtime::before(rt, Some(deadline), socket::connect_unix(rt, path)).await
            }
            RedisAt::Tcp(host, port) => {
                let addr = match host.parse::<std::net::IpAddr>() {
                    Ok(ip) => SocketAddr::new(ip, *port),
                    Err(_) => {
                        let name = format!("{host}:{port}");
                        let found =
                            rt.spawn_blocking(move || name.to_socket_addrs().map(|mut a| a.next()));
                        runtime::before(rt, Some(deadline), found)
                            .await
                            .ok_or_else(timed_out)???
                            .ok_or_else(|| io::Error::new(ErrorKind::NotFound, "no address"))?
                    }
                };
                runtime::before(
                    rt,
                    Some(deadline),
                    socket::connect(rt, addr, &socket::Egress::default()),
                )
                .await
            }
        }
        .ok_or_else(timed_out)??;
        let stream = match &fleet.redis.at {
            RedisAt::Tcp(host, _) if fleet.redis.tls => {
                let config = tls.ok_or_else(|| {
                    io::Error::new(ErrorKind::Unsupported, "no TLS configuration for rediss://")
                })?;
                let mut tls = Endpoint::tls_client(stream, config, host)?;
                runtime::before(rt, Some(deadline), tls.handshake())
                    .await
                    .ok_or_else(timed_out)?
                    .map_err(io::Error::from)?;
                tls
            }
            _ => Endpoint::Plain(stream),
        };
        let mut redis = Redis {
            rt: rt.clone(),
            stream,
            buf: Vec::new(),
        };
        let mut hello = Vec::new();
        if let Some(path) = fleet.password_file.clone() {
            let read = rt.spawn_blocking(move || {
                std::fs::read_to_string(&path)
                    .map(|t| t.lines().next().unwrap_or_default().to_owned())
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
            });
            let pw = runtime::before(rt, Some(deadline), read)
                .await
                .ok_or_else(timed_out)???;
            hello.push(cmd([b"AUTH", pw.as_bytes()]));
        }
        if fleet.redis.db != 0 {
            hello.push(cmd([b"SELECT", fleet.redis.db.to_string().as_bytes()]));
        }
        if !hello.is_empty() {
            for reply in redis.call(&hello, deadline).await? {
                if let OwnedFrame::Error(e) = reply {
                    return Err(io::Error::new(ErrorKind::PermissionDenied, e));
                }
            }
        }
        Ok(redis)
    }

    /// Sends `commands` at once and reads their replies, in order, before
    /// `deadline`. An error reply is a reply (`OwnedFrame::Error`); any
    /// other failure leaves the connection unusable.
    pub(crate) async fn call(
        &mut self,
        commands: &[Command],
        deadline: Instant,
    ) -> io::Result<Vec<OwnedFrame>> {
        let mut out = Vec::new();
        for c in commands {
            let frame = OwnedFrame::Array(
                c.iter()
                    .map(|w| OwnedFrame::BulkString(w.clone()))
                    .collect(),
            );
            let at = out.len();
            out.resize(at + frame.encode_len(false), 0);
            encode(&mut out[at..], &frame, false).map_err(protocol)?;
        }
        let rt = self.rt.clone();
        let exchange = async {
            self.stream.write_all(&out).await?;
            let mut replies = Vec::with_capacity(commands.len());
            while replies.len() < commands.len() {
                match decode(&self.buf).map_err(protocol)? {
                    Some((frame, used)) => {
                        self.buf.drain(..used);
                        replies.push(frame);
                    }
                    None => {
                        if self.buf.len() > MAX_REPLY {
                            return Err(protocol("reply too long"));
                        }
                        let mut chunk = [0u8; 16384];
                        let n = self.stream.read(&mut chunk).await?;
                        if n == 0 {
                            return Err(io::Error::new(
                                ErrorKind::UnexpectedEof,
                                "Redis closed the connection",
                            ));
                        }
                        self.buf.extend_from_slice(&chunk[..n]);
                    }
                }
            }
            Ok(replies)
        };
        runtime::before(&rt, Some(deadline), exchange)
            .await
            .ok_or_else(timed_out)?
    }
}

/// A reply as an integer, if it is one (or a bulk string of one).
pub(crate) fn int(frame: &OwnedFrame) -> Option<i64> {
    match frame {
        OwnedFrame::Integer(i) => Some(*i),
        OwnedFrame::BulkString(b) | OwnedFrame::SimpleString(b) => {
            std::str::from_utf8(b).ok()?.parse().ok()
        }
        _ => None,
    }
}

/// A reply as a list of (field, value) pairs (HGETALL's).
pub(crate) fn pairs(frame: OwnedFrame) -> Vec<(Vec<u8>, Vec<u8>)> {
    let OwnedFrame::Array(items) = frame else {
        return Vec::new();
    };
    let bytes = |f: OwnedFrame| match f {
        OwnedFrame::BulkString(b) | OwnedFrame::SimpleString(b) => b,
        _ => Vec::new(),
    };
    let mut items = items.into_iter();
    let mut out = Vec::new();
    while let (Some(k), Some(v)) = (items.next(), items.next()) {
        out.push((bytes(k), bytes(v)));
    }
    out
}
