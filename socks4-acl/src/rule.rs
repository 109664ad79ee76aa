//! Ordered access rules, first match wins, in the spirit of Dante's `sockd.conf`.
//!
//! A [`Rule`] matches on the client's source net and port, the destination net or
//! host name pattern and port, the command and the user id; its [`Action`] passes
//! or blocks (with a reply code). [`RuleSet::evaluate`] returns the first matching
//! rule's [`Verdict`], naming the rule; with no match it blocks
//! ([`RuleSet::default_action`], block unless set otherwise).

use crate::limit::{Bandwidth, Quota};
use crate::net::{canonical, ipv4_equivalent, AddrClass, Netmask};
use core::fmt;
use std::net::{IpAddr, SocketAddr};

/// The reply code a blocking rule sends unless it says otherwise (91).
pub const DEFAULT_BLOCK_REPLY: u8 = 91;

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Let the request through.
    Pass,
    /// Refuse it with this SOCKS reply code: 91, 92 or 93.
    Block {
        /// The reply code sent to the client.
        reply: u8,
    },
}

impl Action {
    /// Blocking with reply 91.
    pub const BLOCK: Action = Action::Block {
        reply: DEFAULT_BLOCK_REPLY,
    };

    /// Whether the action lets the request through.
    pub fn is_pass(self) -> bool {
        self == Action::Pass
    }
}

/// A SOCKS4 command, as far as access control cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// CONNECT (CD 1).
    Connect,
    /// BIND (CD 2).
    Bind,
}

/// A condition on a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortMatch {
    /// Any port.
    Any,
    /// `eq N`: exactly N.
    Eq(u16),
    /// `neq N`: anything but N.
    Neq(u16),
    /// `lt N`: below N.
    Lt(u16),
    /// `gt N`: above N.
    Gt(u16),
    /// `range A-B`: A to B inclusive (A ≤ B).
    Range(u16, u16),
}

impl PortMatch {
    /// Whether `port` satisfies the condition.
    pub fn matches(self, port: u16) -> bool {
        match self {
            PortMatch::Any => true,
            PortMatch::Eq(n) => port == n,
            PortMatch::Neq(n) => port != n,
            PortMatch::Lt(n) => port < n,
            PortMatch::Gt(n) => port > n,
            PortMatch::Range(a, b) => (a..=b).contains(&port),
        }
    }
}

impl fmt::Display for PortMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortMatch::Any => f.write_str("any"),
            PortMatch::Eq(n) => write!(f, "eq {n}"),
            PortMatch::Neq(n) => write!(f, "neq {n}"),
            PortMatch::Lt(n) => write!(f, "lt {n}"),
            PortMatch::Gt(n) => write!(f, "gt {n}"),
            PortMatch::Range(a, b) => write!(f, "range {a}-{b}"),
        }
    }
}

/// A host name pattern for SOCKS4a destinations. Comparison ignores ASCII case and
/// a trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// `example.com`: exactly that name.
    Exact(String),
    /// `.example.com`: the domain itself and every name under it
    /// (`example.com`, `www.example.com`), but not `badexample.com`.
    Domain(String),
}

impl HostPattern {
    /// Whether `host` matches.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.strip_suffix('.').unwrap_or(host);
        match self {
            HostPattern::Exact(name) => host.eq_ignore_ascii_case(name),
            HostPattern::Domain(domain) => {
                host.eq_ignore_ascii_case(domain)
                    || (host.len() > domain.len()
                        && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
                        && host[host.len() - domain.len()..].eq_ignore_ascii_case(domain))
            }
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // A name that is also an address class keeps its final dot.
            HostPattern::Exact(name) if AddrClass::from_name(name).is_some() => {
                write!(f, "{name}.")
            }
            HostPattern::Exact(name) => f.write_str(name),
            HostPattern::Domain(domain) => write!(f, ".{domain}"),
        }
    }
}

/// A condition on the destination.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DestMatch {
    /// Any destination, by address or by name.
    Any,
    /// A destination address in this net. For SOCKS4a the resolved address is
    /// compared; a subject with no address yet does not match. An IPv6 address
    /// that spells an IPv4 one ([`ipv4_equivalent`]: mapped, compatible, NAT64,
    /// and `::1` for `127.0.0.1`) matches the IPv4 nets its IPv4 address is in.
    Net(Netmask),
    /// A SOCKS4a host name matching this pattern. A plain SOCKS4 request (an
    /// address, no name) does not match.
    Host(HostPattern),
    /// A destination address in this class, either family (`to loopback`,
    /// `to private`, `to link-local`, `to unspecified`).
    Class(AddrClass),
}

