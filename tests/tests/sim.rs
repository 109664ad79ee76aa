//! Simulation tests of the server session machine: a scripted peer and a fake
//! clock, no sockets. Every path of a connection's life, each timeout and each
//! reply code.

use socks4_acl::{Policy, Source};
use socks4_ident::{ErrorCode, Outcome, Query, UserId};
use socks4_proto::server::{
    Action, ActionOutcome, CloseReason, Destination, Event, IdentMode, Limit, RelayEnd, RelayStats,
    ResolveError, ServerConfig, Timer,
};
use socks4_proto::{Command, Dest, Reply, ReplyCode, Request};
use socks4_tests::sim::{addr, Sim};
use std::io::ErrorKind;
use std::net::IpAddr;
use std::time::Duration;

fn connect_req(dest: &str, user: &[u8]) -> Vec<u8> {
    Request {
        command: Command::Connect,
        dest: Dest::Addr(dest.parse().unwrap()),
        user_id: user,
    }
    .to_vec()
}

fn connect_4a(host: &str, port: u16, user: &[u8]) -> Vec<u8> {
    Request {
        command: Command::Connect,
        dest: Dest::Domain(host, port),
        user_id: user,
    }
    .to_vec()
}

fn bind_req(dest: &str) -> Vec<u8> {
    Request {
        command: Command::Bind,
        dest: Dest::Addr(dest.parse().unwrap()),
        user_id: b"",
    }
    .to_vec()
}

fn cfg_with(policy: &str) -> ServerConfig {
    ServerConfig::with_policy(policy.parse().unwrap())
}

fn granted(addr_s: &str) -> Action {
    Action::SendReply(Reply::new(ReplyCode::Granted, addr_s.parse().unwrap()))
}

fn refused(code: ReplyCode) -> Action {
    Action::SendReply(Reply::with_code(code))
}

fn user(name: &str) -> Outcome {
    Outcome::UserId(UserId {
        opsys: "UNIX".into(),
        charset: None,
        user_id: name.as_bytes().to_vec(),
    })
}

#[test]
fn connect_replies_90_only_after_connecting_and_hands_over_pipelined_bytes() {
    let mut sim = Sim::local(ServerConfig::default());
    assert!(sim.session.wants_input());
    let mut bytes = connect_req("127.0.0.1:8080", b"fred");
    bytes.extend_from_slice(b"GET / HTTP/1.0\r\n");
    assert_eq!(
        sim.input(&bytes),
        vec![Action::Connect(addr("127.0.0.1:8080"))]
    );
    assert!(!sim.session.wants_input());
    assert!(
        sim.replies().is_empty(),
        "no reply before the connection is up"
    );
    let acts = sim.outcome(ActionOutcome::Connected(Ok(())));
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
        .handle_outcome(sim.now, ActionOutcome::Connected(Ok(())))
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
        vec![Action::Connect(addr("[::1]:8080"))]
    );
    assert!(sim.events.contains(&Event::DnsLookup {
        host: "localhost".into(),
        addrs
    }));
    assert_eq!(
        sim.outcome(ActionOutcome::Connected(Err(ErrorKind::ConnectionRefused))),
        vec![Action::Connect(addr("127.0.0.1:8080"))]
    );
    let acts = sim.outcome(ActionOutcome::Connected(Ok(())));
    assert_eq!(acts[0], granted("127.0.0.1:8080"));
    assert!(matches!(acts[1], Action::StartRelay { .. }));

    // An IPv6 destination that connects: the reply carries 0.0.0.0 (clients ignore it).
    let mut sim = Sim::local(ServerConfig::default());
    sim.input(&connect_4a("localhost", 80, b""));
    sim.outcome(ActionOutcome::Resolved(Ok(vec!["::1".parse().unwrap()])));
    let acts = sim.outcome(ActionOutcome::Connected(Ok(())));
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
    assert_eq!(acts, vec![Action::Connect(addr("127.0.0.1:22"))]);
}

