//! Where log lines go besides standard error, as the settings name them: a
//! log file, a syslog server ([`SyslogTarget`]) and the access log
//! ([`AccessLog`]), gathered in [`LogOutputs`] for the subscriber.

use super::{LogFormat, LogLevel};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A syslog server: `unix:PATH` (a datagram socket such as `/dev/log`),
/// `udp:HOST:PORT` or `tcp:HOST:PORT` (octet-counted frames, RFC 6587).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyslogTarget {
    /// A local datagram socket.
    Unix(PathBuf),
    /// A server over UDP, `HOST:PORT`.
    Udp(String),
    /// A server over TCP, `HOST:PORT`.
    Tcp(String),
}

impl SyslogTarget {
    /// The local syslog daemon's socket, `unix:/dev/log`.
    pub fn local() -> SyslogTarget {
        SyslogTarget::Unix(PathBuf::from("/dev/log"))
    }
}

impl FromStr for SyslogTarget {
    type Err = String;

    fn from_str(s: &str) -> Result<SyslogTarget, String> {
        let wrong = || {
            format!(
                "{s:?} is not a syslog server: write unix:/dev/log, udp:HOST:PORT or \
                 tcp:HOST:PORT"
            )
        };
        let (scheme, rest) = s.split_once(':').ok_or_else(wrong)?;
        let host_port = |rest: &str| -> Result<String, String> {
            let (host, port) = rest.rsplit_once(':').ok_or_else(wrong)?;
            if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
                return Err(wrong());
            }
            Ok(rest.to_owned())
        };
        match scheme {
            "unix" if rest.starts_with('/') => Ok(SyslogTarget::Unix(PathBuf::from(rest))),
            "udp" => host_port(rest).map(SyslogTarget::Udp),
            "tcp" => host_port(rest).map(SyslogTarget::Tcp),
            _ => Err(wrong()),
        }
    }
}

impl fmt::Display for SyslogTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyslogTarget::Unix(p) => write!(f, "unix:{}", p.display()),
            SyslogTarget::Udp(a) => write!(f, "udp:{a}"),
            SyslogTarget::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

/// Where the access log goes: a file of its own, or syslog (`"syslog"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLog {
    /// A file, reopened on SIGUSR1 like the log file.
    File(PathBuf),
    /// The `syslog` server (the local one when `syslog` is not set), with
    /// the MSGID `access`.
    Syslog,
}

impl FromStr for AccessLog {
    type Err = String;

    fn from_str(s: &str) -> Result<AccessLog, String> {
        match s {
            "syslog" => Ok(AccessLog::Syslog),
            "" => Err("the access log needs a file's path or \"syslog\"".to_owned()),
            path => Ok(AccessLog::File(PathBuf::from(path))),
        }
    }
}

impl fmt::Display for AccessLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccessLog::File(p) => write!(f, "{}", p.display()),
            AccessLog::Syslog => f.write_str("syslog"),
        }
    }
}

/// Every output of the log, for [`super::init_outputs`] (feature `cli`): the
/// diagnostic log goes to `file` and/or `syslog` when either is set, else to
/// standard error; the access log, apart, to `access`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOutputs {
    /// The diagnostic log's format.
    pub format: LogFormat,
    /// The diagnostic log's level.
    pub level: LogLevel,
    /// The log file, opened before a privilege drop, reopened on SIGUSR1.
    pub file: Option<PathBuf>,
    /// The syslog server the diagnostic log goes to.
    pub syslog: Option<SyslogTarget>,
    /// The access log, if any.
    pub access: Option<AccessLog>,
    /// The access log's format.
    pub access_format: LogFormat,
    /// The access log's level: `info` (or more) writes every finished
    /// connection, `warn` only those that were not granted, `error` and
    /// `off` none.
    pub access_level: LogLevel,
    /// Who is given the files this process creates while it is root (the
    /// user and group it switches to), so that it can reopen them after.
    pub owner: Option<(u32, u32)>,
}

impl LogOutputs {
    /// Standard error alone, as `format` at `level`: no file, no syslog, no
    /// access log.
    pub fn stderr(format: LogFormat, level: LogLevel) -> LogOutputs {
        LogOutputs {
            format,
            level,
            file: None,
            syslog: None,
            access: None,
            access_format: format,
            access_level: LogLevel::Info,
            owner: None,
        }
    }

    /// The syslog server the access log goes to (`access_log = "syslog"`):
    /// `syslog`'s, else the local one.
    pub fn access_syslog(&self) -> SyslogTarget {
        self.syslog.clone().unwrap_or_else(SyslogTarget::local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syslog_targets_parse_and_show_as_written() {
        for s in [
            "unix:/dev/log",
            "udp:127.0.0.1:514",
            "tcp:[::1]:601",
            "tcp:logs:6514",
        ] {
            let t: SyslogTarget = s.parse().unwrap();
            assert_eq!(t.to_string(), s);
        }
        for bad in [
            "/dev/log",
            "udp:host",
            "tcp::514",
            "udp:host:0",
            "unix:dev/log",
            "tls:a:1",
        ] {
            let e = bad.parse::<SyslogTarget>().unwrap_err();
            assert!(e.contains("unix:/dev/log"), "{bad}: {e}");
        }
        assert_eq!("syslog".parse::<AccessLog>(), Ok(AccessLog::Syslog));
        assert_eq!(
            "/var/log/a.log".parse::<AccessLog>(),
            Ok(AccessLog::File("/var/log/a.log".into()))
        );
        assert!("".parse::<AccessLog>().is_err());
    }
}
