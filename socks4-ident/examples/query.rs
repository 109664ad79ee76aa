//! Asks an identd who owns a TCP connection, over a blocking socket: the
//! sans-IO `IdentClient` driven by plain reads and writes.
//!
//! ```sh
//! # Who owns the connection from 127.0.0.1:PORT_ON_SERVER to our PORT_ON_CLIENT?
//! cargo run -p socks4-ident --example query -- 127.0.0.1:113 PORT_ON_SERVER PORT_ON_CLIENT
//! ```

// An example program has sockets; the library it shows has none.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use socks4_ident::{IdentClient, Query};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(identd), Some(server_port), Some(client_port)) =
        (args.first(), args.get(1), args.get(2))
    else {
        return Err("usage: query IDENTD_ADDR PORT_ON_SERVER PORT_ON_CLIENT".into());
    };
    let mut client = IdentClient::new(Query::new(server_port.parse()?, client_port.parse()?));
    let mut stream = TcpStream::connect(identd)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(client.poll_transmit().expect("the query"))?;
    let outcome = loop {
        if let Some(outcome) = client.poll_outcome() {
            break outcome;
        }
        let mut buf = [0u8; 512];
        match stream.read(&mut buf)? {
            0 => client.handle_eof(),
            n => client.handle_input(&buf[..n]),
        }
    };
    println!("{outcome}");
    Ok(())
}
