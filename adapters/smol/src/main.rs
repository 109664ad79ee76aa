//! `socks4d-smol`: the SOCKS4/4a server on smol. With no arguments it serves
//! loopback clients on 127.0.0.1:1080; `--help` lists the options.

use std::process::ExitCode;

fn main() -> ExitCode {
    socks4_daemon::driver::main::<socks4_smol::Smol>("socks4d-smol", socks4_smol::block_on)
}
