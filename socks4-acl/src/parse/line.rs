//! One line of the policy text: its tokens, a cursor over them, errors that
//! point at a column, and the values clauses take (netmasks, port
//! conditions, destinations, host patterns, comma-separated lists).

use super::ParseError;
use crate::net::{AddrClass, Netmask};
use crate::rule::{DestMatch, HostPattern, PortMatch};

/// One white-space separated word of a line, and where it starts.
#[derive(Debug, Clone, Copy)]
pub(super) struct Token<'a> {
    /// The token's text.
    pub(super) text: &'a str,
    /// Its column, from 1, in characters.
    pub(super) column: usize,
}

/// One line of the text as tokens, with a cursor.
pub(super) struct Line<'a> {
    number: usize,
    tokens: Vec<Token<'a>>,
    pos: usize,
    end_column: usize,
}

impl<'a> Line<'a> {
    pub(super) fn new(number: usize, text: &'a str) -> Line<'a> {
        let text = text.split('#').next().unwrap_or_default();
        let mut tokens = Vec::new();
        let mut start = None;
        for (col, (i, c)) in text.char_indices().enumerate() {
            match (c.is_whitespace(), start) {
                (false, None) => start = Some((i, col)),
                (true, Some((s, scol))) => {
                    tokens.push(Token {
                        text: &text[s..i],
                        column: scol + 1,
                    });
                    start = None;
                }
                _ => {}
            }
        }
        if let Some((s, scol)) = start {
            tokens.push(Token {
                text: &text[s..],
                column: scol + 1,
            });
        }
        let end_column = text.chars().count() + 1;
        Line {
            number,
            tokens,
            pos: 0,
            end_column,
        }
    }

    pub(super) fn peek(&self) -> Option<Token<'a>> {
        self.tokens.get(self.pos).copied()
    }

    pub(super) fn next(&mut self) -> Option<Token<'a>> {
        let t = self.peek();
        self.pos += usize::from(t.is_some());
        t
    }

    /// Consumes the next token if it is `word`; whether it did.
    pub(super) fn eat(&mut self, word: &str) -> bool {
        let found = self.peek().is_some_and(|t| t.text == word);
        self.pos += usize::from(found);
        found
    }

    pub(super) fn error(&self, at: Option<Token<'_>>, expected: impl Into<String>) -> ParseError {
        ParseError {
            line: self.number,
            column: at.map_or(self.end_column, |t| t.column),
            expected: expected.into(),
            found: at.map(|t| t.text.to_owned()),
        }
    }

    pub(super) fn expect(&mut self, expected: &str) -> Result<Token<'a>, ParseError> {
        self.next().ok_or_else(|| self.error(None, expected))
    }

    pub(super) fn expect_end(&mut self, expected: &str) -> Result<(), ParseError> {
        match self.peek() {
            None => Ok(()),
            t => Err(self.error(t, expected)),
        }
    }

    /// A netmask: one token, or an IPv4 address followed by a dotted netmask.
    pub(super) fn netmask(&mut self) -> Result<Netmask, ParseError> {
        const WHAT: &str = "a netmask (any, ADDR, ADDR/LEN or ADDR MASK)";
        let first = self.expect(WHAT)?;
        if let Some(second) = self.peek() {
            if first.text.parse::<std::net::Ipv4Addr>().is_ok()
                && second.text.parse::<std::net::Ipv4Addr>().is_ok()
            {
                self.pos += 1;
                let joined = format!("{} {}", first.text, second.text);
                return joined
                    .parse()
                    .map_err(|_| self.error(Some(second), "a contiguous netmask"));
            }
        }
        first
            .text
            .parse()
            .map_err(|_| self.error(Some(first), WHAT))
    }

    pub(super) fn port_number(&mut self, token: Option<Token<'a>>) -> Result<u16, ParseError> {
        match token {
            Some(t) => t
                .text
                .parse()
                .map_err(|_| self.error(Some(t), "a port number (0-65535)")),
            None => Err(self.error(None, "a port number (0-65535)")),
        }
    }

    pub(super) fn port_match(&mut self) -> Result<PortMatch, ParseError> {
        const WHAT: &str = "a port condition (eq N, neq N, lt N, gt N or range A-B)";
        let op = self.expect(WHAT)?;
        let range = |line: &Line<'_>, t: Token<'_>| -> Result<PortMatch, ParseError> {
            let err = || line.error(Some(t), "a port range A-B with A <= B");
            let (a, b) = t.text.split_once('-').ok_or_else(err)?;
            let (a, b) = (
                a.parse::<u16>().map_err(|_| err())?,
                b.parse::<u16>().map_err(|_| err())?,
            );
            if a > b {
                return Err(err());
            }
            Ok(PortMatch::Range(a, b))
        };
        Ok(match op.text {
            "eq" | "=" => PortMatch::Eq(self.port_number_next()?),
            "neq" | "!=" => PortMatch::Neq(self.port_number_next()?),
            "lt" | "<" => PortMatch::Lt(self.port_number_next()?),
            "gt" | ">" => PortMatch::Gt(self.port_number_next()?),
            "range" => {
                let t = self.expect("a port range A-B")?;
                range(self, t)?
            }
            t if t.contains('-') => range(self, op)?,
            _ => PortMatch::Eq(
                self.port_number(Some(op))
                    .map_err(|_| self.error(Some(op), WHAT))?,
            ),
        })
    }

    pub(super) fn port_number_next(&mut self) -> Result<u16, ParseError> {
        let t = self.next();
        self.port_number(t)
    }

    pub(super) fn dest(&mut self) -> Result<DestMatch, ParseError> {
        const WHAT: &str =
            "a destination (any, a netmask, an address class, a host name or .domain)";
        let t = self.peek().ok_or_else(|| self.error(None, WHAT))?;
        if t.text.eq_ignore_ascii_case("any") {
            self.pos += 1;
            return Ok(DestMatch::Any);
        }
        // A class name; a host of that name is written with a final dot.
        if let Some(class) = AddrClass::from_name(t.text) {
            self.pos += 1;
            return Ok(DestMatch::Class(class));
        }
        let start = self.pos;
        if let Ok(net) = self.netmask() {
            return Ok(DestMatch::Net(net));
        }
        self.pos = start + 1;
        host_pattern(t.text)
            .map(DestMatch::Host)
            .ok_or_else(|| self.error(Some(t), WHAT))
    }

    pub(super) fn list<T>(
        &mut self,
        what: &str,
        mut item: impl FnMut(&str) -> Option<T>,
    ) -> Result<Vec<T>, ParseError> {
        let t = self.expect(what)?;
        let mut out = Vec::new();
        for part in t.text.split(',') {
            out.push(item(part).ok_or_else(|| self.error(Some(t), what))?);
        }
        Ok(out)
    }
}

/// A host pattern: a name (letters, digits, '-', '_', '.') or '.' and a domain.
fn host_pattern(text: &str) -> Option<HostPattern> {
    let (domain, name) = match text.strip_prefix('.') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    let valid = !name.is_empty()
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.parse::<std::net::IpAddr>().is_err();
    if !valid {
        return None;
    }
    let name = name.to_ascii_lowercase();
    Some(if domain {
        HostPattern::Domain(name)
    } else {
        HostPattern::Exact(name)
    })
}

/// A user name in the text format: no white space, ',', '#' or control characters.
pub(super) fn valid_user(u: &str) -> bool {
    !u.is_empty()
        && !u
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ',' || c == '#')
}
