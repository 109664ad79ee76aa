//! CONNECT from request to relay: the reply only after the connection is up,
//! failures and timeouts, bad and half requests, early data, outcomes out of
//! turn, and a known destination (transparent listeners) that gets no reply.

use super::{cfg_with, connect_4a, connect_req, granted, refused};
use socks4_acl::Source;
use socks4_proto::server::Won;
use socks4_proto::server::{
    Action, ActionOutcome, CloseReason, Destination, Event, RelayEnd, RelayStats, ServerConfig,
    Timer,
};
use socks4_proto::{Command, Reply, ReplyCode};
use socks4_tests::sim::{addr, Sim};
use std::io::ErrorKind;
use std::time::Duration;

#[test]
fn connect_replies_90_only_after_connecting_and_hands_over_pipelined_bytes() {
    let mut sim = Sim::local(ServerConfig::default());
    assert!(sim.session.wants_input());
    let mut bytes = connect_req("127.0.0.1:8080", b"fred");
    bytes.extend_from_slice(b"GET / HTTP/1.0\r\n");
    assert_eq!(
        sim.input(&bytes),
        vec![Action::Connect(vec![addr("127.0.0.1:8080")])]
    );
    assert!(!sim.session.wants_input());
    assert!(
        sim.replies().is_empty(),
        "no reply before the connection is up"
    );
    let acts = sim.outcome(ActionOutcome::Connected(Ok(Won::FIRST)));
    assert_eq!(
        acts,
        vec![
            granted("127.0.0.1:8080"),
            Action::StartRelay {
                client_leftover: b"GET / HTTP/1.0\r\n".to_vec()
            }
        ]
    );
    assert_eq!(sim.session.poll_timeout(), None);
    let acts = sim.session.handle_relay_end(
        sim.now,
        RelayStats {
            client_to_dest: 16,
            dest_to_client: 99,
        },
        RelayEnd::Finished,
    );
    assert!(acts.is_ok());
    assert_eq!(sim.drain(), vec![Action::Close(CloseReason::Done)]);
    assert!(matches!(sim.events[0], Event::Connection { .. }));
    assert!(
        matches!(&sim.events[1], Event::Request { command: Command::Connect, user_id, .. } if user_id == b"fred")
    );
    assert!(sim.events.contains(&Event::SockUp {
        dest: addr("127.0.0.1:8080"),
        source: Source::Rule {
            number: 1,
            line: None
        }
    }));
    assert!(sim.events.contains(&Event::SockDown {
        stats: RelayStats {
            client_to_dest: 16,
            dest_to_client: 99
        }
    }));
    assert_eq!(
        sim.events.last(),
        Some(&Event::Disconnected {
            reason: CloseReason::Done
        })
    );
}

#[test]
fn connect_failure_and_timeout_reply_91() {
    let mut sim = Sim::local(ServerConfig::default());
    sim.input(&connect_req("127.0.0.1:9", b""));
    sim.outcome(ActionOutcome::Connected(Err(ErrorKind::ConnectionRefused)));
    assert_eq!(sim.replies(), vec![Reply::with_code(ReplyCode::Rejected)]);
    assert_eq!(
        sim.closed(),
        Some(CloseReason::ConnectFailed(Some(
            ErrorKind::ConnectionRefused
        )))
    );

    let mut sim = Sim::local(ServerConfig::default());
    sim.input(&connect_req("127.0.0.1:9", b""));
    let deadline = sim.session.poll_timeout().unwrap();
    assert_eq!(deadline - sim.now, Duration::from_secs(120));
    assert!(
        sim.advance(Duration::from_secs(119)).is_empty(),
        "a spurious timeout does nothing"
    );
    assert_eq!(
        sim.advance(Duration::from_secs(1)),
        vec![
            refused(ReplyCode::Rejected),
            Action::Close(CloseReason::TimedOut(Timer::Connect))
        ]
    );
    // A late outcome is caller misuse now.
    assert!(sim
        .session
        .handle_outcome(sim.now, ActionOutcome::Connected(Ok(Won::FIRST)))
        .is_err());
}

#[test]
fn bad_requests_get_91_and_a_close() {
    let mut huge = b"\x04\x01\x00\x50\x7f\x00\x00\x01".to_vec();
    huge.resize(100 * 1024, b'u');
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"\x05\x01\x00\x50\x7f\x00\x00\x01\0".to_vec(), "version"),
        (b"GET / HTTP/1.1\r\n\r\n".to_vec(), "version"),
        (b"\x04\x09".to_vec(), "command"),
        (huge, "user id"),
        (
            b"\x04\x01\x00\x50\x00\x00\x00\x01\0\0".to_vec(),
            "empty host",
        ),
    ];
    for (bytes, what) in cases {
        let mut sim = Sim::local(ServerConfig::default());
        let acts = sim.input(&bytes);
        assert_eq!(acts.len(), 2, "{what}");
        assert_eq!(acts[0], refused(ReplyCode::Rejected), "{what}");
        assert!(
            matches!(acts[1], Action::Close(CloseReason::Protocol(_))),
            "{what}"
        );
        assert!(matches!(
            sim.events.iter().rev().nth(1),
            Some(Event::Rejected {
                code: ReplyCode::Rejected,
                ..
            })
        ));
    }
}

