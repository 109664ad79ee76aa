//! The `main` of every server binary (feature `cli`): the command line (or
//! its `ctl` subcommand), settings, `--check`, logging, sockets, pid file,
//! privilege drop and signals, then serving until a graceful stop.

use super::bind::bind;
use super::serve::serve;
use crate::config::cli::{Cli, Parsed};
use crate::config::settings::Settings;
use crate::daemon::Daemon;
use crate::ops::{ctl, health};
use crate::runtime::Runtime;
use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;

/// What a server binary can do instead of serving: `ctl` and `health`.
fn subcommands() -> [clap::Command; 2] {
    [ctl::command(), health::command()]
}

/// The whole command line of the server binary `name` (options and
/// subcommands), as clap describes it: what its `main` parses, and what its
/// man pages and shell completions are generated from (`dist/generate`).
pub fn command(name: &str) -> clap::Command {
    Cli::command_for(name, subcommands())
}

/// A server binary's `main`: command line (or its `ctl` subcommand), settings
/// (exit status 2 when they are wrong), `--check`, logging, sockets (exit
/// status 1 when one cannot be bound), pid file, privilege drop, signals, then
/// serving on `rt` until a graceful stop (exit status 0). `block_on` runs a
/// future to completion on the runtime that `rt` belongs to.
pub fn main<R: Runtime>(
    name: &str,
    rt: R,
    block_on: impl FnOnce(Pin<Box<dyn Future<Output = ExitCode>>>) -> ExitCode,
) -> ExitCode {
    let cli = match Cli::parse_for(name, subcommands()) {
        Parsed::Serve(cli) => cli,
        Parsed::Subcommand(sub, args) if sub == "health" => return health::run_matches(&args),
        Parsed::Subcommand(_, args) => return ctl::run_matches(&args),
    };
    let settings = match Settings::load(cli.sources()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.check {
        let report = crate::config::check::report(&settings);
        print!("{}", report.text);
        for w in &report.warnings {
            println!("warning: {w}");
        }
        return if cli.strict && !report.warnings.is_empty() {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        };
    }
    crate::observe::logging::init(settings.log_format, settings.log_level);
    let fail = |what: String| {
        tracing::error!(target: "socks4d", error = %what, "cannot start");
        crate::observe::logging::flush();
        eprintln!("{name}: {what}");
        ExitCode::from(1)
    };
    let bound = match bind(&settings) {
        Ok(b) => b,
        Err(e) => return fail(e.to_string()),
    };
    if let Some(path) = &settings.pid_file {
        if let Err(e) = std::fs::write(path, format!("{}\n", std::process::id())) {
            return fail(format!("pid file {}: {e}", path.display()));
        }
    }
    if let Err(e) = crate::ops::privileges::apply(&settings, settings.control_socket.as_deref()) {
        return fail(e);
    }
    let cleanup = (settings.pid_file.clone(), settings.control_socket.clone());
    let daemon = Daemon::new(settings);
    if let Err(e) = crate::ops::signals::handle(&daemon) {
        return fail(format!("signals: {e}"));
    }
    let code = block_on(Box::pin(async move {
        match serve(rt, daemon, bound).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(target: "socks4d", error = %e, "serving failed");
                ExitCode::from(1)
            }
        }
    }));
    for path in [cleanup.0, cleanup.1].into_iter().flatten() {
        let _ = std::fs::remove_file(path);
    }
    crate::observe::logging::flush();
    code
}
