//! [`Subject`]: what a request looks like to access control, and the
//! [`Command`] it asks for.

use std::net::{IpAddr, SocketAddr};

/// A SOCKS4 command, as far as access control cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// CONNECT (CD 1).
    Connect,
    /// BIND (CD 2).
    Bind,
}

/// What a request looks like to access control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject<'a> {
    /// The client's address and source port.
    pub client: SocketAddr,
    /// The destination address: the request's DSTIP, or for SOCKS4a the resolved
    /// address (`None` before resolution).
    pub dest_addr: Option<IpAddr>,
    /// The SOCKS4a host name, if the request named one.
    pub dest_host: Option<&'a str>,
    /// The destination port.
    pub dest_port: u16,
    /// CONNECT or BIND.
    pub command: Command,
    /// The request's USERID.
    pub user_id: &'a [u8],
    /// The subject common name of the client's verified TLS certificate, when
    /// it came over TLS with one.
    pub cert: Option<&'a str>,
}
