//! Table-driven tests of the codec, with byte vectors written from the protocol
//! texts, and property tests of the round trip.

use super::*;
use proptest::prelude::*;

const L: Limits = Limits::DEFAULT;

fn addr(s: &str) -> SocketAddrV4 {
    s.parse().unwrap()
}

/// Valid requests: (bytes, expected request). Each is a complete frame.
fn valid_requests() -> Vec<(&'static [u8], Request<'static>)> {
    let mut all = socks4_requests();
    all.extend(socks4a_requests());
    all
}

/// Valid SOCKS4 requests (an address), as [`valid_requests`].
fn socks4_requests() -> Vec<(&'static [u8], Request<'static>)> {
    vec![
        // The protocol text's CONNECT: VN 4, CD 1, port, ip, USERID, NUL.
        (
            b"\x04\x01\x00\x17\xc0\x00\x02\x01fred\0",
            Request {
                command: Command::Connect,
                dest: Dest::Addr(addr("192.0.2.1:23")),
                user_id: b"fred",
            },
        ),
        // Empty USERID.
        (
            b"\x04\x01\x01\xbb\x7f\x00\x00\x01\0",
            Request {
                command: Command::Connect,
                dest: Dest::Addr(addr("127.0.0.1:443")),
                user_id: b"",
            },
        ),
        // BIND: CD 2, DSTIP is the application server, DSTPORT the primary port.
        (
            b"\x04\x02\x00\x15\xc6\x33\x64\x09ftpuser\0",
            Request {
                command: Command::Bind,
                dest: Dest::Addr(addr("198.51.100.9:21")),
                user_id: b"ftpuser",
            },
        ),
        // USERID bytes are opaque (not UTF-8 here).
        (
            b"\x04\x01\xff\xff\x0a\x00\x00\x01\xff\xfe \x01\0",
            Request {
                command: Command::Connect,
                dest: Dest::Addr(addr("10.0.0.1:65535")),
                user_id: b"\xff\xfe \x01",
            },
        ),
        // DSTIP 0.0.0.0 is not the 4a marker (x must be non-zero): a plain request.
        (
            b"\x04\x01\x00\x50\x00\x00\x00\x00\0",
            Request {
                command: Command::Connect,
                dest: Dest::Addr(addr("0.0.0.0:80")),
                user_id: b"",
            },
        ),
    ]
}

/// Valid SOCKS4a requests (a host name), as [`valid_requests`].
fn socks4a_requests() -> Vec<(&'static [u8], Request<'static>)> {
    vec![
        // SOCKS4a with the usual marker 0.0.0.1.
        (
            b"\x04\x01\x00\x50\x00\x00\x00\x01\0localhost\0",
            Request {
                command: Command::Connect,
                dest: Dest::Domain("localhost", 80),
                user_id: b"",
            },
        ),
        // SOCKS4a with another marker (0.0.0.255) and a user id.
        (
            b"\x04\x01\x1f\x90\x00\x00\x00\xffbob\0www.example.com\0",
            Request {
                command: Command::Connect,
                dest: Dest::Domain("www.example.com", 8080),
                user_id: b"bob",
            },
        ),
        // SOCKS4a BIND.
        (
            b"\x04\x02\x00\x15\x00\x00\x00\x07\0ftp.example.net\0",
            Request {
                command: Command::Bind,
                dest: Dest::Domain("ftp.example.net", 21),
                user_id: b"",
            },
        ),
        // A UTF-8 (IDN) host name without punycode is accepted.
        (
            "\x04\x01\x00\x50\x00\x00\x00\x01\0bücher.example\0".as_bytes(),
            Request {
                command: Command::Connect,
                dest: Dest::Domain("bücher.example", 80),
                user_id: b"",
            },
        ),
    ]
}

#[test]
fn decodes_every_valid_vector() {
    for (bytes, expected) in valid_requests() {
        assert_eq!(
            Request::decode(bytes, &L),
            Ok(Status::Complete(expected, bytes.len())),
            "{bytes:?}"
        );
        assert_eq!(expected.encoded_len(), bytes.len());
        assert_eq!(expected.validate(), Ok(()));
    }
}

#[test]
fn every_strict_prefix_is_incomplete() {
    for (bytes, _) in valid_requests() {
        for end in 0..bytes.len() {
            assert_eq!(
                Request::decode(&bytes[..end], &L),
                Ok(Status::Incomplete),
                "{bytes:?}[..{end}]"
            );
        }
    }
    let reply = Reply::with_code(ReplyCode::Granted).to_bytes();
    for end in 0..Reply::LEN {
        assert_eq!(Reply::decode(&reply[..end]), Ok(Status::Incomplete));
    }
}

#[test]
fn trailing_bytes_are_not_consumed() {
    for (bytes, expected) in valid_requests() {
        let mut with_data = bytes.to_vec();
        with_data.extend_from_slice(b"\0\x04pipelined");
        assert_eq!(
            Request::decode(&with_data, &L),
            Ok(Status::Complete(expected, bytes.len()))
        );
    }
}

