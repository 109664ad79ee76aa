//! The clauses after a directive's first word: a `pass` or `block` rule's
//! conditions and options, and a `route`'s conditions, its target (`direct`,
//! or `via` parent proxies) and its exit clauses (`source`, `interface`,
//! `mark`).

use super::line::{valid_user, Line, Token};
use super::ParseError;
use crate::route::{Balance, Exit, Parent, Route, SourceAddr, Target};
use crate::rule::{Action, Command, Rule};

pub(super) fn action(line: &mut Line<'_>, verb: Token<'_>) -> Result<Action, ParseError> {
    match verb.text {
        "pass" => Ok(Action::Pass),
        "block" => Ok(Action::BLOCK),
        _ => Err(line.error(Some(verb), "pass or block")),
    }
}

pub(super) fn reply_code(line: &mut Line<'_>) -> Result<u8, ParseError> {
    let t = line.expect("a reply code (91, 92 or 93)")?;
    match t.text.parse::<u8>() {
        Ok(code @ 91..=93) => Ok(code),
        _ => Err(line.error(Some(t), "a reply code (91, 92 or 93)")),
    }
}

pub(super) fn rule(line: &mut Line<'_>, verb: Token<'_>) -> Result<Rule, ParseError> {
    let rule = Rule::new(action(line, verb)?);
    clauses(line, rule, false).map(|(rule, _)| rule)
}

/// `route CONDITIONS direct|via URL[, URL...] [user NAME]`, then in any
/// order, each once: `[balance first|round-robin|least-connections]` (`via`
/// only), `[source ADDR[,ADDR...] | source PREFIX random]`, `[interface
/// NAME]`, `[mark N]`.
pub(super) fn route(line: &mut Line<'_>) -> Result<Route, ParseError> {
    let (conditions, target) = clauses(line, Rule::new(Action::Pass), true)?;
    let target = target.ok_or_else(|| line.error(None, "'direct' or 'via URL' to end a route"))?;
    let (balance, exit) = tail(line, matches!(target, Target::Via(_)))?;
    Ok(Route {
        conditions,
        target,
        balance,
        exit,
    })
}

/// The clauses of a rule, or (`route`) of a route's conditions and its target.
fn clauses(
    line: &mut Line<'_>,
    mut rule: Rule,
    route: bool,
) -> Result<(Rule, Option<Target>), ParseError> {
    let mut seen: Vec<&str> = Vec::new();
    while let Some(t) = line.next() {
        if route {
            if let Some(target) = route_target(line, t)? {
                return Ok((rule, Some(target)));
            }
        }
        if seen.contains(&t.text) {
            return Err(line.error(
                Some(t),
                format!("each clause once ('{}' was already given)", t.text),
            ));
        }
        clause(line, &mut rule, t)?;
        seen.push(t.text);
    }
    Ok((rule, None))
}

/// In a route, the word `t` may end the conditions: `direct`, or `via` and
/// the parents. A rule's option there is an error; anything else is left
/// to [`clause`] (`None`).
fn route_target(line: &mut Line<'_>, t: Token<'_>) -> Result<Option<Target>, ParseError> {
    match t.text {
        "direct" => Ok(Some(Target::Direct)),
        "via" => Ok(Some(Target::Via(parents(line)?))),
        "log" | "notify" | "ident" | "reply" | "bandwidth" | "quota" => Err(line.error(
            Some(t),
            "a route condition: from, to, command, user or cert (then direct or via)",
        )),
        _ => Ok(None),
    }
}

