//! The connection driver, written once for every runtime: accept loops, the loop
//! that performs a session's actions, the IDENT exchange and the relay. An adapter
//! supplies a [`Runtime`]: how to listen, accept, connect, resolve, sleep and
//! spawn on its executor, with streams that speak `futures-io`.
//!
//! Nothing here holds a protocol constant, a policy or a timeout value: the
//! session machine decides, the [`Daemon`] keeps the books, and the only clock
//! input is the session's `poll_timeout()`.

use crate::{Conn, Daemon, Settings};
use futures_lite::future::FutureExt;
use futures_lite::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use socks4_ident::{IdentClient, Outcome, Query};
use socks4_proto::server::{Action, ActionOutcome, RelayStats};
use std::future::Future;
use std::io::{self, ErrorKind};
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// What an adapter provides: sockets, resolver, timer and spawner of one runtime.
pub trait Runtime: Send + Sync + 'static {
    /// A connected TCP stream. Closing its writer (`poll_close`) must shut down
    /// the sending half only, so that relays keep TCP half-close.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// A listening socket.
    type Listener: Send + Sync + 'static;

    /// Listens on `addr`.
    fn bind(addr: SocketAddr) -> impl Future<Output = io::Result<Self::Listener>> + Send;
    /// The address a listener is bound to.
    fn listener_addr(listener: &Self::Listener) -> io::Result<SocketAddr>;
    /// Accepts one connection: the stream, the peer's and our address.
    fn accept(
        listener: &Self::Listener,
    ) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr, SocketAddr)>> + Send;
    /// Connects to `addr`: the stream and our address.
    fn connect(
        addr: SocketAddr,
    ) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send;
    /// Connects to `to` from our address `from` (port chosen by the OS). IDENT
    /// needs it: identd matches the querier's address against the connection it
    /// is asked about, so the query must come from the address the client reached.
    /// Runtimes without bind-before-connect can use [`start_connect_from`].
    fn connect_from(
        from: IpAddr,
        to: SocketAddr,
    ) -> impl Future<Output = io::Result<Self::Stream>> + Send;
    /// Resolves a host name with the system resolver (getaddrinfo, /etc/hosts).
    fn resolve(host: String, port: u16) -> impl Future<Output = io::Result<Vec<IpAddr>>> + Send;
    /// Completes at `deadline`.
    fn sleep_until(deadline: Instant) -> impl Future<Output = ()> + Send;
    /// Runs a task in the background.
    fn spawn(task: impl Future<Output = ()> + Send + 'static);
}

/// Starts a TCP connection from `from` to `to` on a non-blocking socket, for
/// runtimes whose own connect cannot bind first: register the socket with the
/// runtime, wait until it is writable, then check `take_error()`.
pub fn start_connect_from(from: IpAddr, to: SocketAddr) -> io::Result<std::net::TcpStream> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(to), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::new(from, 0).into())?;
    match socket.connect(&to.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(socket.into())
}

/// A server binary's `main`: settings, listeners, signals, serve, exit status.
/// `block_on` runs a future to completion on the adapter's runtime.
pub fn main<R: Runtime>(
    name: &str,
    block_on: impl FnOnce(std::pin::Pin<Box<dyn Future<Output = ExitCode>>>) -> ExitCode,
) -> ExitCode {
    let daemon = crate::startup();
    let name = name.to_owned();
    block_on(Box::pin(async move {
        let listeners = match bind::<R>(daemon.settings()).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("{name}: {e}");
                return ExitCode::from(1);
            }
        };
        if let Err(e) = daemon.handle_signals() {
            eprintln!("{name}: signals: {e}");
            return ExitCode::from(1);
        }
        serve::<R>(daemon, listeners).await;
        ExitCode::SUCCESS
    }))
}

/// Binds every listen address of the settings, in order.
pub async fn bind<R: Runtime>(settings: &Settings) -> io::Result<Vec<R::Listener>> {
    let mut listeners = Vec::new();
    for addr in &settings.listen {
        let l = R::bind(*addr)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("listen on {addr}: {e}")))?;
        tracing::info!(target: "socks4d", listen = %R::listener_addr(&l)?, "listening");
        listeners.push(l);
    }
    Ok(listeners)
}

/// Binds the daemon's listen addresses and serves until [`Daemon::shutdown`]: the
/// way to embed a server in another program. `on_bound` gets the bound addresses
/// (useful with port 0) before serving starts.
pub async fn run<R: Runtime>(
    daemon: Daemon,
    on_bound: impl FnOnce(Vec<SocketAddr>),
) -> io::Result<()> {
    let listeners = bind::<R>(daemon.settings()).await?;
    on_bound(
        listeners
            .iter()
            .filter_map(|l| R::listener_addr(l).ok())
            .collect(),
    );
    serve::<R>(daemon, listeners).await;
    Ok(())
}

/// Serves until [`Daemon::shutdown`], then waits for open connections up to the
/// shutdown grace period.
pub async fn serve<R: Runtime>(daemon: Daemon, listeners: Vec<R::Listener>) {
    for (index, listener) in listeners.into_iter().enumerate() {
        R::spawn(accept_loop::<R>(daemon.clone(), index, listener));
    }
    daemon.shutdown_requested().await;
    let grace_over = Instant::now() + daemon.settings().shutdown_grace;
    if within::<R, _>(Some(grace_over), daemon.idle())
        .await
        .is_none()
    {
        tracing::warn!(target: "socks4d", active = daemon.counters().active, "grace period over, closing relays");
    }
}