#[test]
fn canonical_vectors_reencode_to_the_same_bytes() {
    for (bytes, req) in valid_requests() {
        let marker_is_canonical =
            !is_socks4a_marker(Ipv4Addr::new(bytes[4], bytes[5], bytes[6], bytes[7]))
                || bytes[7] == 1;
        if marker_is_canonical {
            assert_eq!(req.to_vec(), bytes);
        }
    }
}

#[test]
fn rejects_bad_requests() {
    let long_user = {
        let mut v = b"\x04\x01\x00\x50\x7f\x00\x00\x01".to_vec();
        v.extend(std::iter::repeat_n(b'u', 256));
        v
    };
    let long_host = {
        let mut v = b"\x04\x01\x00\x50\x00\x00\x00\x01\0".to_vec();
        v.extend(std::iter::repeat_n(b'h', 256));
        v
    };
    let cases: Vec<(Vec<u8>, DecodeError)> = vec![
        (b"\x05".to_vec(), DecodeError::Version(5)),
        (b"GET / HTTP/1.1\r\n".to_vec(), DecodeError::Version(b'G')),
        (b"\x04\x03".to_vec(), DecodeError::Command(3)),
        (b"\x04\x00\x00\x50".to_vec(), DecodeError::Command(0)),
        (long_user, DecodeError::UserIdTooLong),
        (long_host, DecodeError::HostTooLong),
        (
            b"\x04\x01\x00\x50\x00\x00\x00\x01\0\0".to_vec(),
            DecodeError::EmptyHost,
        ),
        (
            b"\x04\x01\x00\x50\x00\x00\x00\x01\0a\nb\0".to_vec(),
            DecodeError::BadHost,
        ),
        (
            b"\x04\x01\x00\x50\x00\x00\x00\x01\0a b\0".to_vec(),
            DecodeError::BadHost,
        ),
        (
            b"\x04\x01\x00\x50\x00\x00\x00\x01\0a\x7fb\0".to_vec(),
            DecodeError::BadHost,
        ),
        (
            b"\x04\x01\x00\x50\x00\x00\x00\x01\0\xff\xfe\0".to_vec(),
            DecodeError::BadHost,
        ),
    ];
    for (bytes, err) in cases {
        assert_eq!(Request::decode(&bytes, &L), Err(err), "{bytes:?}");
        assert_eq!(err.reply_code(), ReplyCode::Rejected);
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn limits_are_exact() {
    let limits = Limits {
        max_user_id: 3,
        max_host: 4,
    };
    // A user id of exactly the limit is fine; one more byte is not.
    assert!(
        Request::decode(b"\x04\x01\x00\x50\x7f\x00\x00\x01abc\0", &limits)
            .unwrap()
            .is_complete()
    );
    assert_eq!(
        Request::decode(b"\x04\x01\x00\x50\x7f\x00\x00\x01abc", &limits),
        Ok(Status::Incomplete)
    );
    assert_eq!(
        Request::decode(b"\x04\x01\x00\x50\x7f\x00\x00\x01abcd", &limits),
        Err(DecodeError::UserIdTooLong)
    );
    assert!(
        Request::decode(b"\x04\x01\x00\x50\x00\x00\x00\x01\0abcd\0", &limits)
            .unwrap()
            .is_complete()
    );
    assert_eq!(
        Request::decode(b"\x04\x01\x00\x50\x00\x00\x00\x01\0abcde", &limits),
        Err(DecodeError::HostTooLong)
    );
    // The longest request the limits allow decodes; it is max_request_len bytes.
    let longest = b"\x04\x01\x00\x50\x00\x00\x00\x01abc\0abcd\0";
    assert_eq!(longest.len(), limits.max_request_len());
    assert!(Request::decode(longest, &limits).unwrap().is_complete());
}

#[test]
fn incomplete_is_bounded_by_max_request_len() {
    // Whatever the bytes, a buffer of max_request_len bytes is never Incomplete.
    let limits = Limits::default();
    for filler in [b'a', 0u8] {
        let mut v = b"\x04\x01\x00\x50\x00\x00\x00\x01".to_vec();
        v.resize(limits.max_request_len(), filler);
        assert_ne!(Request::decode(&v, &limits), Ok(Status::Incomplete));
    }
    // A 100 KB user id is refused after max_user_id + 1 bytes of it.
    let mut huge = b"\x04\x01\x00\x50\x7f\x00\x00\x01".to_vec();
    huge.resize(100 * 1024, b'x');
    assert_eq!(
        Request::decode(&huge, &limits),
        Err(DecodeError::UserIdTooLong)
    );
}

#[test]
fn validate_catches_what_encode_cannot_express() {
    let ok = Request {
        command: Command::Connect,
        dest: Dest::Domain("localhost", 1),
        user_id: b"x",
    };
    assert_eq!(ok.validate(), Ok(()));
    let nul_user = Request {
        user_id: b"a\0",
        ..ok
    };
    assert_eq!(nul_user.validate(), Err(DecodeError::UserIdNul));
    let nul_host = Request {
        dest: Dest::Domain("a\0b", 1),
        ..ok
    };
    assert_eq!(nul_host.validate(), Err(DecodeError::BadHost));
    let empty = Request {
        dest: Dest::Domain("", 1),
        ..ok
    };
    assert_eq!(empty.validate(), Err(DecodeError::EmptyHost));
}

#[test]
fn reply_vectors() {
    // (bytes, expected): from the protocol text's reply layout.
    let cases: [(&[u8], Reply); 5] = [
        (
            b"\x00\x5a\x00\x00\x00\x00\x00\x00",
            Reply::with_code(ReplyCode::Granted),
        ),
        (
            b"\x00\x5b\x00\x00\x00\x00\x00\x00",
            Reply::with_code(ReplyCode::Rejected),
        ),
        (
            b"\x00\x5c\x00\x00\x00\x00\x00\x00",
            Reply::with_code(ReplyCode::IdentUnreachable),
        ),
        (
            b"\x00\x5d\x00\x00\x00\x00\x00\x00",
            Reply::with_code(ReplyCode::IdentMismatch),
        ),
        // A BIND reply naming the listening socket 10.0.0.1:1080.
        (
            b"\x00\x5a\x04\x38\x0a\x00\x00\x01",
            Reply::new(ReplyCode::Granted, addr("10.0.0.1:1080")),
        ),
    ];
    for (bytes, reply) in cases {
        assert_eq!(Reply::decode(bytes), Ok(Status::Complete(reply, 8)));
        assert_eq!(&reply.to_bytes()[..], bytes);
        let mut v = Vec::new();
        reply.encode(&mut v);
        assert_eq!(v, bytes);
    }
    // VN 4 accepted as a client, re-encoded as 0.
    assert_eq!(
        Reply::decode(b"\x04\x5a\x00\x00\x00\x00\x00\x00"),
        Ok(Status::Complete(Reply::with_code(ReplyCode::Granted), 8))
    );
    assert_eq!(Reply::decode(b"\x05"), Err(DecodeError::ReplyVersion(5)));
    assert_eq!(
        Reply::decode(b"\x00\x5e"),
        Err(DecodeError::UnknownReplyCode(94))
    );
    for code in ReplyCode::ALL {
        assert_eq!(ReplyCode::from_u8(code.as_u8()), Some(code));
    }
}

fn arb_user_id() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(1u8..=255, 0..=255)
}

fn arb_host() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9.\\-_:é]{1,60}"
}

