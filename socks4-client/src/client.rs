//! [`Client`]: CONNECT through a proxy, or BIND on it, on a runtime's
//! [`Io`], with an optional user id and timeout; [`Bound`], a BIND waiting
//! for its peer.
//!
//! The protocol is [`socks4_proto::client::Handshake`], the sans-IO machine;
//! this module only moves its bytes. It reads exactly as many bytes as the
//! replies take, so whatever the proxy or the destination sends after a
//! reply stays in the stream for the caller: nothing is lost.

use crate::addr::{Host, HostPort, ToHostPort};
use crate::error::ClientError;
use crate::io::Io;
use socks4_proto::client::{Event, Handshake};
use socks4_proto::{Command, Dest, Reply, Request};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::time::Duration;

/// A SOCKS4/4a client on the runtime `R`: a user id (empty unless set) and
/// a timeout for the whole exchange (none unless set).
///
/// ```text
/// // With socks4-tokio's `client` feature (`socks4_tokio::client::Client`
/// // is `Client<TokioIo>`):
/// let s = Client::new()
///     .user_id("alice")
///     .timeout(Duration::from_secs(10))
///     .connect("proxy.lan:1080", "example.com:80")
///     .await?;
/// ```
#[derive(Debug, Clone)]
pub struct Client<R> {
    rt: R,
    user_id: Vec<u8>,
    timeout: Option<Duration>,
}

impl<R: Io + Default> Client<R> {
    /// A client with no user id and no timeout.
    pub fn new() -> Client<R> {
        Client::on(R::default())
    }
}

impl<R: Io + Default> Default for Client<R> {
    fn default() -> Client<R> {
        Client::new()
    }
}

impl<R: Io> Client<R> {
    /// A client on the runtime `rt`, with no user id and no timeout.
    pub fn on(rt: R) -> Client<R> {
        Client {
            rt,
            user_id: Vec::new(),
            timeout: None,
        }
    }

    /// Sends `user_id` as the request's USERID (SOCKS4 has no password).
    pub fn user_id(mut self, user_id: impl Into<Vec<u8>>) -> Client<R> {
        self.user_id = user_id.into();
        self
    }

    /// Gives up with [`ClientError::TimedOut`] when the exchange takes
    /// longer than `timeout` (for BIND, each of its two replies).
    pub fn timeout(mut self, timeout: Duration) -> Client<R> {
        self.timeout = Some(timeout);
        self
    }

    /// Connects to `target` through the proxy at `proxy`: the stream, relayed
    /// to the target from then on. A target given by name is resolved by the
    /// proxy (SOCKS4a); the proxy's own name, by the runtime.
    pub async fn connect(
        &self,
        proxy: impl ToHostPort,
        target: impl ToHostPort,
    ) -> Result<R::Stream, ClientError> {
        let (proxy, target) = (proxy.to_host_port()?, target.to_host_port()?);
        let mut handshake = request(Command::Connect, &target, &self.user_id)?;
        self.within(async {
            let mut stream = self.rt.connect(&proxy).await?;
            replies(&self.rt, &mut stream, &mut handshake).await?;
            Ok(stream)
        })
        .await
    }

    /// Asks the proxy at `proxy` to listen for one connection from `peer`
    /// (BIND): the address to announce to the peer (the first reply, where
    /// an address of `0.0.0.0` is replaced by the proxy's own), and
    /// [`Bound::accept`] for the connection.
    pub async fn bind(
        &self,
        proxy: impl ToHostPort,
        peer: SocketAddrV4,
    ) -> Result<Bound<R>, ClientError> {
        let proxy = proxy.to_host_port()?;
        let mut handshake = request(Command::Bind, &peer.to_host_port()?, &self.user_id)?;
        let (stream, first) = self
            .within(async {
                let mut stream = self.rt.connect(&proxy).await?;
                let first = replies(&self.rt, &mut stream, &mut handshake).await?;
                Ok((stream, first))
            })
            .await?;
        let proxy_ip = match self.rt.peer_addr(&stream)?.ip() {
            IpAddr::V4(ip) => ip,
            IpAddr::V6(ip) => ip.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
        };
        Ok(Bound {
            listen: first.bind_address(proxy_ip),
            stream,
            handshake,
            client: self.clone(),
        })
    }

