//! Reading what a server's log outputs wrote: the access log's documented
//! fields ([`ACCESS_FIELDS`]), its `key=value` lines ([`text_fields`]), RFC
//! 5424 syslog headers ([`Rfc5424`]), log files read until they hold
//! enough lines ([`wait_lines`]), and a server whose log is not on standard
//! error waited for ([`wait_server`]).

use crate::e2e::STEP;
use std::path::Path;
use std::time::{Duration, Instant};

/// The access log's fields, in their order (`docs/operations.md`).
pub const ACCESS_FIELDS: [&str; 18] = [
    "time",
    "conn",
    "listener",
    "client",
    "user",
    "cert",
    "dest",
    "reached",
    "via",
    "rule",
    "reply",
    "outcome",
    "reason",
    "bytes_up",
    "bytes_down",
    "handshake_ms",
    "duration_ms",
    "sniffed",
];

/// The `key=value` pairs of a text line, in order: a value is a bare word
/// or a quoted string with `\"`, `\\`, `\n`, `\r`, `\t` and `\u{..}`
/// escapes. `None` when the line is not made of such pairs.
pub fn text_fields(line: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(out);
        }
        let mut key = String::new();
        loop {
            match chars.next()? {
                '=' => break,
                ' ' | '"' => return None,
                c => key.push(c),
            }
        }
        if key.is_empty() {
            return None;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => match chars.next()? {
                        'n' => value.push('\n'),
                        'r' => value.push('\r'),
                        't' => value.push('\t'),
                        'u' => {
                            let hex: String = chars.by_ref().take_while(|c| *c != '}').collect();
                            let code = u32::from_str_radix(hex.strip_prefix('{')?, 16).ok()?;
                            value.push(char::from_u32(code)?);
                        }
                        c => value.push(c),
                    },
                    c => value.push(c),
                }
            }
            if chars.peek().is_some_and(|c| *c != ' ') {
                return None;
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ' ' {
                    break;
                }
                if c == '"' || c == '=' {
                    return None;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((key, value));
    }
}

/// The header of an RFC 5424 message (`<PRI>1 TIMESTAMP HOSTNAME APP-NAME
/// PROCID MSGID STRUCTURED-DATA MSG`), checked as the RFC's grammar says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rfc5424 {
    /// The facility (PRI / 8).
    pub facility: u8,
    /// The severity (PRI % 8).
    pub severity: u8,
    /// The timestamp as written.
    pub timestamp: String,
    /// HOSTNAME.
    pub hostname: String,
    /// APP-NAME.
    pub app: String,
    /// PROCID.
    pub procid: String,
    /// MSGID.
    pub msgid: String,
    /// The message after the structured data.
    pub msg: String,
}

impl Rfc5424 {
    /// Parses `line`, or says what is wrong with it.
    pub fn parse(line: &str) -> Result<Rfc5424, String> {
        let wrong = |what: &str| format!("{what} in {line:?}");
        let rest = line.strip_prefix('<').ok_or_else(|| wrong("no <PRI>"))?;
        let (pri, rest) = rest.split_once('>').ok_or_else(|| wrong("no <PRI>"))?;
        if pri.is_empty() || pri.len() > 3 || (pri.len() > 1 && pri.starts_with('0')) {
            return Err(wrong("a bad PRI"));
        }
        let pri: u8 = pri.parse().map_err(|_| wrong("a bad PRI"))?;
        if pri > 191 {
            return Err(wrong("a PRI past 191"));
        }
        let rest = rest
            .strip_prefix("1 ")
            .ok_or_else(|| wrong("not VERSION 1"))?;
        let mut parts = rest.splitn(6, ' ');
        let mut next = |max: usize, what: &str| -> Result<String, String> {
            let p = parts.next().ok_or_else(|| wrong(what))?;
            if p.is_empty() || p.len() > max || !p.chars().all(|c| c.is_ascii_graphic()) {
                return Err(wrong(what));
            }
            Ok(p.to_owned())
        };
        let timestamp = next(64, "a bad TIMESTAMP")?;
        let hostname = next(255, "a bad HOSTNAME")?;
        let app = next(48, "a bad APP-NAME")?;
        let procid = next(128, "a bad PROCID")?;
        let msgid = next(32, "a bad MSGID")?;
        let sd_msg = parts.next().ok_or_else(|| wrong("no STRUCTURED-DATA"))?;
        let msg = sd_msg
            .strip_prefix('-')
            .ok_or_else(|| wrong("structured data other than -"))?;
        let msg = msg.strip_prefix(' ').unwrap_or(msg);
        check_timestamp(&timestamp).map_err(|e| wrong(&e))?;
        Ok(Rfc5424 {
            facility: pri / 8,
            severity: pri % 8,
            timestamp,
            hostname,
            app,
            procid,
            msgid,
            msg: msg.to_owned(),
        })
    }
}

