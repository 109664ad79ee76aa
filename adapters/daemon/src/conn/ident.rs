//! The IDENT (RFC 1413) exchange over the runtime's sockets: connect to the
//! client host's identd from the address the client reached, send the query,
//! read the reply, all through the sans-IO [`IdentClient`].

use crate::runtime::own_sockets::OwnSockets;
use crate::runtime::socket;
use crate::runtime::{read, write_all, Runtime};
use socks4_ident::{IdentClient, Outcome, Query};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// One exchange with the identd at `to`, from our address `from`. identd matches
/// the querier's address against the connection it is asked about, so the query
/// must come from the address the client connected to.
pub(crate) async fn exchange<R: Runtime>(
    rt: &R,
    from: IpAddr,
    to: SocketAddr,
    query: Query,
    ours: &Arc<OwnSockets>,
) -> io::Result<Outcome> {
    let (stream, _mark) =
        socket::connect_marked(rt, to, &socket::Egress::from(Some(from)), ours).await?;
    let mut exchange = IdentClient::new(query);
    if let Some(line) = exchange.poll_transmit() {
        write_all(&stream, line).await?;
    }
    let mut buf = [0u8; 512];
    loop {
        if let Some(outcome) = exchange.poll_outcome() {
            return Ok(outcome);
        }
        match read(&stream, &mut buf).await? {
            0 => exchange.handle_eof(),
            n => exchange.handle_input(&buf[..n]),
        }
    }
}