    /// `fut`, or [`ClientError::TimedOut`] once the timeout has passed.
    async fn within<T>(
        &self,
        fut: impl Future<Output = Result<T, ClientError>>,
    ) -> Result<T, ClientError> {
        match self.timeout {
            Some(t) => self
                .rt
                .timeout(t, fut)
                .await
                .unwrap_or(Err(ClientError::TimedOut)),
            None => fut.await,
        }
    }
}

/// A BIND whose first reply came: announce [`listen`](Self::listen) to the
/// peer that is to connect, then [`accept`](Self::accept).
pub struct Bound<R: Io> {
    listen: SocketAddrV4,
    stream: R::Stream,
    handshake: Handshake,
    client: Client<R>,
}

impl<R: Io> std::fmt::Debug for Bound<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bound")
            .field("listen", &self.listen)
            .finish_non_exhaustive()
    }
}

impl<R: Io> Bound<R> {
    /// Where the proxy listens for the peer (its first reply).
    pub fn listen(&self) -> SocketAddrV4 {
        self.listen
    }

    /// Waits for the peer to connect (the proxy's second reply, within the
    /// timeout): the stream, relayed to the peer, and the peer's address as
    /// the proxy reports it.
    pub async fn accept(mut self) -> Result<(R::Stream, SocketAddrV4), ClientError> {
        let client = self.client.clone();
        let second = client
            .within(replies(&client.rt, &mut self.stream, &mut self.handshake))
            .await?;
        Ok((self.stream, second.addr))
    }
}

/// The handshake for `command` to `dest`: an IPv4 address (SOCKS4) or a name
/// (SOCKS4a); SOCKS4 cannot carry an IPv6 address.
fn request(command: Command, dest: &HostPort, user_id: &[u8]) -> Result<Handshake, ClientError> {
    let dest = match &dest.host {
        Host::Ip(IpAddr::V4(ip)) => Dest::Addr(SocketAddrV4::new(*ip, dest.port)),
        Host::Ip(IpAddr::V6(ip)) => match ip.to_ipv4_mapped() {
            Some(ip) => Dest::Addr(SocketAddrV4::new(ip, dest.port)),
            None => {
                return Err(ClientError::Address(format!(
                    "{dest}: SOCKS4 carries IPv4 addresses only (give an IPv4 address, or a \
                     name for the proxy to resolve)"
                )))
            }
        },
        Host::Name(name) => Dest::Domain(name, dest.port),
    };
    let req = Request {
        command,
        dest,
        user_id,
    };
    Handshake::new(&req).map_err(|e| ClientError::Address(e.to_string()))
}

/// Sends the request (if not sent yet) and reads the next reply, reading no
/// byte beyond it.
async fn replies<R: Io>(
    rt: &R,
    stream: &mut R::Stream,
    handshake: &mut Handshake,
) -> Result<Reply, ClientError> {
    if let Some(bytes) = handshake.poll_transmit() {
        rt.write_all(stream, bytes).await?;
    }
    // Bytes of the reply read so far: a reply is 8 bytes, and no more than
    // the rest of it is read.
    let mut have = 0;
    loop {
        let mut buf = [0u8; Reply::LEN];
        let n = rt.read(stream, &mut buf[..Reply::LEN - have]).await?;
        if n == 0 {
            let e = handshake.handle_eof().err();
            return Err(ClientError::Protocol(
                e.map_or_else(|| "closed".to_owned(), |e| e.to_string()),
            ));
        }
        handshake
            .handle_input(&buf[..n])
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        have = (have + n) % Reply::LEN;
        if let Some(event) = handshake.poll_event() {
            return match event {
                Event::Granted(r) | Event::BindListening(r) => Ok(r),
                Event::Rejected(r) => Err(ClientError::Refused(r.code)),
            };
        }
    }
}
