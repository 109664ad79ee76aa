//! The per-client table as a library: bounded by `tracked` addresses
//! whatever limits are on (a client whose connection-rate window is not empty
//! is forgotten like any other that holds no connection), with each client's
//! lookups capped.

use socks4_acl::{Action, Source, Verdict};
use socks4_daemon::limits::client_table::{ClientKey, ClientLimits, ClientTable};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

fn pass() -> Verdict {
    Verdict {
        action: Action::Pass,
        source: Source::Default,
        require_ident: false,
        log: false,
        notify: false,
        bandwidth: None,
        quota: None,
    }
}

#[test]
fn the_table_is_bounded_when_a_rate_limit_is_on() {
    let mut limits = ClientLimits::caps(10, 1, 128);
    limits.rate = Some("100/1h".parse().unwrap());
    let t = Arc::new(ClientTable::new(limits));
    let now = Instant::now();
    for i in 0..20_000u32 {
        let key = ClientKey::V4(Ipv4Addr::from(0x0a00_0000 + i));
        let (ticket, _) = t.admit(key, now, &pass()).unwrap();
        ticket.unwrap().granted(); // its rate window is not empty
    }
    assert!(t.len() <= 128, "{} entries", t.len());
}

#[test]
fn one_client_cannot_hold_every_lookup() {
    let mut limits = ClientLimits::caps(10, 1, 128);
    limits.max_lookups = 2;
    let t = Arc::new(ClientTable::new(limits));
    let a = ClientKey::V4(Ipv4Addr::new(192, 0, 2, 1));
    let b = ClientKey::V4(Ipv4Addr::new(192, 0, 2, 2));
    let first = t.try_lookup(a.clone()).unwrap();
    let _second = t.try_lookup(a.clone()).unwrap();
    assert!(t.try_lookup(a.clone()).is_none(), "a third of a's waits");
    assert!(t.try_lookup(b).is_some(), "b is not held up by a");
    drop(first);
    assert!(t.try_lookup(a).is_some(), "a place freed at once");
}