impl DestMatch {
    fn matches(&self, addr: Option<IpAddr>, host: Option<&str>) -> bool {
        match self {
            DestMatch::Any => true,
            DestMatch::Net(net) => addr.is_some_and(|a| {
                net.contains(a) || ipv4_equivalent(a).is_some_and(|v4| net.contains(v4.into()))
            }),
            DestMatch::Host(pattern) => host.is_some_and(|h| pattern.matches(h)),
            DestMatch::Class(class) => addr.is_some_and(|a| class.contains(a)),
        }
    }

    /// Whether deciding this condition needs the destination's address.
    pub fn needs_address(&self) -> bool {
        matches!(self, DestMatch::Net(_) | DestMatch::Class(_))
    }
}

impl fmt::Display for DestMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DestMatch::Any => f.write_str("any"),
            DestMatch::Net(net) => net.fmt(f),
            DestMatch::Host(pattern) => pattern.fmt(f),
            DestMatch::Class(class) => class.fmt(f),
        }
    }
}

/// One access rule. Every condition must hold for the rule to match; an empty
/// condition (`Any`, no commands listed, no users listed) always holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    /// Pass or block.
    pub action: Action,
    /// The client's source address.
    pub from: Netmask,
    /// The client's source port.
    pub from_port: PortMatch,
    /// The destination address or host name.
    pub to: DestMatch,
    /// The destination port.
    pub to_port: PortMatch,
    /// The commands the rule applies to; empty means both.
    pub commands: Vec<Command>,
    /// The user ids the rule applies to (compared byte for byte with the
    /// request's USERID); empty means any user id.
    pub users: Vec<String>,
    /// The TLS client certificate names (subject common names) the rule applies
    /// to; empty means any client, with a certificate or without. A rule that
    /// lists names never matches a client without a verified certificate.
    pub certs: Vec<String>,
    /// Whether a passing request must also be confirmed by IDENT.
    pub require_ident: bool,
    /// Whether the server logs requests this rule decides.
    pub log: bool,
    /// Whether the server notifies its administrator of requests this rule
    /// decides (an event, a log line, and the configured command).
    pub notify: bool,
    /// For a pass rule: each client it admits gets its own bandwidth, each
    /// direction (`bandwidth RATE`), instead of the server's per-client one.
    pub bandwidth: Option<Bandwidth>,
    /// For a pass rule: the traffic quota of each client it admits (`quota
    /// SIZE/PERIOD`), instead of the server's.
    pub quota: Option<Quota>,
}

impl Rule {
    /// A rule with `action` that matches everything; set fields to narrow it.
    pub fn new(action: Action) -> Rule {
        Rule {
            action,
            from: Netmask::Any,
            from_port: PortMatch::Any,
            to: DestMatch::Any,
            to_port: PortMatch::Any,
            commands: Vec::new(),
            users: Vec::new(),
            certs: Vec::new(),
            require_ident: false,
            log: false,
            notify: false,
            bandwidth: None,
            quota: None,
        }
    }

    /// Whether `self` matches every request that `later` matches, so that
    /// `later`, placed after `self`, can never decide anything. Conservative:
    /// `false` when unsure.
    pub fn covers(&self, later: &Rule) -> bool {
        net_covers(&self.from, &later.from)
            && port_covers(self.from_port, later.from_port)
            && dest_covers(&self.to, &later.to)
            && port_covers(self.to_port, later.to_port)
            && (self.commands.is_empty()
                || (!later.commands.is_empty()
                    && later.commands.iter().all(|c| self.commands.contains(c))))
            && (self.users.is_empty()
                || (!later.users.is_empty() && later.users.iter().all(|u| self.users.contains(u))))
            && (self.certs.is_empty()
                || (!later.certs.is_empty() && later.certs.iter().all(|c| self.certs.contains(c))))
    }

    /// Whether every condition holds for `s`.
    pub fn matches(&self, s: &Subject<'_>) -> bool {
        self.matches_but_address(s) && self.to.matches(s.dest_addr.map(canonical), s.dest_host)
    }

