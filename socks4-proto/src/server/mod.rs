//! The server side: one client connection's whole life as a machine without IO.
//!
//! [`ServerSession`] takes a connection from accept to the hand-off to relaying:
//! it reads the request, applies the access policy ([`socks4_acl`]), consults
//! identd when asked to ([`socks4_ident`]), resolves SOCKS4a names, connects or
//! binds, and sends the replies. It never touches a socket or a clock: an adapter
//! (tokio, async-std, smol, a test) performs the [`Action`]s it asks for and
//! reports their [`ActionOutcome`]s, and passes the current time into every call.
//!
//! # Why it lives here
//!
//! The session is the protocol's server half, as [`crate::client`] is its client
//! half, and it speaks in the codec's types; putting it in its own crate would
//! only re-export them. It is behind the default `server` feature because it is
//! the only part that needs `socks4-acl` and `socks4-ident`: a client-only user
//! turns default features off and gets just the codec and the client machine.
//!
//! # Call order
//!
//! ```text
//! let mut s = ServerSession::new(config, peer, local, now);
//! loop {
//!     while let Some(event) = s.poll_event() { log / count / publish }
//!     while let Some(action) = s.poll_action() { start it; Close ends the loop }
//!     wait for: client bytes (only while s.wants_input()), EOF, an action's
//!               outcome, or s.poll_timeout()
//!     call the matching handle_*(now, ...)
//! }
//! ```
//!
//! Every `handle_*` call is followed by draining [`ServerSession::poll_action`]
//! until it returns `None` and then reading [`ServerSession::poll_timeout`].
//! Spurious [`ServerSession::handle_timeout`] calls do nothing. Peer misbehaviour
//! (bad bytes, a refused request, a silent client) comes out as actions: a reply
//! and then [`Action::Close`]. Caller misuse (an outcome nobody asked for) is an
//! `Err(`[`UnexpectedOutcome`]`)`.
//!
//! # Paths
//!
//! - CONNECT: request → ACL → (IDENT) → `Connect` with every candidate (the
//!   driver races them, Happy Eyeballs) → reply 90 only once connected →
//!   `StartRelay`. Failure or timeout: 91. Through a route's parents:
//!   `ConnectVia` with every parent (the driver tries them one at a time,
//!   healthy ones first).
//! - SOCKS4a: request → `Resolve` → ACL per resolved address (host rules see the
//!   name, address rules the address) → as CONNECT over the passing addresses,
//!   in resolver order (an IPv6 address is fine: clients ignore a CONNECT reply's
//!   address).
//! - BIND: request → ACL → (IDENT) → `Bind` on the interface the client reached
//!   → first reply 90 with the listener's address → `Accept` → second reply 90 and
//!   relay if the inbound peer is the request's DSTIP, else 91 and close.
//!
//! # Choices where the protocol text is silent
//!
//! - A destination of `0.0.0.0` (or any unspecified, multicast or broadcast
//!   address) is refused with 91: Linux would connect `0.0.0.0` to the local host,
//!   around any `to 127.0.0.0/8` rule.
//! - The connect timeout covers all of a 4a name's addresses (or a route's
//!   parents) together; `connect_attempt` bounds each one.
//! - A request that times out half-read gets 91 before the close; a client that
//!   closes before its request is complete gets nothing.
//! - In IDENT `require` mode an empty USERID matches no identd answer (93).
//! - BIND's DSTIP must equal the inbound peer exactly; `0.0.0.0` matches nobody.

mod action;
mod config;
pub mod dual;
mod event;
mod own;
mod reason;
mod session;
mod timer;

pub use action::{Action, ActionOutcome, Destination, Hop, RelayEnd, RelayStats, Won};
pub use config::{IdentMode, ServerConfig, Timeouts};
pub use event::Event;
pub use own::OwnAddresses;
pub use reason::{CloseReason, Limit, ResolveError, TlsFailure};
pub use session::{ServerSession, UnexpectedOutcome};
pub use timer::Timer;
