//! The client helpers of each runtime crate (`socks4_tokio::client`,
//! `socks4_smol::client`, `socks4_async_std::client`) against our server and
//! against Dante on loopback: CONNECT by address (SOCKS4) and by name
//! (SOCKS4a), and BIND with both replies. Dante runs as root.

use socks4_tests::e2e::*;
use socks4_tests::peers;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

fn v4(a: SocketAddr) -> SocketAddrV4 {
    match a {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => panic!("IPv4 only"),
    }
}

/// Our server, allowing loopback, refusing one port.
fn our_server(refused_port: u16) -> Server {
    let conf = rules_config(
        &format!("client-helpers-{refused_port}"),
        &format!("block from any to any port eq {refused_port}\npass from 127.0.0.0/8 to any"),
    );
    Server::start("socks4d-tokio", &["--config", &conf])
}

socks4_tests::on_every_client_runtime! {
    #[test]
    fn connect_through_our_server_and_dante() {
        let server = our_server(9);
        let dante = peers::dante().expect("danted (Debian package dante-server; run .ci/setup)");
        let echo = echo(3);
        block_on(async {
            for proxy in [server.addr, dante.addr] {
                let mut s = client::connect_with_user_id(proxy, v4(echo), b"alice")
                    .await
                    .unwrap();
                s.write_all(b"through the proxy").await.unwrap();
                let mut back = [0u8; 17];
                s.read_exact(&mut back).await.unwrap();
                assert_eq!(&back, b"through the proxy");
            }
            // SOCKS4a: the name goes to our server, which resolves it.
            let mut s = client::connect(server.addr, ("localhost", echo.port()))
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
                let bound = client::bind(proxy, peer).await.unwrap();
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
}
