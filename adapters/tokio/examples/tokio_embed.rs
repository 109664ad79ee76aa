//! Embeds the server in a tokio program: serves loopback clients on
//! 127.0.0.1:1080 (or the address given), refuses 127.0.0.2 at run time, and
//! prints every connection's events.
//!
//! ```sh
//! cargo run -p socks4-tokio --example tokio_embed -- 127.0.0.1:1080
//! ```

use socks4_tokio::{Daemon, Settings};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:1080".into());
    let daemon = Daemon::new(Settings::from_args(["--listen", listen.as_str()])?);
    daemon.add_denial("127.0.0.2".parse()?);
    let events = daemon.subscribe();
    tokio::spawn(async move {
        while let Ok(e) = events.recv().await {
            println!("connection {}: {:?}", e.conn, e.event);
        }
    });
    socks4_tokio::run(daemon, |addrs| println!("serving on {addrs:?}")).await?;
    Ok(())
}