/// An RFC 5424 TIMESTAMP: `YYYY-MM-DDTHH:MM:SS`, at most six digits of a
/// second's fraction, then `Z` or `+HH:MM`/`-HH:MM`.
fn check_timestamp(t: &str) -> Result<(), String> {
    let bad = || format!("a bad TIMESTAMP {t:?}");
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    let (date, time) = t.split_once('T').ok_or_else(bad)?;
    let d: Vec<&str> = date.split('-').collect();
    if d.len() != 3 || d[0].len() != 4 || d[1].len() != 2 || d[2].len() != 2 {
        return Err(bad());
    }
    if !d.iter().all(|p| digits(p)) {
        return Err(bad());
    }
    let (clock, zone) = match time.strip_suffix('Z') {
        Some(c) => (c, None),
        None => {
            let at = time.rfind(['+', '-']).ok_or_else(bad)?;
            (&time[..at], Some(&time[at + 1..]))
        }
    };
    let (hms, frac) = match clock.split_once('.') {
        Some((h, f)) => (h, Some(f)),
        None => (clock, None),
    };
    let h: Vec<&str> = hms.split(':').collect();
    if h.len() != 3 || !h.iter().all(|p| p.len() == 2 && digits(p)) {
        return Err(bad());
    }
    if frac.is_some_and(|f| f.len() > 6 || !digits(f)) {
        return Err(bad());
    }
    if zone.is_some_and(|z| z.len() != 5 || &z[2..3] != ":") {
        return Err(bad());
    }
    Ok(())
}

/// The lines of the files `paths` (missing ones count as empty), read again
/// until `done` says they are enough, at most `limit`; the last reading.
pub fn wait_lines(
    paths: &[&Path],
    limit: Duration,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + limit;
    loop {
        let lines: Vec<String> = paths
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .flat_map(|t| t.lines().map(str::to_owned).collect::<Vec<_>>())
            .collect();
        if done(&lines) || Instant::now() >= deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The first address the server `child` listens on (read from /proc: its
/// log goes to a file or syslog), waiting at most three [`STEP`]s (a busy
/// machine starts a debug build slowly); a server that exits meanwhile
/// fails the test with its status.
pub fn wait_server(child: &mut std::process::Child, what: &str) -> std::net::SocketAddr {
    let deadline = Instant::now() + STEP * 3;
    loop {
        if let Some(addr) = crate::procfs::listening_addrs(child.id()).first() {
            return *addr;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited at start with {status}");
        }
        assert!(Instant::now() < deadline, "{what} did not start listening");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// [`wait_lines`] for [`STEP`].
pub fn wait_file_lines(path: &Path, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    wait_lines(&[path], STEP, done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_fields_read_quoted_values_and_refuse_broken_ones() {
        let f = text_fields(r#"time=2026-01-01T00:00:00Z user="a \"b\"\n" n=3"#).unwrap();
        assert_eq!(f[1], ("user".to_owned(), "a \"b\"\n".to_owned()));
        assert_eq!(f[2], ("n".to_owned(), "3".to_owned()));
        assert!(text_fields("a=\"open").is_none());
        assert!(text_fields("novalue").is_none());
    }

    #[test]
    fn rfc5424_headers_are_checked() {
        let m = Rfc5424::parse("<30>1 2026-12-03T09:46:40.656302Z vm app 42 log - hello there")
            .unwrap();
        assert_eq!((m.facility, m.severity), (3, 6));
        assert_eq!(
            (m.app.as_str(), m.procid.as_str(), m.msgid.as_str()),
            ("app", "42", "log")
        );
        assert_eq!(m.msg, "hello there");
        assert!(Rfc5424::parse("<30>2026-12-03T09:46:40Z vm app 42 log - x").is_err());
        assert!(Rfc5424::parse("<30>1 2026-12-03 09:46:40Z vm app 42 log - x").is_err());
        assert!(Rfc5424::parse("<30>1 2026-12-03T09:46:40.1234567Z vm a 1 l - x").is_err());
        assert!(Rfc5424::parse("<300>1 2026-12-03T09:46:40Z vm a 1 l - x").is_err());
        assert!(Rfc5424::parse("<30>1 2026-12-03T09:46:40+01:00 vm a 1 l - x").is_ok());
    }
}
