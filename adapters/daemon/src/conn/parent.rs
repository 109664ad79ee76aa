//! Connecting through a parent proxy (a route's `via`): reach the parent (its
//! name resolved here, its addresses raced as Happy Eyeballs does, leaving by
//! the route's exit: its source, interface and mark, or the outgoing address), TLS with it for `socks4+tls://`, `socks4a+tls://` and
//! `https://` (its certificate verified for its host name, against `[tls] ca`
//! or the system's authorities), then its handshake: SOCKS4/SOCKS4a with the sans-IO
//! client ([`socks4_proto::client::Handshake`]) or HTTP CONNECT
//! ([`socks4_proto::upstream::HttpConnect`]). Bytes the parent sent after its
//! answer belong to the tunnel and are handed back for the relay. TLS towards
//! a `forward_tls` destination runs inside a plain parent's tunnel
//! ([`tls_through`]); a SOCKS4a name no host can have never reaches a parent
//! ([`refuse_bad_name`]).

use crate::conn::exit::Exit;
use crate::conn::race::More;
use crate::conn::{dial, resolve};
use crate::daemon::Daemon;
use crate::runtime::endpoint::Endpoint;
use crate::runtime::own_sockets::Mark;
use crate::runtime::{Runtime, Stream};
use socks4_acl::{Parent, ParentKind};
use socks4_proto::client::{Event, Handshake};
use socks4_proto::server::Destination;
use socks4_proto::upstream::{HttpConnect, HttpOutcome};
use socks4_proto::{Command, Dest, Request};
use std::io::{self, ErrorKind};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// A parent's handshake answer, at most.
const ANSWER_BUFFER: usize = 4096;

/// Why a parent did not work, for the log.
fn failed(kind: ErrorKind, why: String) -> io::Error {
    io::Error::new(kind, why)
}

/// What reaching a parent needs besides the parent itself.
#[derive(Clone)]
pub(crate) struct Reach<'a> {
    /// The daemon (outgoing addresses, the resolver, the attempt timings).
    pub(crate) daemon: &'a Daemon,
    /// TLS towards parents that speak it.
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    /// The connection, for log lines.
    pub(crate) conn: u64,
    /// How the connections to the parents leave (the route's exit).
    pub(crate) exit: &'a Exit,
}

/// Connects to `dest` through `parent`; the tunnel, the bytes the parent
/// sent after its answer, and the mark of the connection as ours. A failed TLS handshake is an error that
/// [`crate::runtime::endpoint::tls_failure_of`] recognizes.
pub(crate) async fn connect_via<R: Runtime>(
    rt: &R,
    parent: &Parent,
    dest: &Destination,
    user_id: &[u8],
    how: Reach<'_>,
) -> io::Result<(Endpoint<R::Stream>, Vec<u8>, Mark)> {
    let (stream, mark) = reach(rt, parent, how.daemon, how.conn, how.exit).await?;
    let mut tunnel = if parent.kind.tls() {
        let config = how.tls.ok_or_else(|| {
            failed(
                ErrorKind::Unsupported,
                format!("{parent}: no TLS configuration for parents"),
            )
        })?;
        let mut tls = Endpoint::tls_client(stream, config, &parent.host)?;
        tls.handshake().await.map_err(|e| {
            let shown = format!("{parent}: {e}");
            let mut err = io::Error::from(e);
            if crate::runtime::endpoint::tls_failure_of(&err).is_none() {
                err = failed(err.kind(), shown);
            }
            err
        })?;
        tls
    } else {
        Endpoint::Plain(stream)
    };
    let leftover = match parent.kind {
        ParentKind::Http | ParentKind::Https => http(&mut tunnel, parent, dest).await?,
        _ => socks(&mut tunnel, parent, dest, user_id).await?,
    };
    Ok((tunnel, leftover, mark))
}

/// TLS towards the destination `host` through a parent's `tunnel`, once the
/// parent granted it: a plain tunnel carries the TLS (the destination's
/// certificate verified for `host`); a TLS parent's tunnel cannot (TLS
/// inside TLS is not supported), so that is an error rather than plaintext.
/// Bytes before the handshake (`leftover`) cannot be the destination's TLS:
/// also an error. A failed handshake is an error that
/// [`crate::runtime::endpoint::tls_failure_of`] recognizes.
pub(crate) async fn tls_through<S: Stream>(
    tunnel: Endpoint<S>,
    leftover: &[u8],
    host: &str,
    config: Option<Arc<rustls::ClientConfig>>,
) -> io::Result<Endpoint<S>> {
    let Some(stream) = tunnel.into_plain() else {
        return Err(failed(
            ErrorKind::Unsupported,
            format!("TLS to {host} inside a TLS parent's tunnel is not supported"),
        ));
    };
    if !leftover.is_empty() {
        return Err(failed(
            ErrorKind::InvalidData,
            format!("{host}: bytes came through the tunnel before the TLS handshake"),
        ));
    }
    let config = config.ok_or_else(|| {
        failed(
            ErrorKind::Unsupported,
            format!("{host}: no TLS configuration for destinations"),
        )
    })?;
    let mut tls = Endpoint::tls_client(stream, config, host)?;
    tls.handshake().await?;
    Ok(tls)
}

