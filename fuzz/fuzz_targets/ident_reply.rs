//! IDENT replies: arbitrary identd bytes cut into arbitrary pieces never panic, give
//! exactly one outcome (after EOF at the latest), the same however they are split,
//! and an understood answer re-encodes to a line that parses to the same outcome.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use socks4_ident::{encode_reply, parse_reply, IdentClient, Outcome, Query, MAX_LINE_LEN};

#[derive(Debug, Arbitrary)]
struct Input {
    port_on_server: u16,
    port_on_client: u16,
    bytes: Vec<u8>,
    cuts: Vec<u16>,
}

fn run(query: Query, bytes: &[u8], cuts: &[u16]) -> Outcome {
    let mut client = IdentClient::new(query);
    assert!(client.poll_transmit().is_some());
    let mut bounds: Vec<usize> = cuts
        .iter()
        .map(|&c| usize::from(c) % (bytes.len() + 1))
        .collect();
    bounds.extend([0, bytes.len()]);
    bounds.sort_unstable();
    let mut outcome = None;
    for w in bounds.windows(2) {
        client.handle_input(&bytes[w[0]..w[1]]);
        if let Some(o) = client.poll_outcome() {
            assert!(outcome.is_none(), "two outcomes");
            outcome = Some(o);
        }
    }
    client.handle_eof();
    if let Some(o) = client.poll_outcome() {
        assert!(outcome.is_none(), "two outcomes");
        outcome = Some(o);
    }
    assert!(client.poll_outcome().is_none());
    outcome.expect("an outcome after EOF")
}

fuzz_target!(|input: Input| {
    let query = Query::new(input.port_on_server.max(1), input.port_on_client.max(1));
    let whole = run(query, &input.bytes, &[]);
    assert_eq!(run(query, &input.bytes, &input.cuts), whole);
    if let Some(end) = input.bytes.iter().position(|&b| b == b'\n') {
        if end < MAX_LINE_LEN {
            assert_eq!(parse_reply(&input.bytes[..=end], &query), whole);
        }
    }
    let answer = match &whole {
        Outcome::UserId(u) => Ok(u.clone()),
        Outcome::Error(e) => Err(e.clone()),
        _ => return,
    };
    assert_eq!(parse_reply(&encode_reply(&query, &answer), &query), whole);
});
