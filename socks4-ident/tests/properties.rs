//! Property tests: query and reply round trips, and any split of a reply gives the
//! same outcome.

use proptest::prelude::*;
use socks4_ident::{encode_reply, parse_reply, ErrorCode, IdentClient, Outcome, Query, UserId};

fn arb_query() -> impl Strategy<Value = Query> {
    (1u16.., 1u16..).prop_map(|(a, b)| Query::new(a, b))
}

fn arb_token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9\\-._!@#$%^&*()=+<>/?'~`{}\\[\\];]{1,64}"
}

fn arb_answer() -> impl Strategy<Value = Result<UserId, ErrorCode>> {
    let user_id = proptest::collection::vec(any::<u8>(), 1..=512)
        .prop_filter("RFC octet-string", |v| {
            !v.iter().any(|b| matches!(b, 0 | b'\r' | b'\n')) && !matches!(v[0], b' ' | b'\t')
        });
    let user = (arb_token(), proptest::option::of(arb_token()), user_id).prop_map(
        |(opsys, charset, user_id)| {
            Ok(UserId {
                opsys,
                charset,
                user_id,
            })
        },
    );
    let error = prop_oneof![
        Just(ErrorCode::InvalidPort),
        Just(ErrorCode::NoUser),
        Just(ErrorCode::HiddenUser),
        Just(ErrorCode::UnknownError),
        "X[A-Z0-9\\-]{1,63}".prop_map(ErrorCode::Other),
    ]
    .prop_map(Err);
    prop_oneof![user, error]
}

fn expected(answer: &Result<UserId, ErrorCode>) -> Outcome {
    match answer.clone() {
        Ok(u) => Outcome::UserId(u),
        Err(e) => Outcome::Error(e),
    }
}

proptest! {
    #[test]
    fn query_round_trip(q in arb_query()) {
        prop_assert_eq!(Query::parse(&q.encode()), Ok(q));
    }

    #[test]
    fn reply_round_trip(q in arb_query(), answer in arb_answer()) {
        prop_assert_eq!(parse_reply(&encode_reply(&q, &answer), &q), expected(&answer));
    }

    #[test]
    fn any_split_gives_the_same_outcome(
        q in arb_query(),
        answer in arb_answer(),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let line = encode_reply(&q, &answer);
        let mut bounds: Vec<usize> = cuts.iter().map(|i| i.index(line.len() + 1)).collect();
        bounds.extend([0, line.len()]);
        bounds.sort_unstable();
        let mut client = IdentClient::new(q);
        for w in bounds.windows(2).filter(|w| w[0] < w[1]) {
            prop_assert!(!client.is_finished());
            client.handle_input(&line[w[0]..w[1]]);
        }
        prop_assert_eq!(client.poll_outcome(), Some(expected(&answer)));
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_stay_bounded(
        bytes in proptest::collection::vec(any::<u8>(), 0..2000),
        q in arb_query(),
    ) {
        let mut client = IdentClient::new(q);
        client.handle_input(&bytes);
        client.handle_eof();
        let outcome = client.poll_outcome();
        prop_assert!(outcome.is_some());
        if !bytes.contains(&b'\n') && bytes.len() < socks4_ident::MAX_LINE_LEN {
            prop_assert_eq!(outcome, Some(Outcome::Error(ErrorCode::UnknownError)));
        }
    }
}
