//! Embedding a server in another program: start it on a runtime, change the
//! denial and exemption lists while it runs, read counters, subscribe to
//! events, shut it down. And the same server on tokio's paused clock, where
//! its timeouts fire without waiting for them.

use socks4_daemon::{Daemon, Settings};
use socks4_proto::client::Event as ClientEvent;
use socks4_proto::server::{CloseReason, Event};
use socks4_proto::ReplyCode;
use socks4_tests::e2e::{connect_to, echo, socks_request};
use std::time::Duration;

/// Serves `daemon` on `rt` from a thread of its own; returns the proxy's
/// address and the thread (which ends after `daemon.shutdown()`).
fn serve_on(
    rt: tokio::runtime::Runtime,
    daemon: &Daemon,
) -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let daemon = daemon.clone();
    let serving = std::thread::spawn(move || {
        rt.block_on(socks4_tokio::run(daemon, move |addrs| {
            tx.send(addrs[0]).unwrap()
        }))
        .unwrap();
    });
    (rx.recv_timeout(Duration::from_secs(10)).unwrap(), serving)
}

#[test]
fn embedded_tokio_server_with_run_time_policy_changes() {
    let settings = Settings::from_args(["--listen", "127.0.0.1:0", "-qqq"]).unwrap();
    let daemon = Daemon::new(settings);
    let events = daemon.subscribe();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let handle = rt.handle().clone();
    let (proxy, serving) = serve_on(rt, &daemon);
    let echo = echo(4);

    let c = socks_request(proxy, &connect_to(echo, b"embedder"), |_| {});
    assert!(matches!(c.events[..], [ClientEvent::Granted(_)]));
    drop(c);

    // The run-time list operations.
    assert!(daemon.add_denial("127.0.0.0/8".parse().unwrap()));
    assert!(
        !daemon.add_denial("127.0.0.0/8".parse().unwrap()),
        "already there"
    );
    assert!(daemon.denied("127.0.0.1".parse().unwrap()));
    let c = socks_request(proxy, &connect_to(echo, b""), |_| {});
    assert!(matches!(c.events[..], [ClientEvent::Rejected(r)] if r.code == ReplyCode::Rejected));
    assert!(daemon.add_exemption("127.0.0.1".parse().unwrap()));
    assert!(daemon.exempted("127.0.0.1".parse().unwrap()));
    assert!(!daemon.denied("127.0.0.1".parse().unwrap()));
    let c = socks_request(proxy, &connect_to(echo, b""), |_| {});
    assert!(matches!(c.events[..], [ClientEvent::Granted(_)]));
    drop(c);
    assert!(daemon.del_exemption(&"127.0.0.1".parse().unwrap()));
    assert!(daemon.del_denial(&"127.0.0.0/8".parse().unwrap()));
    assert!(
        !daemon.del_denial(&"127.0.0.0/8".parse().unwrap()),
        "deleting what is not there says so"
    );

    // Events arrive tagged by connection.
    let mut seen = Vec::new();
    while seen
        .iter()
        .filter(|e: &&socks4_daemon::DaemonEvent| matches!(e.event, Event::Disconnected { .. }))
        .count()
        < 3
    {
        let next = handle
            .block_on(async { tokio::time::timeout(Duration::from_secs(10), events.recv()).await });
        seen.push(next.expect("an event within 10 s").unwrap());
    }
    assert!(matches!(seen[0].event, Event::Connection { .. }));
    assert!(seen.iter().any(|e| matches!(e.event, Event::SockUp { .. })));
    assert!(seen.iter().any(|e| matches!(e.event, Event::Denied { .. })));
    assert!(seen.iter().any(|e| matches!(
        e.event,
        Event::Disconnected {
            reason: CloseReason::Denied(_)
        }
    )));
    let first = seen[0].conn;
    assert!(
        seen.iter().any(|e| e.conn != first),
        "events name their connection"
    );

    // A connection is counted closed just after its last event.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while daemon.counters().closed < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let counts = daemon.counters();
    assert_eq!(counts.opened, 3);
    assert_eq!(counts.closed, 3);
    assert_eq!(counts.active, 0);
    assert_eq!(counts.replies(ReplyCode::Granted), 2);
    assert_eq!(counts.replies(ReplyCode::Rejected), 1);
    assert_eq!(counts.outcome("denied"), 1);
    assert_eq!(counts.listeners.len(), 1);
    assert_eq!(
        counts.listeners[0].0, proxy,
        "a listener is named by its bound address (the real port, not 0)"
    );
    assert_eq!(counts.listeners[0].1, 3);
    assert!(seen.iter().all(|e| e.listener == proxy));

    daemon.shutdown();
    serving.join().unwrap();
}

/// A 10 s handshake timeout and a 120 s connect timeout on tokio's paused clock:
/// both fire as soon as the server has nothing else to do, because the server's
/// clock and timers are the runtime's. (On the real clock this would take over
/// two minutes.)
#[test]
fn timeouts_follow_the_runtimes_clock() {
    use std::io::{Read, Write};
    let settings = Settings::from_args([
        "--listen",
        "127.0.0.1:0",
        "-qqq",
        "--handshake-timeout",
        "10s",
        "--connect-timeout",
        "120s",
        // Each address's own deadline past the whole request's, so that the
        // connect timeout is the one that fires.
        "--connect-attempt-timeout",
        "300s",
    ])
    .unwrap();
    let daemon = Daemon::new(settings);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let (proxy, serving) = serve_on(rt, &daemon);
    let started = std::time::Instant::now();

    // Half a request, then silence: 91 when the 10 s handshake timeout fires.
    let mut s = std::net::TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"\x04\x01\x00\x50").unwrap();
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).unwrap();
    assert_eq!(reply, [0, 91, 0, 0, 0, 0, 0, 0]);

    // A destination that never answers (its listen queue is full): 91 when the
    // 120 s connect timeout fires.
    let hole = socks4_tests::e2e::Blackhole::new();
    let c = socks_request(proxy, &connect_to(hole.addr(), b""), |_| {});
    assert!(
        matches!(c.events[..], [ClientEvent::Rejected(r)] if r.code == ReplyCode::Rejected),
        "{:?}",
        c.events
    );
    let counts = daemon.counters();
    assert_eq!(counts.outcome("timed_out"), 2, "{counts}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "130 s of timeouts took {:?} of wall time",
        started.elapsed()
    );
    daemon.shutdown();
    serving.join().unwrap();
}
