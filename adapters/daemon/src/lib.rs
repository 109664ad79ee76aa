//! The daemon layer of the socks4 servers: everything `socks4d-tokio`,
//! `socks4d-async-std` and `socks4d-smol` share that is not IO.
//!
//! - [`cli`]: the command line (clap), the same for every binary.
//! - [`settings`]: the TOML config file merged with the command line into
//!   [`Settings`]; the refusal to listen beyond loopback without access rules.
//! - [`control`]: [`Daemon`], the handle a server runs with and an embedding
//!   program holds: the seed's `add_denial`/`del_denial`/`denied` and
//!   `add_exemption`/`del_exemption`/`exempted` at run time, reload, counters,
//!   event subscription, shutdown.
//! - [`conn`]: [`Conn`], an admitted connection's session plus its bookkeeping
//!   (events to counters, subscribers and one log line per connection).
//! - [`counters`], [`events`], [`logging`].
//!
//! No runtime: [`driver`] is written against a small [`driver::Runtime`] trait
//! that each adapter implements with its runtime's sockets, resolver, timer and
//! spawner; signals are caught on a thread of their own.
#![forbid(unsafe_code)]

pub mod cli;
pub mod conn;
pub mod control;
pub mod counters;
pub mod driver;
pub mod events;
pub mod logging;
pub mod settings;

pub use cli::Cli;
pub use conn::Conn;
pub use control::Daemon;
pub use counters::Snapshot;
pub use events::{DaemonEvent, EventStream};
pub use settings::{ConfigError, Settings};

/// What every server binary does before it opens a socket: parse the command
/// line, build and check the settings (printing the reason and exiting with
/// status 2 when they are wrong), handle `--check`, and set up logging.
pub fn startup() -> Daemon {
    use clap::Parser;
    let cli = Cli::parse();
    let settings = match Settings::from_cli(&cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{}: {e}", env_name());
            std::process::exit(2);
        }
    };
    if cli.check {
        println!("listen: {:?}", settings.listen);
        print!("{}", settings.server.policy);
        std::process::exit(0);
    }
    logging::init(settings.log_format, &settings.log_level);
    Daemon::new(settings, cli)
}

fn env_name() -> String {
    std::env::args()
        .next()
        .and_then(|a| a.rsplit('/').next().map(str::to_owned))
        .unwrap_or_else(|| "socks4d".into())
}
