//! The client handshake and the request decoder talking to each other over real
//! loopback sockets: a BIND exchange in full (two replies, an inbound connection,
//! data both ways) and a CONNECT whose client pipelines data behind its request.
//!
//! The "proxy" here is a few lines of blocking std IO around `Request::decode`; the
//! real server arrives with the session machine and the adapters.

use socks4_proto::client::{Event, Handshake};
use socks4_proto::{Command, Dest, Limits, Reply, ReplyCode, Request, Status};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(10);

/// Reads one request the way a server must: append, decode, repeat, never past
/// the limits. Returns the request's command, destination and the bytes behind it.
fn read_request(stream: &mut TcpStream) -> (Command, SocketAddrV4, Vec<u8>) {
    let limits = Limits::default();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 64];
    loop {
        if let Status::Complete(req, used) = Request::decode(&buf, &limits).expect("valid request")
        {
            let Dest::Addr(dest) = req.dest else {
                panic!("expected SOCKS4")
            };
            return (req.command, dest, buf[used..].to_vec());
        }
        assert!(buf.len() < limits.max_request_len());
        let n = stream.read(&mut chunk).expect("read");
        assert!(n > 0, "client closed mid-request");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s
}

/// Runs the client handshake to its end; returns its events and any relayed bytes
/// that arrived with the last reply.
fn handshake(
    stream: &mut TcpStream,
    h: &mut Handshake,
    on_event: &mut dyn FnMut(&Event),
) -> (Vec<Event>, Vec<u8>) {
    while let Some(bytes) = h.poll_transmit() {
        stream.write_all(bytes).unwrap();
    }
    let (mut events, mut rest, mut buf) = (Vec::new(), Vec::new(), [0u8; 5]);
    while !h.is_finished() {
        let n = stream.read(&mut buf).unwrap();
        if n == 0 {
            h.handle_eof().unwrap_err();
            break;
        }
        let used = h.handle_input(&buf[..n]).unwrap();
        rest.extend_from_slice(&buf[used..n]);
        while let Some(ev) = h.poll_event() {
            on_event(&ev);
            events.push(ev);
        }
    }
    (events, rest)
}

#[test]
fn bind_exchange_over_loopback() {
    let proxy = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_addr = proxy.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut client, _) = proxy.accept().unwrap();
        client.set_read_timeout(Some(TIMEOUT)).unwrap();
        let (command, expect_from, rest) = read_request(&mut client);
        assert_eq!(command, Command::Bind);
        assert!(rest.is_empty());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let SocketAddr::V4(listen) = listener.local_addr().unwrap() else {
            unreachable!()
        };
        // DSTIP 0: "use the proxy's own address".
        let first = Reply::new(
            ReplyCode::Granted,
            SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, listen.port()),
        );
        client.write_all(&first.to_bytes()).unwrap();
        let (mut inbound, from) = listener.accept().unwrap();
        let SocketAddr::V4(from) = from else {
            unreachable!()
        };
        let code = if from.ip() == expect_from.ip() {
            ReplyCode::Granted
        } else {
            ReplyCode::Rejected
        };
        // The second reply and the inbound side's first bytes in one write.
        let mut second = Reply::new(code, from).to_bytes().to_vec();
        let mut greeting = [0u8; 3];
        inbound.set_read_timeout(Some(TIMEOUT)).unwrap();
        inbound.read_exact(&mut greeting).unwrap();
        second.extend_from_slice(&greeting);
        client.write_all(&second).unwrap();
    });

    let mut stream = connect(proxy_addr);
    let request = Request {
        command: Command::Bind,
        dest: Dest::Addr("127.0.0.1:21".parse().unwrap()),
        user_id: b"",
    };
    let mut h = Handshake::new(&request).unwrap();
    let mut app_server = None;
    let (events, rest) = handshake(&mut stream, &mut h, &mut |ev| {
        if let Event::BindListening(reply) = ev {
            // The application server connects where the proxy listens.
            let addr = reply.bind_address(Ipv4Addr::LOCALHOST);
            let mut s = connect(SocketAddr::V4(addr));
            s.write_all(b"hi!").unwrap();
            app_server = Some(s);
        }
    });
    assert_eq!(events.len(), 2);
    assert!(matches!(events[0], Event::BindListening(r) if r.addr.ip().is_unspecified()));
    let Event::Granted(second) = events[1] else {
        panic!("second reply: {:?}", events[1])
    };
    assert_eq!(*second.addr.ip(), Ipv4Addr::LOCALHOST);
    assert_eq!(
        second.addr.port(),
        app_server.as_ref().unwrap().local_addr().unwrap().port()
    );
    // Whatever came with the last reply plus what follows is the relayed stream.
    let mut rest = rest;
    while rest.len() < 3 {
        let mut b = [0u8; 8];
        let n = stream.read(&mut b).unwrap();
        assert!(n > 0, "relay closed early");
        rest.extend_from_slice(&b[..n]);
    }
    assert_eq!(rest, b"hi!");
    server.join().unwrap();
}

#[test]
fn connect_with_pipelined_data_over_loopback() {
    let proxy = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_addr = proxy.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut client, _) = proxy.accept().unwrap();
        client.set_read_timeout(Some(TIMEOUT)).unwrap();
        let (command, dest, mut rest) = read_request(&mut client);
        assert_eq!(command, Command::Connect);
        assert_eq!(dest, "127.0.0.1:7".parse().unwrap());
        client
            .write_all(&Reply::with_code(ReplyCode::Granted).to_bytes())
            .unwrap();
        while rest.len() < 4 {
            let mut b = [0u8; 8];
            let n = client.read(&mut b).unwrap();
            assert!(n > 0);
            rest.extend_from_slice(&b[..n]);
        }
        rest
    });
    let mut stream = connect(proxy_addr);
    let request = Request {
        command: Command::Connect,
        dest: Dest::Addr("127.0.0.1:7".parse().unwrap()),
        user_id: b"me",
    };
    let mut h = Handshake::new(&request).unwrap();
    // Pipeline: request and data in one write, before any reply.
    let mut first = h.poll_transmit().unwrap().to_vec();
    first.extend_from_slice(b"ping");
    stream.write_all(&first).unwrap();
    let (events, rest) = handshake(&mut stream, &mut h, &mut |_| {});
    assert!(matches!(events[..], [Event::Granted(_)]));
    assert!(rest.is_empty());
    assert_eq!(server.join().unwrap(), b"ping");
}