    /// Whether the rule matches `s` whatever its destination's address:
    /// `Some(false)` no, `Some(true)` yes, `None` it depends on the address.
    pub(crate) fn matches_without_address(&self, s: &Subject<'_>) -> Option<bool> {
        if !self.matches_but_address(s) {
            Some(false)
        } else if self.to.needs_address() {
            None
        } else {
            Some(true)
        }
    }

    /// Whether every condition that does not need the destination's address
    /// holds for `s` (the destination name still counts).
    fn matches_but_address(&self, s: &Subject<'_>) -> bool {
        self.from.contains(s.client.ip())
            && self.from_port.matches(s.client.port())
            && (self.to.needs_address() || self.to.matches(None, s.dest_host))
            && self.to_port.matches(s.dest_port)
            && (self.commands.is_empty() || self.commands.contains(&s.command))
            && (self.users.is_empty() || self.users.iter().any(|u| u.as_bytes() == s.user_id))
            && (self.certs.is_empty() || s.cert.is_some_and(|c| self.certs.iter().any(|n| n == c)))
    }
}

fn net_covers(a: &Netmask, b: &Netmask) -> bool {
    match (a, b) {
        (Netmask::Any, _) => true,
        (Netmask::Net(_), Netmask::Any) => false,
        (Netmask::Net(a), Netmask::Net(b)) => a.contains(b),
    }
}

/// The ports a condition allows, as inclusive ranges.
fn port_ranges(p: PortMatch) -> Vec<(u16, u16)> {
    match p {
        PortMatch::Any => vec![(0, u16::MAX)],
        PortMatch::Eq(n) => vec![(n, n)],
        PortMatch::Neq(n) => {
            let mut v = Vec::new();
            if n > 0 {
                v.push((0, n - 1));
            }
            if n < u16::MAX {
                v.push((n + 1, u16::MAX));
            }
            v
        }
        PortMatch::Lt(0) => vec![],
        PortMatch::Lt(n) => vec![(0, n - 1)],
        PortMatch::Gt(u16::MAX) => vec![],
        PortMatch::Gt(n) => vec![(n + 1, u16::MAX)],
        PortMatch::Range(a, b) => vec![(a, b)],
    }
}

fn port_covers(a: PortMatch, b: PortMatch) -> bool {
    let outer = port_ranges(a);
    port_ranges(b)
        .iter()
        .all(|(lo, hi)| outer.iter().any(|(olo, ohi)| olo <= lo && hi <= ohi))
}

fn dest_covers(a: &DestMatch, b: &DestMatch) -> bool {
    match (a, b) {
        (DestMatch::Any, _) => true,
        (DestMatch::Net(a), DestMatch::Net(b)) => net_covers(a, b),
        (DestMatch::Class(a), DestMatch::Class(b)) => a == b,
        (DestMatch::Host(a), DestMatch::Host(b)) => match (a, b) {
            (HostPattern::Domain(d), HostPattern::Exact(n) | HostPattern::Domain(n)) => {
                HostPattern::Domain(d.clone()).matches(n)
            }
            (HostPattern::Exact(x), HostPattern::Exact(y)) => x.eq_ignore_ascii_case(y),
            (HostPattern::Exact(_), HostPattern::Domain(_)) => false,
        },
        _ => false,
    }
}

/// What a request looks like to access control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject<'a> {
    /// The client's address and source port.
    pub client: SocketAddr,
    /// The destination address: the request's DSTIP, or for SOCKS4a the resolved
    /// address (`None` before resolution).
    pub dest_addr: Option<IpAddr>,
    /// The SOCKS4a host name, if the request named one.
    pub dest_host: Option<&'a str>,
    /// The destination port.
    pub dest_port: u16,
    /// CONNECT or BIND.
    pub command: Command,
    /// The request's USERID.
    pub user_id: &'a [u8],
    /// The subject common name of the client's verified TLS certificate, when
    /// it came over TLS with one.
    pub cert: Option<&'a str>,
}

/// Where a verdict came from, so that a server can log and explain a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Source {
    /// The client address is on the denial list and not on the exemption list.
    Denied,
    /// A rule matched: its 1-based number and, when parsed from text, its line.
    Rule {
        /// The rule's position in the rule set, from 1.
        number: usize,
        /// The line of the rule text it came from.
        line: Option<usize>,
    },
    /// No rule matched: the rule set's default action.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Denied => f.write_str("denial list"),
            Source::Rule {
                number,
                line: Some(line),
            } => write!(f, "rule {number} (line {line})"),
            Source::Rule { number, line: None } => write!(f, "rule {number}"),
            Source::Default => f.write_str("default (no rule matched)"),
        }
    }
}

