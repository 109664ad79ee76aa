//! Shadowed rules: a rule placed after one that matches every request it
//! matches can never decide anything. [`Rule::covers`] compares two rules,
//! conservatively; [`RuleSet::shadowed`] lists the hidden ones.

use super::condition::{DestMatch, HostPattern, PortMatch};
use super::matching::Rule;
use super::set::RuleSet;
use crate::net::Netmask;

impl Rule {
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
}

impl RuleSet {
    /// Rules that can never decide anything because an earlier rule matches
    /// every request they match: (the shadowed rule's number, the earlier
    /// rule's number), from 1.
    pub fn shadowed(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for (j, later) in self.rules().iter().enumerate() {
            if let Some(i) = self.rules()[..j].iter().position(|r| r.covers(later)) {
                out.push((j + 1, i + 1));
            }
        }
        out
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
