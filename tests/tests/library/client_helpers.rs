//! The client helpers of each runtime crate (`socks4_tokio::client`,
//! `socks4_smol::client`, `socks4_async_std::client`) against our server on
//! loopback: the proxy given by name and the target in every way it may be
//! written, the user id optional, a refusal as a typed error with its code,
//! and a timeout. (CONNECT and BIND through our server and through Dante are
//! in the `peers` tier: `tests/tests/peers/client_helpers.rs`.)

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
    fn a_proxy_by_name_and_targets_as_written() {
        let server = our_server(9);
        let echo = echo(5);
        let port = echo.port();
        let proxy = format!("localhost:{}", server.addr.port());
        let v4 = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
        block_on(async {
            // "host:port" (SOCKS4a: our server resolves the name).
            let s = client::connect(proxy.as_str(), format!("localhost:{port}")).await;
            let mut s = s.unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
            s.write_all(b"by name").await.unwrap();
            let mut back = [0u8; 7];
            s.read_exact(&mut back).await.unwrap();
            assert_eq!(&back, b"by name");
            // (host, port), SocketAddr and SocketAddrV4 (SOCKS4).
            assert!(client::connect(proxy.as_str(), ("127.0.0.1", port)).await.is_ok());
            assert!(client::connect(proxy.as_str(), SocketAddr::V4(v4)).await.is_ok());
            // The user id, with the second function and with the builder.
            assert!(client::connect_with_user_id(&proxy, v4, b"alice").await.is_ok());
            let c = client::Client::new().user_id("bob").timeout(STEP);
            assert!(c.connect(("localhost", server.addr.port()), v4).await.is_ok());
            // An IPv6 target cannot be sent: said before anything is sent.
            assert!(matches!(
                client::connect(&proxy, "[::1]:80").await,
                Err(client::ClientError::Address(_))
            ));
        });
        let users: Vec<String> = server
            .wait_for_n("five closed lines", 5, |l| says(l, "closed"))
            .iter()
            .map(|l| field(l, "user"))
            .collect();
        for user in ["alice", "bob"] {
            assert!(users.iter().any(|u| u == user), "{users:?}");
        }
    }

    #[test]
    fn a_refusal_is_a_typed_error() {
        let refused_port = free_port();
        let server = our_server(refused_port);
        let dest = SocketAddrV4::new(Ipv4Addr::LOCALHOST, refused_port);
        block_on(async {
            match client::connect(server.addr, dest).await {
                Err(client::ClientError::Refused(code)) => {
                    assert_eq!(code, ReplyCode::Rejected)
                }
                other => panic!("{other:?}"),
            }
            let e: std::io::Error = client::connect(server.addr, dest)
                .await
                .unwrap_err()
                .into();
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
            // Nothing listens at the proxy's address: an I/O error.
            let closed = ClosedPort::new();
            let nobody = SocketAddr::from(([127, 0, 0, 1], closed.port()));
            assert!(matches!(
                client::connect(nobody, dest).await,
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
        let r = block_on(
            client::Client::new()
                .timeout(Duration::from_millis(300))
                .connect(proxy, dest),
        );
        assert!(matches!(r, Err(client::ClientError::TimedOut)), "{r:?}");
        assert!(started.elapsed() < STEP);
    }
}
