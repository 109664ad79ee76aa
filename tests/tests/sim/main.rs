//! Simulation tests of the server session machine: a scripted peer and a fake
//! clock (`socks4_tests::sim`), no sockets. Every path of a connection's life,
//! each timeout and each reply code, one file per feature, and a property test
//! that splitting the client's bytes never changes what the session does.

mod bind;
mod connect;
mod ident;
mod late;
mod parents;
mod rules;
mod sniff;
mod socks4a;
mod splits;
mod tls;

use socks4_ident::{Outcome, UserId};
use socks4_proto::server::{Action, ServerConfig};
use socks4_proto::{Command, Dest, Reply, ReplyCode, Request};

fn connect_req(dest: &str, user: &[u8]) -> Vec<u8> {
    Request {
        command: Command::Connect,
        dest: Dest::Addr(dest.parse().unwrap()),
        user_id: user,
    }
    .to_vec()
}

fn connect_4a(host: &str, port: u16, user: &[u8]) -> Vec<u8> {
    Request {
        command: Command::Connect,
        dest: Dest::Domain(host, port),
        user_id: user,
    }
    .to_vec()
}

fn bind_req(dest: &str) -> Vec<u8> {
    Request {
        command: Command::Bind,
        dest: Dest::Addr(dest.parse().unwrap()),
        user_id: b"",
    }
    .to_vec()
}

fn cfg_with(policy: &str) -> ServerConfig {
    ServerConfig::with_policy(policy.parse().unwrap())
}

fn granted(addr_s: &str) -> Action {
    Action::SendReply(Reply::new(ReplyCode::Granted, addr_s.parse().unwrap()))
}

fn refused(code: ReplyCode) -> Action {
    Action::SendReply(Reply::with_code(code))
}

fn user(name: &str) -> Outcome {
    Outcome::UserId(UserId {
        opsys: "UNIX".into(),
        charset: None,
        user_id: name.as_bytes().to_vec(),
    })
}
