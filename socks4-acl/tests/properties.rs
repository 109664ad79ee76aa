//! Property tests: the fast `NetSet` agrees with a naive linear scan through any
//! sequence of adds and deletes; a policy prints to text that parses back to it;
//! and the POE SOCKS server's synopsis decides as that server's documentation
//! says.

use proptest::prelude::*;
use socks4_acl::{
    Action, Command, DestMatch, HostPattern, IpNet, NetSet, Netmask, Policy, PortMatch, Rule,
    Source, Subject,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Nets crowded into a small space so that nesting and overlap are common.
fn arb_net() -> impl Strategy<Value = Netmask> {
    prop_oneof![
        1 => Just(Netmask::Any),
        6 => (any::<u16>(), 16u8..=32).prop_map(|(low, len)| {
            let addr = Ipv4Addr::from(0x0a00_0000 | u32::from(low));
            Netmask::new(IpNet::new(IpAddr::V4(addr), len).unwrap())
        }),
        4 => (any::<u16>(), 112u8..=128).prop_map(|(low, len)| {
            let addr = Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(low));
            Netmask::new(IpNet::new(IpAddr::V6(addr), len).unwrap())
        }),
    ]
}

fn arb_addr() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u16>().prop_map(|low| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | u32::from(low)))),
        any::<u16>()
            .prop_map(|low| IpAddr::V6(Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(low)))),
        any::<u16>().prop_map(|low| IpAddr::V6(
            Ipv4Addr::from(0x0a00_0000 | u32::from(low)).to_ipv6_mapped()
        )),
        any::<u32>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Add(Netmask),
    Del(Netmask),
    Bulk(Vec<Netmask>),
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => arb_net().prop_map(Op::Add),
        3 => arb_net().prop_map(Op::Del),
        1 => proptest::collection::vec(arb_net(), 0..20).prop_map(Op::Bulk),
    ]
}

proptest! {
    #[test]
    fn netset_agrees_with_a_linear_scan(
        ops in proptest::collection::vec(arb_op(), 0..60),
        probes in proptest::collection::vec(arb_addr(), 1..40),
    ) {
        let mut fast = NetSet::new();
        let mut naive: Vec<Netmask> = Vec::new();
        for op in ops {
            match op {
                Op::Add(n) => {
                    let fresh = !naive.contains(&n);
                    prop_assert_eq!(fast.insert(n), fresh);
                    if fresh { naive.push(n) }
                }
                Op::Del(n) => {
                    let present = naive.contains(&n);
                    prop_assert_eq!(fast.remove(&n), present);
                    naive.retain(|m| *m != n);
                }
                Op::Bulk(ns) => {
                    fast.extend(ns.iter().copied());
                    for n in ns {
                        if !naive.contains(&n) { naive.push(n) }
                    }
                }
            }
            prop_assert_eq!(fast.len(), naive.len());
            for &a in &probes {
                prop_assert_eq!(fast.contains(a), naive.iter().any(|n| n.contains(a)), "{}", a);
            }
        }
        let mut listed: Vec<Netmask> = fast.iter().collect();
        listed.sort();
        naive.sort();
        prop_assert_eq!(listed, naive);
    }
}

fn arb_port() -> impl Strategy<Value = PortMatch> {
    prop_oneof![
        Just(PortMatch::Any),
        any::<u16>().prop_map(PortMatch::Eq),
        any::<u16>().prop_map(PortMatch::Neq),
        any::<u16>().prop_map(PortMatch::Lt),
        any::<u16>().prop_map(PortMatch::Gt),
        (any::<u16>(), any::<u16>()).prop_map(|(a, b)| PortMatch::Range(a.min(b), a.max(b))),
    ]
}

fn arb_dest() -> impl Strategy<Value = DestMatch> {
    prop_oneof![
        Just(DestMatch::Any),
        arb_net()
            .prop_filter("any is DestMatch::Any", |n| *n != Netmask::Any)
            .prop_map(DestMatch::Net),
        "[a-z0-9][a-z0-9-]{0,8}(\\.[a-z0-9-]{1,8}){0,3}"
            .prop_map(|h| DestMatch::Host(HostPattern::Exact(h))),
        "[a-z0-9-]{1,8}(\\.[a-z0-9-]{1,8}){0,3}"
            .prop_map(|h| DestMatch::Host(HostPattern::Domain(h))),
    ]
}

