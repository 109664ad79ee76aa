//! Connecting through a parent proxy (a route's `via`): reach the parent (its
//! name resolved here, its addresses tried in order, from the outgoing address
//! when one is set), TLS with it for `socks4+tls://`, `socks4a+tls://` and
//! `https://` (its certificate verified for its host name, against `[tls] ca`
//! or the system's authorities), then its handshake: SOCKS4/SOCKS4a with the sans-IO
//! client ([`socks4_proto::client::Handshake`]) or HTTP CONNECT
//! ([`socks4_proto::upstream::HttpConnect`]). Bytes the parent sent after its
//! answer belong to the tunnel and are handed back for the relay.

use crate::conn::resolve;
use crate::runtime::endpoint::Endpoint;
use crate::runtime::socket;
use crate::runtime::{Runtime, Stream};
use async_lock::Semaphore;
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
pub(crate) struct Reach<'a> {
    /// Addresses outbound connections leave from.
    pub(crate) outgoing: &'a [IpAddr],
    /// Permits for name lookups.
    pub(crate) lookups: &'a Arc<Semaphore>,
    /// TLS towards parents that speak it.
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
}

/// Connects to `dest` through `parent`; the tunnel and the bytes the parent
/// sent after its answer. A failed TLS handshake is an error that
/// [`crate::runtime::endpoint::tls_failure_of`] recognizes.
pub(crate) async fn connect_via<R: Runtime>(
    rt: &R,
    parent: &Parent,
    dest: &Destination,
    user_id: &[u8],
    how: Reach<'_>,
) -> io::Result<(Endpoint<R::Stream>, Vec<u8>)> {
    if let Destination::Name(name, _) = dest {
        if !is_host(name) {
            // Not in the message: it is the client's text.
            return Err(failed(
                ErrorKind::InvalidInput,
                format!("{parent}: the requested name cannot be a host name"),
            ));
        }
    }
    let stream = reach(rt, parent, how.outgoing, how.lookups).await?;
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
    Ok((tunnel, leftover))
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

/// A TCP connection to the parent: its addresses in the resolver's order.
pub(crate) async fn reach<R: Runtime>(
    rt: &R,
    parent: &Parent,
    outgoing: &[IpAddr],
    lookups: &Arc<Semaphore>,
) -> io::Result<R::Stream> {
    let addrs = match parent.host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => resolve::resolve(rt, lookups, parent.host.clone())
            .await
            .map_err(|e| failed(ErrorKind::NotFound, format!("{parent}: {e}")))?,
    };
    let mut last = failed(ErrorKind::NotFound, format!("{parent}: no address"));
    for ip in addrs {
        let to = SocketAddr::new(ip, parent.port);
        match socket::connect(rt, to, socket::outgoing_for(outgoing, to)).await {
            Ok(s) => return Ok(s),
            Err(e) => last = failed(e.kind(), format!("{parent} ({to}): {e}")),
        }
    }
    Err(last)
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
