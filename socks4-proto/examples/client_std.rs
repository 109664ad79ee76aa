//! Fetches a page through a SOCKS4a proxy over a blocking `std::net` socket:
//! the sans-IO client handshake, driven by plain reads and writes.
//!
//! ```sh
//! cargo run -p socks4-proto --example client_std -- 127.0.0.1:1080 example.com 80
//! ```
// An example program has sockets; the library it shows has none.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use socks4_proto::client::{Event, Handshake};
use socks4_proto::{Command, Dest, Request};
use std::io::{Read, Write};
use std::net::TcpStream;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let proxy = args.first().map_or("127.0.0.1:1080", String::as_str);
    let host = args.get(1).map_or("example.com", String::as_str);
    let port: u16 = args.get(2).map_or(Ok(80), |p| p.parse())?;

    let request = Request {
        command: Command::Connect,
        dest: Dest::Domain(host, port),
        user_id: b"",
    };
    let mut handshake = Handshake::new(&request)?;
    let mut stream = TcpStream::connect(proxy)?;
    stream.write_all(handshake.poll_transmit().expect("the request"))?;
    // Bytes the proxy relays right after its reply belong to the page.
    let mut page = Vec::new();
    while !handshake.is_finished() {
        let mut buf = [0u8; 512];
        let n = stream.read(&mut buf)?;
        if n == 0 {
            handshake.handle_eof()?;
        }
        let used = handshake.handle_input(&buf[..n])?;
        page.extend_from_slice(&buf[used..n]);
    }
    match handshake.poll_event() {
        Some(Event::Granted(_)) => {}
        Some(Event::Rejected(r)) => return Err(format!("the proxy refused: {}", r.code).into()),
        other => return Err(format!("unexpected: {other:?}").into()),
    }
    write!(stream, "GET / HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
    stream.read_to_end(&mut page)?;
    println!("{}", String::from_utf8_lossy(&page));
    Ok(())
}
