//! [`RuleSet`]: rules in order with their source lines and the default
//! action; the first matching rule decides, with or without the
//! destination's address.

use super::matching::Rule;
use super::subject::Subject;
use super::verdict::{Action, Source, Verdict};

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

    /// The verdict on every request from `client`, when its address and port
    /// alone decide it (at accept, before its request): `Some` block verdict
    /// when no rule can pass it, `None` when some request of its could pass.
    /// Conservative: a pass rule whose source matches counts whatever its
    /// other conditions (destination, command, user id, certificate); only a
    /// block rule that matches everything from `client`, or the default
    /// action, decides.
    pub fn decide_by_source(&self, client: std::net::SocketAddr) -> Option<Verdict> {
        for (i, rule) in self.rules.iter().enumerate() {
            if !rule.from.contains(client.ip()) || !rule.from_port.matches(client.port()) {
                continue;
            }
            if rule.action.is_pass() {
                return None;
            }
            if rule.blocks_everything_from_its_source() {
                return Some(self.verdict(i));
            }
        }
        (!self.default.is_pass()).then(|| self.default_verdict())
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
