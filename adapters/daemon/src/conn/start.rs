//! A connection's start, from accept to its session: the PROXY protocol
//! header (behind a load balancer, the client's real address and its cap),
//! what the listener's kind asks for (a dual listener's first byte; TLS
//! with the client for `listen_tls`; a known destination for transparent,
//! redirect and forward listeners, and on those that sniff, the name the
//! client's first bytes give), then the session and its driver
//! ([`Connection`]), which run to the connection's end.

use crate::config::listeners::ListenerKind;
use crate::conn::connection::Connection;
use crate::conn::proxy_header;
use crate::conn::refuse::refuse;
use crate::daemon::{Daemon, Slot};
use crate::observe::books::Observer;
use crate::observe::counters::ListenerCounts;
use crate::runtime::endpoint::Endpoint;
use crate::runtime::tls::Tls;
use crate::runtime::{before, poll_io, Direction, Runtime};
use socks4_proto::server::dual::{FirstByte, Protocol};
use socks4_proto::server::{Destination, ServerSession};
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What an accepted connection needs to be served.
pub(super) struct Accepted<R: Runtime> {
    /// The client's stream.
    pub(super) client: R::Stream,
    /// The client's address.
    pub(super) peer: SocketAddr,
    /// Our address the client connected to.
    pub(super) local: SocketAddr,
    /// The bound address of the listener it arrived on.
    pub(super) listener: SocketAddr,
    /// The listener's kind.
    pub(super) kind: ListenerKind,
    /// Its destination, when the listener says it (transparent, redirect,
    /// forward); `None` for a SOCKS client.
    pub(super) dest: Option<Destination>,
    /// The PROXY protocol header its listener requires first; `peer` is then
    /// the load balancer, and `slot` not yet counted for a client.
    pub(super) proxy: Option<socks4_proto::proxy_header::Accept>,
    /// Its place among `max_connections`.
    pub(super) slot: Slot,
    /// The TCP keepalive the client's socket inherited from its listener
    /// (`None`: unknown).
    pub(super) keepalive: Option<Option<Duration>>,
}

/// What a connection turned out to be, once its listener (and, on a dual
/// listener, its first byte) said.
enum Entry {
    /// A SOCKS client.
    Socks,
    /// A SOCKS client inside TLS.
    Tls(Arc<rustls::ServerConfig>),
    /// A connection to relay to a known destination (over TLS to this host,
    /// for `forward_tls`).
    Known(Destination, Option<String>),
    /// A connection to a known destination whose first bytes were sniffed
    /// for a name; `true`: it goes to the name (`sniff_target = "name"`).
    Sniffed(Destination, crate::conn::sniff::Sniff, bool),
}

/// Serves one accepted connection to its end.
///
/// Not an `async fn`: its arguments would then stay in the task's state for
/// the connection's whole life. What a connection needs before its session
/// runs lives in `open`'s own (boxed, short-lived) future, so the task that
/// stays while a relay runs holds the connection and its slot, and no more.
pub(super) fn serve<R: Runtime>(
    rt: R,
    daemon: Daemon,
    accepted: Accepted<R>,
) -> impl Future<Output = ()> + Send + 'static {
    let opening = Box::pin(open(rt, daemon, accepted));
    async move {
        let Some((mut conn, slot)) = opening.await else {
            return;
        };
        conn.run_unless_killed().await;
        // Its client's place first (the connection holds it), then its slot.
        drop(conn);
        drop(slot);
    }
}

