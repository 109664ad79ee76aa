//! The relay's meter (bandwidth and quota), with time passed in: exact across
//! relays, pacing by waiting, and quota periods that start over. (Here rather
//! than in the daemon crate: only the runtimes read the clock there.)

use socks4_acl::limit::{Bandwidth, Period};
use socks4_daemon::limits::meter::{unix_now, Allowance, Meter, Pacer, Usage, Way};
use std::sync::Arc;
use std::time::Instant;

use std::time::Duration;

#[test]
fn a_quota_is_exact_across_relays() {
    let usage = Arc::new(Usage::new(Period::Day, Period::Day.index(unix_now()), 0));
    let a = Meter {
        pacer: None,
        quota: Some((usage.clone(), 1000)),
    };
    let b = a.clone();
    let now = Instant::now();
    assert_eq!(a.allow(Way::Up, now, 600), Allowance::Bytes(600));
    assert_eq!(b.allow(Way::Down, now, 600), Allowance::Bytes(400));
    assert_eq!(a.allow(Way::Up, now, 1), Allowance::QuotaReached);
    a.moved(Way::Up, 600, 100); // 500 not moved: given back
    assert_eq!(b.allow(Way::Down, now, 600), Allowance::Bytes(500));
    assert_eq!(usage.used(unix_now()), 1000);
}

#[test]
fn a_paced_direction_waits_and_its_quota_is_not_held() {
    let usage = Arc::new(Usage::new(Period::Day, Period::Day.index(unix_now()), 0));
    let m = Meter {
        pacer: Some(Arc::new(Pacer::new(Bandwidth {
            bytes_per_second: 1000,
        }))),
        quota: Some((usage.clone(), 1_000_000)),
    };
    let now = Instant::now();
    assert_eq!(m.allow(Way::Up, now, 5000), Allowance::Bytes(1000));
    match m.allow(Way::Up, now, 5000) {
        Allowance::WaitUntil(t) => assert!(t > now && t <= now + Duration::from_secs(1)),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        usage.used(unix_now()),
        1000,
        "the waiting reservation was given back"
    );
    // The other direction has its own bucket.
    assert_eq!(m.allow(Way::Down, now, 5000), Allowance::Bytes(1000));
}

#[test]
fn usage_starts_over_in_a_new_period() {
    let u = Usage::new(Period::Hour, 10, 500);
    assert_eq!(u.used(10 * 3600 + 5), 500);
    assert_eq!(u.used(11 * 3600), 0);
}