async fn accept_loop<R: Runtime>(daemon: Daemon, index: usize, listener: R::Listener) {
    let mut backoff = Duration::from_millis(5);
    loop {
        // Shutdown first: `or` polls its left side first.
        let accepted = async {
            daemon.shutdown_requested().await;
            None
        }
        .or(async { Some(R::accept(&listener).await) });
        match accepted.await {
            None => return, // shutting down: the listener closes here
            Some(Ok(_)) if daemon.is_shutting_down() => return,
            Some(Ok((stream, peer, local))) => {
                backoff = Duration::from_millis(5);
                if let Some(conn) = daemon.admit(index, peer, local, Instant::now()) {
                    R::spawn(drive::<R>(conn, stream, local.ip()));
                }
            }
            Some(Err(e)) => {
                // EMFILE, ENFILE, ENOBUFS...: back off instead of spinning.
                tracing::warn!(target: "socks4d", error = %e, ?backoff, "accept failed");
                R::sleep_until(Instant::now() + backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Runs `fut` until `deadline`; `None` when the deadline came first.
async fn within<R: Runtime, T>(
    deadline: Option<Instant>,
    fut: impl Future<Output = T>,
) -> Option<T> {
    match deadline {
        Some(d) => {
            async { Some(fut.await) }
                .or(async {
                    R::sleep_until(d).await;
                    None
                })
                .await
        }
        None => Some(fut.await),
    }
}

fn kind<T>(r: io::Result<T>) -> Result<T, ErrorKind> {
    r.map_err(|e| e.kind())
}

/// Drives one connection's session: performs each action, reports its outcome,
/// reads the request, fires deadlines, and relays once granted.
async fn drive<R: Runtime>(mut conn: Conn, mut client: R::Stream, local: IpAddr) {
    let mut other: Option<R::Stream> = None;
    let mut listener: Option<R::Listener> = None;
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
                Action::Resolve { host, port } => within::<R, _>(deadline, R::resolve(host, port))
                    .await
                    .map(|r| ActionOutcome::Resolved(kind(r))),
                Action::IdentQuery { to, query } => {
                    within::<R, _>(deadline, ident::<R>(local, to, query))
                        .await
                        .map(|r| ActionOutcome::Ident(kind(r)))
                }
                Action::Connect(addr) => {
                    within::<R, _>(deadline, R::connect(addr)).await.map(|r| {
                        ActionOutcome::Connected(kind(r.map(|(s, local)| {
                            other = Some(s);
                            local
                        })))
                    })
                }
                Action::Bind(addr) => Some(ActionOutcome::Bound(kind(
                    R::bind(addr).await.and_then(|l| {
                        let bound = R::listener_addr(&l)?;
                        listener = Some(l);
                        Ok(bound)
                    }),
                ))),
                Action::Accept => match &listener {
                    Some(l) => within::<R, _>(deadline, R::accept(l)).await.map(|r| {
                        ActionOutcome::Accepted(kind(r.map(|(s, peer, _)| {
                            other = Some(s);
                            peer
                        })))
                    }),
                    None => Some(ActionOutcome::Accepted(Err(ErrorKind::NotConnected))),
                },
                Action::StartRelay { client_leftover } => {
                    drop(listener.take()); // a BIND listener is done once its peer arrived
                    let stats = match other.take() {
                        Some(dest) => relay(client, dest, &client_leftover).await,
                        None => RelayStats::default(),
                    };
                    let _ = conn.session.handle_relay_end(Instant::now(), stats);
                    conn.publish();
                    return;
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
        match within::<R, _>(deadline, client.read(&mut buf)).await {
            None => conn.session.handle_timeout(Instant::now()),
            Some(Ok(0) | Err(_)) => conn.session.handle_eof(Instant::now()),
            Some(Ok(n)) => conn.session.handle_input(Instant::now(), &buf[..n]),
        }
    }
}

/// Relays both ways until both directions are done. When one side shuts down its
/// sending half, the other side's writer is closed (half-close) and the opposite
/// direction goes on. Bytes are counted as they go, so an error (a reset) still
/// reports what was moved.
async fn relay<S: AsyncRead + AsyncWrite + Unpin>(
    client: S,
    dest: S,
    leftover: &[u8],
) -> RelayStats {
    let (mut client_rd, mut client_wr) = futures_lite::io::split(client);
    let (mut dest_rd, mut dest_wr) = futures_lite::io::split(dest);
    let up = async {
        let sent = if dest_wr.write_all(leftover).await.is_ok() {
            leftover.len() as u64 + copy(&mut client_rd, &mut dest_wr).await
        } else {
            0
        };
        let _ = dest_wr.close().await;
        sent
    };
    let down = async {
        let sent = copy(&mut dest_rd, &mut client_wr).await;
        let _ = client_wr.close().await;
        sent
    };
    let (client_to_dest, dest_to_client) = futures_lite::future::zip(up, down).await;
    RelayStats {
        client_to_dest,
        dest_to_client,
    }
}

/// Size of each relay direction's buffer.
const RELAY_BUFFER: usize = 8 * 1024;

/// Copies until EOF or an error; returns the bytes written.
async fn copy(from: &mut (impl AsyncRead + Unpin), to: &mut (impl AsyncWrite + Unpin)) -> u64 {
    let mut buf = vec![0u8; RELAY_BUFFER];
    let mut total = 0;
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return total,
            Ok(n) => {
                if to.write_all(&buf[..n]).await.is_err() {
                    return total;
                }
                total += n as u64;
            }
        }
    }
}

/// One RFC 1413 exchange with the identd at `to`, from our address `from`.
async fn ident<R: Runtime>(from: IpAddr, to: SocketAddr, query: Query) -> io::Result<Outcome> {
    let mut stream = R::connect_from(from, to).await?;
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
