//! The policy text format: one directive per line, read like a `sockd.conf`.
//!
//! ```text
//! # Lines starting with '#' (and the rest of any line after '#') are comments.
//! default block                 # what happens when no rule matches (block unless set)
//! deny any                      # the denial list (client addresses)...
//! exempt 127.0.0.1              # ...and the exemptions from it
//! exempt 192.168.1.0 255.255.255.0
//!
//! # Rules, first match wins: pass|block, then any of these clauses, in any order:
//! #   from NET [port P]      client source net and port        (default: any)
//! #   to DEST [port P]       destination net, address class, or (default: any)
//! #                          host name pattern: name.example or .example (the
//! #                          domain and below); classes, both families at once:
//! #                          loopback, private, link-local, unspecified
//! #   command C[,C]          connect, bind                     (default: both)
//! #   user U[,U...]          the request's USERID, one of       (default: any)
//! #   cert NAME[,NAME...]    the subject common name of the client's verified
//! #                          TLS certificate, one of; never matches a client
//! #                          without one                       (default: any)
//! #   ident                  pass only if IDENT confirms the user id
//! #   log                    log requests this rule decides
//! #   notify                 notify the administrator of requests this rule
//! #                          decides (an event, a log line, a command)
//! #   reply 91|92|93         the code a block sends            (default: 91)
//! #   bandwidth RATE         pass rules: each client admitted gets this rate,
//! #                          each direction (500KiB/s, 2MiB/s, 100Mbit/s)
//! #   quota SIZE/PERIOD      pass rules: each client's traffic per calendar
//! #                          period in UTC (1GiB/day; hour, day, week, month)
//! # NET: any | ADDR | ADDR/LEN | ADDR MASK | ADDR/MASK, IPv4 or IPv6.
//! # P:   eq N | neq N | lt N | gt N | range A-B  (also = != < > N and A-B)
//! pass  from 10.0.0.0/8 to .intra.example port eq 443 command connect log
//! block from any to any port range 1-1023 command bind reply 91
//! pass  from 192.168.1.0/24 port gt 1023 to any user alice,bob ident
//! ```
//!
//! Errors name the line and column and say what was expected.

mod clause;
mod line;
#[cfg(test)]
mod tests;

use crate::policy::Policy;
use crate::rule::Action;
use clause::{action, reply_code, route, rule};
use core::fmt;
use line::Line;

/// Why a policy text does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The line, from 1.
    pub line: usize,
    /// The column, from 1, in characters.
    pub column: usize,
    /// What the parser expected there.
    pub expected: String,
    /// What it found (`None`: the end of the line).
    pub found: Option<String>,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: expected {}, found ",
            self.line, self.column, self.expected
        )?;
        match &self.found {
            Some(token) => write!(f, "'{token}'"),
            None => f.write_str("end of line"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Parses a whole policy text (see the [module docs](self) for the format).
fn parse_policy(text: &str) -> Result<Policy, ParseError> {
    let mut policy = Policy::empty();
    let mut default_seen = false;
    for (i, raw) in text.lines().enumerate() {
        let mut line = Line::new(i + 1, raw);
        let Some(first) = line.next() else { continue };
        match first.text {
            "deny" | "exempt" => {
                let net = line.netmask()?;
                line.expect_end("the end of the line after the netmask")?;
                let set = if first.text == "deny" {
                    &mut policy.denials
                } else {
                    &mut policy.exemptions
                };
                set.insert(net);
            }
            "default" => {
                if default_seen {
                    return Err(line.error(Some(first), "one 'default' line at most"));
                }
                default_seen = true;
                let verb = line.expect("pass or block")?;
                let mut act = action(&mut line, verb)?;
                if !act.is_pass() && line.eat("reply") {
                    act = Action::Block {
                        reply: reply_code(&mut line)?,
                    };
                }
                line.expect_end("the end of the line")?;
                policy.rules.set_default_action(act);
            }
            "pass" | "block" => {
                let r = rule(&mut line, first)?;
                policy.rules.push_at_line(r, Some(i + 1));
            }
            "route" => {
                let r = route(&mut line)?;
                policy.routes.push(r, Some(i + 1));
            }
            _ => return Err(line.error(Some(first), "deny, exempt, default, pass, block or route")),
        }
    }
    Ok(policy)
}

impl core::str::FromStr for Policy {
    type Err = ParseError;

    /// Parses the text format described in [`crate::parse`].
    fn from_str(text: &str) -> Result<Policy, ParseError> {
        parse_policy(text)
    }
}
