//! The command line of every `socks4d-*` binary: the [`Options`] as flags, plus
//! what only the command line has (`--config`, `--check`, `-v`, `-q`).

use crate::config::options::Options;
use crate::config::settings::{ConfigError, Settings, Sources};
use clap::{CommandFactory, FromArgMatches, Parser};
use std::path::PathBuf;

/// A SOCKS4/SOCKS4a proxy server.
///
/// With no arguments it serves clients from loopback on 127.0.0.1:1080. Every
/// option has a config file key; options given here win over the file.
#[derive(Debug, Clone, Parser)]
#[command(
    version = VERSION,
    about = "A SOCKS4/SOCKS4a proxy server (loopback clients on 127.0.0.1:1080 unless configured otherwise)",
    long_about = None,
    after_help = EXIT_STATUS
)]
pub struct Cli {
    /// TOML config file; SIGHUP re-reads it
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// More log output (-v debug, -vv trace)
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Less log output (-q warn, -qq error, -qqq off)
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub quiet: u8,

    /// Check the configuration and what the start checks (users, ports, folders, descriptor limit), print what the server would run with, and exit: 0 fine, 1 a warning with --strict, 2 an error
    #[arg(long)]
    pub check: bool,

    /// With --check: exit with status 1 when there is any warning
    #[arg(long, requires = "check")]
    pub strict: bool,

    /// Every option that also has a config key.
    #[command(flatten)]
    pub options: Options,
}

/// What `--version` prints after the binary's name: the version and the git
/// commit the binary was built from, with ", dirty" when its sources differed
/// from it (`0.2.0 (commit 1a2b3c4d5e6f)`); see the crate's `build.rs`.
pub const VERSION: &str = env!("SOCKS4_VERSION");

/// The exit statuses, for `--help`.
pub const EXIT_STATUS: &str =
    "Exit status: 0 after a graceful stop, or --check found nothing wrong; \
1 --check --strict found a warning, or the start failed past its checks (a port in use); \
2 the configuration is wrong or a check of the start failed (the same as --check reports).";

/// What a binary's command line asks for.
#[derive(Debug, Clone)]
pub enum Parsed {
    /// Serve (or `--check`) with these arguments.
    Serve(Box<Cli>),
    /// Run one of the subcommands the caller added, by name, with its
    /// arguments.
    Subcommand(String, clap::ArgMatches),
}

impl Cli {
    /// Parses the process's arguments, exiting with a usage message on errors.
    /// `name` is the binary's name, for `--version` and `--help`;
    /// `subcommands` are what the binary can do instead of serving (the
    /// layers that own them build them: `ctl` is the control socket's).
    pub fn parse_for(name: &str, subcommands: impl IntoIterator<Item = clap::Command>) -> Parsed {
        let matches = Cli::command_for(name, subcommands).get_matches();
        if let Some((sub, args)) = matches.subcommand() {
            return Parsed::Subcommand(sub.to_owned(), args.clone());
        }
        let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        Parsed::Serve(Box::new(cli))
    }

    /// The command line of the binary `name` with `subcommands`, as clap
    /// describes it: what [`Cli::parse_for`] parses, and what the man pages
    /// and shell completions are generated from.
    pub fn command_for(
        name: &str,
        subcommands: impl IntoIterator<Item = clap::Command>,
    ) -> clap::Command {
        crate::config::options::help_with_defaults(Cli::command().name(name.to_owned()))
            .subcommands(subcommands)
    }

    /// The settings sources this command line names.
    pub fn sources(&self) -> Sources {
        Sources {
            config: self.config.clone(),
            overrides: self.options.clone(),
            verbosity: i32::from(self.verbose) - i32::from(self.quiet),
        }
    }
}

impl Settings {
    /// Settings from command-line style arguments (without the program name):
    /// `Settings::from_args(["--listen", "127.0.0.1:0", "--allow", "10.0.0.0/8"])`.
    pub fn from_args<I, S>(args: I) -> Result<Settings, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString> + Clone,
    {
        let argv = std::iter::once(std::ffi::OsString::from("socks4d"))
            .chain(args.into_iter().map(Into::into));
        let cli = Cli::try_parse_from(argv).map_err(|e| ConfigError {
            message: e.to_string(),
        })?;
        Settings::load(cli.sources())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_names_config_keys_and_defaults_from_one_place() {
        let mut cmd =
            crate::config::options::help_with_defaults(Cli::command().name("socks4d-test"));
        let help = cmd.render_help().to_string();
        assert!(
            help.contains("(config: [timeouts] connect) [default: 2m]"),
            "{help}"
        );
        assert!(
            help.contains("(config: listen) [default: 127.0.0.1:1080]"),
            "{help}"
        );
        assert!(help.contains("(config: [access] deny)"), "{help}");
        assert!(!help.contains("(config: check)"), "{help}");
        assert!(help.contains("Exit status: 0 "), "{help}");
    }
}
