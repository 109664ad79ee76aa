//! The client handshake over arbitrary server bytes cut into arbitrary pieces:
//! never panics, never consumes more than it is given, yields at most two events
//! (two only for BIND), gives the same result however the input is split, and
//! consumes nothing once finished or failed.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use socks4_proto::client::{Event, Handshake};
use socks4_proto::{Command, Dest, Request};

#[derive(Debug, Arbitrary)]
struct Input {
    bind: bool,
    server_bytes: Vec<u8>,
    cuts: Vec<u16>,
    eof: bool,
}

#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<Event>,
    consumed: usize,
    finished: bool,
    failed: bool,
}

fn run(command: Command, bytes: &[u8], cuts: &[u16], eof: bool) -> Outcome {
    let req = Request {
        command,
        dest: Dest::Domain("localhost", 80),
        user_id: b"fuzz",
    };
    let mut h = Handshake::new(&req).expect("valid request");
    assert!(h.poll_transmit().is_some());
    assert!(h.poll_transmit().is_none());
    let mut bounds: Vec<usize> = cuts
        .iter()
        .map(|&c| usize::from(c) % (bytes.len() + 1))
        .collect();
    bounds.extend([0, bytes.len()]);
    bounds.sort_unstable();
    let (mut events, mut consumed) = (Vec::new(), 0);
    for w in bounds.windows(2) {
        let chunk = &bytes[w[0]..w[1]];
        let was_done = h.is_finished() || h.is_failed();
        match h.handle_input(chunk) {
            Ok(used) => {
                assert!(used <= chunk.len());
                if was_done {
                    assert_eq!(used, 0);
                }
                if used < chunk.len() {
                    assert!(h.is_finished());
                }
                consumed += used;
            }
            Err(_) => assert!(h.is_failed()),
        }
        events.extend(std::iter::from_fn(|| h.poll_event()));
        if h.is_failed() {
            break;
        }
    }
    if eof {
        let finished = h.is_finished();
        assert_eq!(h.handle_eof().is_ok(), finished);
    }
    let max_events = if command == Command::Bind { 2 } else { 1 };
    assert!(events.len() <= max_events);
    if h.is_finished() {
        assert!(matches!(
            events.last(),
            Some(Event::Granted(_) | Event::Rejected(_))
        ));
    }
    Outcome {
        events,
        consumed,
        finished: h.is_finished(),
        failed: h.is_failed(),
    }
}

fuzz_target!(|input: Input| {
    let command = if input.bind {
        Command::Bind
    } else {
        Command::Connect
    };
    let split = run(command, &input.server_bytes, &input.cuts, input.eof);
    let whole = run(command, &input.server_bytes, &[], input.eof);
    if !whole.failed && !split.failed {
        assert_eq!(split, whole);
    } else {
        // An error is found whatever the split; only the events before it count.
        assert_eq!(split.failed, whole.failed);
        assert_eq!(split.events, whole.events);
    }
});
