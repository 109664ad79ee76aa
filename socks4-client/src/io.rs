//! [`Io`]: what the client needs of an async runtime, and all it needs:
//! connect to a host and port (a name resolved by the runtime), read, write,
//! the peer's address, and a timeout. A runtime crate implements it in a few
//! lines over its own TCP stream; the client then hands back that stream.

use crate::addr::HostPort;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// An async runtime's TCP, as the client uses it. `socks4-tokio`,
/// `socks4-smol` and `socks4-async-std` implement it (their `client`
/// feature); implement it for another runtime the same way.
///
/// The futures are those of the implementing runtime: for a runtime whose
/// futures are `Send`, the client's are too.
pub trait Io: Clone {
    /// The runtime's TCP stream, which the client hands back once the proxy
    /// granted the request.
    type Stream;

    /// Connects to `to`: its address, or every address its name resolves to
    /// (by the runtime's resolver), in turn.
    fn connect(&self, to: &HostPort) -> impl Future<Output = io::Result<Self::Stream>>;

    /// Reads into `buf`: how many bytes came (0 at the end of the stream).
    fn read(
        &self,
        stream: &mut Self::Stream,
        buf: &mut [u8],
    ) -> impl Future<Output = io::Result<usize>>;

    /// Writes all of `buf`.
    fn write_all(
        &self,
        stream: &mut Self::Stream,
        buf: &[u8],
    ) -> impl Future<Output = io::Result<()>>;

    /// The address `stream` is connected to.
    fn peer_addr(&self, stream: &Self::Stream) -> io::Result<SocketAddr>;

    /// `fut`'s output, or `None` once `after` has passed.
    fn timeout<T>(
        &self,
        after: Duration,
        fut: impl Future<Output = T>,
    ) -> impl Future<Output = Option<T>>;
}
