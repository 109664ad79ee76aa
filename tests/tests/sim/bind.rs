//! BIND: the first reply names the listener, the second checks the inbound
//! peer; timeouts, failures and what an IPv6 listener can say in SOCKS4.

use super::{bind_req, granted, refused};
use socks4_proto::server::{Action, ActionOutcome, CloseReason, Event, ServerConfig, Timer};
use socks4_proto::{Reply, ReplyCode};
use socks4_tests::sim::{addr, Sim};
use std::io::ErrorKind;
use std::time::Duration;

#[test]
fn bind_reports_the_listener_then_checks_the_inbound_peer() {
    let mut sim = Sim::local(ServerConfig::default());
    assert_eq!(
        sim.input(&bind_req("127.0.0.5:21")),
        vec![Action::Bind(addr("127.0.0.1:0"))]
    );
    let acts = sim.outcome(ActionOutcome::Bound(Ok(addr("127.0.0.1:34567"))));
    assert_eq!(acts, vec![granted("127.0.0.1:34567"), Action::Accept]);
    assert!(sim.events.contains(&Event::BindUp {
        listen: addr("127.0.0.1:34567")
    }));
    assert_eq!(
        sim.session.poll_timeout().unwrap() - sim.now,
        Duration::from_secs(120)
    );
    let acts = sim.outcome(ActionOutcome::Accepted(Ok(addr("127.0.0.5:20"))));
    assert_eq!(
        acts,
        vec![
            granted("127.0.0.5:20"),
            Action::StartRelay {
                client_leftover: vec![]
            }
        ]
    );

    // Wrong inbound address: second reply 91 and close both.
    let mut sim = Sim::local(ServerConfig::default());
    sim.input(&bind_req("127.0.0.5:21"));
    sim.outcome(ActionOutcome::Bound(Ok(addr("127.0.0.1:34567"))));
    let acts = sim.outcome(ActionOutcome::Accepted(Ok(addr("127.0.0.6:20"))));
    assert_eq!(
        acts,
        vec![
            refused(ReplyCode::Rejected),
            Action::Close(CloseReason::BindWrongPeer(addr("127.0.0.6:20")))
        ]
    );
    assert_eq!(sim.replies().len(), 2);

    // Nobody comes: 91 after the accept timeout.
    let mut sim = Sim::local(ServerConfig::default());
    sim.input(&bind_req("127.0.0.5:21"));
    sim.outcome(ActionOutcome::Bound(Ok(addr("127.0.0.1:34567"))));
    assert!(sim.advance(Duration::from_secs(60)).is_empty());
    assert_eq!(
        sim.advance(Duration::from_secs(60))[1],
        Action::Close(CloseReason::TimedOut(Timer::Accept))
    );

    // The listener cannot be opened.
    let mut sim = Sim::local(ServerConfig::default());
    sim.input(&bind_req("127.0.0.5:21"));
    sim.outcome(ActionOutcome::Bound(Err(ErrorKind::AddrInUse)));
    assert_eq!(sim.replies(), vec![Reply::with_code(ReplyCode::Rejected)]);
    assert_eq!(
        sim.closed(),
        Some(CloseReason::BindFailed(ErrorKind::AddrInUse))
    );
}

#[test]
fn bind_on_ipv6_or_mapped_listeners_replies_what_socks4_can_say() {
    // A client that reached us over IPv6 loopback: the reply cannot carry ::1.
    let mut sim = Sim::new(ServerConfig::default(), "[::1]:40000", "[::1]:1080");
    assert_eq!(
        sim.input(&bind_req("127.0.0.5:21")),
        vec![Action::Bind(addr("[::1]:0"))]
    );
    assert_eq!(
        sim.outcome(ActionOutcome::Bound(Ok(addr("[::1]:4444"))))[0],
        granted("0.0.0.0:4444")
    );
    // A dual-stack listener: IPv4-mapped addresses become IPv4.
    let mut sim = Sim::new(
        ServerConfig::default(),
        "[::ffff:127.0.0.1]:40000",
        "[::ffff:127.0.0.1]:1080",
    );
    sim.input(&bind_req("127.0.0.5:21"));
    assert_eq!(
        sim.outcome(ActionOutcome::Bound(Ok(addr("[::ffff:127.0.0.1]:4444"))))[0],
        granted("127.0.0.1:4444")
    );
    assert_eq!(
        sim.outcome(ActionOutcome::Accepted(Ok(addr("[::ffff:127.0.0.5]:20"))))[0],
        granted("127.0.0.5:20")
    );
}