/// Refuses a SOCKS4a name that cannot be a host ([`is_host`]) before any
/// parent sees it (and before a parent's health counts it): an error naming
/// `parent`, the first a route would try, but not the name (the client's
/// text).
pub(crate) fn refuse_bad_name(parent: &Parent, dest: &Destination) -> io::Result<()> {
    match dest {
        Destination::Name(name, _) if !is_host(name) => Err(failed(
            ErrorKind::InvalidInput,
            format!("{parent}: the requested name cannot be a host name"),
        )),
        _ => Ok(()),
    }
}

/// Whether a SOCKS4a name can be a host, to pass on to a parent: an IP
/// address, or a DNS name (letters, digits, `-`, `_` and dots, at most 253
/// bytes). Anything else (a `:` that HTTP CONNECT would bracket into an
/// authority of the client's making, spaces, `@`, `/`, control bytes) is
/// refused before the parent sees it.
pub(crate) fn is_host(name: &str) -> bool {
    name.parse::<IpAddr>().is_ok()
        || (!name.is_empty()
            && name.len() <= 253
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')))
}

/// A TCP connection to the parent, marked as the server's own, leaving by
/// `exit`: its addresses raced (Happy Eyeballs), those of a late family
/// joining the race.
pub(crate) async fn reach<R: Runtime>(
    rt: &R,
    parent: &Parent,
    daemon: &Daemon,
    conn: u64,
    exit: &Exit,
) -> io::Result<(R::Stream, Mark)> {
    let found = resolve::resolve(rt, daemon, &parent.host, conn, ())
        .await
        .map_err(|e| failed(ErrorKind::NotFound, format!("{parent}: {e}")))?;
    let port = parent.port;
    let with_port = move |ips: Vec<std::net::IpAddr>| -> Vec<SocketAddr> {
        ips.into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect()
    };
    let addrs = with_port(found.addrs);
    let more = found
        .rest
        .map(|rest| -> More<'_, SocketAddr> { Box::pin(async move { with_port(rest.await) }) });
    let timeouts = daemon.server_config().timeouts;
    dial::connect_any(rt, daemon, addrs, more, &timeouts, exit)
        .await
        .map(|(stream, mark, _)| (stream, mark))
        .map_err(|e| failed(e.kind(), format!("{parent}: {e}")))
}

async fn socks<S: Stream>(
    stream: &mut Endpoint<S>,
    parent: &Parent,
    dest: &Destination,
    user_id: &[u8],
) -> io::Result<Vec<u8>> {
    let dest = match (dest, parent.kind.takes_names()) {
        (Destination::Addr(SocketAddr::V4(a)), _) => Dest::Addr(*a),
        (Destination::Name(host, port), true) => Dest::Domain(host, *port),
        _ => {
            return Err(failed(
                ErrorKind::Unsupported,
                format!("{parent}: SOCKS4 carries IPv4 addresses only, not {dest}"),
            ))
        }
    };
    let request = Request {
        command: Command::Connect,
        dest,
        user_id,
    };
    let mut handshake = Handshake::new(&request)
        .map_err(|e| failed(ErrorKind::InvalidInput, format!("{parent}: {e}")))?;
    if let Some(bytes) = handshake.poll_transmit() {
        stream.write_all(bytes).await?;
    }
    let mut buf = [0u8; ANSWER_BUFFER];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(failed(
                ErrorKind::UnexpectedEof,
                format!("{parent}: closed before its reply"),
            ));
        }
        let used = handshake
            .handle_input(&buf[..n])
            .map_err(|e| failed(ErrorKind::InvalidData, format!("{parent}: {e}")))?;
        while let Some(event) = handshake.poll_event() {
            match event {
                Event::Granted(_) => return Ok(buf[used..n].to_vec()),
                Event::Rejected(r) => {
                    return Err(failed(
                        ErrorKind::ConnectionRefused,
                        format!("{parent}: refused with {}", r.code.as_u8()),
                    ))
                }
                _ => {}
            }
        }
    }
}

async fn http<S: Stream>(
    stream: &mut Endpoint<S>,
    parent: &Parent,
    dest: &Destination,
) -> io::Result<Vec<u8>> {
    let (host, port) = match dest {
        Destination::Addr(a) => (a.ip().to_string(), a.port()),
        Destination::Name(h, p) => (h.clone(), *p),
    };
    let auth = parent
        .user
        .as_deref()
        .map(|u| (u, parent.password.as_deref().unwrap_or("")));
    let mut connect = HttpConnect::new(&host, port, auth);
    stream.write_all(connect.request()).await?;
    let mut buf = [0u8; ANSWER_BUFFER];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            connect
                .handle_eof()
                .map_err(|e| failed(ErrorKind::UnexpectedEof, format!("{parent}: {e}")))?;
        }
        let used = connect
            .handle_input(&buf[..n])
            .map_err(|e| failed(ErrorKind::InvalidData, format!("{parent}: {e}")))?;
        match connect.outcome() {
            Some(HttpOutcome::Granted) => return Ok(buf[used..n].to_vec()),
            Some(HttpOutcome::Refused { status, reason }) => {
                return Err(failed(
                    ErrorKind::ConnectionRefused,
                    format!("{parent}: answered {status} {reason}"),
                ))
            }
            None => {}
        }
    }
}