#[test]
fn a_client_certificate_name_is_reported_and_decides_cert_rules() {
    let policy = "block from any to any cert mallory\npass from any to any cert alice\nblock from any to any";
    // alice: passed by rule 2; the name comes out as an event before the request.
    let mut sim = Sim::local(cfg_with(policy));
    let now = sim.now;
    sim.session.set_client_cert(now, "alice");
    sim.drain();
    assert_eq!(
        sim.input(&connect_req("127.0.0.1:80", b"")),
        vec![Action::Connect(addr("127.0.0.1:80"))]
    );
    let cert_at = sim.events.iter().position(
        |e| matches!(e, Event::ClientCertificate { common_name } if common_name == "alice"),
    );
    let request_at = sim
        .events
        .iter()
        .position(|e| matches!(e, Event::Request { .. }));
    assert!(cert_at.unwrap() < request_at.unwrap(), "{:?}", sim.events);
    // mallory: blocked by rule 1 with 91; no certificate: rule 3.
    for (cert, number) in [(Some("mallory"), 1), (None, 3)] {
        let mut sim = Sim::local(cfg_with(policy));
        if let Some(cert) = cert {
            let now = sim.now;
            sim.session.set_client_cert(now, cert);
        }
        sim.input(&connect_req("127.0.0.1:80", b""));
        assert_eq!(sim.replies(), vec![Reply::with_code(ReplyCode::Rejected)]);
        assert_eq!(
            sim.closed(),
            Some(CloseReason::Denied(Source::Rule {
                number,
                line: Some(number)
            }))
        );
    }
    // Once the request has started, a certificate changes nothing.
    let mut sim = Sim::local(cfg_with(policy));
    sim.input(b"\x04");
    let now = sim.now;
    sim.session.set_client_cert(now, "alice");
    sim.input(&connect_req("127.0.0.1:80", b"")[1..]);
    assert_eq!(
        sim.closed(),
        Some(CloseReason::Denied(Source::Rule {
            number: 3,
            line: Some(3)
        }))
    );
}

#[test]
fn notify_rules_raise_a_notification_with_the_request() {
    let policy = "block from any to any port eq 25 reply 93 notify\npass from any to any port eq 80 notify\npass from any to any";
    let notifications = |sim: &Sim| -> Vec<Event> {
        sim.events
            .iter()
            .filter(|e| matches!(e, Event::Notify { .. }))
            .cloned()
            .collect()
    };
    let mut sim = Sim::local(cfg_with(policy));
    sim.input(&connect_req("192.0.2.5:25", b"x$(touch P1)"));
    assert_eq!(
        notifications(&sim),
        vec![Event::Notify {
            peer: addr("127.0.0.1:40000"),
            reply: Some(ReplyCode::IdentMismatch),
            source: Source::Rule {
                number: 1,
                line: Some(1)
            },
            rule: "block from any to any port eq 25 notify reply 93".into(),
            command: socks4_proto::Command::Connect,
            dest: "192.0.2.5:25".into(),
            user_id: b"x$(touch P1)".to_vec(),
        }]
    );
    let mut sim = Sim::local(cfg_with(policy));
    sim.input(&connect_4a("www.example", 80, b"alice"));
    let n = notifications(&sim);
    assert!(
        matches!(&n[..], [Event::Notify { reply: None, dest, .. }] if dest == "www.example:80"),
        "{n:?}"
    );
    // A rule without `notify` raises none.
    let mut sim = Sim::local(cfg_with(policy));
    sim.input(&connect_req("192.0.2.5:443", b""));
    assert!(notifications(&sim).is_empty());
}

#[test]
fn a_failed_tls_handshake_closes_without_a_reply() {
    let mut sim = Sim::local(ServerConfig::default());
    let now = sim.now;
    sim.session
        .handle_tls_failure(now, socks4_proto::server::TlsFailure::NoCertificate);
    assert_eq!(
        sim.drain(),
        vec![Action::Close(CloseReason::TlsFailed(
            socks4_proto::server::TlsFailure::NoCertificate
        ))]
    );
    assert!(sim.replies().is_empty());
    assert_eq!(
        CloseReason::TlsFailed(socks4_proto::server::TlsFailure::NoCertificate).label(),
        "tls_failed"
    );
}

