//! [`Policy`]: the denial and exemption lists of the POE SOCKS server this crate
//! follows (Perl's `POE::Component::Server::SOCKS`) together with the
//! ordered rules, and the secure default a server uses when nothing is configured.

use crate::net::{loopback, NetSet, Netmask};
use crate::route::RouteSet;
use crate::rule::{Action, DestMatch, Rule, RuleSet, Source, Subject, Verdict};
use core::fmt;
use std::net::{IpAddr, SocketAddr};

/// A server's whole access policy.
///
/// A request is decided in two steps:
/// 1. **Lists** (as in the POE SOCKS server's API): a client address that matches a denial and no
///    exemption is refused with 91 ([`Source::Denied`]).
/// 2. **Rules**: the first matching rule decides; no match means the rule set's
///    default action (block with 91 unless set otherwise).
///
/// Both lists can be changed while a server runs, with that server's operations:
/// [`add_denial`](Self::add_denial), [`del_denial`](Self::del_denial),
/// [`denied`](Self::denied), and the same three for exemptions.
///
/// The POE SOCKS server's synopsis (deny `any`, exempt 127.0.0.1 and
/// 192.168.1.0/24):
///
/// ```
/// use socks4_acl::{Netmask, Policy};
/// let mut p: Policy = "pass from any to any".parse()?;
/// p.add_denial("any".parse()?);
/// p.add_exemption("127.0.0.1".parse()?);
/// p.add_exemption("192.168.1.0/24".parse()?);
/// assert!(!p.denied("127.0.0.1".parse()?));
/// assert!(!p.denied("192.168.1.77".parse()?));
/// assert!(p.denied("192.168.2.1".parse()?));
/// assert!(p.denied("127.0.0.2".parse()?));
/// assert!(p.denied("2001:db8::1".parse()?));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Client nets refused unless exempted.
    pub denials: NetSet,
    /// Client nets exempted from the denials.
    pub exemptions: NetSet,
    /// The ordered rules and the default action.
    pub rules: RuleSet,
    /// Which way passed requests leave (direct unless a route says).
    pub routes: RouteSet,
}

impl Policy {
    /// No lists and no rules: everything is blocked. See
    /// [`loopback_only`](Self::loopback_only) for the usual starting point.
    pub fn empty() -> Policy {
        Policy {
            denials: NetSet::new(),
            exemptions: NetSet::new(),
            rules: RuleSet::new(),
            routes: RouteSet::new(),
        }
    }

    /// The policy for a server whose user configured nothing: clients from
    /// loopback (`127.0.0.0/8`, `::1`) may go anywhere, everyone else is blocked.
    /// Never an open proxy.
    ///
    /// ```
    /// use socks4_acl::Policy;
    /// let p = Policy::loopback_only();
    /// assert_eq!(p.to_string(), "pass from 127.0.0.0/8 to any\npass from ::1/128 to any\n");
    /// ```
    pub fn loopback_only() -> Policy {
        let mut policy = Policy::empty();
        for net in loopback() {
            let mut rule = Rule::new(Action::Pass);
            rule.from = net;
            rule.to = DestMatch::Any;
            policy.rules.push(rule);
        }
        policy
    }

    /// Adds another policy's lists and rules after this one's (rules keep their
    /// source lines); its default action replaces this one's unless it is the
    /// plain block.
    pub fn append(&mut self, other: Policy) {
        self.rules.append(other.rules);
        self.routes.append(other.routes);
        self.denials.extend(other.denials.iter());
        self.exemptions.extend(other.exemptions.iter());
    }

    /// Puts another policy's rules and routes before these (so that they
    /// decide first) and adds its list entries.
    pub fn prepend(&mut self, other: Policy) {
        self.rules.prepend(other.rules);
        self.routes.prepend(other.routes);
        self.denials.extend(other.denials.iter());
        self.exemptions.extend(other.exemptions.iter());
    }

    /// Decides a request: the lists first, then the rules.
    pub fn evaluate(&self, s: &Subject<'_>) -> Verdict {
        if self.denied(s.client.ip()) {
            return Self::denied_verdict();
        }
        self.rules.evaluate(s)
    }

    /// Decides a request before its destination's address is known, where that
    /// can be done: the lists, then [`RuleSet::decide_without_address`]. `None`
    /// when the decision depends on what the name resolves to.
    pub fn decide_without_address(&self, s: &Subject<'_>) -> Option<Verdict> {
        if self.denied(s.client.ip()) {
            return Some(Self::denied_verdict());
        }
        self.rules.decide_without_address(s)
    }