prop_compose! {
    fn arb_rule()(
        block in proptest::option::of(91u8..=93),
        from in arb_net(),
        from_port in arb_port(),
        to in arb_dest(),
        to_port in arb_port(),
        commands in prop_oneof![Just(vec![]), Just(vec![Command::Connect]), Just(vec![Command::Bind]), Just(vec![Command::Bind, Command::Connect])],
        users in proptest::collection::vec("[A-Za-z0-9_.@-]{1,8}", 0..3),
        require_ident in any::<bool>(),
        log in any::<bool>(),
    ) -> Rule {
        let mut r = Rule::new(block.map_or(Action::Pass, |reply| Action::Block { reply }));
        r.from = from;
        r.from_port = from_port;
        r.to = to;
        r.to_port = to_port;
        r.commands = commands;
        r.users = users;
        r.require_ident = require_ident;
        r.log = log;
        r
    }
}

prop_compose! {
    fn arb_policy()(
        denials in proptest::collection::vec(arb_net(), 0..4),
        exemptions in proptest::collection::vec(arb_net(), 0..4),
        rules in proptest::collection::vec(arb_rule(), 0..6),
        default in prop_oneof![Just(Action::Pass), (91u8..=93).prop_map(|reply| Action::Block { reply })],
    ) -> Policy {
        let mut p = Policy::empty();
        p.denials.extend(denials);
        p.exemptions.extend(exemptions);
        for r in rules { p.rules.push(r) }
        p.rules.set_default_action(default);
        p
    }
}

proptest! {
    #[test]
    fn display_parses_back_to_the_same_policy(p in arb_policy()) {
        let text = p.to_string();
        let again: Policy = text.parse().map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(&again, &p);
        prop_assert_eq!(again.to_string(), text);
    }
}

#[test]
fn the_poe_server_synopsis() {
    // add_denial(any); add_exemption(127.0.0.1); add_exemption(192.168.1.0/24)
    let mut p: Policy = "pass from any to any".parse().unwrap();
    assert!(p.add_denial("any".parse().unwrap()));
    assert!(p.add_exemption("127.0.0.1".parse().unwrap()));
    assert!(p.add_exemption("192.168.1.0/24".parse().unwrap()));
    let table = [
        ("127.0.0.1", true),
        ("127.0.0.2", false),
        ("192.168.1.0", true),
        ("192.168.1.255", true),
        ("192.168.0.255", false),
        ("10.0.0.1", false),
        ("::1", false),
        ("::ffff:127.0.0.1", true),
    ];
    for (addr, gets_in) in table {
        let ip: IpAddr = addr.parse().unwrap();
        assert_eq!(!p.denied(ip), gets_in, "{addr}");
        let s = Subject {
            client: (ip, 40000).into(),
            dest_addr: Some("192.0.2.1".parse().unwrap()),
            dest_host: None,
            dest_port: 80,
            command: Command::Connect,
            user_id: b"",
            cert: None,
        };
        let v = p.evaluate(&s);
        assert_eq!(v.is_pass(), gets_in, "{addr}");
        if !gets_in {
            assert_eq!(v.source, Source::Denied);
            assert_eq!(v.action, Action::Block { reply: 91 });
        }
    }
    // Deleting what is not there is a no-op that says so.
    assert!(!p.del_denial(&"10.0.0.0/8".parse().unwrap()));
    assert!(p.del_exemption(&"127.0.0.1".parse().unwrap()));
    assert!(!p.del_exemption(&"127.0.0.1".parse().unwrap()));
    assert!(p.denied("127.0.0.1".parse().unwrap()));
    assert!(p.exempted("192.168.1.3".parse().unwrap()));
    assert!(p.del_denial(&Netmask::Any));
    assert!(!p.denied("10.0.0.1".parse().unwrap()));
}

