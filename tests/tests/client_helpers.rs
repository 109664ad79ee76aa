//! The client helpers of each runtime crate (`socks4_tokio::client`,
//! `socks4_smol::client`, `socks4_async_std::client`) against our server and
//! against Dante on loopback: CONNECT by address (SOCKS4) and by name
//! (SOCKS4a), BIND with both replies, a refusal as a typed error with its
//! code, and a timeout.

use socks4_proto::ReplyCode;
use socks4_tests::e2e::*;
use socks4_tests::peers;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener};
use std::time::{Duration, Instant};

fn v4(a: SocketAddr) -> SocketAddrV4 {
    match a {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => panic!("IPv4 only"),
    }
}

/// Our server, allowing loopback, refusing one port.
fn our_server(refused_port: u16) -> Server {
    let dir = socks4_tests::scratch::dir("client-helpers");
    let conf = dir.join(format!("socks4d-{refused_port}.toml"));
    std::fs::write(
        &conf,
        format!(
            "[access]\nrules = \"\"\"\nblock from any to any port eq {refused_port}\npass from 127.0.0.0/8 to any\n\"\"\"\n"
        ),
    )
    .unwrap();
    Server::start("socks4d-tokio", &["--config", conf.to_str().unwrap()])
}

/// A "proxy" that accepts connections (in the kernel's queue) and never
/// answers.
fn silent_proxy() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").unwrap()
}

macro_rules! client_tests {
    ($runtime:ident, $client:path, $block_on:expr, $($io:tt)*) => {
        mod $runtime {
            use super::*;
            use $client as client;
            $($io)*

            fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
                ($block_on)(f)
            }

            #[test]
            fn connect_through_our_server_and_dante() {
                let server = our_server(9);
                let dante = peers::dante().expect("danted (Debian package dante-server; run .ci/setup)");
                let echo = echo(3);
                block_on(async {
                    for proxy in [server.addr, dante.addr] {
                        let mut s = client::connect(proxy, v4(echo), b"alice").await.unwrap();
                        s.write_all(b"through the proxy").await.unwrap();
                        let mut back = [0u8; 17];
                        s.read_exact(&mut back).await.unwrap();
                        assert_eq!(&back, b"through the proxy");
                    }
                    // SOCKS4a: the name goes to our server, which resolves it.
                    let mut s = client::connect(server.addr, ("localhost", echo.port()), b"")
                        .await
                        .unwrap();
                    s.write_all(b"by name").await.unwrap();
                    let mut back = [0u8; 7];
                    s.read_exact(&mut back).await.unwrap();
                    assert_eq!(&back, b"by name");
                });
            }

            #[test]
            fn bind_through_our_server_and_dante() {
                let server = our_server(9);
                let dante = peers::dante().expect("danted (Debian package dante-server; run .ci/setup)");
                block_on(async {
                    for proxy in [server.addr, dante.addr] {
                        let peer = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0);
                        let bound = client::bind(proxy, peer, b"").await.unwrap();
                        let listen = bound.listen();
                        assert_eq!(*listen.ip(), Ipv4Addr::LOCALHOST, "{proxy}");
                        // The peer connects and speaks first.
                        let talker = std::thread::spawn(move || {
                            use std::io::{Read, Write};
                            let mut s = std::net::TcpStream::connect(listen).unwrap();
                            s.set_read_timeout(Some(STEP)).unwrap();
                            s.write_all(b"hello from the peer").unwrap();
                            let mut back = [0u8; 2];
                            s.read_exact(&mut back).unwrap();
                            back
                        });
                        let (mut s, from) = bound
                            .accept()
                            .await
                            .unwrap_or_else(|e| panic!("{proxy}: {e}\n{}", server.log()));
                        assert_eq!(*from.ip(), Ipv4Addr::LOCALHOST);
                        let mut got = [0u8; 19];
                        s.read_exact(&mut got).await.unwrap();
                        assert_eq!(&got, b"hello from the peer");
                        s.write_all(b"ok").await.unwrap();
                        assert_eq!(&talker.join().unwrap(), b"ok");
                    }
                });
            }

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
    };
}

client_tests!(
    on_tokio,
    socks4_tokio::client,
    |f| tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f),
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
);
client_tests!(
    on_smol,
    socks4_smol::client,
    smol::block_on,
    use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
);
client_tests!(
    on_async_std,
    socks4_async_std::client,
    async_std::task::block_on,
    use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
);
