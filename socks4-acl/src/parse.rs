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

use crate::net::{AddrClass, Netmask};
use crate::policy::Policy;
use crate::route::{Parent, Route, Target};
use crate::rule::{Action, Command, DestMatch, HostPattern, PortMatch, Rule};
use core::fmt;

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

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    text: &'a str,
    column: usize,
}

struct Line<'a> {
    number: usize,
    tokens: Vec<Token<'a>>,
    pos: usize,
    end_column: usize,
}

impl<'a> Line<'a> {
    fn new(number: usize, text: &'a str) -> Line<'a> {
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

    fn peek(&self) -> Option<Token<'a>> {
        self.tokens.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<Token<'a>> {
        let t = self.peek();
        self.pos += usize::from(t.is_some());
        t
    }

    fn error(&self, at: Option<Token<'_>>, expected: impl Into<String>) -> ParseError {
        ParseError {
            line: self.number,
            column: at.map_or(self.end_column, |t| t.column),
            expected: expected.into(),
            found: at.map(|t| t.text.to_owned()),
        }
    }

    fn expect(&mut self, expected: &str) -> Result<Token<'a>, ParseError> {
        self.next().ok_or_else(|| self.error(None, expected))
    }

    fn expect_end(&mut self, expected: &str) -> Result<(), ParseError> {
        match self.peek() {
            None => Ok(()),
            t => Err(self.error(t, expected)),
        }
    }

