//! `socks4d-smol`: the SOCKS4/4a server on smol. With no arguments it serves
//! loopback clients on 127.0.0.1:1080; `--help` lists the options.

use std::process::ExitCode;

fn main() -> ExitCode {
    let rt = socks4_smol::Smol::new();
    socks4_daemon::main("socks4d-smol", rt.clone(), |server| rt.block_on(server))
}
