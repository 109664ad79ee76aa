//! A sniffed connection's session: the name is what rules and routes match
//! beside the address, a `socks4a://` parent gets it whatever the target,
//! `to_name` resolves it, and the bytes read to sniff go to the relay first,
//! beside `max_early_data`.
#![allow(clippy::disallowed_methods)] // a test needs a point in time to start from

use super::cfg_with;
use socks4_proto::server::{
    Action, ActionOutcome, CloseReason, Destination, Event, ServerConfig, ServerSession, Won,
};
use socks4_proto::sniff::NameKind;
use socks4_tests::sim::{addr, Sim};
use std::sync::Arc;
use std::time::Instant;

fn sniffed(cfg: ServerConfig, name: Option<&str>, to_name: bool, bytes: &[u8]) -> Sim {
    let now = Instant::now();
    let session = ServerSession::with_sniffed(
        Arc::new(cfg),
        addr("10.0.0.9:40000"),
        addr("10.0.0.1:1081"),
        Destination::Addr(addr("203.0.113.7:443")),
        name.map(|n| (n.to_owned(), NameKind::Sni)),
        to_name,
        bytes.to_vec(),
        now,
    );
    Sim::of(session, now)
}

#[test]
fn rules_match_the_name_and_the_address() {
    let by_name = "block from any to .name.test\npass from any to any";
    let sim = sniffed(cfg_with(by_name), Some("www.name.test"), false, b"hello");
    assert!(
        matches!(sim.closed(), Some(CloseReason::Denied(_))),
        "{:?}",
        sim.actions
    );
    assert!(sim.events.iter().any(|e| matches!(
        e,
        Event::Sniffed { name, kind: NameKind::Sni, dest } if name == "www.name.test"
            && *dest == Destination::Addr(addr("203.0.113.7:443"))
    )));
    assert!(sim
        .events
        .iter()
        .any(|e| matches!(e, Event::Request { dest, .. } if dest == "www.name.test:443")));
    // Without a name, the same rule lets it go to the address.
    let sim = sniffed(cfg_with(by_name), None, false, b"hello");
    assert!(
        matches!(&sim.actions[..], [Action::Connect(a)] if *a == vec![addr("203.0.113.7:443")]),
        "{:?}",
        sim.actions
    );
    // An address rule still decides a named connection.
    let by_addr = "block from any to 203.0.113.0/24\npass from any to any";
    let sim = sniffed(cfg_with(by_addr), Some("name.test"), false, b"");
    assert!(matches!(sim.closed(), Some(CloseReason::Denied(_))));
}

#[test]
fn a_socks4a_parent_gets_the_name_whatever_the_target() {
    let policy = "pass from any to any\nroute to .name.test via socks4a://10.0.0.2:1080";
    for to_name in [false, true] {
        let sim = sniffed(cfg_with(policy), Some("name.test"), to_name, b"");
        let Some(Action::ConnectVia { hops, .. }) = sim.actions.first() else {
            panic!("{to_name}: {:?}", sim.actions)
        };
        assert_eq!(hops[0].dest, Destination::Name("name.test".into(), 443));
    }
}

#[test]
fn to_name_resolves_the_name() {
    let mut sim = sniffed(
        cfg_with("pass from any to any"),
        Some("name.test"),
        true,
        b"",
    );
    assert!(
        matches!(&sim.actions[..], [Action::Resolve { host, port: 443 }] if host == "name.test"),
        "{:?}",
        sim.actions
    );
    let acts = sim.outcome(ActionOutcome::Resolved(Ok(vec!["198.51.100.4"
        .parse()
        .unwrap()])));
    assert!(
        matches!(&acts[..], [Action::Connect(a)] if *a == vec![addr("198.51.100.4:443")]),
        "{acts:?}"
    );
}

#[test]
fn the_sniffed_bytes_go_first_beside_the_early_data_cap() {
    let mut cfg = cfg_with("pass from any to any");
    cfg.max_early_data = 4;
    let first: Vec<u8> = (0..100u8).collect();
    let mut sim = sniffed(cfg, Some("name.test"), false, &first);
    assert!(sim.closed().is_none(), "{:?}", sim.actions);
    sim.input(b"more");
    let acts = sim.outcome(ActionOutcome::Connected(Ok(Won {
        index: 0,
        attempts: 1,
    })));
    let want = [&first[..], b"more"].concat();
    assert!(
        acts.iter().any(
            |a| matches!(a, Action::StartRelay { client_leftover } if *client_leftover == want)
        ),
        "{acts:?}"
    );
}
