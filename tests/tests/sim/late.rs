//! A name's answer in two parts (RFC 8305 §3): a direct CONNECT starts with
//! the first family's addresses, and the other family's join its race once
//! the policy passed them; anything else waits for the whole answer.

use super::{cfg_with, connect_4a, granted};
use socks4_proto::server::{Action, ActionOutcome, CloseReason, Event, ServerConfig, Timer, Won};
use socks4_proto::ReplyCode;
use socks4_tests::sim::{addr, Sim};
use std::net::IpAddr;
use std::time::Duration;

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|a| a.parse().unwrap()).collect()
}

fn first(sim: &mut Sim, list: &[&str]) -> Vec<Action> {
    sim.outcome(ActionOutcome::ResolvedFirst(ips(list)))
}

#[test]
fn a_connect_starts_with_the_first_family_and_the_other_joins() {
    let mut sim = Sim::local(ServerConfig::default());
    sim.input(&connect_4a("localhost", 8080, b""));
    // AAAA came first: connecting starts at once, without the A answer.
    assert_eq!(
        first(&mut sim, &["::1"]),
        vec![Action::Connect(vec![addr("[::1]:8080")])]
    );
    assert!(sim.events.contains(&Event::DnsLookup {
        host: "localhost".into(),
        addrs: ips(&["::1"])
    }));
    assert_eq!(
        sim.session.poll_timeout().unwrap() - sim.now,
        Duration::from_secs(120),
        "the connect timeout runs, not the resolve timeout"
    );
    // The A answer joins the race in progress.
    sim.now += Duration::from_millis(30);
    assert_eq!(
        sim.late(&["127.0.0.1"]),
        vec![Action::ConnectMore(vec![addr("127.0.0.1:8080")])]
    );
    assert!(sim.events.contains(&Event::LateAddresses {
        host: "localhost".into(),
        addrs: ips(&["127.0.0.1"])
    }));
    // The late one won: index 1, after the first part's.
    let acts = sim.outcome(ActionOutcome::Connected(Ok(Won {
        index: 1,
        attempts: 2,
    })));
    assert_eq!(acts[0], granted("127.0.0.1:8080"));
    assert!(matches!(acts[1], Action::StartRelay { .. }));
    // Nothing more comes of a second call, or of one after the relay began.
    assert_eq!(sim.late(&["127.0.0.2"]), vec![]);
}

#[test]
fn late_addresses_pass_the_policy_first() {
    let cfg = cfg_with(
        "block from any to 127.0.0.2\npass from any to ::1 ident\npass from 127.0.0.0/8 to any",
    );
    let mut sim = Sim::local(cfg);
    sim.input(&connect_4a("multi.example", 80, b""));
    assert_eq!(
        first(&mut sim, &["127.0.0.1"]),
        vec![Action::Connect(vec![addr("127.0.0.1:80")])]
    );
    // 127.0.0.2 is blocked; ::1 passes only with IDENT, which was not
    // asked; 0.0.0.0 cannot be connected to; 127.0.0.1 is there already;
    // 127.0.0.3 joins.
    assert_eq!(
        sim.late(&["127.0.0.2", "::1", "0.0.0.0", "127.0.0.1", "127.0.0.3"]),
        vec![Action::ConnectMore(vec![addr("127.0.0.3:80")])]
    );
    let acts = sim.outcome(ActionOutcome::Connected(Ok(Won {
        index: 1,
        attempts: 2,
    })));
    assert_eq!(acts[0], granted("127.0.0.3:80"));
}

#[test]
fn addresses_that_come_before_the_connect_are_in_it() {
    let mut cfg = ServerConfig::default();
    cfg.ident = socks4_proto::server::IdentMode::Log;
    let mut sim = Sim::local(cfg);
    sim.input(&connect_4a("localhost", 80, b""));
    let acts = first(&mut sim, &["::1"]);
    assert!(matches!(&acts[..], [Action::IdentQuery { .. }]), "{acts:?}");
    // During the IDENT query: no action, the address waits for the connect.
    assert_eq!(sim.late(&["127.0.0.1"]), vec![]);
    let acts = sim.outcome(ActionOutcome::Ident(Err(
        std::io::ErrorKind::ConnectionRefused,
    )));
    assert_eq!(
        acts,
        vec![Action::Connect(vec![
            addr("[::1]:80"),
            addr("127.0.0.1:80")
        ])]
    );
}

#[test]
fn a_first_part_the_policy_blocks_waits_for_the_rest() {
    let cfg = cfg_with("block from any to ::/0\npass from 127.0.0.0/8 to any");
    let mut sim = Sim::local(cfg);
    sim.input(&connect_4a("dual.example", 80, b""));
    assert_eq!(first(&mut sim, &["::1"]), vec![], "no decision yet");
    assert_eq!(
        sim.session.poll_timeout().unwrap() - sim.now,
        Duration::from_secs(10),
        "the resolve timeout bounds the wait"
    );
    assert_eq!(
        sim.late(&["127.0.0.1"]),
        vec![Action::Connect(vec![addr("127.0.0.1:80")])]
    );
    assert!(sim.events.contains(&Event::DnsLookup {
        host: "dual.example".into(),
        addrs: ips(&["::1", "127.0.0.1"])
    }));

    // With nothing more to come, the first part decides: denied.
    let cfg = cfg_with("block from any to ::/0\npass from 127.0.0.0/8 to any");
    let mut sim = Sim::local(cfg);
    sim.input(&connect_4a("v6only.example", 80, b""));
    first(&mut sim, &["::1"]);
    sim.late(&[]);
    assert!(
        matches!(sim.closed(), Some(CloseReason::Denied(_))),
        "{:?}",
        sim.closed()
    );
    assert_eq!(
        sim.replies(),
        vec![socks4_proto::Reply::with_code(ReplyCode::Rejected)]
    );

    // The rest never comes: the resolve timeout ends it.
    let cfg = cfg_with("block from any to ::/0\npass from 127.0.0.0/8 to any");
    let mut sim = Sim::local(cfg);
    sim.input(&connect_4a("slow.example", 80, b""));
    first(&mut sim, &["::1"]);
    sim.advance(Duration::from_secs(10));
    assert_eq!(sim.closed(), Some(CloseReason::TimedOut(Timer::Resolve)));
    assert_eq!(sim.late(&["127.0.0.1"]), vec![], "too late");
}

#[test]
fn a_route_through_parents_waits_for_the_whole_answer() {
    let cfg = cfg_with("pass from any to any\nroute to any via socks4://10.0.0.1:1080");
    let mut sim = Sim::local(cfg);
    sim.input(&connect_4a("localhost", 80, b""));
    assert_eq!(first(&mut sim, &["::1"]), vec![]);
    // A SOCKS4 parent takes the IPv4 address the rest brought.
    let acts = sim.late(&["127.0.0.1"]);
    assert!(
        matches!(&acts[..], [Action::ConnectVia { hops, .. }]
            if hops[0].dest == socks4_proto::server::Destination::Addr(addr("127.0.0.1:80"))),
        "{acts:?}"
    );
}

#[test]
fn a_second_first_part_is_a_driver_error() {
    let mut sim = Sim::local(cfg_with("block from any to ::/0\npass from any to any"));
    sim.input(&connect_4a("localhost", 80, b""));
    first(&mut sim, &["::1"]);
    assert!(sim
        .session
        .handle_outcome(sim.now, ActionOutcome::ResolvedFirst(ips(&["::2"])))
        .is_err());
    assert!(sim
        .session
        .handle_outcome(sim.now, ActionOutcome::Resolved(Ok(ips(&["::2"]))))
        .is_err());
}