#[test]
fn access_rules_decide_and_name_the_rule() {
    // The secure default: a non-loopback client is blocked by the default.
    let mut sim = Sim::new(ServerConfig::default(), "192.0.2.10:5555", "192.0.2.1:1080");
    sim.input(&connect_req("127.0.0.1:80", b""));
    assert_eq!(sim.closed(), Some(CloseReason::Denied(Source::Default)));
    assert_eq!(sim.replies(), vec![Reply::with_code(ReplyCode::Rejected)]);
    assert!(sim.events.iter().any(|e| matches!(
        e,
        Event::Denied {
            source: Source::Default,
            ..
        }
    )));

    // A rule with its own reply code, named by number and line.
    let policy = "pass from 127.0.0.0/8 to any port eq 80\nblock from any to any port eq 25 reply 93 log\npass from any to any";
    let mut sim = Sim::local(cfg_with(policy));
    sim.input(&connect_req("192.0.2.5:25", b""));
    assert_eq!(
        sim.replies(),
        vec![Reply::with_code(ReplyCode::IdentMismatch)]
    );
    assert_eq!(
        sim.closed(),
        Some(CloseReason::Denied(Source::Rule {
            number: 2,
            line: Some(2)
        }))
    );
    assert!(sim
        .events
        .iter()
        .any(|e| matches!(e, Event::Denied { log: true, .. })));

    // The POE SOCKS server's lists: deny any, exempt loopback.
    let mut policy: Policy = "pass from any to any".parse().unwrap();
    policy.add_denial("any".parse().unwrap());
    policy.add_exemption("127.0.0.1".parse().unwrap());
    let cfg = ServerConfig::with_policy(policy);
    let mut sim = Sim::new(cfg.clone(), "127.0.0.2:4000", "127.0.0.1:1080");
    sim.input(&connect_req("127.0.0.1:80", b""));
    assert_eq!(sim.closed(), Some(CloseReason::Denied(Source::Denied)));
    let mut sim = Sim::new(cfg, "127.0.0.1:4000", "127.0.0.1:1080");
    assert_eq!(
        sim.input(&connect_req("127.0.0.1:80", b"")),
        vec![Action::Connect(addr("127.0.0.1:80"))]
    );
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
        vec![Action::Connect(addr("127.0.0.3:80"))],
        "the blocked address is skipped"
    );
    let acts = sim.outcome(ActionOutcome::Connected(Err(ErrorKind::ConnectionRefused)));
    assert_eq!(acts[0], refused(ReplyCode::Rejected));
}

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

/// (request USERID, identd's answer or None for a timeout, reply, close reason)
type IdentCase = (
    &'static [u8],
    Option<Result<Outcome, ErrorKind>>,
    ReplyCode,
    CloseReason,
);

fn ident_cfg(mode: IdentMode) -> ServerConfig {
    let mut cfg = ServerConfig::default();
    cfg.ident = mode;
    cfg
}

fn ident_case(mode: IdentMode, user_id: &[u8], answer: Option<Result<Outcome, ErrorKind>>) -> Sim {
    let mut sim = Sim::local(ident_cfg(mode));
    let acts = sim.input(&connect_req("127.0.0.1:80", user_id));
    assert_eq!(
        acts,
        vec![Action::IdentQuery {
            to: addr("127.0.0.1:113"),
            query: Query::new(40000, 1080)
        }],
        "IDENT is asked before connecting"
    );
    match answer {
        Some(a) => {
            sim.outcome(ActionOutcome::Ident(a));
        }
        None => {
            assert_eq!(
                sim.session.poll_timeout().unwrap() - sim.now,
                Duration::from_secs(10)
            );
            sim.advance(Duration::from_secs(10));
        }
    }
    sim
}

#[test]
fn ident_require_mode() {
    let ok = ident_case(IdentMode::Require, b"alice", Some(Ok(user("alice"))));
    assert_eq!(
        ok.actions.last(),
        Some(&Action::Connect(addr("127.0.0.1:80")))
    );
    assert!(ok.events.contains(&Event::Ident {
        outcome: Some(user("alice"))
    }));

    let cases: Vec<IdentCase> = vec![
        (
            b"alice",
            Some(Ok(user("mallory"))),
            ReplyCode::IdentMismatch,
            CloseReason::IdentMismatch,
        ),
        (
            b"",
            Some(Ok(user("alice"))),
            ReplyCode::IdentMismatch,
            CloseReason::IdentMismatch,
        ),
        (
            b"alice",
            Some(Err(ErrorKind::ConnectionRefused)),
            ReplyCode::IdentUnreachable,
            CloseReason::IdentUnavailable,
        ),
        (
            b"alice",
            Some(Ok(Outcome::Error(ErrorCode::HiddenUser))),
            ReplyCode::IdentUnreachable,
            CloseReason::IdentUnavailable,
        ),
        (
            b"alice",
            None,
            ReplyCode::IdentUnreachable,
            CloseReason::TimedOut(Timer::Ident),
        ),
    ];
    for (user_id, answer, code, reason) in cases {
        let sim = ident_case(IdentMode::Require, user_id, answer.clone());
        assert_eq!(sim.replies(), vec![Reply::with_code(code)], "{answer:?}");
        assert_eq!(sim.closed(), Some(reason), "{answer:?}");
    }
}

#[test]
fn ident_log_mode_records_but_never_refuses() {
    for answer in [
        Some(Ok(user("mallory"))),
        Some(Err(ErrorKind::ConnectionRefused)),
        None,
    ] {
        let sim = ident_case(IdentMode::Log, b"alice", answer.clone());
        assert_eq!(
            sim.actions.last(),
            Some(&Action::Connect(addr("127.0.0.1:80"))),
            "{answer:?}"
        );
        assert!(sim.replies().is_empty());
        assert!(sim.events.iter().any(|e| matches!(e, Event::Ident { .. })));
    }
}

