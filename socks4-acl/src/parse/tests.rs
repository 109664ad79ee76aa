//! Unit tests of the text format: every clause, lists, defaults, comments
//! and line numbers, errors, routes, limits on pass rules, address classes,
//! and printing that parses back.

use crate::net::{AddrClass, Netmask};
use crate::policy::Policy;
use crate::route::{Route, Target};
use crate::rule::Source;
use crate::rule::{Action, Command, DestMatch, HostPattern, PortMatch, Rule};

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

#[test]
fn balance_ends_a_via_route() {
    let text =
        "route to any via socks4://10.0.0.1:1080, socks4://10.0.0.2:1080 balance round-robin\n\
                route to .a via socks4a://p:1 user u balance least-connections\n\
                route to .b via socks4a://p:1 balance first\n\
                route to .c via socks4a://p:1\n";
    let p: Policy = text.parse().unwrap();
    let balances: Vec<crate::Balance> = p.routes.routes().map(|r| r.balance).collect();
    assert_eq!(
        balances,
        [
            crate::Balance::RoundRobin,
            crate::Balance::LeastConnections,
            crate::Balance::First,
            crate::Balance::First
        ]
    );
    assert!(p.to_string().contains("balance round-robin"), "{p}");
    let again: Policy = p.to_string().parse().unwrap();
    assert_eq!(again, p);
    for (bad, column, what) in [
        ("route to any via socks4://p:1 balance", 38, "round-robin"),
        (
            "route to any via socks4://p:1 balance random",
            39,
            "round-robin",
        ),
        ("route to any direct balance first", 21, "end of the line"),
    ] {
        let e = bad.parse::<Policy>().unwrap_err().to_string();
        assert!(e.contains(what), "{bad}: {e}");
        assert!(e.contains(&format!("column {column}")), "{bad}: {e}");
    }
}

#[test]
fn exit_clauses_end_a_route_in_any_order() {
    use crate::route::{Exit, SourceAddr};
    let text = "route to 10.0.0.0/8 direct source 192.0.2.11\n\
                route from 10.1.0.0/16 to any direct source 192.0.2.11,192.0.2.12,2001:db8::11 interface eth1\n\
                route to any port eq 443 direct mark 0x10 source 2001:db8:0:1::5/64 random\n\
                route to .corp.example via socks4a://p:1 user u balance round-robin mark 16 interface wg0\n\
                route to .b via socks4a://p:1 source 192.0.2.13 balance first\n\
                route to any direct\n";
    let p: Policy = text.parse().unwrap();
    let exits: Vec<&Exit> = p.routes.routes().map(|r| &r.exit).collect();
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    assert_eq!(exits[0].source, SourceAddr::Rotate(vec![ip("192.0.2.11")]));
    assert_eq!(
        *exits[1],
        Exit {
            source: SourceAddr::Rotate(vec![
                ip("192.0.2.11"),
                ip("192.0.2.12"),
                ip("2001:db8::11")
            ]),
            interface: Some("eth1".into()),
            mark: None,
        }
    );
    // The prefix is kept as a network: its host bits cleared.
    assert_eq!(
        exits[2].source,
        SourceAddr::Random("2001:db8:0:1::/64".parse().unwrap())
    );
    assert_eq!(exits[2].mark, Some(0x10));
    assert!(exits[2].source.has_family(false) && !exits[2].source.has_family(true));
    assert_eq!(exits[3].mark, Some(16));
    assert_eq!(exits[3].interface.as_deref(), Some("wg0"));
    assert_eq!(
        p.routes.routes().nth(3).unwrap().balance,
        crate::Balance::RoundRobin
    );
    assert_eq!(exits[4].source, SourceAddr::Rotate(vec![ip("192.0.2.13")]));
    assert!(exits[5].is_default() && exits[5].capabilities().is_empty());
    assert_eq!(exits[2].capabilities().len(), 1);
    assert!(exits[2].capabilities()[0].contains("CAP_NET_ADMIN"));
    // Printed as written (mark in hex), and parsed back the same.
    let shown = p.to_string();
    assert!(
        shown.contains(
            "route from any to any port eq 443 direct source 2001:db8:0:1::/64 random mark 0x10"
        ),
        "{shown}"
    );
    assert!(
        shown.contains("balance round-robin interface wg0 mark 0x10"),
        "{shown}"
    );
    assert_eq!(shown.parse::<Policy>().unwrap(), p);
}

#[test]
fn exit_clause_errors_name_line_and_column() {
    for (bad, column, what) in [
        ("route to any direct source", 27, "source addresses"),
        (
            "route to any direct source 192.0.2.1,x",
            28,
            "source addresses",
        ),
        ("route to any direct source 0.0.0.0", 28, "source addresses"),
        (
            "route to any direct source 192.0.2.1,192.0.2.1",
            28,
            "each once",
        ),
        (
            "route to any direct source 10.0.0.0/8 random",
            28,
            "an IPv6 prefix",
        ),
        (
            "route to any direct source 2001:db8::1 random",
            28,
            "an IPv6 prefix",
        ),
        ("route to any direct interface", 30, "an interface name"),
        ("route to any direct interface a/b", 31, "an interface name"),
        (
            "route to any direct interface abcdefghijklmnop",
            31,
            "an interface name",
        ),
        ("route to any direct mark", 25, "a firewall mark"),
        ("route to any direct mark 0", 26, "a firewall mark"),
        (
            "route to any direct mark 0x100000000",
            26,
            "a firewall mark",
        ),
        ("route to any direct mark ten", 26, "a firewall mark"),
        ("route to any direct mark 1 mark 2", 28, "each clause once"),
        (
            "route to any direct source 192.0.2.1 bogus",
            38,
            "source, interface or mark",
        ),
        (
            "route to any via socks4://p:1 mark 1 user u",
            38,
            "balance, source",
        ),
    ] {
        let e = bad.parse::<Policy>().unwrap_err();
        assert_eq!(e.line, 1, "{bad}: {e}");
        assert_eq!(e.column, column, "{bad}: {e}");
        assert!(e.to_string().contains(what), "{bad}: {e}");
    }
    // A second line's error names it.
    let e = "route to any direct\nroute to any direct mark x"
        .parse::<Policy>()
        .unwrap_err();
    assert_eq!((e.line, e.column), (2, 26), "{e}");
}