/// Everything before the session runs: the PROXY header, the client's cap,
/// a dual listener's first byte, the session and its connection.
async fn open<R: Runtime>(
    rt: R,
    daemon: Daemon,
    accepted: Accepted<R>,
) -> Option<(Connection<R>, Slot)> {
    let now = rt.now();
    let Accepted {
        client,
        mut peer,
        local,
        listener,
        kind,
        dest,
        proxy,
        mut slot,
        keepalive,
    } = accepted;
    // One of our own outbound connections, come back in: the session
    // refuses it as a loop, before anything else (no PROXY header, no TLS,
    // no request).
    if from_ours(&daemon, &client, peer, local, dest.as_ref()) {
        let replies = kind.replies_in_clear() && proxy.is_none();
        return Some(from_self(
            rt,
            daemon,
            client,
            (peer, local, listener),
            replies,
            slot,
        ));
    }
    // Behind a load balancer: its header names the client, within the
    // handshake timeout (which runs from accept); the connection then counts
    // under that client's cap.
    let mut reached = None;
    if let Some(accept) = proxy {
        let read = balancer_header(&rt, &daemon, &client, accept, (peer, listener), now);
        let header = Box::pin(read).await?;
        if let Some(source) = header.source {
            peer = source;
            reached = header.destination;
        }
        let at = Arrival {
            peer,
            local,
            listener,
            counts: None,
            id: Some(slot.id),
        };
        if refused_behind_balancer(&rt, &daemon, at, kind.replies_in_clear(), &mut slot) {
            if kind.replies_in_clear() {
                let linger = daemon.settings().refused_timeout;
                refuse(rt, client, linger).await;
            }
            return None;
        }
    }
    let tls = daemon.tls();
    let at = (kind, dest, listener);
    let entry = Box::pin(entry(&rt, &daemon, &tls, &client, at, now)).await?;
    let cfg = daemon.server_config();
    let (mut session, client, dest_tls) = session_for(&rt, cfg, (peer, local, now), entry, client)?;
    if let Some(reached) = reached {
        session.set_reached(reached);
    }
    let books = (daemon.books().clone(), daemon.clients().clone());
    let mut observer = Observer::new(books.0, books.1, slot.id, listener, peer, now);
    observer.list(daemon.conns().list(slot.id, listener, peer, now));
    let mut conn = Connection::new(rt, daemon, session, observer, client, tls, dest_tls);
    conn.counted = slot.take_client();
    conn.client_keepalive = keepalive;
    conn.step(|_, _| {});
    Some((conn, slot))
}

/// The session for what the connection turned out to be (its timers from
/// `now`, the accept, but a sniffed one's from the clock's now, after the
/// sniff), its client's endpoint and the host a `forward_tls`
/// destination's TLS is for; `None` when TLS with the client cannot start.
#[allow(clippy::type_complexity)]
fn session_for<R: Runtime>(
    rt: &R,
    cfg: Arc<socks4_proto::server::ServerConfig>,
    (peer, local, now): (SocketAddr, SocketAddr, Instant),
    entry: Entry,
    client: R::Stream,
) -> Option<(ServerSession, Endpoint<R::Stream>, Option<String>)> {
    Some(match entry {
        Entry::Socks => (
            ServerSession::new(cfg, peer, local, now),
            Endpoint::Plain(client),
            None,
        ),
        Entry::Tls(config) => match Endpoint::tls_server(client, config) {
            Ok(client) => (ServerSession::new(cfg, peer, local, now), client, None),
            Err(e) => {
                tracing::error!(target: "socks4d", %peer, error = %e, "cannot start TLS");
                return None;
            }
        },
        Entry::Known(dest, tls_host) => (
            ServerSession::with_destination(cfg, peer, local, dest, now),
            Endpoint::Plain(client),
            tls_host,
        ),
        Entry::Sniffed(dest, sniff, to_name) => {
            // The session starts after the sniff: its time is the clock's now.
            let now = rt.now();
            let session = ServerSession::with_sniffed(
                cfg,
                peer,
                local,
                dest,
                sniff.name,
                to_name,
                sniff.bytes,
                now,
            );
            (session, Endpoint::Plain(client), None)
        }
    })
}