#[test]
fn rules_may_require_ident_for_some_clients_only() {
    let policy = "pass from 127.0.0.2 to any ident\npass from 127.0.0.0/8 to any";
    let mut sim = Sim::new(cfg_with(policy), "127.0.0.1:40000", "127.0.0.1:1080");
    assert_eq!(
        sim.input(&connect_req("127.0.0.1:80", b"")),
        vec![Action::Connect(addr("127.0.0.1:80"))]
    );
    let mut sim = Sim::new(cfg_with(policy), "127.0.0.2:40000", "127.0.0.1:1080");
    assert!(matches!(
        sim.input(&connect_req("127.0.0.1:80", b"bob"))[..],
        [Action::IdentQuery { .. }]
    ));
    sim.outcome(ActionOutcome::Ident(Ok(user("eve"))));
    assert_eq!(
        sim.replies(),
        vec![Reply::with_code(ReplyCode::IdentMismatch)]
    );
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
        vec![Action::Connect(addr("127.0.0.1:80"))]
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
fn admission_comes_before_any_resolve_ident_or_connect() {
    let mut cfg = cfg_with("pass from any to .example.com\npass from any to any ident");
    cfg.admission = true;
    // A name the policy passes before resolving: admitted first, then resolved.
    let mut sim = Sim::local(cfg.clone());
    let acts = sim.input(&connect_4a("www.example.com", 443, b"alice"));
    assert!(
        matches!(&acts[..], [Action::Admit { command: Command::Connect, verdict }] if verdict.is_pass()),
        "{acts:?}"
    );
    let acts = sim.outcome(ActionOutcome::Admitted(Ok(())));
    assert!(matches!(&acts[..], [Action::Resolve { .. }]), "{acts:?}");
    // A limit refuses with 91 and nothing else happens.
    let mut sim = Sim::local(cfg.clone());
    sim.input(&connect_4a("www.example.com", 443, b""));
    let acts = sim.outcome(ActionOutcome::Admitted(Err(Limit::Rate)));
    assert_eq!(acts[0], refused(ReplyCode::Rejected));
    assert_eq!(sim.closed(), Some(CloseReason::Limited(Limit::Rate)));
    assert!(!sim
        .actions
        .iter()
        .any(|a| matches!(a, Action::Resolve { .. } | Action::Connect(_))));
    // An address rule: resolved first, then admitted, then IDENT.
    let mut sim = Sim::local(cfg);
    sim.input(&connect_req("127.0.0.1:80", b"bob"));
    assert!(matches!(sim.actions.last(), Some(Action::Admit { .. })));
    let acts = sim.outcome(ActionOutcome::Admitted(Ok(())));
    assert!(matches!(&acts[..], [Action::IdentQuery { .. }]), "{acts:?}");
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

#[test]
fn a_name_goes_to_a_socks4a_parent_unresolved() {
    let cfg = cfg_with(
        "pass from any to any\nroute to .corp.example via socks4a://10.0.0.1:1080, http://10.0.0.2:3128 user proxyuser",
    );
    let mut sim = Sim::local(cfg);
    let acts = sim.input(&connect_4a("db.corp.example", 5432, b"alice"));
    let Some(Action::ConnectVia {
        parent,
        dest,
        user_id,
    }) = acts.first()
    else {
        panic!("{acts:?}")
    };
    assert_eq!(parent.to_url(), "socks4a://proxyuser@10.0.0.1:1080");
    assert_eq!(*dest, Destination::Name("db.corp.example".into(), 5432));
    assert_eq!(user_id, b"proxyuser");
    assert!(!sim
        .actions
        .iter()
        .any(|a| matches!(a, Action::Resolve { .. })));
    // The first parent fails: the second is tried; it grants.
    let acts = sim.outcome(ActionOutcome::Connected(Err(ErrorKind::ConnectionRefused)));
    assert!(
        matches!(&acts[..], [Action::ConnectVia { parent, .. }] if parent.port == 3128),
        "{acts:?}"
    );
    let acts = sim.outcome(ActionOutcome::Connected(Ok(())));
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
        matches!(&acts[..], [Action::ConnectVia { dest: Destination::Addr(a), .. }] if *a == addr("127.0.0.1:80")),
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
    assert_eq!(s.poll_action(), Some(Action::Connect(local)));
    s.handle_outcome(std::time::Instant::now(), ActionOutcome::Connected(Ok(())))
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
