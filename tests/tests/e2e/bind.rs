//! BIND on every adapter: the exchange in full (both replies, the application
//! server's connection relayed both ways), an inbound connection from another
//! address than the request named refused with 91, and the listener on
//! `--bind-address`.

use socks4_proto::client::Event;
use socks4_proto::{Command, Dest, Reply, ReplyCode, Request};
use socks4_tests::e2e::*;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};

socks4_tests::on_every_adapter!(bind_exchange, bind_listens_on_the_bind_address);

fn bind_exchange(bin: &str) {
    let server = Server::start(bin, &[]);
    // The "application server" connects to the proxy's listener and sends first.
    let request = Request {
        command: Command::Bind,
        dest: Dest::Addr(lo(21)),
        user_id: b"",
    };
    let mut app: Option<TcpStream> = None;
    let client = socks_request(server.addr, &request, |listen: &Reply| {
        let addr = listen.bind_address(Ipv4Addr::LOCALHOST);
        assert_eq!(
            *addr.ip(),
            Ipv4Addr::LOCALHOST,
            "{bin}: BIND names the interface, not 0.0.0.0"
        );
        let mut s = TcpStream::connect_timeout(&SocketAddr::V4(addr), STEP).unwrap();
        s.write_all(b"220 hello from the app server\r\n").unwrap();
        app = Some(s);
    });
    assert!(
        granted(&client),
        "{bin}: {:?}\n{}",
        client.events,
        server.log()
    );
    assert_eq!(client.events.len(), 2);
    let mut app = app.unwrap();
    let Event::Granted(second) = client.events[1] else {
        unreachable!()
    };
    assert_eq!(
        second.addr.port(),
        app.local_addr().unwrap().port(),
        "{bin}: second reply names the peer"
    );
    let mut stream = client.stream;
    let mut got = client.early;
    let greeting = b"220 hello from the app server\r\n";
    while got.len() < greeting.len() {
        let mut b = [0u8; 64];
        let n = stream.read(&mut b).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&b[..n]);
    }
    assert_eq!(got, greeting);
    stream.write_all(b"PORT ok").unwrap();
    let mut back = [0u8; 7];
    app.set_read_timeout(Some(STEP)).unwrap();
    app.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"PORT ok");

    // An inbound connection from another address than DSTIP (127.0.0.9):
    // second reply 91, and both connections closed.
    let request = Request {
        command: Command::Bind,
        dest: Dest::Addr("127.0.0.9:21".parse().unwrap()),
        user_id: b"",
    };
    let mut intruder: Option<TcpStream> = None;
    let client = socks_request(server.addr, &request, |listen: &Reply| {
        let addr = SocketAddr::V4(listen.bind_address(Ipv4Addr::LOCALHOST));
        intruder = Some(TcpStream::connect_timeout(&addr, STEP).unwrap());
    });
    assert_eq!(
        rejected_with(&client),
        Some(ReplyCode::Rejected),
        "{bin}: {:?}",
        client.events
    );
    let mut intruder = intruder.unwrap();
    intruder.set_read_timeout(Some(STEP)).unwrap();
    let mut b = [0u8; 1];
    assert!(
        matches!(intruder.read(&mut b), Ok(0) | Err(_)),
        "{bin}: the intruder is closed"
    );
}

fn bind_listens_on_the_bind_address(bin: &str) {
    let server = Server::start(bin, &["--bind-address", "127.0.0.5"]);
    let request = Request {
        command: Command::Bind,
        dest: Dest::Addr(lo(21)),
        user_id: b"",
    };
    let mut app: Option<TcpStream> = None;
    let client = socks_request(server.addr, &request, |listen: &Reply| {
        let addr = listen.bind_address(Ipv4Addr::LOCALHOST);
        assert_eq!(*addr.ip(), Ipv4Addr::new(127, 0, 0, 5));
        let mut s = TcpStream::connect_timeout(&SocketAddr::V4(addr), STEP).unwrap();
        s.write_all(b"hello from the peer").unwrap();
        app = Some(s);
    });
    assert!(
        matches!(
            client.events.as_slice(),
            [Event::BindListening(_), Event::Granted(_)]
        ),
        "{:?}\n{}",
        client.events,
        server.log()
    );
    let mut got = client.early.clone();
    let mut stream = client.stream;
    stream.set_read_timeout(Some(STEP)).unwrap();
    while got.len() < 19 {
        let mut b = [0u8; 64];
        let n = stream.read(&mut b).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&b[..n]);
    }
    assert_eq!(got, b"hello from the peer");
    drop(app);
}