    /// The verdict on every request from `client`, when its address and port
    /// alone decide it (a server asks at accept, before TLS or reading a
    /// request): `Some` block when the lists deny it without exemption, or
    /// when no rule can pass it ([`RuleSet::decide_by_source`], conservative:
    /// conditions unknown at accept, such as a user id or a certificate,
    /// count as met); `None` when some request of its could pass.
    pub fn decide_by_source(&self, client: SocketAddr) -> Option<Verdict> {
        if self.denied(client.ip()) {
            return Some(Self::denied_verdict());
        }
        self.rules.decide_by_source(client)
    }

    /// Whether any request from `client` could be passed, as far as its
    /// address and port tell: [`decide_by_source`](Self::decide_by_source)
    /// decides nothing.
    pub fn could_pass_from(&self, client: SocketAddr) -> bool {
        self.decide_by_source(client).is_none()
    }

    fn denied_verdict() -> Verdict {
        Verdict {
            action: Action::BLOCK,
            source: Source::Denied,
            require_ident: false,
            log: false,
            notify: false,
            bandwidth: None,
            quota: None,
        }
    }

    /// Whether only loopback clients can ever be passed: `true` for
    /// [`loopback_only`](Self::loopback_only), `false` as soon as some rule (or
    /// the default action) could pass a client from outside loopback. A server
    /// uses it to refuse to listen on a public address without a deliberate
    /// policy.
    pub fn only_loopback_clients(&self) -> bool {
        let loopback = loopback();
        let pass_rules_local = self.rules.rules().iter().all(|r| {
            !r.action.is_pass()
                || matches!(r.from, Netmask::Net(net) if loopback.iter().any(|l| match l {
                    Netmask::Net(l) => l.contains(&net),
                    Netmask::Any => false,
                }))
        });
        pass_rules_local && !self.rules.default_action().is_pass()
    }

    /// Adds a client netmask to the denial list; `false` when already there.
    pub fn add_denial(&mut self, mask: Netmask) -> bool {
        self.denials.insert(mask)
    }

    /// Deletes a netmask from the denial list; `false` (a no-op) when not there.
    pub fn del_denial(&mut self, mask: &Netmask) -> bool {
        self.denials.remove(mask)
    }

    /// Whether a client address is refused by the lists: it matches a denial and
    /// no exemption.
    pub fn denied(&self, addr: IpAddr) -> bool {
        self.denials.contains(addr) && !self.exemptions.contains(addr)
    }

    /// Adds a client netmask to the exemption list; `false` when already there.
    pub fn add_exemption(&mut self, mask: Netmask) -> bool {
        self.exemptions.insert(mask)
    }

    /// Deletes a netmask from the exemption list; `false` (a no-op) when not there.
    pub fn del_exemption(&mut self, mask: &Netmask) -> bool {
        self.exemptions.remove(mask)
    }

    /// Whether a client address matches an exemption.
    pub fn exempted(&self, addr: IpAddr) -> bool {
        self.exemptions.contains(addr)
    }
}

impl Policy {
    /// The policy in the text format with every parent's password shown as
    /// `***` (so it does not parse back to this policy): what `--check`,
    /// the control socket and logs show.
    pub fn redacted(&self) -> String {
        let mut text = String::new();
        for line in self.to_string().lines() {
            if !line.starts_with("route ") {
                text.push_str(line);
                text.push('\n');
            }
        }
        for route in self.routes.routes() {
            text.push_str(&format!("{}\n", route.redacted()));
        }
        text
    }
}

impl fmt::Display for Policy {
    /// The text format: `default` (when not plain block), then denials,
    /// exemptions and rules, one per line. It parses back to an equal policy.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let default = self.rules.default_action();
        if default != Action::BLOCK {
            writeln!(f, "default {default}")?;
        }
        for net in self.denials.iter() {
            writeln!(f, "deny {net}")?;
        }
        for net in self.exemptions.iter() {
            writeln!(f, "exempt {net}")?;
        }
        for rule in self.rules.rules() {
            writeln!(f, "{rule}")?;
        }
        for route in self.routes.routes() {
            writeln!(f, "{route}")?;
        }
        Ok(())
    }
}