/// The decision on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Verdict {
    /// Pass, or block with a reply code.
    pub action: Action,
    /// What decided it.
    pub source: Source,
    /// Whether the deciding rule requires IDENT confirmation.
    pub require_ident: bool,
    /// Whether the deciding rule asks for a log line.
    pub log: bool,
    /// Whether the deciding rule asks for a notification.
    pub notify: bool,
    /// The deciding rule's bandwidth for the client, if it sets one.
    pub bandwidth: Option<Bandwidth>,
    /// The deciding rule's traffic quota for the client, if it sets one.
    pub quota: Option<Quota>,
}

impl Verdict {
    /// Whether the request may go ahead (subject to IDENT when required).
    pub fn is_pass(&self) -> bool {
        self.action.is_pass()
    }
}

/// An ordered list of rules and the action taken when none matches.
#[derive(Debug, Clone)]
pub struct RuleSet {
    rules: Vec<Rule>,
    lines: Vec<Option<usize>>,
    default: Action,
}

impl Default for RuleSet {
    fn default() -> RuleSet {
        RuleSet::new()
    }
}

impl RuleSet {
    /// No rules; everything is blocked with 91.
    pub fn new() -> RuleSet {
        RuleSet {
            rules: Vec::new(),
            lines: Vec::new(),
            default: Action::BLOCK,
        }
    }

    /// Appends a rule (evaluated after those already there).
    pub fn push(&mut self, rule: Rule) {
        self.push_at_line(rule, None);
    }

    pub(crate) fn push_at_line(&mut self, rule: Rule, line: Option<usize>) {
        self.rules.push(rule);
        self.lines.push(line);
    }

    /// Adds another set's rules after these (keeping their source lines); its
    /// default action replaces this one's unless it is the plain block.
    pub fn append(&mut self, other: RuleSet) {
        self.rules.extend(other.rules);
        self.lines.extend(other.lines);
        if other.default != Action::BLOCK {
            self.default = other.default;
        }
    }

    /// Puts another set's rules before these (keeping their source lines),
    /// so that they decide first; its default action replaces this one's
    /// unless it is the plain block.
    pub fn prepend(&mut self, other: RuleSet) {
        let (rules, lines) = (
            std::mem::take(&mut self.rules),
            std::mem::take(&mut self.lines),
        );
        self.rules = other.rules;
        self.rules.extend(rules);
        self.lines = other.lines;
        self.lines.extend(lines);
        if other.default != Action::BLOCK {
            self.default = other.default;
        }
    }

    /// The rules, in evaluation order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The line of the rule text that rule `index` (from 0) came from, when
    /// it was parsed from text.
    pub fn line(&self, index: usize) -> Option<usize> {
        self.lines.get(index).copied().flatten()
    }

    /// The action when no rule matches: block with 91 unless set otherwise.
    pub fn default_action(&self) -> Action {
        self.default
    }

    /// Sets the action taken when no rule matches.
    pub fn set_default_action(&mut self, action: Action) {
        self.default = action;
    }

    /// Rules that can never decide anything because an earlier rule matches
    /// every request they match: (the shadowed rule's number, the earlier
    /// rule's number), from 1.
    pub fn shadowed(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for (j, later) in self.rules.iter().enumerate() {
            if let Some(i) = self.rules[..j].iter().position(|r| r.covers(later)) {
                out.push((j + 1, i + 1));
            }
        }
        out
    }

    /// The first matching rule's verdict, or the default. No allocation.
    pub fn evaluate(&self, s: &Subject<'_>) -> Verdict {
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.matches(s) {
                return self.verdict(i);
            }
        }
        self.default_verdict()
    }

    /// The verdict before the destination's address is known (a SOCKS4a name
    /// not yet resolved; `s.dest_addr` is ignored): `Some` when it is the same
    /// whatever the name resolves to, `None` when a rule that needs the
    /// address comes first. A server decides what it can this way before it
    /// resolves anything.
    pub fn decide_without_address(&self, s: &Subject<'_>) -> Option<Verdict> {
        for (i, rule) in self.rules.iter().enumerate() {
            if !rule.matches_but_address(s) {
                continue; // no match, whatever the address
            }
            if rule.to.needs_address() {
                return None; // matches or not depending on the address
            }
            return Some(self.verdict(i));
        }
        Some(self.default_verdict())
    }

    fn verdict(&self, i: usize) -> Verdict {
        let rule = &self.rules[i];
        Verdict {
            action: rule.action,
            source: Source::Rule {
                number: i + 1,
                line: self.lines[i],
            },
            require_ident: rule.require_ident,
            log: rule.log,
            notify: rule.notify,
            bandwidth: rule.bandwidth,
            quota: rule.quota,
        }
    }

    fn default_verdict(&self) -> Verdict {
        Verdict {
            action: self.default,
            source: Source::Default,
            require_ident: false,
            log: false,
            notify: false,
            bandwidth: None,
            quota: None,
        }
    }
}