/// One clause of a rule, `t` its first word: a condition or an option.
fn clause(line: &mut Line<'_>, rule: &mut Rule, t: Token<'_>) -> Result<(), ParseError> {
    match t.text {
        "from" => {
            rule.from = line.netmask()?;
            if line.eat("port") {
                rule.from_port = line.port_match()?;
            }
        }
        "to" => {
            rule.to = line.dest()?;
            if line.eat("port") {
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
        "bandwidth" | "quota" => limit_option(line, rule, t)?,
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
    Ok(())
}

/// A pass rule's limit on each client it admits, `t` its first word
/// (`bandwidth` or `quota`); a block rule takes none.
fn limit_option(line: &mut Line<'_>, rule: &mut Rule, t: Token<'_>) -> Result<(), ParseError> {
    if !rule.action.is_pass() {
        return Err(line.error(
            Some(t),
            format!("a clause of a block rule ('{}' is for pass rules)", t.text),
        ));
    }
    if t.text == "bandwidth" {
        let v = line.expect("a bandwidth (500KiB/s, 2MiB/s, 100Mbit/s)")?;
        rule.bandwidth = Some(
            v.text
                .parse()
                .map_err(|_| line.error(Some(v), "a bandwidth (500KiB/s, 2MiB/s, 100Mbit/s)"))?,
        );
    } else {
        let v = line.expect("a quota (1GiB/day, 50GB/month)")?;
        rule.quota = Some(
            v.text
                .parse()
                .map_err(|_| line.error(Some(v), "a quota (1GiB/day, 50GB/month)"))?,
        );
    }
    Ok(())
}

const PARENTS: &str = "parent proxy URLs, comma-separated (socks4://, socks4a://, http://, socks4+tls://, socks4a+tls://, https://)";

/// `URL[, URL...] [user NAME]` after `via`.
fn parents(line: &mut Line<'_>) -> Result<Vec<Parent>, ParseError> {
    let mut out: Vec<Parent> = Vec::new();
    loop {
        let t = line.expect(PARENTS)?;
        for part in t.text.split(',').filter(|p| !p.is_empty()) {
            out.push(part.parse().map_err(|_| {
                // The error shows the URLs without what may be a password.
                let mut e = line.error(Some(t), PARENTS);
                let shown: Vec<String> = t
                    .text
                    .split(',')
                    .map(crate::route::without_password)
                    .collect();
                e.found = Some(shown.join(","));
                e
            })?);
        }
        let more = t.text.ends_with(',') || line.peek().is_some_and(|p| p.text.starts_with(','));
        line.eat(",");
        if !more {
            break;
        }
    }
    if out.is_empty() {
        return Err(line.error(None, PARENTS));
    }
    if line.eat("user") {
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
    Ok(out)
}

const BALANCE: &str = "first, round-robin or least-connections after 'balance'";

/// What may follow a route's target, each once and in any order: `balance`
/// (`via` routes only) and the exit clauses; the end of the line ends them.
fn tail(line: &mut Line<'_>, via: bool) -> Result<(Balance, Exit), ParseError> {
    let mut balance = Balance::First;
    let mut exit = Exit::default();
    let mut seen: Vec<&str> = Vec::new();
    let expected = if via {
        "the end of the line, balance, source, interface or mark"
    } else {
        "the end of the line, source, interface or mark"
    };
    while let Some(t) = line.next() {
        if seen.contains(&t.text) {
            return Err(line.error(
                Some(t),
                format!("each clause once ('{}' was already given)", t.text),
            ));
        }
        match t.text {
            "balance" if via => {
                let b = line.expect(BALANCE)?;
                balance = b.text.parse().map_err(|()| line.error(Some(b), BALANCE))?;
            }
            "source" => exit.source = source(line)?,
            "interface" => {
                let name = line.expect(INTERFACE)?;
                if !interface_name(name.text) {
                    return Err(line.error(Some(name), INTERFACE));
                }
                exit.interface = Some(name.text.to_owned());
            }
            "mark" => {
                let m = line.expect(MARK)?;
                let parsed = match m.text.strip_prefix("0x").or(m.text.strip_prefix("0X")) {
                    Some(hex) => u32::from_str_radix(hex, 16),
                    None => m.text.parse(),
                };
                exit.mark = Some(
                    parsed
                        .ok()
                        .filter(|&n| n != 0)
                        .ok_or_else(|| line.error(Some(m), MARK))?,
                );
            }
            _ => return Err(line.error(Some(t), expected)),
        }
        seen.push(t.text);
    }
    Ok((balance, exit))
}

const SOURCE: &str =
    "source addresses, comma-separated (ADDR[,ADDR...]), or an IPv6 prefix and 'random' (PREFIX random)";
const INTERFACE: &str = "an interface name (1 to 15 characters, no '/', ':' or white space)";
const MARK: &str = "a firewall mark from 1 to 0xffffffff (decimal or 0x hex)";

/// `source ADDR[,ADDR...]` or `source PREFIX random`, after `source`.
fn source(line: &mut Line<'_>) -> Result<SourceAddr, ParseError> {
    let t = line.expect(SOURCE)?;
    if line.eat("random") {
        const PREFIX: &str = "an IPv6 prefix before 'random' (ADDR/LEN, say 2001:db8::/64)";
        let net: ipnet::Ipv6Net = t.text.parse().map_err(|_| line.error(Some(t), PREFIX))?;
        return Ok(SourceAddr::Random(net.trunc()));
    }
    let mut unique: Vec<std::net::IpAddr> = Vec::new();
    for part in t.text.split(',') {
        let ip = part
            .parse::<std::net::IpAddr>()
            .ok()
            .filter(|ip| !ip.is_unspecified() && !ip.is_multicast())
            .map(crate::canonical)
            .ok_or_else(|| line.error(Some(t), SOURCE))?;
        if unique.contains(&ip) {
            return Err(line.error(Some(t), "source addresses, each once"));
        }
        unique.push(ip);
    }
    Ok(SourceAddr::Rotate(unique))
}

/// Whether `name` can be a Linux interface name: 1 to 15 bytes (IFNAMSIZ),
/// not `.` or `..`, no `/`, `:` or white space.
fn interface_name(name: &str) -> bool {
    (1..16).contains(&name.len())
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
}
