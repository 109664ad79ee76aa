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
    version,
    about = "A SOCKS4/SOCKS4a proxy server (loopback clients on 127.0.0.1:1080 unless configured otherwise)",
    long_about = None
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

    /// Check the configuration, print what the server would run with, and exit
    #[arg(long)]
    pub check: bool,

    /// With --check: exit with status 1 when there is any warning
    #[arg(long, requires = "check")]
    pub strict: bool,

    /// What to do instead of serving.
    #[command(subcommand)]
    pub command: Option<Subcommand>,

    /// Every option that also has a config key.
    #[command(flatten)]
    pub options: Options,
}

/// What a binary can do instead of serving.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Subcommand {
    /// Talk to a running server through its control socket
    Ctl(crate::ops::ctl::CtlArgs),
}

impl Cli {
    /// Parses the process's arguments, exiting with a usage message on errors.
    /// `name` is the binary's name, for `--version` and `--help`.
    pub fn parse_for(name: &str) -> Cli {
        let cmd = crate::config::options::help_with_defaults(Cli::command().name(name.to_owned()));
        let matches = cmd.get_matches();
        Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
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
    }
}