#[derive(Debug, Clone)]
enum ArbDest {
    Addr(SocketAddrV4),
    Domain(String, u16),
}

fn arb_request() -> impl Strategy<Value = (Command, ArbDest, Vec<u8>)> {
    let command = prop_oneof![Just(Command::Connect), Just(Command::Bind)];
    let dest = prop_oneof![
        (any::<u32>(), any::<u16>())
            .prop_filter("not a 4a marker", |(ip, _)| !is_socks4a_marker(
                Ipv4Addr::from(*ip)
            ))
            .prop_map(|(ip, port)| ArbDest::Addr(SocketAddrV4::new(Ipv4Addr::from(ip), port))),
        (arb_host(), any::<u16>()).prop_map(|(h, p)| ArbDest::Domain(h, p)),
    ];
    (command, dest, arb_user_id())
}

fn as_request<'a>(command: Command, dest: &'a ArbDest, user_id: &'a [u8]) -> Request<'a> {
    let dest = match dest {
        ArbDest::Addr(a) => Dest::Addr(*a),
        ArbDest::Domain(h, p) => Dest::Domain(h, *p),
    };
    Request {
        command,
        dest,
        user_id,
    }
}

proptest! {
    #[test]
    fn request_round_trip((command, dest, user_id) in arb_request(), split in any::<prop::sample::Index>()) {
        let req = as_request(command, &dest, &user_id);
        let bytes = req.to_vec();
        prop_assert_eq!(bytes.len(), req.encoded_len());
        prop_assert_eq!(Request::decode(&bytes, &L), Ok(Status::Complete(req, bytes.len())));
        // Any split: the first part is incomplete, and the whole decodes the same.
        let at = split.index(bytes.len());
        prop_assert_eq!(Request::decode(&bytes[..at], &L), Ok(Status::Incomplete));
    }

    #[test]
    fn reply_round_trip(code in 0usize..4, ip in any::<u32>(), port in any::<u16>()) {
        let reply = Reply::new(ReplyCode::ALL[code], SocketAddrV4::new(Ipv4Addr::from(ip), port));
        prop_assert_eq!(Reply::decode(&reply.to_bytes()), Ok(Status::Complete(reply, Reply::LEN)));
    }

    #[test]
    fn decode_never_panics_and_is_bounded(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        match Request::decode(&bytes, &L) {
            Ok(Status::Complete(req, used)) => {
                prop_assert!(used <= bytes.len());
                prop_assert_eq!(req.encoded_len(), used);
            }
            Ok(Status::Incomplete) => prop_assert!(bytes.len() < L.max_request_len()),
            Err(_) => {}
        }
    }
}