#[test]
fn half_a_request_then_silence_times_out_with_91() {
    let mut sim = Sim::local(ServerConfig::default());
    assert!(sim.input(b"\x04\x01\x00\x50\x7f\x00").is_empty());
    assert!(sim.advance(Duration::from_secs(9)).is_empty());
    assert_eq!(
        sim.advance(Duration::from_secs(1)),
        vec![
            refused(ReplyCode::Rejected),
            Action::Close(CloseReason::TimedOut(Timer::Handshake))
        ]
    );
    assert!(sim.advance(Duration::from_secs(100)).is_empty());
}

#[test]
fn client_eof_during_handshake_closes_without_reply() {
    let mut sim = Sim::local(ServerConfig::default());
    sim.input(b"\x04\x01");
    assert_eq!(sim.eof(), vec![Action::Close(CloseReason::PeerClosed)]);

    let mut sim = Sim::local(ServerConfig::default());
    sim.input(&connect_req("127.0.0.1:9", b""));
    assert_eq!(sim.eof(), vec![Action::Close(CloseReason::PeerClosed)]);
    assert!(sim.replies().is_empty());
}

#[test]
fn unspecified_destination_is_refused() {
    let mut sim = Sim::local(ServerConfig::default());
    sim.input(&connect_req("0.0.0.0:22", b""));
    assert_eq!(
        sim.closed(),
        Some(CloseReason::BadDestination("0.0.0.0".parse().unwrap()))
    );
    assert_eq!(sim.replies(), vec![Reply::with_code(ReplyCode::Rejected)]);
    // A 4a name resolving to 0.0.0.0 and then a good address: only the good one is tried.
    let mut sim = Sim::local(ServerConfig::default());
    sim.input(&connect_4a("localhost", 22, b""));
    let acts = sim.outcome(ActionOutcome::Resolved(Ok(vec![
        "0.0.0.0".parse().unwrap(),
        "127.0.0.1".parse().unwrap(),
    ])));
    assert_eq!(acts, vec![Action::Connect(vec![addr("127.0.0.1:22")])]);
}

#[test]
fn early_data_is_bounded() {
    let mut cfg = ServerConfig::default();
    cfg.max_early_data = 8;
    let mut sim = Sim::local(cfg.clone());
    let mut bytes = connect_req("127.0.0.1:80", b"");
    bytes.extend_from_slice(b"12345678");
    assert_eq!(
        sim.input(&bytes),
        vec![Action::Connect(vec![addr("127.0.0.1:80")])]
    );
    // More bytes while connecting (an adapter that keeps reading) still count.
    let acts = sim.input(b"9");
    assert_eq!(
        acts,
        vec![
            refused(ReplyCode::Rejected),
            Action::Close(CloseReason::EarlyDataOverflow)
        ]
    );

    let mut sim = Sim::local(cfg);
    let mut bytes = connect_req("127.0.0.1:80", b"");
    bytes.extend_from_slice(&[0; 9]);
    assert_eq!(
        sim.input(&bytes)[1],
        Action::Close(CloseReason::EarlyDataOverflow)
    );
}

#[test]
fn outcomes_out_of_turn_are_errors() {
    let mut sim = Sim::local(ServerConfig::default());
    let e = sim
        .session
        .handle_outcome(sim.now, ActionOutcome::Bound(Ok(addr("127.0.0.1:1"))))
        .unwrap_err();
    assert_eq!(e.state, "ReadRequest");
    assert!(sim
        .session
        .handle_relay_end(sim.now, RelayStats::default(), RelayEnd::Finished)
        .is_err());
    sim.input(&connect_req("127.0.0.1:80", b""));
    assert!(sim
        .session
        .handle_outcome(sim.now, ActionOutcome::Resolved(Ok(vec![])))
        .is_err());
    assert!(sim.drain().is_empty(), "misuse changes nothing");
}

#[test]
fn a_known_destination_needs_no_request_and_gets_no_reply() {
    let cfg = cfg_with("block from any to 10.9.0.0/16\npass from any to any");
    let peer = addr("127.0.0.1:40000");
    let local = addr("10.1.2.3:80");
    let mut s = socks4_proto::server::ServerSession::with_destination(
        std::sync::Arc::new(cfg.clone()),
        peer,
        local,
        Destination::Addr(local),
        std::time::Instant::now(),
    );
    assert_eq!(s.poll_action(), Some(Action::Connect(vec![local])));
    s.handle_outcome(
        std::time::Instant::now(),
        ActionOutcome::Connected(Ok(Won::FIRST)),
    )
    .unwrap();
    assert!(
        matches!(s.poll_action(), Some(Action::StartRelay { .. })),
        "no reply first"
    );
    // A blocked destination: closed, without a reply.
    let mut s = socks4_proto::server::ServerSession::with_destination(
        std::sync::Arc::new(cfg),
        peer,
        local,
        Destination::Addr(addr("10.9.1.1:22")),
        std::time::Instant::now(),
    );
    assert!(matches!(
        s.poll_action(),
        Some(Action::Close(CloseReason::Denied(_)))
    ));
}
