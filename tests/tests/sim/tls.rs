//! TLS as the session sees it: a client certificate's name reported and
//! matched by `cert` rules, and a failed handshake closed without a reply.

use super::{cfg_with, connect_req};
use socks4_acl::Source;
use socks4_proto::server::{Action, CloseReason, Event, ServerConfig};
use socks4_proto::{Reply, ReplyCode};
use socks4_tests::sim::{addr, Sim};

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
        vec![Action::Connect(vec![addr("127.0.0.1:80")])]
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
