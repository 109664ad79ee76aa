//! The clauses after a directive's first word: a `pass` or `block` rule's
//! conditions and options, and a `route`'s conditions and its target
//! (`direct`, or `via` parent proxies).

use super::line::{valid_user, Line, Token};
use super::ParseError;
use crate::route::{Balance, Parent, Route, Target};
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

/// `route CONDITIONS direct` or `route CONDITIONS via URL[, URL...] [user
/// NAME] [balance first|round-robin|least-connections]`.
pub(super) fn route(line: &mut Line<'_>) -> Result<Route, ParseError> {
    let (conditions, target) = clauses(line, Rule::new(Action::Pass), true)?;
    let (target, balance) =
        target.ok_or_else(|| line.error(None, "'direct' or 'via URL' to end a route"))?;
    Ok(Route {
        conditions,
        target,
        balance,
    })
}

/// The clauses of a rule, or (`route`) of a route's conditions and its target.
fn clauses(
    line: &mut Line<'_>,
    mut rule: Rule,
    route: bool,
) -> Result<(Rule, Option<(Target, Balance)>), ParseError> {
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
fn route_target(
    line: &mut Line<'_>,
    t: Token<'_>,
) -> Result<Option<(Target, Balance)>, ParseError> {
    match t.text {
        "direct" => {
            line.expect_end("the end of the line after 'direct'")?;
            Ok(Some((Target::Direct, Balance::First)))
        }
        "via" => {
            let parents = parents(line)?;
            let balance = balance(line)?;
            Ok(Some((Target::Via(parents), balance)))
        }
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

/// `[balance first|round-robin|least-connections]` at the end of a `via`
/// route.
fn balance(line: &mut Line<'_>) -> Result<Balance, ParseError> {
    let mut balance = Balance::First;
    if line.eat("balance") {
        let t = line.expect(BALANCE)?;
        balance = t.text.parse().map_err(|()| line.error(Some(t), BALANCE))?;
    }
    line.expect_end("the end of the line after the parents (or 'balance')")?;
    Ok(balance)
}
