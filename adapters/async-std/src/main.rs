//! `socks4d-async-std`: the SOCKS4/4a server on async-std. With no arguments it
//! serves loopback clients on 127.0.0.1:1080; `--help` lists the options.

use std::process::ExitCode;

fn main() -> ExitCode {
    socks4_daemon::main(
        "socks4d-async-std",
        socks4_async_std::AsyncStd,
        async_std::task::block_on,
    )
}
