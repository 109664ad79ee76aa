//! [`Rule`]: one access rule, its conditions and options, and whether it
//! matches a [`Subject`] (with or without the destination's address).

use super::condition::{DestMatch, PortMatch};
use super::subject::{Command, Subject};
use super::verdict::Action;
use crate::limit::{Bandwidth, Quota};
use crate::net::{canonical, Netmask};

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

    /// Whether the rule may match a CONNECT (or BIND, by `command`) to this
    /// destination for some client: its destination, port and command
    /// conditions are checked, its client conditions (source, user,
    /// certificate) are taken to hold. A destination given by name (`addr`
    /// `None`) may match an address condition once resolved. For checks
    /// made before any client comes (a route that a fixed destination may
    /// take).
    ///
    /// ```
    /// use socks4_acl::{Command, Policy};
    /// let p: Policy = "route from 10.0.0.0/8 to any port eq 443 via http://127.0.0.1:3128".parse()?;
    /// let route = p.routes.routes().next().unwrap();
    /// let c = &route.conditions;
    /// assert!(c.may_match_destination(Some("example.com"), None, 443, Command::Connect));
    /// assert!(!c.may_match_destination(Some("example.com"), None, 80, Command::Connect));
    /// # Ok::<(), socks4_acl::ParseError>(())
    /// ```
    pub fn may_match_destination(
        &self,
        host: Option<&str>,
        addr: Option<std::net::IpAddr>,
        port: u16,
        command: Command,
    ) -> bool {
        let to = match addr {
            Some(a) => self.to.matches(Some(canonical(a)), host),
            None => self.to.needs_address() || self.to.matches(None, host),
        };
        to && self.to_port.matches(port)
            && (self.commands.is_empty() || self.commands.contains(&command))
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
    pub(super) fn matches_but_address(&self, s: &Subject<'_>) -> bool {
        self.from.contains(s.client.ip())
            && self.from_port.matches(s.client.port())
            && (self.to.needs_address() || self.to.matches(None, s.dest_host))
            && self.to_port.matches(s.dest_port)
            && (self.commands.is_empty() || self.commands.contains(&s.command))
            && (self.users.is_empty() || self.users.iter().any(|u| u.as_bytes() == s.user_id))
            && (self.certs.is_empty() || s.cert.is_some_and(|c| self.certs.iter().any(|n| n == c)))
    }

    /// Whether the rule matches every request from a source it matches: no
    /// condition on the destination, command, user id or certificate.
    pub(super) fn blocks_everything_from_its_source(&self) -> bool {
        self.to == DestMatch::Any
            && self.to_port == PortMatch::Any
            && self.commands.is_empty()
            && self.users.is_empty()
            && self.certs.is_empty()
    }
}
