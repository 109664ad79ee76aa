//! Fetches a page through a SOCKS4a proxy with the smol client helper.
//!
//! ```sh
//! cargo run -p socks4-smol --example smol_client -- 127.0.0.1:1080 example.com 80
//! ```

use smol::io::{AsyncReadExt, AsyncWriteExt};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The proxy by name or address: "proxy.lan:1080", "127.0.0.1:1080".
    let proxy = args.first().map_or("127.0.0.1:1080", String::as_str);
    let host = args.get(1).map_or("example.com", String::as_str).to_owned();
    let port: u16 = args.get(2).map_or(Ok(80), |p| p.parse())?;
    smol::block_on(async {
        let mut s = socks4_smol::client::connect(proxy, (host.as_str(), port)).await?;
        s.write_all(format!("GET / HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
            .await?;
        let mut page = Vec::new();
        s.read_to_end(&mut page).await?;
        println!("{}", String::from_utf8_lossy(&page));
        Ok(())
    })
}
