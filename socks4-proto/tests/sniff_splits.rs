//! Properties of the sniffer: a ClientHello's SNI is found whatever records
//! carry it and however its bytes arrive, as is an HTTP request's Host; what
//! follows a name never changes it; arbitrary bytes never make it panic, and
//! a name it gives is a canonical host name.

use proptest::prelude::*;
use socks4_proto::sniff::{sniff, NameKind, Sniffed, Sniffer, MAX_NAME};

const MAX: usize = 16 * 1024;

fn host() -> impl Strategy<Value = String> {
    proptest::collection::vec("[a-z][a-z0-9-]{0,20}", 1..5).prop_map(|labels| labels.join("."))
}

/// A ClientHello with `pad` bytes of another extension before its SNI, in
/// records of at most `size` bytes.
fn client_hello(name: &str, pad: usize, size: usize) -> Vec<u8> {
    let mut body = vec![3, 3];
    body.extend_from_slice(&[1; 32]);
    body.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]);
    let mut exts = vec![0, 21];
    exts.extend_from_slice(&(pad as u16).to_be_bytes());
    exts.extend(std::iter::repeat_n(0u8, pad));
    let n = name.len() as u16;
    exts.extend_from_slice(&[0, 0]);
    exts.extend_from_slice(&(n + 5).to_be_bytes());
    exts.extend_from_slice(&(n + 3).to_be_bytes());
    exts.push(0);
    exts.extend_from_slice(&n.to_be_bytes());
    exts.extend_from_slice(name.as_bytes());
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);
    let mut hs = vec![1];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut out = Vec::new();
    for chunk in hs.chunks(size) {
        out.extend_from_slice(&[0x16, 3, 1]);
        out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

/// Feeds `bytes` to a sniffer in parts cut at `cuts`.
fn fed(bytes: &[u8], cuts: &[usize]) -> Sniffed {
    let mut s = Sniffer::new(MAX);
    let mut at = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    for cut in cuts {
        s.feed(&bytes[at..cut]);
        at = cut;
    }
    s.feed(&bytes[at..]);
    assert_eq!(s.bytes(), bytes);
    s.verdict().clone()
}

proptest! {
    #[test]
    fn sni_in_any_records_any_splits(
        name in host(),
        pad in 0usize..3000,
        size in 1usize..2000,
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
        tail in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let bytes = client_hello(&name, pad, size);
        let want = Sniffed::Name(name.clone(), NameKind::Sni);
        prop_assert_eq!(fed(&bytes, &cuts), want.clone());
        let mut more = bytes.clone();
        more.extend_from_slice(&tail);
        prop_assert_eq!(sniff(&more, MAX), want);
    }

    #[test]
    fn host_in_any_splits(
        name in host(),
        port in proptest::option::of(1u16..),
        headers in proptest::collection::vec("[A-Za-z-]{1,12}: [ -~]{0,30}", 0..6),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let headers: Vec<String> = headers
            .into_iter()
            .filter(|h| !h.to_ascii_lowercase().starts_with("host:"))
            .collect();
        let host = match port {
            Some(p) => format!("{}:{p}", name.to_ascii_uppercase()),
            None => name.clone(),
        };
        let mut req = String::from("GET /path HTTP/1.1\r\n");
        for h in &headers {
            req.push_str(h);
            req.push_str("\r\n");
        }
        req.push_str(&format!("Host: {host}\r\n\r\n"));
        prop_assert_eq!(fed(req.as_bytes(), &cuts), Sniffed::Name(name, NameKind::Host));
    }

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600), max in 0usize..700) {
        let found = sniff(&bytes, max);
        if let Sniffed::Name(name, _) = &found {
            prop_assert!(!name.is_empty() && name.len() <= MAX_NAME);
            prop_assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b)));
            for n in 0..bytes.len() {
                let before = sniff(&bytes[..n], max);
                prop_assert!(before == Sniffed::NeedMore || before == found.clone());
            }
        }
        if found == Sniffed::NeedMore {
            prop_assert!(bytes.len() < max);
        }
    }
}
