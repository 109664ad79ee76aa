//! One connection, from accept to its last byte: the accept loops and
//! admission ([`accept`]), the connection's drive loop around its sans-IO
//! session ([`connection`]), and what the session's actions need: name
//! resolution ([`resolve`]), IDENT ([`ident`]), Happy Eyeballs and the
//! parents' failover ([`dial`], over `race`), parents ([`parent`]), the
//! PROXY protocol header ([`proxy_header`]), a sniffing listener's first
//! bytes read for a name (`sniff`) and the relay ([`relay`]).
//!
//! Layer: above `daemon` (a connection holds the daemon's handle and its
//! slot); never imports `ops` or `server`. Every decision is the session's
//! (`socks4_proto::server`); this folder only performs its actions.

pub(crate) mod accept;
mod actions;
pub(crate) mod connection;
pub(crate) mod dial;
pub(crate) mod exit;
pub(crate) mod ident;
pub(crate) mod parent;
pub(crate) mod proxy_header;
mod race;
mod refuse;
pub(crate) mod relay;
pub(crate) mod resolve;
mod sniff;
mod start;
