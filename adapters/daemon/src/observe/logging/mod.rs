//! Log output that can neither stop the server nor be forged by a client.
//!
//! - **Never blocking**: lines go to standard error through a bounded queue
//!   written by a thread of its own ([`tracing_appender`]'s non-blocking
//!   writer, lossy). When the reader of standard error stalls (a stuck log
//!   shipper), lines are dropped rather than serving stopping; the drops are
//!   counted ([`dropped_lines`]) and, once lines flow again, reported in a line
//!   of their own.
//! - **Not forgeable**: the text format is `key=value`, and a value is quoted
//!   and escaped (`"`, `\`, control and line-separator characters) whenever it
//!   is not a plain word, so a user id such as `x\n1999-01-01 INFO forged`
//!   stays inside its line. JSON lines are escaped by JSON itself.
//!
//! - **Outputs**: standard error by default; a log file (reopened on
//!   SIGUSR1, for logrotate) and/or syslog (RFC 5424, over a Unix socket, UDP
//!   or TCP) instead; and an access log apart, one line per finished
//!   connection ([`ACCESS_TARGET`]), to a file or syslog, with its own format
//!   and level ([`LogOutputs`]).
//!
//! [`init`] (feature `cli`) installs it as the global subscriber at the level the settings give
//! (`RUST_LOG` overrides it when set). A program that embeds a server may
//! install its own subscriber instead; the server logs through `tracing` under
//! the target `socks4d`.

#[cfg(feature = "cli")]
use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use std::fmt;

#[cfg(feature = "cli")]
mod access;
#[cfg(feature = "cli")]
mod file;
mod outputs;
#[cfg(feature = "cli")]
mod subscriber;
#[cfg(feature = "cli")]
mod syslog;
pub use outputs::{AccessLog, LogOutputs, SyslogTarget};
#[cfg(feature = "cli")]
pub use subscriber::{dropped_lines, flush, init, init_outputs, reopen, Logfmt, LOG_QUEUE_LINES};

use std::sync::atomic::{AtomicBool, Ordering};

/// The target of the access log's events: one per finished connection,
/// written only while [`access_events`] is on.
pub const ACCESS_TARGET: &str = "socks4d::access";

static ACCESS_EVENTS: AtomicBool = AtomicBool::new(false);

/// Whether the observer emits an access event (target [`ACCESS_TARGET`]) for
/// each finished connection: on once an access log is installed, or when
/// an embedder that routes the target itself turns it on.
pub fn access_events() -> bool {
    ACCESS_EVENTS.load(Ordering::Relaxed)
}

/// Turns the access events on or off ([`access_events`]).
pub fn set_access_events(on: bool) {
    ACCESS_EVENTS.store(on, Ordering::Relaxed);
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `key=value` lines, client-supplied strings quoted and escaped.
    Text,
    /// One JSON object per line.
    Json,
}

/// The least severe log level written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Nothing.
    Off,
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// One line per connection, plus warnings and errors (the default).
    Info,
    /// A line per step of each connection.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    const ALL: [LogLevel; 6] = [
        LogLevel::Off,
        LogLevel::Error,
        LogLevel::Warn,
        LogLevel::Info,
        LogLevel::Debug,
        LogLevel::Trace,
    ];

    /// The level `by` steps more verbose (negative: quieter), clamped.
    pub fn shifted(self, by: i32) -> LogLevel {
        let i = Self::ALL.iter().position(|l| *l == self).unwrap_or(3) as i32;
        Self::ALL[(i + by).clamp(0, Self::ALL.len() as i32 - 1) as usize]
    }

    /// The name `tracing`'s filters understand.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Off => "off",
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// The wall clock now as RFC 3339 with microseconds, UTC: every output's
/// time stamp (the log lines, the access log, syslog's header).
#[cfg(feature = "cli")]
pub(crate) fn now_rfc3339() -> humantime::Rfc3339Timestamp {
    humantime::format_rfc3339_micros(std::time::SystemTime::now())
}

/// Writes `value` bare when it is a plain word (letters, digits and
/// `.:-_/[]@+,`), otherwise quoted, with `"` and `\` escaped and every control
/// or line-separator character written as an escape (`\n`, `\t`, `\u{1b}`).
pub fn write_value(out: &mut impl fmt::Write, value: &str) -> fmt::Result {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".:-_/[]@+,%".contains(c));
    if plain {
        return out.write_str(value);
    }
    out.write_char('"')?;
    for c in value.chars() {
        match c {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                write!(out, "\\u{{{:x}}}", u32::from(c))?
            }
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(v: &str) -> String {
        let mut s = String::new();
        write_value(&mut s, v).unwrap();
        s
    }

    #[test]
    fn values_cannot_break_out_of_their_line_or_field() {
        assert_eq!(shown("alice"), "alice");
        assert_eq!(shown("127.0.0.1:80"), "127.0.0.1:80");
        assert_eq!(shown(""), "\"\"");
        assert_eq!(shown("rule 1 (line 3)"), "\"rule 1 (line 3)\"");
        let forged = "x\n1999-01-01T00:00:00Z  INFO socks4d: forged line";
        let s = shown(forged);
        assert!(!s.contains('\n'), "{s}");
        assert_eq!(s, "\"x\\n1999-01-01T00:00:00Z  INFO socks4d: forged line\"");
        assert_eq!(shown("a\"b=c\\"), "\"a\\\"b=c\\\\\"");
        assert_eq!(shown("\u{1b}[31mred"), "\"\\u{1b}[31mred\"");
        assert_eq!(shown("line\u{2028}sep"), "\"line\\u{2028}sep\"");
        assert_eq!(shown("key=value"), "\"key=value\"");
    }
}
