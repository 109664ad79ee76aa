//! Unit tests of the rules: each condition, first match, host rules and
//! address rules, certificate clauses, decisions without an address, IPv6
//! spellings of IPv4 addresses and shadowed rules.

use super::*;
use crate::Policy;
use std::net::SocketAddr;

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

#[test]
fn whether_a_source_could_ever_pass_is_known_at_accept() {
    let policy: Policy = "block from 10.0.0.9 to any\n\
         block from 10.0.0.0/8 to 192.0.2.0/24\n\
         pass from 10.0.0.0/8 to any user alice\n\
         pass from 172.16.0.0/12 to any port eq 443\n\
         block from any to any\n\
         pass from 192.168.0.0/16 to any\n\
         deny 172.16.9.0/24\n\
         exempt 172.16.9.9\n"
        .parse()
        .unwrap();
    let could = |a: &str| policy.could_pass_from(a.parse().unwrap());
    assert!(!could("10.0.0.9:1"), "a block rule for everything from it");
    assert!(could("10.0.0.1:1"), "a rule with a user condition may pass");
    assert!(could("172.16.1.1:1"), "a destination condition may pass");
    assert!(!could("172.16.9.1:1"), "denied without exemption");
    assert!(could("172.16.9.9:1"), "denied but exempted");
    assert!(!could("192.168.1.1:1"), "behind a block rule for everyone");
    assert!(!could("198.51.100.1:1"), "no rule, default block");
    assert!(
        Policy::empty().could_pass_from("198.51.100.1:1".parse().unwrap())
            == Policy::empty().rules.default_action().is_pass()
    );
}
