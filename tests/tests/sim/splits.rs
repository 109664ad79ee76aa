//! Property test: however the client's bytes are split into reads, the session
//! asks for the same actions (valid requests, pipelined data, and garbage alike).

use proptest::prelude::*;
use socks4_proto::server::{Action, ServerConfig};
use socks4_proto::{Command, Dest, Request};
use socks4_tests::sim::Sim;

fn run(bytes: &[u8], cuts: &[prop::sample::Index]) -> (Vec<Action>, usize) {
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
    bounds.extend([0, bytes.len()]);
    bounds.sort_unstable();
    let mut sim = Sim::local(ServerConfig::default());
    for w in bounds.windows(2) {
        sim.input(&bytes[w[0]..w[1]]);
    }
    let n = sim.events.len();
    (sim.actions, n)
}

fn arb_client_bytes() -> impl Strategy<Value = Vec<u8>> {
    let request = (
        any::<bool>(),
        prop_oneof![
            (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| (Some(ip), None, port)),
            ("[a-z]{1,12}(\\.[a-z]{1,8}){0,2}", any::<u16>()).prop_map(|(h, port)| (
                None,
                Some(h),
                port
            )),
        ],
        proptest::collection::vec(1u8..=255, 0..40),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(bind, (ip, host, port), user, tail)| {
            let command = if bind {
                Command::Bind
            } else {
                Command::Connect
            };
            let dest = match (&ip, &host) {
                (Some(ip), _) => Dest::Addr(std::net::SocketAddrV4::new((*ip).into(), port)),
                (_, Some(h)) => Dest::Domain(h, port),
                _ => unreachable!(),
            };
            let mut v = Request {
                command,
                dest,
                user_id: &user,
            }
            .to_vec();
            v.extend_from_slice(&tail);
            v
        });
    prop_oneof![3 => request, 1 => proptest::collection::vec(any::<u8>(), 0..600)]
}

proptest! {
    #[test]
    fn splitting_client_bytes_never_changes_the_actions(
        bytes in arb_client_bytes(),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let whole = run(&bytes, &[]);
        let split = run(&bytes, &cuts);
        prop_assert_eq!(split, whole);
    }
}
