//! The event stream: every session event, tagged with its connection and
//! listener, published to whoever subscribes. A slow subscriber loses events (counted) rather than
//! slowing the server down.

use socks4_proto::server::Event;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::SystemTime;

/// How many events a subscriber may fall behind before it loses some.
pub const SUBSCRIBER_CAPACITY: usize = 4096;

/// One session event with where and when it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonEvent {
    /// The connection's id, unique in this server's life.
    pub conn: u64,
    /// The bound address of the listener the connection arrived on.
    pub listener: SocketAddr,
    /// Wall-clock time of publication.
    pub at: SystemTime,
    /// The session's event.
    pub event: Event,
}

/// A subscription: an async channel of events (`recv().await` on any runtime,
/// or `recv_blocking()` from a thread).
pub type EventStream = async_channel::Receiver<DaemonEvent>;

/// The publisher side.
#[derive(Debug, Default)]
pub struct EventBus {
    subscribers: Mutex<Vec<async_channel::Sender<DaemonEvent>>>,
    count: AtomicUsize,
    dropped: AtomicU64,
}

impl EventBus {
    /// A new subscription.
    pub fn subscribe(&self) -> EventStream {
        let (tx, rx) = async_channel::bounded(SUBSCRIBER_CAPACITY);
        let mut subs = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        subs.push(tx);
        self.count.store(subs.len(), Relaxed);
        rx
    }

    /// Whether anyone listens (publishing is skipped when not).
    pub fn has_subscribers(&self) -> bool {
        self.count.load(Relaxed) > 0
    }

    /// Sends to every subscriber; drops for those that are full, forgets those
    /// that went away.
    pub fn publish(&self, event: DaemonEvent) {
        let mut subs = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        subs.retain(|tx| match tx.try_send(event.clone()) {
            Ok(()) => true,
            Err(async_channel::TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Relaxed);
                true
            }
            Err(async_channel::TrySendError::Closed(_)) => false,
        });
        self.count.store(subs.len(), Relaxed);
    }

    /// Events lost to full subscribers.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }
}
