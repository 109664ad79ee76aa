//! The PROXY protocol header reader under arbitrary bytes. Invariants: never a
//! panic; a complete header is never longer than its bound or the input; every
//! prefix of a complete header is incomplete (so reading on is always right);
//! an incomplete input is within the bound; and what follows a header never
//! changes the header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use socks4_proto::proxy_header::{parse, Accept, Parsed, V1_MAX};

fuzz_target!(|input: (Vec<u8>, u16, u8)| {
    let (bytes, cap, which) = input;
    let accept = match which % 3 {
        0 => Accept::V1,
        1 => Accept::V2,
        _ => Accept::Any,
    };
    let cap = usize::from(cap % 1024);
    let bound = V1_MAX.max(cap).max(16);
    match parse(&bytes, accept, cap) {
        Parsed::Complete { header, len } => {
            assert!(len <= bytes.len() && len <= bound);
            for n in 0..len {
                assert_eq!(parse(&bytes[..n], accept, cap), Parsed::Incomplete);
            }
            let mut more = bytes[..len].to_vec();
            more.extend_from_slice(b"\x04\x01trailing");
            assert_eq!(parse(&more, accept, cap), Parsed::Complete { header, len });
        }
        Parsed::Incomplete => assert!(bytes.len() < bound),
        Parsed::Invalid(_) => {}
    }
});
