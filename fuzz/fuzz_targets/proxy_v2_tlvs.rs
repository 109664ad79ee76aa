//! PROXY protocol v2 headers with arbitrary TLVs (types, lengths that may
//! lie, nested SSL sub-TLVs, trailing garbage) after well-formed addresses:
//! never a panic; a header is complete exactly when its declared length is
//! within the cap and the input; a complete PROXY header names the client it
//! was built with whatever its TLVs say; and what follows it never changes
//! it. The TLVs are also walked with the parser's own iterator.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use socks4_proto::proxy_header::{parse, Accept, Parsed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

const SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

#[derive(Debug, Arbitrary)]
struct Tlv {
    kind: u8,
    /// The length field; when `honest`, the value's real length.
    declared: u16,
    honest: bool,
    value: Vec<u8>,
}

#[derive(Debug, Arbitrary)]
struct Input {
    local: bool,
    v6: bool,
    source: u128,
    source_port: u16,
    tlvs: Vec<Tlv>,
    trailing: Vec<u8>,
    cap: u16,
    /// Lies about the header's length by this much (0: the truth).
    skew: i8,
}

fuzz_target!(|input: Input| {
    let mut body = Vec::new();
    let source = if input.v6 {
        let ip = Ipv6Addr::from(input.source);
        body.extend_from_slice(&ip.octets());
        body.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        SocketAddr::from((ip, input.source_port))
    } else {
        let ip = Ipv4Addr::from(input.source as u32);
        body.extend_from_slice(&ip.octets());
        body.extend_from_slice(&Ipv4Addr::LOCALHOST.octets());
        SocketAddr::from((ip, input.source_port))
    };
    body.extend_from_slice(&input.source_port.to_be_bytes());
    body.extend_from_slice(&1080u16.to_be_bytes());
    for tlv in &input.tlvs {
        let len = if tlv.honest {
            tlv.value.len().min(usize::from(u16::MAX)) as u16
        } else {
            tlv.declared
        };
        body.push(tlv.kind);
        body.extend_from_slice(&len.to_be_bytes());
        body.extend_from_slice(&tlv.value);
    }
    let Ok(declared) = u16::try_from(i64::try_from(body.len()).unwrap() + i64::from(input.skew))
    else {
        return;
    };
    let mut header = SIGNATURE.to_vec();
    header.push(if input.local { 0x20 } else { 0x21 });
    header.push(if input.v6 { 0x21 } else { 0x11 });
    header.extend_from_slice(&declared.to_be_bytes());
    header.extend_from_slice(&body);
    let total = 16 + usize::from(declared);
    let cap = usize::from(input.cap % 2048).max(16);
    let mut bytes = header.clone();
    bytes.extend_from_slice(&input.trailing);
    match parse(&bytes, Accept::V2, cap) {
        Parsed::Complete { header: h, len } => {
            assert_eq!(len, total, "the declared length");
            assert!(len <= cap && len <= bytes.len());
            if !input.local && input.skew == 0 {
                assert_eq!(h.source, Some(source));
            }
            if input.local {
                assert_eq!(h.source, None);
            }
            let mut more = bytes[..len].to_vec();
            more.extend_from_slice(b"\x04\x01after");
            assert_eq!(
                parse(&more, Accept::V2, cap),
                Parsed::Complete { header: h, len }
            );
            if let Ok(h) = ppp::v2::Header::try_from(&bytes[..len]) {
                for tlv in h.tlvs() {
                    let _ = tlv;
                }
            }
        }
        Parsed::Incomplete => assert!(bytes.len() < total && total <= cap),
        Parsed::Invalid(_) => {}
    }
});
