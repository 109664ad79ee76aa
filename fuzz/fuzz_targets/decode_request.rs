//! Request decoding: never panics, consumes at most its input, is bounded by the
//! limits, and a canonical frame re-encodes to exactly the bytes it consumed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use socks4_proto::{Dest, Limits, Request, Status};

fuzz_target!(|data: &[u8]| {
    // The first byte picks small limits sometimes, so the limit paths get exercised.
    let mut limits = Limits::default();
    if let Some(b) = data.first().filter(|&&b| b & 0x80 != 0) {
        limits.max_user_id = usize::from(b & 0x0f);
        limits.max_host = usize::from(b >> 4 & 0x07);
    }
    let input = data.get(1..).unwrap_or_default();
    match Request::decode(input, &limits) {
        Ok(Status::Complete(req, used)) => {
            assert!(used <= input.len());
            assert!(used <= limits.max_request_len());
            assert!(req.user_id.len() <= limits.max_user_id);
            assert_eq!(req.validate(), Ok(()));
            let again = req.to_vec();
            assert_eq!(again.len(), used);
            let consumed = &input[..used];
            match req.dest {
                // SOCKS4: byte for byte.
                Dest::Addr(_) => assert_eq!(again, consumed),
                // SOCKS4a: all but DSTIP's last octet, which the encoder writes as 1.
                Dest::Domain(host, _) => {
                    assert!(host.len() <= limits.max_host);
                    assert_eq!(again[..7], consumed[..7]);
                    assert_eq!(again[8..], consumed[8..]);
                }
            }
            // Decoding the re-encoded frame gives the same request.
            assert_eq!(
                Request::decode(&again, &limits),
                Ok(Status::Complete(req, used))
            );
        }
        Ok(Status::Incomplete) => assert!(input.len() < limits.max_request_len()),
        Err(_) => {}
    }
});
