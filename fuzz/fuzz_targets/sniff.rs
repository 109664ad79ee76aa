//! The sniffer (a TLS ClientHello's SNI, an HTTP request's Host) under
//! arbitrary bytes. Invariants: never a panic; a name is a canonical host
//! name within its bound; the answer never depends on bytes past the bound;
//! fed in two parts, the sniffer answers as it does for the whole; every
//! prefix of bytes that named a host either needs more or names the same
//! host; bytes after a name never change it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use socks4_proto::sniff::{sniff, Sniffed, Sniffer, MAX_NAME};

fuzz_target!(|input: (Vec<u8>, u16, u16)| {
    let (bytes, max, split) = input;
    let max = usize::from(max % 4096);
    let found = sniff(&bytes, max);
    assert_eq!(sniff(&bytes[..bytes.len().min(max)], max), found);
    let split = usize::from(split).min(bytes.len());
    let mut s = Sniffer::new(max);
    s.feed(&bytes[..split]);
    s.feed(&bytes[split..]);
    assert_eq!(s.verdict(), &found);
    assert_eq!(s.bytes(), &bytes[..]);
    match &found {
        Sniffed::Name(name, _) => {
            assert!(!name.is_empty() && name.len() <= MAX_NAME);
            assert!(!name.ends_with('.'));
            assert!(name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b)));
            for n in (0..bytes.len()).step_by(1 + bytes.len() / 64) {
                let before = sniff(&bytes[..n], max);
                assert!(before == Sniffed::NeedMore || before == found);
            }
            let mut more = bytes.clone();
            more.extend_from_slice(b"\r\nHost: other.test\r\n\r\n");
            assert_eq!(sniff(&more, max), found);
        }
        Sniffed::NeedMore => assert!(bytes.len() < max),
        Sniffed::NotFound => {}
    }
});