impl PartialEq for RuleSet {
    /// Equal rules in the same order and the same default; source lines are not
    /// compared.
    fn eq(&self, other: &RuleSet) -> bool {
        self.rules == other.rules && self.default == other.default
    }
}

impl Eq for RuleSet {}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Pass => f.write_str("pass"),
            Action::Block {
                reply: DEFAULT_BLOCK_REPLY,
            } => f.write_str("block"),
            Action::Block { reply } => write!(f, "block reply {reply}"),
        }
    }
}

impl fmt::Display for Rule {
    /// One line of the rule text format, which parses back to the same rule.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.action.is_pass() {
            "pass"
        } else {
            "block"
        };
        write!(f, "{verb} from {}", self.from)?;
        if self.from_port != PortMatch::Any {
            write!(f, " port {}", self.from_port)?;
        }
        write!(f, " to {}", self.to)?;
        if self.to_port != PortMatch::Any {
            write!(f, " port {}", self.to_port)?;
        }
        if !self.commands.is_empty() {
            let names: Vec<&str> = self
                .commands
                .iter()
                .map(|c| match c {
                    Command::Connect => "connect",
                    Command::Bind => "bind",
                })
                .collect();
            write!(f, " command {}", names.join(","))?;
        }
        if !self.users.is_empty() {
            write!(f, " user {}", self.users.join(","))?;
        }
        if !self.certs.is_empty() {
            write!(f, " cert {}", self.certs.join(","))?;
        }
        if self.require_ident {
            f.write_str(" ident")?;
        }
        if self.log {
            f.write_str(" log")?;
        }
        if self.notify {
            f.write_str(" notify")?;
        }
        if let Some(b) = self.bandwidth {
            write!(f, " bandwidth {b}")?;
        }
        if let Some(q) = self.quota {
            write!(f, " quota {q}")?;
        }
        if let Action::Block { reply } = self.action {
            if reply != DEFAULT_BLOCK_REPLY {
                write!(f, " reply {reply}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Policy;

    fn subject<'a>(
        client: &str,
        dest: &str,
        host: Option<&'a str>,
        cmd: Command,
        user: &'a [u8],
    ) -> Subject<'a> {
        let dest: SocketAddr = dest.parse().unwrap();
        Subject {
            client: client.parse().unwrap(),
            dest_addr: Some(dest.ip()),
            dest_host: host,
            dest_port: dest.port(),
            command: cmd,
            user_id: user,
            cert: None,
        }
    }

    #[test]
    fn port_matchers() {
        let table = [
            (PortMatch::Any, 0, true),
            (PortMatch::Eq(80), 80, true),
            (PortMatch::Eq(80), 81, false),
            (PortMatch::Neq(80), 80, false),
            (PortMatch::Neq(80), 8080, true),
            (PortMatch::Lt(1024), 1023, true),
            (PortMatch::Lt(1024), 1024, false),
            (PortMatch::Gt(1023), 1024, true),
            (PortMatch::Gt(1023), 1023, false),
            (PortMatch::Range(1, 1023), 1, true),
            (PortMatch::Range(1, 1023), 1023, true),
            (PortMatch::Range(1, 1023), 0, false),
            (PortMatch::Range(1, 1023), 1024, false),
        ];
        for (m, port, expected) in table {
            assert_eq!(m.matches(port), expected, "{m} {port}");
        }
    }

    #[test]
    fn host_patterns() {
        let exact = HostPattern::Exact("example.com".into());
        let domain = HostPattern::Domain("example.com".into());
        let table = [
            (&exact, "example.com", true),
            (&exact, "EXAMPLE.com.", true),
            (&exact, "www.example.com", false),
            (&domain, "example.com", true),
            (&domain, "www.example.com", true),
            (&domain, "a.b.Example.COM", true),
            (&domain, "badexample.com", false),
            (&domain, "example.com.evil", false),
            (&domain, "com", false),
        ];
        for (p, host, expected) in table {
            assert_eq!(p.matches(host), expected, "{p} {host}");
        }
    }

    #[test]
    fn every_condition_must_hold() {
        let mut rule = Rule::new(Action::Pass);
        rule.from = "10.0.0.0/8".parse().unwrap();
        rule.from_port = PortMatch::Gt(1023);
        rule.to = DestMatch::Net("192.0.2.0/24".parse().unwrap());
        rule.to_port = PortMatch::Eq(443);
        rule.commands = vec![Command::Connect];
        rule.users = vec!["alice".into(), "bob".into()];
        let ok = subject(
            "10.1.1.1:40000",
            "192.0.2.9:443",
            None,
            Command::Connect,
            b"bob",
        );
        assert!(rule.matches(&ok));
        let misses = [
            Subject {
                client: "11.1.1.1:40000".parse().unwrap(),
                ..ok
            },
            Subject {
                client: "10.1.1.1:1000".parse().unwrap(),
                ..ok
            },
            Subject {
                dest_addr: Some("192.0.3.1".parse().unwrap()),
                ..ok
            },
            Subject {
                dest_addr: None,
                ..ok
            },
            Subject {
                dest_port: 80,
                ..ok
            },
            Subject {
                command: Command::Bind,
                ..ok
            },
            Subject {
                user_id: b"eve",
                ..ok
            },
            Subject { user_id: b"", ..ok },
            Subject {
                user_id: b"Bob",
                ..ok
            },
        ];
        for s in misses {
            assert!(!rule.matches(&s), "{s:?}");
        }
    }

    #[test]
    fn host_rules_see_the_name_and_net_rules_the_address() {
        let mut by_name = Rule::new(Action::BLOCK);
        by_name.to = DestMatch::Host(HostPattern::Domain("example.com".into()));
        let s4a = subject(
            "127.0.0.1:5000",
            "192.0.2.1:80",
            Some("www.example.com"),
            Command::Connect,
            b"",
        );
        assert!(by_name.matches(&s4a));
        assert!(!by_name.matches(&Subject {
            dest_host: None,
            ..s4a
        }));
        let mut by_addr = Rule::new(Action::BLOCK);
        by_addr.to = DestMatch::Net("192.0.2.0/24".parse().unwrap());
        assert!(by_addr.matches(&s4a));
        assert!(!by_addr.matches(&Subject {
            dest_addr: None,
            ..s4a
        }));
    }

    #[test]
    fn first_match_wins_and_names_the_rule() {
        let mut set = RuleSet::new();
        let mut allow_local = Rule::new(Action::Pass);
        allow_local.from = "127.0.0.0/8".parse().unwrap();
        allow_local.log = true;
        let mut block_smtp = Rule::new(Action::Block { reply: 93 });
        block_smtp.to_port = PortMatch::Eq(25);
        set.push(block_smtp);
        set.push(allow_local);
        let smtp = subject(
            "127.0.0.1:5000",
            "192.0.2.1:25",
            None,
            Command::Connect,
            b"",
        );
        let v = set.evaluate(&smtp);
        assert_eq!(v.action, Action::Block { reply: 93 });
        assert_eq!(
            v.source,
            Source::Rule {
                number: 1,
                line: None
            }
        );
        let web = Subject {
            dest_port: 80,
            ..smtp
        };
        let v = set.evaluate(&web);
        assert!(v.is_pass() && v.log);
        assert_eq!(
            v.source,
            Source::Rule {
                number: 2,
                line: None
            }
        );
        let remote = Subject {
            client: "192.0.2.50:5000".parse().unwrap(),
            ..web
        };
        let v = set.evaluate(&remote);
        assert_eq!((v.action, v.source), (Action::BLOCK, Source::Default));
        set.set_default_action(Action::Pass);
        assert!(set.evaluate(&remote).is_pass());
    }

    fn named<'a>(host: Option<&'a str>, addr: Option<&str>, user: &'a [u8]) -> Subject<'a> {
        Subject {
            client: "192.168.1.5:40000".parse().unwrap(),
            dest_addr: addr.map(|a| a.parse().unwrap()),
            dest_host: host,
            dest_port: 443,
            command: Command::Connect,
            user_id: user,
            cert: None,
        }
    }

    #[test]
    fn cert_clauses_match_only_verified_certificate_names() {
        let p: Policy = "block from any to any cert mallory\n\
                         pass from any to any cert alice,bob\n\
                         block from any to any"
            .parse()
            .unwrap();
        let with = |cert| Subject {
            cert,
            ..named(None, Some("192.0.2.1"), b"")
        };
        let number = |s: &Subject<'_>| match p.evaluate(s).source {
            Source::Rule { number, .. } => number,
            other => panic!("{other:?}"),
        };
        assert_eq!(number(&with(Some("mallory"))), 1);
        assert_eq!(number(&with(Some("alice"))), 2);
        assert_eq!(number(&with(Some("bob"))), 2);
        // Names compare exactly; no certificate matches no cert rule.
        assert_eq!(number(&with(Some("Alice"))), 3);
        assert_eq!(number(&with(None)), 3);
        assert!(!p.evaluate(&with(None)).is_pass());
        // The text format round-trips, and a cert rule covers only cert rules
        // naming a subset.
        let rules: Vec<&Rule> = p.rules.rules().iter().collect();
        assert_eq!(rules[1].to_string(), "pass from any to any cert alice,bob");
        let narrower: Rule = "pass from any to any cert alice"
            .parse::<Policy>()
            .unwrap()
            .rules
            .rules()[0]
            .clone();
        assert!(rules[1].covers(&narrower));
        assert!(!narrower.covers(rules[1]));
        assert!(!rules[1].covers(rules[2]));
        assert!(rules[2].covers(rules[1]));
    }

    #[test]
    fn decisions_that_need_no_address_are_made_without_one() {
        let p: Policy = "block from any to any user mallory\n\
                         block from any to loopback\n\
                         pass from any to .example.com\n\
                         block to 10.0.0.0/8\n\
                         pass to any"
            .parse()
            .unwrap();
        // Rule 1 decides from the user id alone.
        let early = p.decide_without_address(&named(Some("x.org"), None, b"mallory"));
        assert_eq!(
            early.map(|v| v.source),
            Some(Source::Rule {
                number: 1,
                line: Some(1)
            })
        );
        // Rule 2 needs the address: no early decision.
        assert_eq!(
            p.decide_without_address(&named(Some("x.org"), None, b"")),
            None
        );
        // With the address, rule 2 or a later one decides.
        let v = p.evaluate(&named(Some("x.org"), Some("::1"), b""));
        assert_eq!(
            v.source,
            Source::Rule {
                number: 2,
                line: Some(2)
            }
        );
        // The lists decide first.
        let mut denied = p.clone();
        denied.add_denial("192.168.0.0/16".parse().unwrap());
        let early = denied.decide_without_address(&named(Some("x.org"), None, b""));
        assert_eq!(early.map(|v| v.source), Some(Source::Denied));
        // A pass by name with only name rules before it is early too.
        let p: Policy = "pass to .example.com\nblock to any".parse().unwrap();
        let early = p.decide_without_address(&named(Some("www.example.com"), None, b""));
        assert!(early.is_some_and(|v| v.is_pass()));
    }

    #[test]
    fn ipv4_rules_see_ipv6_spellings() {
        let p: Policy = "block to 127.0.0.0/8\npass to any".parse().unwrap();
        for a in [
            "::1",
            "0:0:0:0:0:0:0:1",
            "::ffff:127.0.0.1",
            "::127.0.0.5",
            "64:ff9b::7f00:1",
        ] {
            let v = p.evaluate(&named(Some("x"), Some(a), b""));
            assert!(!v.is_pass(), "{a} passed a block on 127.0.0.0/8");
        }
        assert!(p
            .evaluate(&named(Some("x"), Some("2001:db8::1"), b""))
            .is_pass());
    }

    #[test]
    fn shadowed_rules_are_found() {
        let p: Policy = "pass from 10.0.0.0/8 to any\n\
                         block from 10.1.0.0/16 to any port eq 25\n\
                         block to .example.com\n\
                         pass to www.example.com port range 80-90\n\
                         pass from any to any port gt 1000 user alice\n\
                         block from any to any port range 2000-3000 user alice\n\
                         block from any to any port neq 22\n\
                         pass to any port eq 23\n\
                         pass to any port eq 22"
            .parse()
            .unwrap();
        assert_eq!(p.rules.shadowed(), vec![(2, 1), (4, 3), (6, 5), (8, 7)]);
    }
}
