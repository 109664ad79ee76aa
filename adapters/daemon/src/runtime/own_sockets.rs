//! The server's own outbound connections now open ([`OwnSockets`]): a
//! connection accepted from one of them, at the address it went to, is the
//! server talking to itself (a loop, through a redirect or transparent
//! listener, a DNAT, or a way round the server's known addresses), which the
//! session refuses.
//!
//! A connection is known by its local address and the address it connected
//! to: the local address alone is not enough, because Linux gives one
//! ephemeral port to several connections with different destinations, and a
//! client of ours on the same machine may hold the port one of our outbound
//! connections holds (or held a moment ago). Bounded by the connections
//! themselves: each is marked while it is open ([`Mark`]). Sharded so that
//! connects rarely meet on a lock.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// How many shards the set has.
const SHARDS: usize = 16;

/// The places our open outbound connections went to, by their local address.
type Shard = HashMap<SocketAddr, Remotes>;

/// Where the outbound connections from one local address went: one place
/// inline, the common case (no allocation per connection), a list only when
/// the kernel shares an ephemeral port between destinations.
#[derive(Debug)]
enum Remotes {
    One(SocketAddr),
    Many(Vec<SocketAddr>),
}

impl Remotes {
    fn contains(&self, addr: &SocketAddr) -> bool {
        match self {
            Remotes::One(one) => one == addr,
            Remotes::Many(many) => many.contains(addr),
        }
    }

    fn push(&mut self, addr: SocketAddr) {
        match self {
            Remotes::One(one) => *self = Remotes::Many(vec![*one, addr]),
            Remotes::Many(many) => many.push(addr),
        }
    }

    /// Removes one `addr`; whether none is left.
    fn remove(&mut self, addr: &SocketAddr) -> bool {
        let many = match self {
            Remotes::One(one) => return one == addr,
            Remotes::Many(many) => many,
        };
        if let Some(i) = many.iter().position(|r| r == addr) {
            many.swap_remove(i);
        }
        match many[..] {
            [] => true,
            [last] => {
                *self = Remotes::One(last);
                false
            }
            _ => false,
        }
    }
}

/// The local and remote addresses of open outbound connections.
#[derive(Debug)]
pub(crate) struct OwnSockets {
    shards: Vec<Mutex<Shard>>,
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

/// `addr` with an IPv4-mapped IPv6 address as IPv4.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(socks4_acl::canonical(addr.ip()), addr.port())
}

impl OwnSockets {
    fn shard(&self, addr: &SocketAddr) -> std::sync::MutexGuard<'_, Shard> {
        self.shards[self.hasher.hash_one(addr) as usize % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the connection from `local` to `remote` as one of ours until
    /// the mark is dropped.
    pub(crate) fn mark(self: &Arc<Self>, local: SocketAddr, remote: SocketAddr) -> Mark {
        let (local, remote) = (canonical(local), canonical(remote));
        self.shard(&local)
            .entry(local)
            .and_modify(|remotes| remotes.push(remote))
            .or_insert(Remotes::One(remote));
        Mark {
            set: self.clone(),
            local,
            remote,
        }
    }

    /// Whether `peer` is the local address of one of our outbound
    /// connections: the cheap first test, on every accepted connection.
    pub(crate) fn has_local(&self, peer: SocketAddr) -> bool {
        let peer = canonical(peer);
        self.shard(&peer).contains_key(&peer)
    }

    /// Whether a connection from `peer` that reached one of `reached` (the
    /// accepted socket's local address, and the original destination when
    /// the kernel rewrote it) is one of our outbound connections.
    pub(crate) fn is_ours(&self, peer: SocketAddr, reached: &[SocketAddr]) -> bool {
        let peer = canonical(peer);
        self.shard(&peer)
            .get(&peer)
            .is_some_and(|remotes| reached.iter().any(|r| remotes.contains(&canonical(*r))))
    }
}

/// An outbound connection's local and remote addresses, marked while it is
/// open.
#[derive(Debug)]
pub(crate) struct Mark {
    set: Arc<OwnSockets>,
    local: SocketAddr,
    remote: SocketAddr,
}

impl Drop for Mark {
    fn drop(&mut self) {
        let mut shard = self.set.shard(&self.local);
        if let Some(remotes) = shard.get_mut(&self.local) {
            if remotes.remove(&self.remote) {
                shard.remove(&self.local);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_shared_port_is_ours_only_towards_where_it_went() {
        let set = Arc::new(OwnSockets::default());
        let one = set.mark(a("127.0.0.1:40000"), a("127.0.0.1:7"));
        let two = set.mark(a("127.0.0.1:40000"), a("10.0.0.1:80"));
        assert!(set.has_local(a("[::ffff:127.0.0.1]:40000")));
        // A client on the same port reaching the listener is not ours.
        assert!(!set.is_ours(a("127.0.0.1:40000"), &[a("127.0.0.1:1080")]));
        // Ours, by the local address or by the original destination.
        assert!(set.is_ours(a("127.0.0.1:40000"), &[a("127.0.0.1:7")]));
        assert!(set.is_ours(
            a("127.0.0.1:40000"),
            &[a("127.0.0.1:1080"), a("10.0.0.1:80")]
        ));
        drop(one);
        assert!(!set.is_ours(a("127.0.0.1:40000"), &[a("127.0.0.1:7")]));
        assert!(set.is_ours(a("127.0.0.1:40000"), &[a("10.0.0.1:80")]));
        drop(two);
        assert!(!set.has_local(a("127.0.0.1:40000")));
    }
}
