//! SOCKS4a: names resolved by the server, addresses tried in order, lookup
//! failures, host rules decided before any lookup, and no lookup for a denied
//! client.

use super::{cfg_with, connect_4a, granted, refused};
use socks4_acl::Source;
use socks4_proto::server::Won;
use socks4_proto::server::{
    Action, ActionOutcome, CloseReason, Event, ResolveError, ServerConfig, Timer,
};
use socks4_proto::{Reply, ReplyCode};
use socks4_tests::sim::{addr, Sim};
use std::io::ErrorKind;
use std::net::IpAddr;
use std::time::Duration;

#[test]
fn socks4a_tries_addresses_in_order_ipv6_included() {
    let mut sim = Sim::local(ServerConfig::default());
    assert_eq!(
        sim.input(&connect_4a("localhost", 8080, b"")),
        vec![Action::Resolve {
            host: "localhost".into(),
            port: 8080
        }]
    );
    assert_eq!(
        sim.session.poll_timeout().unwrap() - sim.now,
        Duration::from_secs(10)
    );
    let addrs: Vec<IpAddr> = vec!["::1".parse().unwrap(), "127.0.0.1".parse().unwrap()];
    assert_eq!(
        sim.outcome(ActionOutcome::Resolved(Ok(addrs.clone()))),
        vec![Action::Connect(vec![
            addr("[::1]:8080"),
            addr("127.0.0.1:8080")
        ])],
        "every address at once, for the driver to race"
    );
    assert!(sim.events.contains(&Event::DnsLookup {
        host: "localhost".into(),
        addrs
    }));
    // The second address won, on the second attempt.
    let acts = sim.outcome(ActionOutcome::Connected(Ok(Won {
        index: 1,
        attempts: 2,
    })));
    assert_eq!(acts[0], granted("127.0.0.1:8080"));
    assert!(sim.events.contains(&Event::Attempts { attempts: 2 }));
    assert!(matches!(acts[1], Action::StartRelay { .. }));

    // An IPv6 destination that connects: the reply carries 0.0.0.0 (clients ignore it).
    let mut sim = Sim::local(ServerConfig::default());
    sim.input(&connect_4a("localhost", 80, b""));
    sim.outcome(ActionOutcome::Resolved(Ok(vec!["::1".parse().unwrap()])));
    let acts = sim.outcome(ActionOutcome::Connected(Ok(Won::FIRST)));
    assert_eq!(acts[0], granted("0.0.0.0:80"));
}

#[test]
fn socks4a_failures_reply_91() {
    let mut sim = Sim::local(ServerConfig::default());
    sim.input(&connect_4a("nowhere.invalid", 80, b""));
    sim.outcome(ActionOutcome::Resolved(Err(ResolveError::NoSuchHost)));
    assert_eq!(
        sim.closed(),
        Some(CloseReason::ResolveFailed(ResolveError::NoSuchHost))
    );
    assert_eq!(sim.replies(), vec![Reply::with_code(ReplyCode::Rejected)]);

    let mut sim = Sim::local(ServerConfig::default());
    sim.input(&connect_4a("empty.invalid", 80, b""));
    sim.outcome(ActionOutcome::Resolved(Ok(vec![])));
    assert_eq!(
        sim.closed(),
        Some(CloseReason::ResolveFailed(ResolveError::NoAddress))
    );

    let mut sim = Sim::local(ServerConfig::default());
    sim.input(&connect_4a("slow.invalid", 80, b""));
    sim.advance(Duration::from_secs(10));
    assert_eq!(sim.closed(), Some(CloseReason::TimedOut(Timer::Resolve)));

    let mut sim = Sim::local(ServerConfig::default());
    sim.input(&connect_4a("localhost", 80, b""));
    sim.outcome(ActionOutcome::Resolved(Ok(vec!["127.0.0.1"
        .parse()
        .unwrap()])));
    sim.outcome(ActionOutcome::Connected(Err(ErrorKind::ConnectionRefused)));
    assert_eq!(
        sim.closed(),
        Some(CloseReason::ConnectFailed(Some(
            ErrorKind::ConnectionRefused
        )))
    );
    assert_eq!(sim.replies(), vec![Reply::with_code(ReplyCode::Rejected)]);
}

#[test]
fn socks4a_host_rules_see_the_name_and_address_rules_each_address() {
    let policy = "block from any to .example.com reply 91\nblock from any to 127.0.0.2\npass from any to any";
    // A host rule decides before anything is resolved: no lookup at all.
    let mut sim = Sim::local(cfg_with(policy));
    let acts = sim.input(&connect_4a("www.example.com", 443, b""));
    assert!(
        !acts.iter().any(|a| matches!(a, Action::Resolve { .. })),
        "{acts:?}"
    );
    assert_eq!(
        sim.closed(),
        Some(CloseReason::Denied(Source::Rule {
            number: 1,
            line: Some(1)
        }))
    );

    let mut sim = Sim::local(cfg_with(policy));
    sim.input(&connect_4a("localhost", 80, b""));
    let acts = sim.outcome(ActionOutcome::Resolved(Ok(vec![
        "127.0.0.2".parse().unwrap(),
        "127.0.0.3".parse().unwrap(),
    ])));
    assert_eq!(
        acts,
        vec![Action::Connect(vec![addr("127.0.0.3:80")])],
        "the blocked address is skipped"
    );
    let acts = sim.outcome(ActionOutcome::Connected(Err(ErrorKind::ConnectionRefused)));
    assert_eq!(acts[0], refused(ReplyCode::Rejected));
}

#[test]
fn a_denied_client_costs_no_lookup() {
    let mut cfg = cfg_with("pass from any to any");
    cfg.policy.add_denial("127.0.0.0/8".parse().unwrap());
    let mut sim = Sim::local(cfg);
    let acts = sim.input(&connect_4a("localhost", 80, b""));
    assert_eq!(
        acts,
        vec![
            refused(ReplyCode::Rejected),
            Action::Close(CloseReason::Denied(Source::Denied))
        ]
    );
    assert!(!sim
        .events
        .iter()
        .any(|e| matches!(e, Event::DnsLookup { .. })));
}
