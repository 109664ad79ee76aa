#![doc = include_str!("../README.md")]
//!
//! SOCKS4 and SOCKS4a without IO: a frame codec, a client handshake machine and
//! the server's per-connection session machine.
//!
//! # Sans-IO
//!
//! This crate contains no networking code, reads no clock and spawns nothing. It
//! turns bytes into values and values into bytes; the caller moves the bytes over
//! whatever transport it has (blocking `std::net`, tokio, async-std, smol, a test
//! harness) and owns every deadline: time comes in as an argument. Its
//! dependencies are `bytes` and, for the `server` feature, the sans-IO
//! [`socks4_acl`] and [`socks4_ident`]. A `clippy.toml` in the crate forbids clock and
//! socket calls, and CI checks that no async runtime is in its dependency tree.
//!
//! # What is here
//!
//! - [`codec`]: [`Request`] and [`Reply`] frames. Decoding is incremental
//!   ([`Status::Incomplete`] for a prefix), zero-copy (a request borrows its user
//!   id and host name from the input) and bounded by [`Limits`]: past a limit the
//!   answer is a [`DecodeError`], never "incomplete". Every decode error tells a
//!   server which reply to send ([`DecodeError::reply_code`], always 91).
//! - [`client`]: [`client::Handshake`], the client side of a CONNECT or BIND,
//!   usable with any IO (its docs show it over `std::net::TcpStream`).
//! - `upstream` (default feature `upstream`): the client side of an HTTP
//!   CONNECT parent proxy, for servers that chain to one.
//! - `proxy_header` (default feature `proxy-protocol`): the PROXY protocol header
//!   (v1 and v2) a load balancer sends before a client's bytes, read
//!   incrementally and bounded (the `ppp` crate parses it).
//! - `server` (default feature `server`): `server::ServerSession`, one client
//!   connection's whole life (request, access policy, IDENT, resolve, connect or
//!   BIND, replies, hand-off to relay) as inputs and actions, with time passed in.
//!   It composes [`socks4_acl`] and [`socks4_ident`]; without the default
//!   features the crate depends on `bytes` only.
//!
//! - [`eyeballs`]: Happy Eyeballs v2 (RFC 8305) as a machine: the order a
//!   name's addresses are tried in, when the next attempt starts, each
//!   attempt's deadline, the winner.
//! - [`dns_cache`]: a bounded DNS answer cache with TTLs, negative answers
//!   (RFC 2308) and stale answers (RFC 8767), time passed in.
//! - `health` (feature `server`): parents watched passively (consecutive
//!   failures, a doubling backoff) and the order a route's parents are tried
//!   in (`balance`).
//! - [`sniff`]: the host name a client means, from its first bytes (a TLS
//!   ClientHello's SNI, an HTTP/1.x request's `Host`), for intercepted
//!   connections that arrive with an address only.
//!
//! The protocol texts are SOCKS4 (Ying-Da Lee, "SOCKS: A protocol for TCP proxy
//! across firewalls") and its SOCKS4a extension (host names resolved by the server,
//! signalled by a DSTIP of `0.0.0.x` with `x != 0`).
//!
//! ```
//! use socks4_proto::{Command, Dest, Limits, Request, Status};
//! let req = Request { command: Command::Connect, dest: Dest::Domain("localhost", 22), user_id: b"" };
//! let bytes = req.to_vec();
//! assert_eq!(bytes, b"\x04\x01\x00\x16\x00\x00\x00\x01\0localhost\0");
//! assert_eq!(Request::decode(&bytes, &Limits::default()), Ok(Status::Complete(req, bytes.len())));
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod client;
pub mod codec;
pub mod dns_cache;
pub mod eyeballs;
#[cfg(feature = "server")]
pub mod health;
#[cfg(feature = "proxy-protocol")]
pub mod proxy_header;
#[cfg(feature = "server")]
pub mod server;
pub mod sniff;
#[cfg(feature = "upstream")]
pub mod upstream;

pub use codec::{
    Command, DecodeError, Dest, Limits, Reply, ReplyCode, Request, Status, REPLY_VERSION,
    REQUEST_VERSION,
};