/// Behind a balancer, once its header named the client: whether the client
/// is refused before anything costly (no rule could pass it), or over its
/// cap (else it is counted under it).
fn refused_behind_balancer<R: Runtime>(
    rt: &R,
    daemon: &Daemon,
    at: Arrival<'_>,
    replies: bool,
    slot: &mut Slot,
) -> bool {
    let (peer, listener) = (at.peer, at.listener);
    if source_refused(daemon, at, replies, rt.now()) {
        return true;
    }
    match slot.attribute(peer) {
        Ok(()) => false,
        Err(limit) => {
            if daemon.books().may_log_refusal(rt.now()) {
                tracing::info!(target: "socks4d", %peer, %listener, limit = limit.label(), reason = %limit, "refused");
            }
            true
        }
    }
}

/// Where a connection refused at accept arrived, for its books.
pub(super) struct Arrival<'a> {
    /// The client's address.
    pub(super) peer: SocketAddr,
    /// Our address it reached.
    pub(super) local: SocketAddr,
    /// The listener's bound address.
    pub(super) listener: SocketAddr,
    /// The listener's counts, when no slot counts the connection.
    pub(super) counts: Option<&'a ListenerCounts>,
    /// Its id, when it has one (a slot's).
    pub(super) id: Option<u64>,
}

/// Whether a client is refused whatever it asks (the lists deny it, or no
/// rule could pass it). Then its session records the denial (events,
/// counters, the `closed` line within the refusal budget) as if its request
/// had been refused, without reading it; the caller sends the 91. A source
/// refused by a rule with `notify` is not refused here: its notification
/// needs the request.
pub(super) fn source_refused(
    daemon: &Daemon,
    at: Arrival<'_>,
    replies: bool,
    now: Instant,
) -> bool {
    let cfg = daemon.server_config();
    let Some(verdict) = cfg.policy.decide_by_source(at.peer) else {
        return false;
    };
    if verdict.notify {
        return false;
    }
    let mut session =
        ServerSession::refused_by_source(cfg, at.peer, at.local, verdict, replies, now);
    let id = at.id.unwrap_or_else(|| daemon.next_conn_id());
    let books = (daemon.books().clone(), daemon.clients().clone());
    let mut observer = Observer::new(books.0, books.1, id, at.listener, at.peer, now);
    if let Some(counts) = at.counts {
        counts.opened();
    }
    while let Some(event) = session.poll_event() {
        observer.observe(event, now);
    }
    if let Some(counts) = at.counts {
        counts.closed();
    }
    true
}

/// Whether the connection from `peer` is one of our own outbound ones: from
/// the local address of one of them, to where that one went (the local
/// address it reached, an intercepting listener's destination, or what a DNAT
/// to a plain listener rewrote, asked of conntrack only when the peer
/// matched).
fn from_ours(
    daemon: &Daemon,
    client: &impl std::os::fd::AsFd,
    peer: SocketAddr,
    local: SocketAddr,
    dest: Option<&socks4_proto::server::Destination>,
) -> bool {
    let ours = daemon.own_sockets();
    if !ours.has_local(peer) {
        return false;
    }
    let mut reached = vec![local];
    if let Some(socks4_proto::server::Destination::Addr(addr)) = dest {
        reached.push(*addr);
    }
    if let Ok(original) = crate::runtime::socket::original_dst(client, local.is_ipv4()) {
        reached.push(original);
    }
    ours.is_ours(peer, &reached)
}

/// A connection that is one of our own outbound connections come back in:
/// a session that refuses it as a loop (a 91 first when `replies`).
fn from_self<R: Runtime>(
    rt: R,
    daemon: Daemon,
    client: R::Stream,
    (peer, local, listener): (SocketAddr, SocketAddr, SocketAddr),
    replies: bool,
    slot: Slot,
) -> (Connection<R>, Slot) {
    let now = rt.now();
    let session = ServerSession::from_self(daemon.server_config(), peer, local, replies, now);
    let books = (daemon.books().clone(), daemon.clients().clone());
    let observer = Observer::new(books.0, books.1, slot.id, listener, peer, now);
    let (tls, client) = (daemon.tls(), Endpoint::Plain(client));
    let mut conn = Connection::new(rt, daemon, session, observer, client, tls, None);
    conn.step(|_, _| {});
    (conn, slot)
}

