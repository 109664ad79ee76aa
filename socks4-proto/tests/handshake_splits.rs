//! Property test: the client handshake gives the same events and the same count of
//! consumed bytes however the server's bytes are split.

use proptest::prelude::*;
use socks4_proto::client::{Event, Handshake};
use socks4_proto::{Command, Dest, Reply, ReplyCode, Request};
use std::net::{Ipv4Addr, SocketAddrV4};

/// Feeds `input` in chunks cut at `cuts`; returns the events and the bytes not
/// consumed by the handshake (the relayed stream's first bytes).
fn run(command: Command, input: &[u8], cuts: &[usize]) -> (Vec<Event>, Vec<u8>, bool) {
    let request = Request {
        command,
        dest: Dest::Addr(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9)),
        user_id: b"u",
    };
    let mut h = Handshake::new(&request).unwrap();
    assert!(h.poll_transmit().is_some());
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    bounds.push(0);
    bounds.push(input.len());
    bounds.sort_unstable();
    let (mut events, mut rest, mut failed) = (Vec::new(), Vec::new(), false);
    for w in bounds.windows(2) {
        let chunk = &input[w[0]..w[1]];
        match h.handle_input(chunk) {
            Ok(used) => rest.extend_from_slice(&chunk[used..]),
            Err(_) => {
                failed = true;
                break;
            }
        }
        events.extend(std::iter::from_fn(|| h.poll_event()));
    }
    (events, rest, failed)
}

fn arb_reply() -> impl Strategy<Value = Reply> {
    (0usize..4, any::<u32>(), any::<u16>()).prop_map(|(c, ip, port)| {
        Reply::new(
            ReplyCode::ALL[c],
            SocketAddrV4::new(Ipv4Addr::from(ip), port),
        )
    })
}

proptest! {
    #[test]
    fn splits_do_not_change_the_outcome(
        bind in any::<bool>(),
        first in arb_reply(),
        second in arb_reply(),
        tail in proptest::collection::vec(any::<u8>(), 0..32),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let command = if bind { Command::Bind } else { Command::Connect };
        let mut input = first.to_bytes().to_vec();
        input.extend_from_slice(&second.to_bytes());
        input.extend_from_slice(&tail);
        let whole = run(command, &input, &[]);
        let split = run(command, &input, &cuts);
        prop_assert_eq!(&whole, &split);
        // And the outcome is what the protocol says.
        let (events, rest, failed) = whole;
        prop_assert!(!failed);
        let expected_replies = if bind && first.code.is_granted() { 2 } else { 1 };
        prop_assert_eq!(events.len(), expected_replies);
        prop_assert_eq!(rest.len(), input.len() - 8 * expected_replies);
    }
}
