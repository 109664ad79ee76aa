//! The HTTP CONNECT client machine under arbitrary responses in arbitrary
//! splits. Invariants: never a panic; the head never grows past its bound; an
//! outcome, once there, does not change; the bytes it says belong to the
//! response add up to no more than what it was given; and the same bytes give
//! the same outcome whatever the split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use socks4_proto::upstream::{HttpConnect, MAX_RESPONSE_HEAD};

fuzz_target!(|input: (Vec<u8>, Vec<u16>)| {
    let (bytes, cuts) = input;
    let run = |cuts: &[u16]| {
        let mut c = HttpConnect::new("example.com", 443, Some(("u", "p")));
        let mut at = 0;
        let mut used_total = 0;
        let mut points: Vec<usize> = cuts
            .iter()
            .map(|c| *c as usize % (bytes.len() + 1))
            .collect();
        points.sort_unstable();
        points.push(bytes.len());
        let mut outcome = None;
        for p in points {
            if p < at {
                continue;
            }
            match c.handle_input(&bytes[at..p]) {
                Ok(used) => {
                    assert!(used <= p - at);
                    used_total += used;
                }
                Err(e) => return Err(e),
            }
            if let Some(o) = outcome.as_ref() {
                assert_eq!(c.outcome(), Some(o), "an outcome never changes");
            }
            outcome = c.outcome().cloned();
            at = p;
            if outcome.is_some() {
                break;
            }
        }
        assert!(used_total <= MAX_RESPONSE_HEAD);
        Ok(outcome)
    };
    let whole = run(&[]);
    let split = run(&cuts);
    // Splitting may only turn "too long" into the same error, never change a
    // complete answer.
    if let (Ok(Some(a)), Ok(Some(b))) = (&whole, &split) {
        assert_eq!(a, b);
    }
});
