#![doc = include_str!("../README.md")]
//!
//! # The parts
//!
//! - [`Client`]: CONNECT ([`Client::connect`]) and BIND ([`Client::bind`],
//!   then [`Bound::accept`]), with an optional user id and timeout;
//! - [`Io`]: what a runtime gives the client (connect by name or address,
//!   read, write, a timeout), implemented by the runtime crates;
//! - [`ToHostPort`] and [`HostPort`]: the proxy and the target as a caller
//!   writes them;
//! - [`ClientError`]: a refusal with its reply code, a timeout, a broken
//!   protocol, an address SOCKS4 cannot send, or an I/O error.
//!
//! The protocol is the sans-IO handshake of [`socks4_proto::client`]; this
//! crate reads no clock and opens no socket itself (the runtime does both),
//! and depends on no runtime.
//!
//! # A runtime of one's own
//!
//! ```
//! use socks4_client::{Client, HostPort, Io};
//! use std::future::Future;
//! use std::io::{self, Read, Write};
//! use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
//! use std::time::Duration;
//!
//! /// Blocking std sockets behind futures that are ready at once.
//! #[derive(Clone, Default)]
//! struct Blocking;
//!
//! impl Io for Blocking {
//!     type Stream = TcpStream;
//!     async fn connect(&self, to: &HostPort) -> io::Result<TcpStream> {
//!         TcpStream::connect((&*to.host_str(), to.port))
//!     }
//!     async fn read(&self, s: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
//!         s.read(buf)
//!     }
//!     async fn write_all(&self, s: &mut TcpStream, buf: &[u8]) -> io::Result<()> {
//!         s.write_all(buf)
//!     }
//!     fn peer_addr(&self, s: &TcpStream) -> io::Result<SocketAddr> {
//!         s.peer_addr()
//!     }
//!     async fn timeout<T>(&self, _: Duration, fut: impl Future<Output = T>) -> Option<T> {
//!         Some(fut.await)
//!     }
//! }
//!
//! let client: Client<Blocking> = Client::new().user_id("alice");
//! // client.connect("proxy.lan:1080", "example.com:80") is a future that
//! // completes on the first poll.
//! # let _ = client;
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod addr;
mod client;
mod error;
mod io;

pub use addr::{Host, HostPort, ToHostPort};
pub use client::{Bound, Client};
pub use error::ClientError;
pub use io::Io;
pub use socks4_proto::ReplyCode;
