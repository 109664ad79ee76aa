//! The client helpers of each runtime crate (`socks4_tokio::client`,
//! `socks4_smol::client`, `socks4_async_std::client`) against our server on
//! loopback: a refusal as a typed error with its code, and a timeout. (CONNECT
//! and BIND through our server and through Dante are in the `peers` tier:
//! `tests/tests/peers/client_helpers.rs`.)

use socks4_proto::ReplyCode;
use socks4_tests::e2e::*;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener};
use std::time::{Duration, Instant};

/// Our server, allowing loopback, refusing one port.
fn our_server(refused_port: u16) -> Server {
    let conf = rules_config(
        &format!("client-helpers-{refused_port}"),
        &format!("block from any to any port eq {refused_port}\npass from 127.0.0.0/8 to any"),
    );
    Server::start("socks4d-tokio", &["--config", &conf])
}

/// A "proxy" that accepts connections (in the kernel's queue) and never
/// answers.
fn silent_proxy() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").unwrap()
}

socks4_tests::on_every_client_runtime! {
    #[test]
    fn a_refusal_is_a_typed_error() {
        let refused_port = free_port();
        let server = our_server(refused_port);
        let dest = SocketAddrV4::new(Ipv4Addr::LOCALHOST, refused_port);
        block_on(async {
            match client::connect(server.addr, dest, b"").await {
                Err(client::ClientError::Refused(code)) => {
                    assert_eq!(code, ReplyCode::Rejected)
                }
                other => panic!("{other:?}"),
            }
            let e: std::io::Error = client::connect(server.addr, dest, b"")
                .await
                .unwrap_err()
                .into();
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
            // Nothing listens at the proxy's address: an I/O error.
            let closed = ClosedPort::new();
            let nobody = SocketAddr::from(([127, 0, 0, 1], closed.port()));
            assert!(matches!(
                client::connect(nobody, dest, b"").await,
                Err(client::ClientError::Io(_))
            ));
        });
    }

    #[test]
    fn a_silent_proxy_times_out() {
        let silent = silent_proxy();
        let proxy = silent.local_addr().unwrap();
        let dest = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 80);
        let started = Instant::now();
        let r = block_on(client::connect_timeout(
            proxy,
            dest,
            b"",
            Some(Duration::from_millis(300)),
        ));
        assert!(matches!(r, Err(client::ClientError::TimedOut)), "{r:?}");
        assert!(started.elapsed() < STEP);
    }
}
