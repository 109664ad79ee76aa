//! `socks4d-tokio`: the SOCKS4/4a server on tokio. With no arguments it serves
//! loopback clients on 127.0.0.1:1080; `--help` lists the options.

use std::process::ExitCode;

fn main() -> ExitCode {
    socks4_daemon::main("socks4d-tokio", socks4_tokio::Tokio, |server| {
        match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(server),
            Err(e) => {
                eprintln!("socks4d-tokio: runtime: {e}");
                ExitCode::from(1)
            }
        }
    })
}