#[test]
fn loopback_only_is_the_secure_default() {
    let p = Policy::loopback_only();
    assert!(p.only_loopback_clients());
    let subject = |client: &str| Subject {
        client: client.parse().unwrap(),
        dest_addr: Some("192.0.2.1".parse().unwrap()),
        dest_host: None,
        dest_port: 80,
        command: Command::Connect,
        user_id: b"",
        cert: None,
    };
    assert!(p.evaluate(&subject("127.0.0.1:5000")).is_pass());
    assert!(p.evaluate(&subject("127.8.9.10:5000")).is_pass());
    assert!(p.evaluate(&subject("[::1]:5000")).is_pass());
    assert!(p.evaluate(&subject("[::ffff:127.0.0.1]:5000")).is_pass());
    for outsider in [
        "10.0.0.1:5000",
        "192.168.1.1:5000",
        "[2001:db8::1]:5000",
        "0.0.0.0:5000",
    ] {
        let v = p.evaluate(&subject(outsider));
        assert_eq!(
            (v.action, v.source),
            (Action::Block { reply: 91 }, Source::Default),
            "{outsider}"
        );
    }
    let open: Policy = "pass from any to any".parse().unwrap();
    assert!(!open.only_loopback_clients());
    let lan: Policy = "pass from 127.0.0.1\npass from 192.168.0.0/16"
        .parse()
        .unwrap();
    assert!(!lan.only_loopback_clients());
    let default_pass: Policy = "default pass".parse().unwrap();
    assert!(!default_pass.only_loopback_clients());
}

/// Nets anywhere in the address space, so that large sets stay large (the bucket
/// index engages past a few hundred disjoint ranges).
fn arb_spread_net() -> impl Strategy<Value = Netmask> {
    prop_oneof![
        (any::<u32>(), 8u8..=32)
            .prop_map(|(a, len)| Netmask::new(IpNet::new(IpAddr::V4(a.into()), len).unwrap())),
        (any::<u128>(), 8u8..=128)
            .prop_map(|(a, len)| Netmask::new(IpNet::new(IpAddr::V6(a.into()), len).unwrap())),
    ]
}

