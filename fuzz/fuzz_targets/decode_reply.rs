//! Reply decoding: never panics, consumes exactly 8 bytes when complete, and a reply
//! with VN 0 re-encodes to the bytes it came from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use socks4_proto::{Reply, Status};

fuzz_target!(|data: &[u8]| {
    match Reply::decode(data) {
        Ok(Status::Complete(reply, used)) => {
            assert_eq!(used, Reply::LEN);
            assert!(used <= data.len());
            let again = reply.to_bytes();
            assert_eq!(again[1..], data[1..Reply::LEN]);
            if data[0] == 0 {
                assert_eq!(again[..], data[..Reply::LEN]);
            }
        }
        Ok(Status::Incomplete) => assert!(data.len() < Reply::LEN),
        Err(_) => {}
    }
});