    /// A netmask: one token, or an IPv4 address followed by a dotted netmask.
    fn netmask(&mut self) -> Result<Netmask, ParseError> {
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

    fn port_number(&mut self, token: Option<Token<'a>>) -> Result<u16, ParseError> {
        match token {
            Some(t) => t
                .text
                .parse()
                .map_err(|_| self.error(Some(t), "a port number (0-65535)")),
            None => Err(self.error(None, "a port number (0-65535)")),
        }
    }

    fn port_match(&mut self) -> Result<PortMatch, ParseError> {
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

    fn port_number_next(&mut self) -> Result<u16, ParseError> {
        let t = self.next();
        self.port_number(t)
    }

    fn dest(&mut self) -> Result<DestMatch, ParseError> {
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

    fn list<T>(
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
pub(crate) fn valid_user(u: &str) -> bool {
    !u.is_empty()
        && !u
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ',' || c == '#')
}

fn action(line: &mut Line<'_>, verb: Token<'_>) -> Result<Action, ParseError> {
    match verb.text {
        "pass" => Ok(Action::Pass),
        "block" => Ok(Action::BLOCK),
        _ => Err(line.error(Some(verb), "pass or block")),
    }
}

fn reply_code(line: &mut Line<'_>) -> Result<u8, ParseError> {
    let t = line.expect("a reply code (91, 92 or 93)")?;
    match t.text.parse::<u8>() {
        Ok(code @ 91..=93) => Ok(code),
        _ => Err(line.error(Some(t), "a reply code (91, 92 or 93)")),
    }
}

fn rule(line: &mut Line<'_>, verb: Token<'_>) -> Result<Rule, ParseError> {
    let rule = Rule::new(action(line, verb)?);
    clauses(line, rule, false).map(|(rule, _)| rule)
}

/// `route CONDITIONS direct` or `route CONDITIONS via URL[, URL...] [user NAME]`.
fn route(line: &mut Line<'_>) -> Result<Route, ParseError> {
    let (conditions, target) = clauses(line, Rule::new(Action::Pass), true)?;
    let target = target.ok_or_else(|| line.error(None, "'direct' or 'via URL' to end a route"))?;
    Ok(Route { conditions, target })
}

/// The clauses of a rule, or (`route`) of a route's conditions and its target.
fn clauses(
    line: &mut Line<'_>,
    mut rule: Rule,
    route: bool,
) -> Result<(Rule, Option<Target>), ParseError> {
    let mut seen: Vec<&str> = Vec::new();
    while let Some(t) = line.next() {
        if route && t.text == "direct" {
            line.expect_end("the end of the line after 'direct'")?;
            return Ok((rule, Some(Target::Direct)));
        }
        if route && t.text == "via" {
            return Ok((rule, Some(Target::Via(parents(line)?))));
        }
        if route
            && matches!(
                t.text,
                "log" | "notify" | "ident" | "reply" | "bandwidth" | "quota"
            )
        {
            return Err(line.error(
                Some(t),
                "a route condition: from, to, command, user or cert (then direct or via)",
            ));
        }
        if seen.contains(&t.text) {
            return Err(line.error(
                Some(t),
                format!("each clause once ('{}' was already given)", t.text),
            ));
        }
        match t.text {
            "from" => {
                rule.from = line.netmask()?;
                if line.peek().is_some_and(|p| p.text == "port") {
                    line.pos += 1;
                    rule.from_port = line.port_match()?;
                }
            }
            "to" => {
                rule.to = line.dest()?;
                if line.peek().is_some_and(|p| p.text == "port") {
                    line.pos += 1;
                    rule.to_port = line.port_match()?;
                }
            }
            "command" => {
                rule.commands = line.list("connect or bind, comma-separated", |c| match c {
                    "connect" => Some(Command::Connect),
                    "bind" => Some(Command::Bind),
                    _ => None,
                })?;
            }
            "user" => {
                rule.users = line.list("user ids, comma-separated", |u| {
                    valid_user(u).then(|| u.to_owned())
                })?;
            }
            "cert" => {
                rule.certs = line.list("certificate names, comma-separated", |c| {
                    valid_user(c).then(|| c.to_owned())
                })?;
            }
            "ident" => rule.require_ident = true,
            "log" => rule.log = true,
            "notify" => rule.notify = true,
            "bandwidth" | "quota" if !rule.action.is_pass() => {
                return Err(line.error(
                    Some(t),
                    format!("a clause of a block rule ('{}' is for pass rules)", t.text),
                ));
            }
            "bandwidth" => {
                let v = line.expect("a bandwidth (500KiB/s, 2MiB/s, 100Mbit/s)")?;
                rule.bandwidth = Some(v.text.parse().map_err(|_| {
                    line.error(Some(v), "a bandwidth (500KiB/s, 2MiB/s, 100Mbit/s)")
                })?);
            }
            "quota" => {
                let v = line.expect("a quota (1GiB/day, 50GB/month)")?;
                rule.quota = Some(
                    v.text
                        .parse()
                        .map_err(|_| line.error(Some(v), "a quota (1GiB/day, 50GB/month)"))?,
                );
            }
            "reply" => {
                if rule.action.is_pass() {
                    return Err(line.error(
                        Some(t),
                        "a clause of a pass rule ('reply' is for block rules)",
                    ));
                }
                rule.action = Action::Block {
                    reply: reply_code(line)?,
                };
            }
            _ => {
                return Err(line.error(
                    Some(t),
                    "a clause: from, to, command, user, cert, ident, log, notify, reply, bandwidth or quota",
                ));
            }
        }
        seen.push(t.text);
    }
    Ok((rule, None))
}

const PARENTS: &str = "parent proxy URLs, comma-separated (socks4://, socks4a://, http://, socks4+tls://, socks4a+tls://, https://)";

/// `URL[, URL...] [user NAME]` after `via`.
fn parents(line: &mut Line<'_>) -> Result<Vec<Parent>, ParseError> {
    let mut out: Vec<Parent> = Vec::new();
    loop {
        let t = line.expect(PARENTS)?;
        for part in t.text.split(',').filter(|p| !p.is_empty()) {
            out.push(part.parse().map_err(|_| line.error(Some(t), PARENTS))?);
        }
        let more = t.text.ends_with(',') || line.peek().is_some_and(|p| p.text.starts_with(','));
        if line.peek().is_some_and(|p| p.text == ",") {
            line.pos += 1;
        }
        if !more {
            break;
        }
    }
    if out.is_empty() {
        return Err(line.error(None, PARENTS));
    }
    if line.peek().is_some_and(|p| p.text == "user") {
        line.pos += 1;
        let u = line.expect("the user id to send to the parent")?;
        if !valid_user(u.text) {
            return Err(line.error(Some(u), "the user id to send to the parent"));
        }
        for p in &mut out {
            if p.user.is_none() {
                p.user = Some(u.text.to_owned());
            }
        }
    }
    line.expect_end("the end of the line after the parents")?;
    Ok(out)
}

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
                if !act.is_pass() && line.peek().is_some_and(|t| t.text == "reply") {
                    line.pos += 1;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::{Route, Target};
    use crate::rule::Source;

    fn one_rule(text: &str) -> Rule {
        let p: Policy = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(p.rules.rules().len(), 1, "{text}");
        p.rules.rules()[0].clone()
    }

    #[test]
    fn clauses() {
        let r = one_rule("pass from 10.0.0.0 255.0.0.0 port gt 1023 to .Example.COM port range 80-90 command connect,bind user alice,bob ident log");
        assert_eq!(r.action, Action::Pass);
        assert_eq!(r.from, "10.0.0.0/8".parse().unwrap());
        assert_eq!(r.from_port, PortMatch::Gt(1023));
        assert_eq!(
            r.to,
            DestMatch::Host(HostPattern::Domain("example.com".into()))
        );
        assert_eq!(r.to_port, PortMatch::Range(80, 90));
        assert_eq!(r.commands, vec![Command::Connect, Command::Bind]);
        assert_eq!(r.users, vec!["alice".to_owned(), "bob".to_owned()]);
        assert!(r.require_ident && r.log);

        let r = one_rule("block to www.example.org reply 93");
        assert_eq!(r.action, Action::Block { reply: 93 });
        assert_eq!(r.from, Netmask::Any);
        assert_eq!(
            r.to,
            DestMatch::Host(HostPattern::Exact("www.example.org".into()))
        );

        let r = one_rule("block from ::1 to 2001:db8::/32 port 25");
        assert_eq!(r.to, DestMatch::Net("2001:db8::/32".parse().unwrap()));
        assert_eq!(r.to_port, PortMatch::Eq(25));
        for (spec, expected) in [
            ("eq 1", PortMatch::Eq(1)),
            ("= 1", PortMatch::Eq(1)),
            ("neq 2", PortMatch::Neq(2)),
            ("!= 2", PortMatch::Neq(2)),
            ("lt 3", PortMatch::Lt(3)),
            ("< 3", PortMatch::Lt(3)),
            ("gt 4", PortMatch::Gt(4)),
            ("> 4", PortMatch::Gt(4)),
            ("range 5-6", PortMatch::Range(5, 6)),
            ("5-6", PortMatch::Range(5, 6)),
            ("7", PortMatch::Eq(7)),
        ] {
            assert_eq!(
                one_rule(&format!("pass to any port {spec}")).to_port,
                expected,
                "{spec}"
            );
        }
    }

    #[test]
    fn lists_default_comments_and_lines() {
        let p: Policy = "# header\n\ndefault block reply 92\ndeny any # all\nexempt 127.0.0.1\n  pass from 127.0.0.0/8\n"
            .parse()
            .unwrap();
        assert_eq!(p.rules.default_action(), Action::Block { reply: 92 });
        assert!(p.denials.has(&Netmask::Any));
        assert!(p.exemptions.has(&"127.0.0.1/32".parse().unwrap()));
        let s = crate::Subject {
            client: "127.0.0.1:1".parse().unwrap(),
            dest_addr: None,
            dest_host: Some("x"),
            dest_port: 1,
            command: Command::Connect,
            user_id: b"",
            cert: None,
        };
        assert_eq!(
            p.evaluate(&s).source,
            Source::Rule {
                number: 1,
                line: Some(6)
            }
        );
    }

    #[test]
    fn errors_name_line_column_and_expectation() {
        let cases = [
            (
                "allow from any",
                1,
                1,
                "deny, exempt, default, pass, block or route",
            ),
            ("pass from", 1, 10, "a netmask"),
            ("\npass from 10.0.0.0/33", 2, 11, "a netmask"),
            (
                "pass from 10.0.0.0 255.0.255.0",
                1,
                20,
                "a contiguous netmask",
            ),
            ("pass to any port bogus", 1, 18, "a port condition"),
            ("pass to any port range 9-1", 1, 24, "a port range"),
            ("pass to any port eq 65536", 1, 21, "a port number"),
            ("pass command connect,fly", 1, 14, "connect or bind"),
            ("pass reply 93", 1, 6, "a clause of a pass rule"),
            ("block reply 90", 1, 13, "a reply code"),
            ("pass from any from any", 1, 15, "each clause once"),
            ("pass to bad..name", 1, 9, "a destination"),
            ("pass frm any", 1, 6, "a clause"),
            ("deny 10.0.0.0/8 extra", 1, 17, "the end of the line"),
            ("default pass\ndefault block", 2, 1, "one 'default' line"),
            ("pass user", 1, 10, "user ids"),
        ];
        for (text, line, column, expected) in cases {
            let e = text.parse::<Policy>().unwrap_err();
            assert_eq!((e.line, e.column), (line, column), "{text}: {e}");
            assert!(e.expected.starts_with(expected), "{text}: {e}");
            assert!(e
                .to_string()
                .starts_with(&format!("line {line}, column {column}: expected")));
        }
    }

    #[test]
    fn routes_parse_print_and_choose() {
        let text = "pass from any to any\n\
                    route from 10.0.0.0/8 to .corp.example via socks4a://parent.corp:1080 user proxyuser\n\
                    route to any port eq 443 via http://u:p@127.0.0.1:3128, http://127.0.0.1:3129\n\
                    route to 192.0.2.0/24 via socks4://[2001:db8::1]:1080\n\
                    route to any direct\n";
        let p: Policy = text.parse().unwrap();
        let routes: Vec<&Route> = p.routes.routes().collect();
        assert_eq!(routes.len(), 4);
        let Target::Via(parents) = &routes[0].target else {
            panic!()
        };
        assert_eq!(parents[0].kind, crate::ParentKind::Socks4a);
        assert_eq!(parents[0].user.as_deref(), Some("proxyuser"));
        let Target::Via(parents) = &routes[1].target else {
            panic!()
        };
        assert_eq!(parents.len(), 2);
        assert_eq!(parents[0].password.as_deref(), Some("p"));
        assert_eq!(
            parents[0].to_string(),
            "http://u:***@127.0.0.1:3128",
            "passwords are not shown"
        );
        assert_eq!(routes[3].target, Target::Direct);
        let again: Policy = p.to_string().parse().unwrap();
        assert_eq!(again, p);
        let s = crate::Subject {
            client: "10.1.2.3:5000".parse().unwrap(),
            dest_addr: None,
            dest_host: Some("db.corp.example"),
            dest_port: 5432,
            command: Command::Connect,
            user_id: b"",
            cert: None,
        };
        let (n, line, _) = p.routes.find_without_address(&s).unwrap().unwrap();
        assert_eq!((n, line), (1, Some(2)));
        let other = crate::Subject {
            dest_host: Some("example.org"),
            dest_port: 80,
            ..s
        };
        assert!(
            p.routes.find_without_address(&other).is_none(),
            "route 3 needs the address"
        );
        let resolved = crate::Subject {
            dest_addr: Some("198.51.100.1".parse().unwrap()),
            ..other
        };
        assert_eq!(p.routes.find(&resolved).unwrap().0, 4);
        for (bad, col, expected) in [
            ("route to any", 13, "'direct' or 'via URL'"),
            ("route to any via ftp://x:1", 18, "parent proxy URLs"),
            ("route to any via socks4://x", 18, "parent proxy URLs"),
            ("route to any log direct", 14, "a route condition"),
            ("route to any direct now", 21, "the end of the line"),
        ] {
            let e = bad.parse::<Policy>().unwrap_err();
            assert_eq!(e.column, col, "{bad}: {e}");
            assert!(e.expected.starts_with(expected), "{bad}: {e}");
        }
    }

    #[test]
    fn bandwidth_and_quota_on_pass_rules() {
        let r = one_rule("pass from 10.0.0.0/8 to any bandwidth 2MiB/s quota 1GiB/day log");
        assert_eq!(r.bandwidth.unwrap().bytes_per_second, 2 << 20);
        assert_eq!(r.quota.unwrap().to_string(), "1GiB/day");
        assert_eq!(
            r.to_string(),
            "pass from 10.0.0.0/8 to any log bandwidth 2MiB/s quota 1GiB/day"
        );
        for (text, col, expected) in [
            (
                "block to any bandwidth 1MiB/s",
                14,
                "a clause of a block rule",
            ),
            ("pass to any bandwidth 1MiB/x", 23, "a bandwidth"),
            ("pass to any quota 1MiB/fortnight", 19, "a quota"),
        ] {
            let e = text.parse::<Policy>().unwrap_err();
            assert_eq!(e.column, col, "{text}: {e}");
            assert!(e.expected.starts_with(expected), "{text}: {e}");
        }
    }

    #[test]
    fn address_classes_and_a_host_of_the_same_name() {
        let r = one_rule("block to loopback");
        assert_eq!(r.to, DestMatch::Class(AddrClass::Loopback));
        let r = one_rule("block to LINK-LOCAL port 80");
        assert_eq!(r.to, DestMatch::Class(AddrClass::LinkLocal));
        let r = one_rule("block to loopback.");
        assert_eq!(r.to, DestMatch::Host(HostPattern::Exact("loopback".into())));
        assert_eq!(r.to_string(), "block from any to loopback.");
        let p: Policy = "block to private\npass to any".parse().unwrap();
        assert_eq!(p.to_string().parse::<Policy>().unwrap(), p);
    }

    #[test]
    fn display_round_trips() {
        let text = "default pass\ndeny 10.0.0.0/8\ndeny any\nexempt 10.1.0.0/16\n\
                    block from 192.0.2.0 255.255.255.0 port lt 1024 to .example.com port neq 80 command bind user a,b ident log notify reply 92\n\
                    pass from any to any\n";
        let p: Policy = text.parse().unwrap();
        let shown = p.to_string();
        let again: Policy = shown.parse().unwrap();
        assert_eq!(again, p);
        assert_eq!(again.to_string(), shown);
        assert!(shown.contains("block from 192.0.2.0/24 port lt 1024 to .example.com port neq 80 command bind user a,b ident log notify reply 92"));
    }
}
