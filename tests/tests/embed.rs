//! Embedding a server in another program: start it on a runtime, change the
//! seed's denial and exemption lists while it runs, read counters, subscribe to
//! events, shut it down.

use socks4_daemon::{Daemon, Settings};
use socks4_proto::client::Event as ClientEvent;
use socks4_proto::server::{CloseReason, Event};
use socks4_proto::ReplyCode;
use socks4_tests::e2e::{connect_to, echo, socks_request};
use std::time::Duration;

#[test]
fn embedded_tokio_server_with_run_time_policy_changes() {
    let (settings, cli) = Settings::from_args(["--listen", "127.0.0.1:0", "-qqq"]).unwrap();
    let daemon = Daemon::new(settings, cli);
    let events = daemon.subscribe();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let serving = {
        let daemon = daemon.clone();
        std::thread::spawn(move || {
            rt.block_on(socks4_tokio::run(daemon, move |addrs| {
                tx.send(addrs[0]).unwrap()
            }))
            .unwrap();
        })
    };
    let proxy = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let echo = echo(4);

    let c = socks_request(proxy, &connect_to(echo, b"embedder"), |_| {});
    assert!(matches!(c.events[..], [ClientEvent::Granted(_)]));
    drop(c);

    // The seed's run-time list operations.
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

    // Events arrive in the seed's vocabulary, tagged by connection.
    let mut seen = Vec::new();
    while seen
        .iter()
        .filter(|e: &&socks4_daemon::DaemonEvent| matches!(e.event, Event::Disconnected { .. }))
        .count()
        < 3
    {
        seen.push(events.recv_blocking().unwrap());
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
    assert_eq!(counts.listeners[0].1, 3);

    daemon.shutdown();
    serving.join().unwrap();
}
