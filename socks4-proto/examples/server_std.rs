//! A minimal SOCKS4/4a server over `std::net`, one thread per client, built on
//! the sans-IO `ServerSession`: the session decides everything (request,
//! policy, replies, timeouts); this program only performs the actions it asks
//! for and reports their outcomes, with the time passed in. Loopback clients
//! only (the session's default policy).
//!
//! ```sh
//! cargo run -p socks4-proto --example server_std -- 127.0.0.1:1080
//! curl --socks4a 127.0.0.1:1080 http://example.com/
//! ```
// An example program has a clock and sockets; the library it shows has none.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use socks4_proto::server::{
    Action, ActionOutcome, RelayEnd, RelayStats, ServerConfig, ServerSession,
};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:1080".into());
    let listener = TcpListener::bind(&addr)?;
    eprintln!("listening on {}", listener.local_addr()?);
    let config = Arc::new(ServerConfig::default());
    for client in listener.incoming().flatten() {
        let config = config.clone();
        std::thread::spawn(move || {
            if let Err(e) = serve(client, config) {
                eprintln!("connection: {e}");
            }
        });
    }
    Ok(())
}

fn serve(mut client: TcpStream, config: Arc<ServerConfig>) -> io::Result<()> {
    let (peer, local) = (client.peer_addr()?, client.local_addr()?);
    let mut s = ServerSession::new(config, peer, local, Instant::now());
    let mut sockets = Sockets::default();
    loop {
        while let Some(event) = s.poll_event() {
            eprintln!("{peer}: {event:?}");
        }
        let Some(action) = s.poll_action() else {
            // No action: the session waits for the request (or has closed).
            if s.is_closed() {
                return Ok(());
            }
            read_client(&mut client, &mut s)?;
            continue;
        };
        let outcome = match action {
            Action::SendReply(reply) => {
                client.write_all(&reply.to_bytes())?;
                continue;
            }
            Action::StartRelay { client_leftover } => {
                let dest = sockets.other.take().expect("a connection before the relay");
                let (stats, end) = relay(&client, dest, &client_leftover);
                s.handle_relay_end(Instant::now(), stats, end)
                    .expect("a relay was asked for");
                continue;
            }
            Action::Close(reason) => {
                eprintln!("{peer}: closed: {reason}");
                return Ok(());
            }
            action => match sockets.perform(&action) {
                Some(outcome) => outcome,
                None => {
                    eprintln!("{peer}: an action this example does not know: {action:?}");
                    return Ok(());
                }
            },
        };
        s.handle_outcome(Instant::now(), outcome)
            .expect("an outcome the session asked for");
    }
}

/// Reads the client's next bytes (or its EOF) for the session, waiting no
/// longer than the session's next deadline.
fn read_client(client: &mut TcpStream, s: &mut ServerSession) -> io::Result<()> {
    let wait = s
        .poll_timeout()
        .map(|t| t.saturating_duration_since(Instant::now()));
    client.set_read_timeout(Some(
        wait.unwrap_or(Duration::MAX).max(Duration::from_millis(1)),
    ))?;
    let mut buf = [0u8; 1024];
    match client.read(&mut buf) {
        Ok(0) => s.handle_eof(Instant::now()),
        Ok(n) => s.handle_input(Instant::now(), &buf[..n]),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            s.handle_timeout(Instant::now())
        }
        Err(_) => s.handle_eof(Instant::now()),
    }
    Ok(())
}

/// The sockets a session's actions open besides the client's.
#[derive(Default)]
struct Sockets {
    /// The destination (connected, or accepted after BIND).
    other: Option<TcpStream>,
    /// BIND's listener, until it accepts.
    bind: Option<TcpListener>,
}

impl Sockets {
    /// Performs an action whose outcome goes back to the session; `None` for
    /// one this example does not know.
    fn perform(&mut self, action: &Action) -> Option<ActionOutcome> {
        Some(match action {
            Action::Resolve { host, port } => ActionOutcome::Resolved(
                (host.as_str(), *port)
                    .to_socket_addrs()
                    .map(|a| a.map(|a| a.ip()).collect())
                    .map_err(|_| socks4_proto::server::ResolveError::NoSuchHost),
            ),
            // This small server asks no identd (IDENT is off by default), and
            // its BIND accept waits without the session's timeout.
            Action::IdentQuery { .. } => ActionOutcome::Ident(Err(io::ErrorKind::Unsupported)),
            Action::Admit { .. } => ActionOutcome::Admitted(Ok(())),
            // One address after another (no Happy Eyeballs race here: the
            // daemon has one), each within 10 s.
            Action::Connect(all) => {
                let mut r = Err(io::ErrorKind::NotFound);
                for (index, to) in all.iter().enumerate() {
                    r = TcpStream::connect_timeout(to, Duration::from_secs(10))
                        .map(|c| {
                            self.other = Some(c);
                            socks4_proto::server::Won {
                                index,
                                attempts: index as u32 + 1,
                            }
                        })
                        .map_err(|e| e.kind());
                    if r.is_ok() {
                        break;
                    }
                }
                ActionOutcome::Connected(r)
            }
            Action::ConnectVia { .. } => ActionOutcome::Connected(Err(io::ErrorKind::Unsupported)),
            Action::Bind(at) => ActionOutcome::Bound(
                TcpListener::bind(*at)
                    .and_then(|l| {
                        let a = l.local_addr();
                        self.bind = Some(l);
                        a
                    })
                    .map_err(|e| e.kind()),
            ),
            Action::Accept => {
                let l = self.bind.take().expect("a listener after Bind");
                ActionOutcome::Accepted(
                    l.accept()
                        .map(|(c, from)| {
                            self.other = Some(c);
                            from
                        })
                        .map_err(|e| e.kind()),
                )
            }
            _ => return None,
        })
    }
}

/// Copies both ways until both directions end; half-closes pass on.
fn relay(client: &TcpStream, dest: TcpStream, leftover: &[u8]) -> (RelayStats, RelayEnd) {
    let copy = |mut from: TcpStream, mut to: TcpStream, first: Vec<u8>| {
        std::thread::spawn(move || {
            let r = to
                .write_all(&first)
                .and_then(|()| io::copy(&mut from, &mut to));
            let _ = to.shutdown(Shutdown::Write);
            r.map(|m| first.len() as u64 + m).map_err(|e| e.kind())
        })
    };
    let (c, d) = (client.try_clone().unwrap(), dest.try_clone().unwrap());
    let up = copy(c, dest, leftover.to_vec());
    let down = copy(d, client.try_clone().unwrap(), Vec::new());
    let (up, down) = (up.join().unwrap(), down.join().unwrap());
    let stats = RelayStats {
        client_to_dest: *up.as_ref().unwrap_or(&0),
        dest_to_client: *down.as_ref().unwrap_or(&0),
    };
    let end = match (up, down) {
        (Err(k), _) | (_, Err(k)) => RelayEnd::Error(k),
        _ => RelayEnd::Finished,
    };
    (stats, end)
}
