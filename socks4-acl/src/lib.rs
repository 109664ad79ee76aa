#![doc = include_str!("../README.md")]
//!
//! Access control for a SOCKS4 server, without IO: netmask denial and exemption
//! lists, and ordered first-match rules.
//!
//! # Sans-IO
//!
//! Everything here is a pure function of its inputs: no sockets, no clock, no
//! resolver. A server builds a [`Subject`] from a request (for SOCKS4a, after it has
//! resolved the name, so that address rules see the address and host rules the
//! name) and asks [`Policy::evaluate`] for a [`Verdict`].
//!
//! # The model
//!
//! - [`NetSet`] and [`Netmask`]: sets of client nets in every form a user types
//!   (`10.0.0.0/8`, `10.0.0.0 255.0.0.0`, `127.0.0.1`, `::1`, `any`), with lookups
//!   that stay fast with 100,000 entries (binary search, not a scan).
//! - [`Policy`]: the denial list and exemption list of the POE SOCKS server
//!   this crate follows (a client matching a
//!   denial and no exemption is refused) followed by a [`RuleSet`]: [`Rule`]s on
//!   source net and port, destination net or host name pattern and port, command
//!   and user id, first match wins. Each rule passes or blocks (with reply 91, 92 or
//!   93), may require IDENT, may ask for a log line. The [`Verdict`] names what
//!   decided ([`Source`]: the lists, rule N at line L, or the default).
//! - No match means block (91), unless the text says `default pass`.
//! - [`Policy::loopback_only`] is the secure default for an unconfigured server.
//!
//! # Text format
//!
//! One directive per line, close to Dante's `sockd.conf`; see [`parse`] for the
//! grammar. `Display` prints a policy back in a form that parses to an equal one.
//!
//! ```
//! use socks4_acl::{Action, Command, Policy, Source, Subject};
//! let policy: Policy = "
//!     deny 203.0.113.0/24                       # a bad neighbourhood
//!     block from any to any port lt 1024 command bind
//!     pass  from 192.168.0.0/16 to .example.com port eq 443 log
//!     pass  from 192.168.0.0/16 to 10.0.0.0 255.0.0.0 user alice,bob ident
//! ".parse()?;
//! let s = Subject {
//!     client: "192.168.1.5:40000".parse()?,
//!     dest_addr: Some("93.184.216.34".parse()?),
//!     dest_host: Some("www.example.com"),
//!     dest_port: 443,
//!     command: Command::Connect,
//!     user_id: b"",
//!     cert: None,
//! };
//! let v = policy.evaluate(&s);
//! assert!(v.is_pass() && v.log);
//! assert_eq!(v.source, Source::Rule { number: 2, line: Some(4) });
//! let other = Subject { dest_port: 80, ..s };
//! assert_eq!(policy.evaluate(&other).source, Source::Default);
//! assert_eq!(policy.evaluate(&other).action, Action::Block { reply: 91 });
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub mod limit;
mod net;
pub mod parse;
mod policy;
mod route;
mod rule;

pub use ipnet::IpNet;
pub use net::{
    canonical, canonical_net, ipv4_equivalent, loopback, AddrClass, NetSet, Netmask, NetmaskError,
};
pub use parse::ParseError;
pub use policy::Policy;
pub use route::{
    Balance, Exit, Parent, ParentError, ParentKind, Route, RouteSet, SourceAddr, Target,
};
pub use rule::{
    Action, Command, DestMatch, HostPattern, PortMatch, Rule, RuleSet, Source, Subject, Verdict,
    DEFAULT_BLOCK_REPLY,
};
