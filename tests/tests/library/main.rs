//! The crates used as libraries: the daemon embedded in a program on a
//! runtime (`embed`), the relay's meter with time passed in (`meter`), each
//! runtime's client helpers (`client_helpers`), `socks4_proto`'s client
//! handshake and request decoder over loopback sockets
//! (`client_over_loopback`), and the crates' examples run against each other
//! (`examples`).

mod client_helpers;
mod client_over_loopback;
mod client_table;
mod embed;
mod examples;
mod meter;
