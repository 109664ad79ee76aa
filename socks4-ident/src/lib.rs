#![doc = include_str!("../README.md")]
//!
//! RFC 1413 IDENT without IO: the client exchange a SOCKS server uses to ask a
//! client host's identd who owns a connection, and the responder's side.
//!
//! # Sans-IO
//!
//! This crate opens no sockets, reads no clock and spawns nothing. [`IdentClient`]
//! produces the query bytes and consumes reply bytes in any split; the caller
//! connects to port 113, moves the bytes and owns the deadline.
//!
//! # The exchange
//!
//! 1. The SOCKS server builds a [`Query`]: the SOCKS client's source port (the port
//!    "on the server", i.e. on the identd host) and the proxy port the client
//!    connected to (the port "on the client", i.e. the querier), in that order.
//! 2. It connects to the client host's port 113 and sends [`Query::encode`]'s line.
//! 3. It reads one reply line, bounded by [`MAX_LINE_LEN`], into an [`Outcome`]:
//!    a user id, an identd error, or an invalid reply (wrong port pair, bad syntax,
//!    too long). A close before the end of line is `ERROR : UNKNOWN-ERROR`.
//! 4. [`Outcome::compare`] decides against the request's USERID: a match grants, a
//!    different user id is reply 93, no usable answer is reply 92.
//!
//! # Timing
//!
//! No timers here. RFC 1413 asks a querying client to wait at least 30 seconds
//! before abandoning a query; a proxy, whose own client is waiting for its reply,
//! usually waits less (the server's IDENT timeout is a configuration value).
//!
//! # Trust
//!
//! The answer is only as trustworthy as the client host: IDENT is a hint for
//! logging and for policy on networks whose hosts you administer, never
//! authentication.
//!
//! ```
//! use socks4_ident::{Comparison, IdentClient, Query};
//! let mut ident = IdentClient::new(Query::new(40000, 1080));
//! let line = ident.poll_transmit().unwrap().to_vec(); // send to <client>:113
//! assert_eq!(line, b"40000 , 1080\r\n");
//! ident.handle_input(b"40000, 1080 : USERID : UNIX : alice\r\n");
//! let outcome = ident.poll_outcome().unwrap();
//! assert_eq!(outcome.compare(b"alice"), Comparison::Match);
//! assert_eq!(outcome.compare(b"bob"), Comparison::Mismatch);
//! ```
#![forbid(unsafe_code)]

mod client;
mod query;
mod reply;

pub use client::IdentClient;
pub use query::{Query, QueryError, MAX_QUERY_LEN};
pub use reply::{
    encode_reply, parse_reply, Comparison, ErrorCode, InvalidReply, Outcome, UserId, MAX_LINE_LEN,
    MAX_TOKEN_LEN,
};

/// The TCP port an identd listens on.
pub const IDENT_PORT: u16 = 113;
