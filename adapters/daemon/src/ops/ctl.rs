//! `socks4d-* ctl --socket PATH COMMAND...`: the client of the control socket
//! ([`crate::ops::control`]). It sends the command's words, prints the answer on
//! standard output and exits 0, or prints the reason on standard error and
//! exits 1 (2 when the socket cannot be reached).

use crate::ops::control::USAGE;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The `ctl` subcommand's arguments.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = format!("Commands: {USAGE}"))]
pub(crate) struct CtlArgs {
    /// The server's control socket (its --control-socket)
    #[arg(long, value_name = "PATH")]
    pub(crate) socket: PathBuf,

    /// Print the answer as JSON (documented in docs/operations.md)
    #[arg(long)]
    pub(crate) json: bool,

    /// The command and its arguments, e.g. `deny add 10.0.0.0/8`
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub(crate) words: Vec<String>,
}

/// The `ctl` subcommand, for the server binaries' command line.
pub(crate) fn command() -> clap::Command {
    <CtlArgs as clap::Args>::augment_args(clap::Command::new("ctl"))
        .about("Talk to a running server through its control socket")
}

/// Runs the `ctl` subcommand parsed from `args`; the process's exit status.
pub(crate) fn run_matches(args: &clap::ArgMatches) -> ExitCode {
    match <CtlArgs as clap::FromArgMatches>::from_arg_matches(args) {
        Ok(args) => run(&args),
        Err(e) => e.exit(),
    }
}

/// Runs one command against the server; the process's exit status.
pub(crate) fn run(args: &CtlArgs) -> ExitCode {
    match ask(args) {
        Ok(Ok(output)) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
        Ok(Err(error)) => {
            eprintln!("error: {error}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {}: {e}", args.socket.display());
            ExitCode::from(2)
        }
    }
}

/// How long `ctl` waits for an answer.
const ANSWER_WAIT: Duration = Duration::from_secs(10);

/// How long `ctl upgrade` waits for its answer (the server's `[timeouts]
/// upgrade` ends it sooner).
const UPGRADE_WAIT: Duration = Duration::from_secs(3600);

/// The server's answer: its output, or its error.
fn ask(args: &CtlArgs) -> std::io::Result<Result<String, String>> {
    let mut stream = UnixStream::connect(&args.socket)?;
    let mut words = args.words.clone();
    // An upgrade answers once the new process is ready, within the server's
    // `[timeouts] upgrade`.
    let upgrade = words.first().is_some_and(|w| w == "upgrade");
    let wait = if upgrade { UPGRADE_WAIT } else { ANSWER_WAIT };
    stream.set_read_timeout(Some(wait))?;
    stream.set_write_timeout(Some(ANSWER_WAIT))?;
    // The server runs elsewhere: a relative --binary is made absolute here.
    if let (true, Some(at)) = (upgrade, words.iter().position(|w| w == "--binary")) {
        if let Some(path) = words.get_mut(at + 1) {
            *path = std::path::absolute(&*path)?.display().to_string();
        }
    }
    if args.json {
        words.push("--json".to_owned());
    }
    let request = serde_json::to_string(&words).map_err(std::io::Error::other)?;
    writeln!(stream, "{request}")?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    let answer: serde_json::Value = serde_json::from_str(&line)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let text = |k: &str| answer[k].as_str().unwrap_or_default().to_owned();
    Ok(if answer["ok"] == true {
        Ok(text("output"))
    } else {
        Err(text("error"))
    })
}
