//! Embeds the server in a smol program: serves loopback clients on
//! 127.0.0.1:1080 (or the address given), refuses 127.0.0.2 at run time, and
//! prints every connection's events.
//!
//! ```sh
//! cargo run -p socks4-smol --example smol_embed -- 127.0.0.1:1080
//! ```

use socks4_smol::{Daemon, Settings, Smol};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:1080".into());
    let daemon = Daemon::new(Settings::from_args(["--listen", listen.as_str()])?);
    daemon.add_denial("127.0.0.2".parse()?);
    let events = daemon.subscribe();
    std::thread::spawn(move || {
        while let Ok(e) = events.recv_blocking() {
            println!("connection {}: {:?}", e.conn, e.event);
        }
    });
    let rt = Smol::new();
    rt.block_on(socks4_smol::run(rt.clone(), daemon, |addrs| {
        println!("serving on {addrs:?}")
    }))?;
    Ok(())
}