/// Addresses at and around a net's edges, where an off-by-one would show.
fn edges(n: &Netmask) -> Vec<IpAddr> {
    let Netmask::Net(net) = n else { return vec![] };
    match net {
        IpNet::V4(v4) => {
            let (s, e) = (u32::from(v4.network()), u32::from(v4.broadcast()));
            [s.wrapping_sub(1), s, e, e.wrapping_add(1)]
                .map(|a| IpAddr::V4(a.into()))
                .to_vec()
        }
        IpNet::V6(v6) => {
            let (s, e) = (u128::from(v6.network()), u128::from(v6.broadcast()));
            [s.wrapping_sub(1), s, e, e.wrapping_add(1)]
                .map(|a| IpAddr::V6(a.into()))
                .to_vec()
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn large_netset_agrees_with_a_linear_scan(
        initial in proptest::collection::vec(arb_spread_net(), 300..900),
        adds in proptest::collection::vec(arb_spread_net(), 0..20),
        deletes in proptest::collection::vec(any::<prop::sample::Index>(), 0..20),
        probes in proptest::collection::vec(any::<u32>(), 0..100),
    ) {
        let mut fast: NetSet = initial.iter().copied().collect();
        let mut naive = initial.clone();
        naive.sort();
        naive.dedup();
        for n in adds {
            if fast.insert(n) { naive.push(n) }
        }
        for d in deletes {
            let n = naive[d.index(naive.len())];
            prop_assert!(fast.remove(&n));
            naive.retain(|m| *m != n);
        }
        prop_assert!(fast.search_len() >= 256 || naive.len() < 256);
        let mut addrs: Vec<IpAddr> = initial.iter().flat_map(edges).collect();
        addrs.extend(probes.into_iter().map(|a| IpAddr::V4(a.into())));
        for a in addrs {
            prop_assert_eq!(fast.contains(a), naive.iter().any(|n| n.contains(a)), "{}", a);
        }
    }
}

/// An IPv4 address in one of the nets rules most often guard.
fn arb_guarded_v4() -> impl Strategy<Value = Ipv4Addr> {
    prop_oneof![
        any::<u32>().prop_map(|x| Ipv4Addr::from(0x7f00_0000 | (x & 0x00ff_ffff))),
        any::<u32>().prop_map(|x| Ipv4Addr::from(0x0a00_0000 | (x & 0x00ff_ffff))),
        any::<u32>().prop_map(|x| Ipv4Addr::from(0xac10_0000 | (x & 0x000f_ffff))),
        any::<u32>().prop_map(|x| Ipv4Addr::from(0xc0a8_0000 | (x & 0x0000_ffff))),
        Just(Ipv4Addr::LOCALHOST),
    ]
}

/// The IPv6 spellings of an IPv4 address that reach it.
fn ipv6_spellings(v4: Ipv4Addr) -> Vec<IpAddr> {
    let low = u128::from(u32::from(v4));
    let mut out = vec![
        IpAddr::V6(v4.to_ipv6_mapped()),
        IpAddr::V6(Ipv6Addr::from(low)),
        IpAddr::V6(Ipv6Addr::from(0x0064_ff9b_u128 << 96 | low)),
    ];
    if v4 == Ipv4Addr::LOCALHOST {
        out.push(IpAddr::V6(Ipv6Addr::LOCALHOST));
    }
    out
}

proptest! {
    /// For every rule blocking an IPv4 loopback or private net (by net or by
    /// class), no IPv6 spelling of an address in it passes where the IPv4
    /// address is blocked.
    #[test]
    fn no_ipv6_spelling_gets_around_an_ipv4_block(
        v4 in arb_guarded_v4(),
        len in 0u8..=32,
        class in 0usize..3,
        by_class in any::<bool>(),
    ) {
        let target = if by_class {
            ["loopback", "private", "unspecified"][class].to_owned()
        } else {
            IpNet::new(IpAddr::V4(v4), len).unwrap().trunc().to_string()
        };
        let policy: Policy = format!("block from any to {target}\npass from any to any").parse().unwrap();
        let subject = |addr: IpAddr| Subject {
            client: "192.0.2.1:5000".parse().unwrap(),
            dest_addr: Some(addr),
            dest_host: Some("name.example"),
            dest_port: 80,
            command: Command::Connect,
            user_id: b"",
            cert: None,
        };
        if !policy.evaluate(&subject(IpAddr::V4(v4))).is_pass() {
            for spelling in ipv6_spellings(v4) {
                prop_assert!(
                    !policy.evaluate(&subject(spelling)).is_pass(),
                    "{} passes `block to {}` while {} is blocked", spelling, target, v4
                );
            }
        }
    }

    /// A decision made before resolving is the one made after, whatever the
    /// name resolves to.
    #[test]
    fn early_decisions_hold_for_every_address(
        addr in arb_addr(),
        user in prop_oneof![Just(b"alice".to_vec()), Just(b"bob".to_vec()), Just(Vec::new())],
        host in prop_oneof![Just("www.example.com"), Just("other.org")],
        order in proptest::collection::vec(0usize..6, 1..6),
    ) {
        let lines = [
            "block to loopback",
            "pass to .example.com user alice",
            "block to 10.0.0.0/8",
            "pass to other.org",
            "block user bob",
            "pass to 2001:db8::/32",
        ];
        let text: Vec<&str> = order.iter().map(|i| lines[*i]).collect();
        let policy: Policy = text.join("\n").parse().unwrap();
        let mut s = Subject {
            client: "192.0.2.1:5000".parse().unwrap(),
            dest_addr: None,
            dest_host: Some(host),
            dest_port: 443,
            command: Command::Connect,
            user_id: &user,
            cert: None,
        };
        if let Some(early) = policy.decide_without_address(&s) {
            s.dest_addr = Some(addr);
            prop_assert_eq!(policy.evaluate(&s), early);
        }
    }
}

/// An IPv4 net and addresses at and around its edges, with a few anywhere.
fn arb_v4_net_and_probes() -> impl Strategy<Value = (Ipv4Addr, u8, Vec<Ipv4Addr>)> {
    (
        any::<u32>(),
        0u8..=32,
        proptest::collection::vec(any::<u32>(), 0..8),
    )
        .prop_map(|(a, len, extra)| {
            let net = ipnet::Ipv4Net::new(a.into(), len).unwrap().trunc();
            let (s, e) = (u32::from(net.network()), u32::from(net.broadcast()));
            let mut probes: Vec<Ipv4Addr> = [s.wrapping_sub(1), s, e, e.wrapping_add(1)]
                .into_iter()
                .chain(extra)
                .map(Ipv4Addr::from)
                .collect();
            probes.push(net.network());
            (net.network(), len, probes)
        })
}

proptest! {
    /// A net written in the IPv4-mapped block (`::ffff:192.0.2.0/120`)
    /// matches exactly the IPv4 addresses it spells, in either spelling of
    /// the address: as a netmask, as a member of a deny list (a `NetSet`), as
    /// a rule's client net and as a rule's destination net.
    #[test]
    fn mapped_nets_match_the_ipv4_addresses_they_spell(
        (net, len, probes) in arb_v4_net_and_probes(),
    ) {
        let v4: Netmask = format!("{net}/{len}").parse().unwrap();
        let mapped_text = format!("::ffff:{net}/{}", 96 + u16::from(len));
        let mapped: Netmask = mapped_text.parse().unwrap();
        prop_assert_eq!(mapped, v4);
        let set: NetSet = [mapped].into_iter().collect();
        let clients: Policy = format!("pass from {mapped_text} to any").parse().unwrap();
        let dests: Policy = format!("block from any to {mapped_text}\npass from any to any")
            .parse()
            .unwrap();
        for probe in probes {
            let expected = v4.contains(probe.into());
            for addr in [IpAddr::V4(probe), IpAddr::V6(probe.to_ipv6_mapped())] {
                prop_assert_eq!(mapped.contains(addr), expected, "{} in {}", addr, mapped_text);
                prop_assert_eq!(set.contains(addr), expected, "{} in set {}", addr, mapped_text);
                let subject = Subject {
                    client: std::net::SocketAddr::new(addr, 5000),
                    dest_addr: Some(addr),
                    dest_host: None,
                    dest_port: 80,
                    command: Command::Connect,
                    user_id: b"",
                    cert: None,
                };
                prop_assert_eq!(clients.evaluate(&subject).is_pass(), expected, "client {}", addr);
                prop_assert_eq!(dests.evaluate(&subject).is_pass(), !expected, "dest {}", addr);
            }
        }
    }
}

#[allow(clippy::disallowed_methods)] // tests need a point in time to start from
mod limits {
    use proptest::prelude::*;
    use socks4_acl::limit::{Bandwidth, ConnectionRate, Period, RateWindow, TokenBucket};
    use std::time::{Duration, Instant};

    proptest! {
        /// In any window of time, a bucket admits at most rate × length + burst.
        #[test]
        fn a_bucket_never_admits_more_than_rate_times_time_plus_burst(
            rate in 1u64..1_000_000,
            steps in proptest::collection::vec((0u64..2_000_000, 0u64..3_000_000), 1..60),
        ) {
            let t0 = Instant::now();
            let mut bucket = TokenBucket::new(Bandwidth { bytes_per_second: rate });
            let mut now = t0;
            let mut log: Vec<(Instant, u64)> = Vec::new();
            for (gap_us, want) in steps {
                now += Duration::from_micros(gap_us);
                let got = bucket.take(now, want);
                prop_assert!(got <= want);
                log.push((now, got));
            }
            for i in 0..log.len() {
                let mut sum = 0u128;
                for j in i..log.len() {
                    sum += u128::from(log[j].1);
                    let span = log[j].0 - log[i].0;
                    let allowed = u128::from(rate) * span.as_nanos() / 1_000_000_000 + u128::from(rate) + 1;
                    prop_assert!(sum <= allowed, "{} bytes in {:?} at {}/s", sum, span, rate);
                }
            }
        }

        /// No window of the rate's length holds more granted requests than its
        /// count.
        #[test]
        fn a_rate_window_is_exact(
            count in 1u32..20,
            window_ms in 1u64..5000,
            gaps in proptest::collection::vec(0u64..1000, 1..200),
        ) {
            let rate = ConnectionRate { count, window: Duration::from_millis(window_ms) };
            let t0 = Instant::now();
            let mut w = RateWindow::new();
            let mut now = t0;
            let mut granted = Vec::new();
            for gap in gaps {
                now += Duration::from_millis(gap);
                if let Some(at) = w.acquire(now, rate) {
                    granted.push(at);
                }
            }
            for (i, start) in granted.iter().enumerate() {
                let inside = granted[i..].iter().take_while(|t| **t - *start < rate.window).count();
                prop_assert!(inside <= count as usize);
            }
        }

        /// A period rolls over exactly at its UTC boundary: `start` of a
        /// second's period is at or before it, the next period's start after it,
        /// and the period number changes only at a start.
        #[test]
        fn periods_roll_over_at_their_boundaries(t in 1u64..8_000_000_000, p in 0usize..4) {
            let period = Period::ALL[p];
            let i = period.index(t);
            prop_assert!(period.start(i) <= t);
            prop_assert!(t < period.start(i + 1));
            if period.start(i) != t {
                prop_assert_eq!(period.index(t - 1), i);
            } else {
                prop_assert_eq!(period.index(t - 1), i - 1);
            }
        }
    }
}
