//! The tokio adapter: accepts connections, performs what the session machine
//! asks (connect, system-resolver lookup, IDENT query, BIND listen/accept), then
//! relays both ways with TCP half-close. No protocol constants, policy or timeout
//! values live here: the session decides, `socks4-daemon` keeps the books.

use socks4_daemon::{Conn, Daemon, Settings};
use socks4_ident::{IdentClient, Outcome, Query};
use socks4_proto::server::{Action, ActionOutcome, RelayStats};
use std::future::Future;
use std::io::{self, ErrorKind};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// Binds every listen address of the settings, in order.
pub async fn bind(settings: &Settings) -> io::Result<Vec<TcpListener>> {
    let mut listeners = Vec::new();
    for addr in &settings.listen {
        let l = TcpListener::bind(addr)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("listen on {addr}: {e}")))?;
        tracing::info!(target: "socks4d", listen = %l.local_addr()?, "listening");
        listeners.push(l);
    }
    Ok(listeners)
}

/// Binds the daemon's listen addresses and serves until [`Daemon::shutdown`]:
/// the way to embed a server in another tokio program. Returns the bound
/// addresses through `on_bound` (useful with port 0) before serving.
pub async fn run(daemon: Daemon, on_bound: impl FnOnce(Vec<SocketAddr>)) -> io::Result<()> {
    let listeners = bind(daemon.settings()).await?;
    on_bound(
        listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect(),
    );
    serve(daemon, listeners).await;
    Ok(())
}

/// Serves until [`Daemon::shutdown`], then waits for open connections up to the
/// shutdown grace period.
pub async fn serve(daemon: Daemon, listeners: Vec<TcpListener>) {
    for (index, listener) in listeners.into_iter().enumerate() {
        tokio::spawn(accept_loop(daemon.clone(), index, listener));
    }
    daemon.shutdown_requested().await;
    let grace = daemon.settings().shutdown_grace;
    if tokio::time::timeout(grace, daemon.idle()).await.is_err() {
        tracing::warn!(target: "socks4d", active = daemon.counters().active, "grace period over, closing relays");
    }
}

async fn accept_loop(daemon: Daemon, index: usize, listener: TcpListener) {
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = daemon.shutdown_requested() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(5);
                let Ok(local) = stream.local_addr() else {
                    continue;
                };
                if let Some(conn) = daemon.admit(index, peer, local, Instant::now()) {
                    tokio::spawn(drive(conn, stream, local));
                }
            }
            Err(e) => {
                // EMFILE, ENFILE, ENOBUFS...: back off instead of spinning.
                tracing::warn!(target: "socks4d", error = %e, ?backoff, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Runs `fut` until the session's deadline; `None` when the deadline passed first.
async fn within<T>(deadline: Option<Instant>, fut: impl Future<Output = T>) -> Option<T> {
    match deadline {
        Some(d) => tokio::time::timeout_at(d.into(), fut).await.ok(),
        None => Some(fut.await),
    }
}

fn kind<T>(r: io::Result<T>) -> Result<T, ErrorKind> {
    r.map_err(|e| e.kind())
}

async fn drive(mut conn: Conn, mut client: TcpStream, local: SocketAddr) {
    let mut other: Option<TcpStream> = None;
    let mut listener: Option<TcpListener> = None;
    let mut buf = [0u8; 2048];
    loop {
        conn.publish();
        while let Some(action) = conn.session.poll_action() {
            let deadline = conn.session.poll_timeout();
            let outcome = match action {
                Action::SendReply(reply) => {
                    if client.write_all(&reply.to_bytes()).await.is_err() {
                        return;
                    }
                    continue;
                }
                Action::Resolve { host, port } => {
                    within(deadline, tokio::net::lookup_host((host.as_str(), port)))
                        .await
                        .map(|r| {
                            ActionOutcome::Resolved(
                                kind(r).map(|addrs| addrs.map(|a| a.ip()).collect()),
                            )
                        })
                }
                Action::IdentQuery { to, query } => within(deadline, ident(to, local.ip(), query))
                    .await
                    .map(|r| ActionOutcome::Ident(kind(r))),
                Action::Connect(addr) => {
                    within(deadline, TcpStream::connect(addr)).await.map(|r| {
                        ActionOutcome::Connected(kind(r.and_then(|s| {
                            let local = s.local_addr()?;
                            other = Some(s);
                            Ok(local)
                        })))
                    })
                }
                Action::Bind(addr) => Some(ActionOutcome::Bound(kind(
                    TcpListener::bind(addr).await.and_then(|l| {
                        let bound = l.local_addr()?;
                        listener = Some(l);
                        Ok(bound)
                    }),
                ))),
                Action::Accept => match &listener {
                    Some(l) => within(deadline, l.accept()).await.map(|r| {
                        ActionOutcome::Accepted(kind(r.map(|(s, peer)| {
                            other = Some(s);
                            peer
                        })))
                    }),
                    None => Some(ActionOutcome::Accepted(Err(ErrorKind::NotConnected))),
                },
                Action::StartRelay { client_leftover } => {
                    listener = None;
                    let stats = match other.take() {
                        Some(mut dest) => relay(&mut client, &mut dest, &client_leftover).await,
                        None => RelayStats::default(),
                    };
                    let _ = conn.session.handle_relay_end(Instant::now(), stats);
                    continue;
                }
                Action::Close(_) => {
                    conn.publish();
                    return;
                }
                _ => None,
            };
            match outcome {
                Some(o) => {
                    let _ = conn.session.handle_outcome(Instant::now(), o);
                }
                None => conn.session.handle_timeout(Instant::now()),
            }
        }
        conn.publish();
        if conn.session.is_closed() || !conn.session.wants_input() {
            return;
        }
        let deadline = conn.session.poll_timeout();
        tokio::select! {
            r = client.read(&mut buf) => match r {
                Ok(0) | Err(_) => conn.session.handle_eof(Instant::now()),
                Ok(n) => conn.session.handle_input(Instant::now(), &buf[..n]),
            },
            Some(()) = async { match deadline {
                Some(d) => { tokio::time::sleep_until(d.into()).await; Some(()) }
                None => None,
            } } => conn.session.handle_timeout(Instant::now()),
        }
    }
}

/// Relays both ways until both directions are done. When one side shuts down its
/// sending half, the other side sees EOF and the opposite direction goes on.
async fn relay(client: &mut TcpStream, dest: &mut TcpStream, leftover: &[u8]) -> RelayStats {
    let mut stats = RelayStats {
        client_to_dest: leftover.len() as u64,
        dest_to_client: 0,
    };
    if dest.write_all(leftover).await.is_err() {
        return stats;
    }
    if let Ok((up, down)) = tokio::io::copy_bidirectional(client, dest).await {
        stats.client_to_dest += up;
        stats.dest_to_client = down;
    }
    stats
}

/// One RFC 1413 exchange with the identd at `to`, from our address `from`.
async fn ident(to: SocketAddr, from: IpAddr, query: Query) -> io::Result<Outcome> {
    let socket = if to.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(from, 0))?;
    let mut stream = socket.connect(to).await?;
    let mut exchange = IdentClient::new(query);
    if let Some(line) = exchange.poll_transmit() {
        stream.write_all(line).await?;
    }
    let mut buf = [0u8; 512];
    loop {
        if let Some(outcome) = exchange.poll_outcome() {
            return Ok(outcome);
        }
        match stream.read(&mut buf).await? {
            0 => exchange.handle_eof(),
            n => exchange.handle_input(&buf[..n]),
        }
    }
}
