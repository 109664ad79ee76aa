//! The policy text parser: arbitrary text never panics; whatever parses prints to
//! text that parses to an equal policy and prints the same again; an error names a
//! line of the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use socks4_acl::Policy;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match text.parse::<Policy>() {
        Ok(policy) => {
            let shown = policy.to_string();
            let again: Policy = shown.parse().unwrap_or_else(|e| panic!("{e}\n{shown}"));
            assert_eq!(again, policy);
            assert_eq!(again.to_string(), shown);
        }
        Err(e) => {
            assert!(e.line >= 1 && e.line <= text.lines().count().max(1));
            assert!(e.column >= 1);
        }
    }
});
