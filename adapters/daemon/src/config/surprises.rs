//! Policies that do something other than what they seem to, for `--check` and
//! the start's warnings: a proxy open to everyone on a public listener,
//! however "everyone" is spelled (`any`, `0.0.0.0/0`, `::/0`,
//! `::ffff:0:0/96`), or open to a net wider than a /8; and a policy in which
//! nothing can pass (a rules file of `block` lines only replaces the loopback
//! default, and then everyone is refused).

use crate::config::settings::Settings;
use socks4_acl::IpNet;
use socks4_acl::{Action, Netmask};

/// The narrowest net a client rule may name on a public listener without a
/// warning: a /8 (16 million IPv4 addresses). Wider nets are nearly everyone.
pub const WIDEST_QUIET_PREFIX: u8 = 8;

/// How much of the address space a client net covers, for the open-proxy
/// warning: everyone, or a net wider than [`WIDEST_QUIET_PREFIX`] bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Every client: `any`, `0.0.0.0/0`, `::/0`, or every IPv4 client as an
    /// IPv6 net (`::ffff:0:0/96`, or a net around it such as `::/64`).
    Everyone,
    /// A net with a prefix shorter than /8 (IPv4, or IPv4-mapped IPv6
    /// counted in IPv4 bits), or shorter than /8 for other IPv6 nets.
    Wide,
    /// Anything narrower.
    Narrow,
}

/// `::ffff:0:0/96`: every IPv4 address, written as IPv4-mapped IPv6.
fn mapped_ipv4() -> IpNet {
    "::ffff:0:0/96".parse().expect("a net")
}

/// How much of the address space `net` covers.
pub fn reach(net: &Netmask) -> Reach {
    let Netmask::Net(net) = net else {
        return Reach::Everyone;
    };
    let mapped = mapped_ipv4();
    if net.prefix_len() == 0 || net.contains(&mapped) {
        return Reach::Everyone;
    }
    // An IPv4-mapped net counts in IPv4 bits: ::ffff:0:0/97 is 0.0.0.0/1.
    let bits = if mapped.contains(net) {
        net.prefix_len() - 96
    } else {
        net.prefix_len()
    };
    if bits < WIDEST_QUIET_PREFIX {
        Reach::Wide
    } else {
        Reach::Narrow
    }
}

/// The warnings about the policy: open to everyone or to a wide net on a
/// public listener, or nothing can pass.
pub fn warnings(s: &Settings) -> Vec<String> {
    let mut warnings = open_proxy(s);
    warnings.extend(nothing_passes(s));
    warnings
}

/// A rule (or the default) that passes any client, or a net wider than a /8,
/// with a listener outside loopback.
fn open_proxy(s: &Settings) -> Vec<String> {
    let mut warnings = Vec::new();
    let public = s.public_listeners();
    let policy = &s.server.policy;
    if public.is_empty() {
        return warnings;
    }
    let on = public.join(", ");
    for (i, rule) in policy.rules.rules().iter().enumerate() {
        if rule.action != Action::Pass {
            continue;
        }
        let n = i + 1;
        match reach(&rule.from) {
            Reach::Everyone => warnings.push(format!(
                "open proxy: rule {n} (`{rule}`) passes any client ({} is everyone), and the \
                 server listens on {on}",
                rule.from
            )),
            Reach::Wide => warnings.push(format!(
                "nearly open proxy: rule {n} (`{rule}`) passes every client in {}, a net wider \
                 than a /{WIDEST_QUIET_PREFIX}, and the server listens on {on}",
                rule.from
            )),
            Reach::Narrow => {}
        }
    }
    if policy.rules.default_action().is_pass() {
        warnings.push(format!(
            "open proxy: `default pass` passes any client no rule blocks, and the server listens on {on}"
        ));
    }
    warnings
}

/// A policy that refuses every request: no rule passes and the default
/// blocks, or the denial list holds everyone and nobody is exempt.
fn nothing_passes(s: &Settings) -> Option<String> {
    let policy = &s.server.policy;
    let rules = policy.rules.rules();
    if !rules.iter().any(|r| r.action.is_pass()) && !policy.rules.default_action().is_pass() {
        return Some(format!(
            "no rule passes anything: every request is refused ({} rules, all `block`; rules of \
             your own replace the loopback default, so a rules file of `block` lines only \
             denies everyone: add the `pass` rules, e.g. `pass from 127.0.0.0/8 to any`)",
            rules.len()
        ));
    }
    let everyone_denied = policy.denials.iter().any(|n| reach(&n) == Reach::Everyone);
    if everyone_denied && policy.exemptions.is_empty() {
        return Some(
            "the denial list holds everyone and nothing is exempt: every request is refused \
             before any rule is read (exempt who may come, e.g. `--exempt 127.0.0.1`)"
                .to_owned(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Netmask {
        s.parse().unwrap()
    }

    #[test]
    fn every_spelling_of_everyone_reaches_everyone() {
        for everyone in [
            "any",
            "0.0.0.0/0",
            "::/0",
            "::ffff:0:0/96",
            "::/64",
            "0.0.0.0 0.0.0.0",
        ] {
            assert_eq!(reach(&net(everyone)), Reach::Everyone, "{everyone}");
        }
        for wide in [
            "0.0.0.0/1",
            "10.0.0.0/7",
            "::ffff:0:0/97",
            "::ffff:10.0.0.0/103",
            "2000::/3",
        ] {
            assert_eq!(reach(&net(wide)), Reach::Wide, "{wide}");
        }
        for narrow in [
            "10.0.0.0/8",
            "192.168.1.0/24",
            "::ffff:10.0.0.0/104",
            "2001:db8::/32",
        ] {
            assert_eq!(reach(&net(narrow)), Reach::Narrow, "{narrow}");
        }
    }
}
