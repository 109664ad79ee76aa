//! `socks4d-tokio`: the SOCKS4/4a server on tokio. With no arguments it serves
//! loopback clients on 127.0.0.1:1080; `--help` lists the options.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let daemon = socks4_daemon::startup();
    let listeners = match socks4_tokio::bind(daemon.settings()).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("socks4d-tokio: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = daemon.handle_signals() {
        eprintln!("socks4d-tokio: signals: {e}");
        return ExitCode::from(1);
    }
    socks4_tokio::serve(daemon, listeners).await;
    ExitCode::SUCCESS
}
