//! The `main` of every server binary (feature `cli`): the command line (or
//! its `ctl` subcommand), settings, the start's checks (which `--check`
//! prints), logging, sockets, pid file, privilege drop and signals, then
//! serving until a graceful stop.
//!
//! Exit statuses: 0 after a graceful stop (or a `--check` without warnings,
//! or with warnings but no `--strict`); 1 when `--check --strict` found a
//! warning, or when the start failed past its checks (a port in use, say);
//! 2 when the configuration is wrong or a check of the start fails (the same
//! ones `--check` reports).

use super::bind::{bind_with, Bound};
use super::serve::serve;
use crate::config::check::Report;
use crate::config::cli::{Cli, Parsed};
use crate::config::preflight::Host;
use crate::config::settings::Settings;
use crate::daemon::Daemon;
use crate::ops::upgrade::Handover;
use crate::ops::{ctl, health};
use crate::runtime::Runtime;
use std::future::Future;
use std::net::TcpListener;
use std::path::PathBuf;
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
/// and the start's checks (exit status 2 when they fail), `--check`, logging,
/// sockets (exit status 1 when one cannot be bound), pid file, privilege drop,
/// signals, then serving on `rt` until a graceful stop (exit status 0).
/// `block_on` runs a future to completion on the runtime that `rt` belongs to.
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
    // Socket activation: the listeners systemd passed are taken before the
    // checks, which look at their addresses as at bound ones'.
    // Started by a binary upgrade: the old process's sockets are taken
    // instead (those systemd passed it among them).
    let mut host = Host::current();
    let mut handover = match crate::ops::upgrade::inherited() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(2);
        }
    };
    let inherited = match handover.as_mut() {
        Some(h) => {
            host.inherited = h.addrs();
            // Those systemd passed the old process: as socket activation.
            host.socket_activated = h.activated.is_some();
            Ok(h.activated.take())
        }
        None => crate::ops::systemd::inherited_listeners(),
    };
    let inherited = match inherited {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(2);
        }
    };
    host.activated = inherited
        .iter()
        .flatten()
        .filter_map(|l| crate::runtime::socket::local_addr(l).ok())
        .collect();
    // The same report decides `--check` and the start.
    let report = crate::config::check::report_for(&settings, &host);
    if cli.check {
        return check(name, &report, cli.strict);
    }
    if let Err(e) = crate::observe::logging::init_outputs(&log_outputs(&settings)) {
        eprintln!("{name}: cannot start: {e}");
        return ExitCode::from(1);
    }
    if !report.errors.is_empty() {
        for e in &report.errors {
            say(name, "cannot start", e);
        }
        crate::observe::logging::flush();
        return ExitCode::from(2);
    }
    for w in &report.warnings {
        tracing::warn!(target: "socks4d", warning = %w, "configuration warning");
    }
    if let Some((from, to)) = crate::ops::rlimit::raise_nofile() {
        let to = to.map_or("unlimited".to_owned(), |t| t.to_string());
        tracing::info!(target: "socks4d", from, to, "file descriptor limit raised");
    }
    let code = start(name, rt, settings, (inherited, handover), block_on);
    crate::observe::logging::flush();
    code
}

/// The log's outputs as the settings say, the files this process creates
/// given to the user it will switch to (so that it can reopen them on
/// SIGUSR1).
fn log_outputs(settings: &Settings) -> crate::observe::logging::LogOutputs {
    let mut outputs = settings.log_outputs.clone();
    if let Some(user) = &settings.user {
        outputs.owner = crate::config::users::ids(user, settings.group.as_deref()).ok();
    }
    outputs
}

/// `--check`: the report on standard output, the errors on standard error as
/// the start would print them; exit status 2 for an error, 1 for a warning
/// with `strict`, 0 otherwise.
fn check(name: &str, report: &Report, strict: bool) -> ExitCode {
    print!("{}", report.text);
    for w in &report.warnings {
        println!("warning: {w}");
    }
    for e in &report.errors {
        eprintln!("{name}: {e}");
    }
    if !report.errors.is_empty() {
        ExitCode::from(2)
    } else if strict && !report.warnings.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Says `what` once: in the log when the log shows errors (it goes to
/// standard error), else on standard error.
fn say(name: &str, message: &str, what: &str) {
    if tracing::enabled!(target: "socks4d", tracing::Level::ERROR) {
        tracing::error!(target: "socks4d", error = %what, "{message}");
    } else {
        eprintln!("{name}: {what}");
    }
}

/// What a start leaves behind and removes when it ends, however it ends: the
/// pid file (once written; removed only if it is still this server's) and
/// the control socket (removed only if the path still names a socket). Not
/// the control socket once this server handed it to a new process, nor one
/// a new process inherited and never served (its old process serves on).
struct Leftovers {
    pid_file: Option<PathBuf>,
    control_socket: Option<PathBuf>,
    daemon: Option<Daemon>,
    /// The control socket was inherited from an upgrade's old process.
    inherited_control: bool,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        if let Some(path) = &self.pid_file {
            crate::ops::pid_file::remove(path);
        }
        let handed_over = self
            .daemon
            .as_ref()
            .is_some_and(|d| d.upgrade().handed_over());
        let served = self.daemon.as_ref().is_some_and(|d| d.upgrade().served());
        if handed_over || (self.inherited_control && !served) {
            return;
        }
        if let Some(path) = &self.control_socket {
            crate::ops::control::remove(path);
        }
    }
}

/// Past the checks: sockets, pid file, privilege drop, signals, serving.
fn start<R: Runtime>(
    name: &str,
    rt: R,
    settings: Settings,
    (inherited, mut handover): (Option<Vec<TcpListener>>, Option<Handover>),
    block_on: impl FnOnce(Pin<Box<dyn Future<Output = ExitCode>>>) -> ExitCode,
) -> ExitCode {
    let fail = |what: String| {
        say(name, "cannot start", &what);
        ExitCode::from(1)
    };
    let announce = handover.as_mut().and_then(|h| h.announce.take());
    let inherited_control = handover.is_some();
    let bound: Bound = match bind_with(&settings, inherited, handover.as_mut()) {
        Ok(b) => b,
        Err(e) => return fail(e.to_string()),
    };
    // Inherited sockets the settings no longer name are closed now.
    drop(handover);
    let mut leftovers = Leftovers {
        pid_file: None,
        control_socket: settings.control_socket.clone(),
        daemon: None,
        inherited_control,
    };
    if let Some(path) = &settings.pid_file {
        if let Err(e) = crate::ops::pid_file::write(path) {
            return fail(format!("pid file {}: {e}", path.display()));
        }
        leftovers.pid_file = Some(path.clone());
    }
    if let Err(e) = crate::ops::privileges::apply(&settings, settings.control_socket.as_deref()) {
        return fail(e);
    }
    let daemon = Daemon::new(settings);
    leftovers.daemon = Some(daemon.clone());
    // An upgrade starts the same program with the same arguments.
    if let Ok(program) = std::env::current_exe() {
        daemon
            .upgrade()
            .set_program(program, std::env::args_os().skip(1).collect());
    }
    if let Some(announce) = announce {
        daemon.upgrade().set_announce(announce);
    }
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
    drop(leftovers);
    code
}
