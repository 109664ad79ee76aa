//! The local addresses of the server's own outbound connections now open
//! ([`OwnSockets`]): a connection accepted from one of them is the server
//! talking to itself (a loop, through a redirect or transparent listener or
//! a way round the server's known addresses), which the session refuses.
//! Bounded by the connections themselves: each is marked while its socket
//! is open ([`Mark`]). Sharded so that connects rarely meet on a lock.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// How many shards the set has.
const SHARDS: usize = 16;

/// The local addresses of open outbound connections.
#[derive(Debug)]
pub(crate) struct OwnSockets {
    shards: Vec<Mutex<HashMap<SocketAddr, usize>>>,
    hasher: std::collections::hash_map::RandomState,
}

impl Default for OwnSockets {
    fn default() -> Self {
        OwnSockets {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: Default::default(),
        }
    }
}

impl OwnSockets {
    fn shard(&self, addr: &SocketAddr) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, usize>> {
        self.shards[self.hasher.hash_one(addr) as usize % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Marks `local` as one of ours until the mark is dropped.
    pub(crate) fn mark(self: &Arc<Self>, local: SocketAddr) -> Mark {
        *self.shard(&local).entry(local).or_default() += 1;
        Mark {
            set: self.clone(),
            local,
        }
    }

    /// Whether `peer` is the local address of one of our outbound
    /// connections.
    pub(crate) fn contains(&self, peer: SocketAddr) -> bool {
        let peer = SocketAddr::new(socks4_acl::canonical(peer.ip()), peer.port());
        self.shard(&peer).contains_key(&peer)
    }
}

/// An outbound connection's local address, marked while it is open.
#[derive(Debug)]
pub(crate) struct Mark {
    set: Arc<OwnSockets>,
    local: SocketAddr,
}

impl Drop for Mark {
    fn drop(&mut self) {
        let mut shard = self.set.shard(&self.local);
        if let Some(n) = shard.get_mut(&self.local) {
            *n -= 1;
            if *n == 0 {
                shard.remove(&self.local);
            }
        }
    }
}
