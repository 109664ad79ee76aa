//! IDENT: asked before connecting, in `require` and `log` modes and for the
//! clients a rule names; each answer, error and timeout with its reply code.

use super::{cfg_with, connect_req, user};
use socks4_ident::{ErrorCode, Outcome, Query};
use socks4_proto::server::{
    Action, ActionOutcome, CloseReason, Event, IdentMode, ServerConfig, Timer,
};
use socks4_proto::{Reply, ReplyCode};
use socks4_tests::sim::{addr, Sim};
use std::io::ErrorKind;
use std::time::Duration;

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
        Some(&Action::Connect(vec![addr("127.0.0.1:80")]))
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
            Some(&Action::Connect(vec![addr("127.0.0.1:80")])),
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
        vec![Action::Connect(vec![addr("127.0.0.1:80")])]
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

/// With limits keyed on the IDENT-verified user, identd is asked once the
/// policy passed the request and before admission; admission then sees the
/// verified user, and identd is not asked again before connecting. A claim
/// identd does not confirm is refused before admission and names nobody.
#[test]
fn ident_before_admission_names_the_verified_user() {
    let mut cfg = ident_cfg(IdentMode::Require);
    cfg.admission = true;
    cfg.ident_before_admission = true;
    let mut sim = Sim::local(cfg.clone());
    let acts = sim.input(&connect_req("127.0.0.1:80", b"alice"));
    assert!(
        matches!(&acts[..], [Action::IdentQuery { .. }]),
        "identd first: {acts:?}"
    );
    assert_eq!(sim.session.ident_user(), None, "not verified yet");
    let acts = sim.outcome(ActionOutcome::Ident(Ok(user("alice"))));
    assert!(matches!(&acts[..], [Action::Admit { .. }]), "{acts:?}");
    assert_eq!(sim.session.ident_user(), Some(&b"alice"[..]));
    let acts = sim.outcome(ActionOutcome::Admitted(Ok(())));
    assert_eq!(acts, vec![Action::Connect(vec![addr("127.0.0.1:80")])]);

    let mut sim = Sim::local(cfg.clone());
    sim.input(&connect_req("127.0.0.1:80", b"alice"));
    let acts = sim.outcome(ActionOutcome::Ident(Ok(user("mallory"))));
    assert!(!acts.iter().any(|a| matches!(a, Action::Admit { .. })));
    assert_eq!(sim.closed(), Some(CloseReason::IdentMismatch));
    assert_eq!(sim.session.ident_user(), None);

    // Without the switch: admission first, as before.
    cfg.ident_before_admission = false;
    let mut sim = Sim::local(cfg);
    let acts = sim.input(&connect_req("127.0.0.1:80", b"alice"));
    assert!(matches!(&acts[..], [Action::Admit { .. }]), "{acts:?}");
    let acts = sim.outcome(ActionOutcome::Admitted(Ok(())));
    assert!(matches!(&acts[..], [Action::IdentQuery { .. }]), "{acts:?}");
}