/// The PROXY protocol header a balancer sends first, counted by its result;
/// `None` (logged within the refusal budget) when there is no valid one.
/// `from` is the balancer's address and the listener's.
async fn balancer_header<R: Runtime>(
    rt: &R,
    daemon: &Daemon,
    client: &R::Stream,
    accept: socks4_proto::proxy_header::Accept,
    (balancer, listener): (SocketAddr, SocketAddr),
    now: Instant,
) -> Option<socks4_proto::proxy_header::Header> {
    let deadline = crate::runtime::later(now, daemon.server_config().timeouts.handshake);
    let max = daemon.current().max_proxy_header;
    let counters = &daemon.books().counters;
    match proxy_header::read(rt, client, accept, max, deadline).await {
        Ok(header) => {
            counters.proxy_header(if header.source.is_some() {
                "proxied"
            } else {
                "local"
            });
            Some(header)
        }
        Err(failure) => {
            counters.proxy_header(failure.label());
            if daemon.books().may_log_refusal(rt.now()) {
                tracing::info!(target: "socks4d", %balancer, %listener, reason = %failure, "closed: no valid PROXY header");
            }
            None
        }
    }
}

/// What the connection is, as its listener's kind (and a dual listener's
/// first byte) says; `None` when it cannot be served.
async fn entry<R: Runtime>(
    rt: &R,
    daemon: &Daemon,
    tls: &Tls,
    client: &R::Stream,
    (kind, dest, listener): (ListenerKind, Option<Destination>, SocketAddr),
    now: Instant,
) -> Option<Entry> {
    let settings = daemon.current();
    let sniffing = &settings.sniffing;
    if let (Some(target), Some(dest)) = (sniffing.for_listener(&kind, listener), &dest) {
        let (wait, max) = (sniffing.timeout, sniffing.max);
        let deadline = crate::runtime::later(now, wait);
        let sniff = crate::conn::sniff::read(rt, client, max, deadline).await;
        let to_name = target == crate::config::options::SniffTarget::Name;
        return Some(Entry::Sniffed(dest.clone(), sniff, to_name));
    }
    Some(match (kind, dest) {
        (ListenerKind::Dual(service), _) => {
            let wait = daemon.current().dual_timeout;
            match first_byte(rt, client, FirstByte::new(now, wait)).await {
                Some(Protocol::Tls) if tls.server.is_some() => {
                    Entry::Tls(tls.server.clone().expect("checked"))
                }
                Some(Protocol::Tls | Protocol::Other) => Entry::Known(service, None),
                // SOCKS, or a client that left: the session sees which.
                Some(Protocol::Socks) | None => Entry::Socks,
            }
        }
        // Settings make sure a TLS listener has a server configuration.
        (ListenerKind::Tls, _) => Entry::Tls(tls.server.clone()?),
        (ListenerKind::ForwardTls(to), _) => {
            let host = match &to {
                Destination::Addr(a) => a.ip().to_string(),
                Destination::Name(host, _) => host.clone(),
            };
            Entry::Known(to, Some(host))
        }
        (_, Some(dest)) => Entry::Known(dest, None),
        (_, None) => Entry::Socks,
    })
}
/// Peeks at a dual listener's client until `first` decides what it is;
/// `None` when the client closed or failed first.
async fn first_byte<R: Runtime>(
    rt: &R,
    client: &R::Stream,
    mut first: FirstByte,
) -> Option<Protocol> {
    let deadline = first.poll_timeout();
    let peek = poll_fn(|cx| {
        let mut byte = [0u8; 1];
        poll_io(client, Direction::Read, cx, &mut |fd| {
            rustix::net::recv(fd, &mut byte, rustix::net::RecvFlags::PEEK)
                .map(|(n, _)| n)
                .map_err(std::io::Error::from)
        })
        .map(|peeked| match peeked {
            Ok(n) if n > 0 => first.handle_input(rt.now(), &byte[..n]),
            _ => None,
        })
    });
    match before(rt, deadline, peek).await {
        Some(decided) => decided,
        None => first.handle_timeout(rt.now()),
    }
}
