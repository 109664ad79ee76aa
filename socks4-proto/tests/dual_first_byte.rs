//! Properties of the dual listener's decision machine: the first byte of the
//! first non-empty input decides, whatever came before it in time, unless the
//! deadline fired first; silence decides `Other` exactly at the deadline; a
//! decision never changes.
#![allow(clippy::disallowed_methods)] // tests need a point in time to start from

use proptest::prelude::*;
use socks4_proto::server::dual::{FirstByte, Protocol};
use std::time::{Duration, Instant};

/// One step a driver may take: bytes at a time offset, or a timer check at one.
#[derive(Debug, Clone)]
enum Step {
    Input(u64, Vec<u8>),
    Timeout(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0u64..5_000, proptest::collection::vec(any::<u8>(), 0..4))
            .prop_map(|(t, b)| Step::Input(t, b)),
        (0u64..5_000).prop_map(Step::Timeout),
    ]
}

fn by_byte(b: u8) -> Protocol {
    match b {
        4 => Protocol::Socks,
        0x16 => Protocol::Tls,
        _ => Protocol::Other,
    }
}

proptest! {
    #[test]
    fn the_first_thing_that_happens_decides_and_nothing_changes_it(
        wait_ms in 1u64..3_000,
        steps in proptest::collection::vec(step(), 0..12),
    ) {
        let t0 = Instant::now();
        let wait = Duration::from_millis(wait_ms);
        let mut m = FirstByte::new(t0, wait);
        // The model: walk the steps; the first non-empty input, or the first
        // timer check at or after the deadline, decides.
        let mut expected: Option<Protocol> = None;
        for s in &steps {
            let got = match s {
                Step::Input(t, bytes) => {
                    if expected.is_none() {
                        expected = bytes.first().map(|b| by_byte(*b));
                    }
                    m.handle_input(t0 + Duration::from_millis(*t), bytes)
                }
                Step::Timeout(t) => {
                    if expected.is_none() && *t >= wait_ms {
                        expected = Some(Protocol::Other);
                    }
                    m.handle_timeout(t0 + Duration::from_millis(*t))
                }
            };
            prop_assert_eq!(got, expected);
            prop_assert_eq!(m.decision(), expected);
            // Undecided, the machine asks to be woken at the deadline; decided,
            // never again.
            prop_assert_eq!(m.poll_timeout(), expected.is_none().then_some(t0 + wait));
        }
    }

    #[test]
    fn any_first_byte_decides_at_once(b in any::<u8>(), rest in proptest::collection::vec(any::<u8>(), 0..8)) {
        let t0 = Instant::now();
        let mut m = FirstByte::new(t0, Duration::from_secs(2));
        let mut bytes = vec![b];
        bytes.extend(rest);
        prop_assert_eq!(m.handle_input(t0, &bytes), Some(by_byte(b)));
    }
}
