//! Access rules: the secure default, a rule's own reply code and its name in
//! the events, denial and exemption lists, `notify` rules, and admission (the
//! limits) before any lookup, IDENT or connect.

use super::{cfg_with, connect_4a, connect_req, refused};
use socks4_acl::{Policy, Source};
use socks4_proto::server::{Action, ActionOutcome, CloseReason, Event, Limit, ServerConfig};
use socks4_proto::{Command, Reply, ReplyCode};
use socks4_tests::sim::{addr, Sim};

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
        vec![Action::Connect(vec![addr("127.0.0.1:80")])]
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
