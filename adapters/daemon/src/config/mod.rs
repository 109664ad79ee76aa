//! What a server runs with: every option declared once ([`options`]: a flag
//! and a config key each), the layers resolved and checked ([`settings`]),
//! the listener kinds ([`listeners`]), outbound connections' resolver and
//! parents ([`outbound`]), the command line ([`cli`]),
//! `--check` ([`check`]) with the policies that surprise ([`surprises`])
//! and the checks the start makes before binding ([`preflight`]),
//! and the user and group a server runs as ([`users`]).
//!
//! Layer: above `runtime`, `limits` and `observe` (whose types settings
//! carry); never imports `daemon`, `conn`, `ops` or `server`. No sockets:
//! reading the config and rules files, the user databases and the
//! process's own limits (`/proc/self`) is the only IO here.

pub mod check;
#[cfg(feature = "cli")]
pub mod cli;
pub mod listeners;
pub mod options;
pub mod outbound;
pub mod preflight;
pub mod settings;
pub mod surprises;
pub mod users;
