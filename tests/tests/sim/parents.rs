//! Parent proxies: a name goes to a SOCKS4a parent unresolved, a SOCKS4
//! parent gets an address, the next parent is tried, and failures say so.

use super::{bind_req, cfg_with, connect_4a, granted};
use socks4_acl::Balance;
use socks4_proto::server::{Action, ActionOutcome, CloseReason, Destination, Event, Won};
use socks4_proto::{Reply, ReplyCode};
use socks4_tests::sim::{addr, Sim};
use std::io::ErrorKind;

#[test]
fn a_name_goes_to_a_socks4a_parent_unresolved() {
    let cfg = cfg_with(
        "pass from any to any\nroute to .corp.example via socks4a://10.0.0.1:1080, http://10.0.0.2:3128 user proxyuser",
    );
    let mut sim = Sim::local(cfg);
    let acts = sim.input(&connect_4a("db.corp.example", 5432, b"alice"));
    let Some(Action::ConnectVia { hops, balance }) = acts.first() else {
        panic!("{acts:?}")
    };
    assert_eq!(*balance, Balance::First);
    assert_eq!(hops.len(), 2, "every parent at once");
    assert_eq!(hops[0].parent.to_url(), "socks4a://proxyuser@10.0.0.1:1080");
    assert_eq!(
        hops[0].dest,
        Destination::Name("db.corp.example".into(), 5432)
    );
    assert_eq!(hops[0].user_id, b"proxyuser");
    assert_eq!(hops[1].parent.port, 3128);
    assert!(!sim
        .actions
        .iter()
        .any(|a| matches!(a, Action::Resolve { .. })));
    // The first parent failed: the second granted.
    let acts = sim.outcome(ActionOutcome::Connected(Ok(Won {
        index: 1,
        attempts: 2,
    })));
    assert_eq!(acts[0], granted("0.0.0.0:5432"));
    assert!(sim
        .events
        .iter()
        .any(|e| matches!(e, Event::Routed { parent, .. } if parent.port == 3128)));
}

#[test]
fn a_socks4_parent_gets_an_address_and_failures_say_so() {
    let cfg = cfg_with("pass from any to any\nroute to any via socks4://10.0.0.1:1080");
    let mut sim = Sim::local(cfg);
    let acts = sim.input(&connect_4a("localhost", 80, b""));
    assert!(matches!(&acts[..], [Action::Resolve { .. }]), "{acts:?}");
    let acts = sim.outcome(ActionOutcome::Resolved(Ok(vec![
        "::1".parse().unwrap(),
        "127.0.0.1".parse().unwrap(),
    ])));
    assert!(
        matches!(&acts[..], [Action::ConnectVia { hops, .. }] if hops[0].dest == Destination::Addr(addr("127.0.0.1:80"))),
        "{acts:?}"
    );
    sim.outcome(ActionOutcome::Connected(Err(ErrorKind::ConnectionRefused)));
    assert_eq!(
        sim.closed(),
        Some(CloseReason::ParentFailed(ErrorKind::ConnectionRefused))
    );
    assert_eq!(sim.replies(), vec![Reply::with_code(ReplyCode::Rejected)]);
    // BIND is not forwarded to parents: 91.
    let mut sim = Sim::local(cfg_with(
        "pass from any to any\nroute to any via socks4://10.0.0.1:1080",
    ));
    sim.input(&bind_req("127.0.0.5:21"));
    assert_eq!(
        sim.closed(),
        Some(CloseReason::ParentFailed(ErrorKind::Unsupported))
    );
}

#[test]
fn balance_goes_with_the_parents() {
    let cfg = cfg_with(
        "pass from any to any\nroute to any via socks4://10.0.0.1:1080, socks4://10.0.0.2:1080 balance least-connections",
    );
    let mut sim = Sim::local(cfg);
    let acts = sim.input(&super::connect_req("127.0.0.1:80", b""));
    assert!(
        matches!(&acts[..], [Action::ConnectVia { hops, balance: Balance::LeastConnections }] if hops.len() == 2),
        "{acts:?}"
    );
    // Every parent failed: 91, with the last error.
    sim.outcome(ActionOutcome::Connected(Err(ErrorKind::TimedOut)));
    assert_eq!(
        sim.closed(),
        Some(CloseReason::ParentFailed(ErrorKind::TimedOut))
    );
}

#[test]
fn the_session_tells_the_driver_the_chosen_routes_exit() {
    use socks4_acl::SourceAddr;
    let cfg = cfg_with(
        "pass from any to any\n\
         route to .corp.example via socks4a://10.0.0.1:1080 mark 0x20\n\
         route to 10.0.0.0/8 direct source 192.0.2.11,192.0.2.12 interface eth1\n\
         route to any direct",
    );
    // Chosen before resolving (a name for a parent that takes names).
    let mut sim = Sim::local(cfg.clone());
    assert!(sim.session.exit().is_default(), "no route chosen yet");
    let acts = sim.input(&connect_4a("db.corp.example", 5432, b""));
    assert!(matches!(&acts[..], [Action::ConnectVia { .. }]), "{acts:?}");
    assert_eq!(sim.session.exit().mark, Some(0x20));
    // Chosen by the address.
    let mut sim = Sim::local(cfg.clone());
    let acts = sim.input(&super::connect_req("10.1.2.3:80", b""));
    assert!(matches!(&acts[..], [Action::Connect(_)]), "{acts:?}");
    let exit = sim.session.exit();
    assert_eq!(exit.interface.as_deref(), Some("eth1"));
    assert_eq!(
        exit.source,
        SourceAddr::Rotate(vec![
            "192.0.2.11".parse().unwrap(),
            "192.0.2.12".parse().unwrap()
        ])
    );
    // A route without exit clauses: the default.
    let mut sim = Sim::local(cfg);
    sim.input(&super::connect_req("192.0.2.80:80", b""));
    assert!(sim.session.exit().is_default());
}
