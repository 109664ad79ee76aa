//! `[resolver] mode = "system"`: the system resolver (getaddrinfo, so
//! /etc/hosts and nsswitch apply), run off the executor's threads, uncached,
//! with its failures named ([`ResolveError`]: no such host, no address,
//! temporary failure).

use crate::runtime::Runtime;
use async_lock::Semaphore;
use dns_lookup::{AddrInfoHints, LookupErrorKind, SockType};
use socks4_proto::server::ResolveError;
use std::net::IpAddr;
use std::sync::Arc;

/// The addresses of `host`, in the resolver's order, without repeats. At most
/// as many lookups run at once as `lookups` has permits; more wait for one. A
/// permit is held by the lookup itself, so a lookup its caller gave up on
/// (a timeout) still counts until getaddrinfo returns; so does `held` (the
/// client's own lookup permit), dropped with it.
pub(crate) async fn resolve<R: Runtime>(
    rt: &R,
    lookups: &Arc<Semaphore>,
    host: String,
    held: impl Send + 'static,
) -> Result<Vec<IpAddr>, ResolveError> {
    let permit = lookups.acquire_arc().await;
    rt.spawn_blocking(move || {
        let found = lookup(&host);
        drop(permit);
        drop(held);
        found
    })
    .await
    .unwrap_or(Err(ResolveError::Failed))
}

fn lookup(host: &str) -> Result<Vec<IpAddr>, ResolveError> {
    let hints = AddrInfoHints {
        socktype: SockType::Stream.into(),
        ..AddrInfoHints::default()
    };
    let found =
        dns_lookup::getaddrinfo(Some(host), None, Some(hints)).map_err(|e| classify(e.kind()))?;
    let mut addrs: Vec<IpAddr> = Vec::new();
    for info in found.flatten() {
        let ip = info.sockaddr.ip();
        if !addrs.contains(&ip) {
            addrs.push(ip);
        }
    }
    Ok(addrs)
}

/// The resolver's error, named.
fn classify(kind: LookupErrorKind) -> ResolveError {
    match kind {
        LookupErrorKind::NoName => ResolveError::NoSuchHost,
        LookupErrorKind::NoData => ResolveError::NoAddress,
        LookupErrorKind::Again => ResolveError::TemporaryFailure,
        _ => ResolveError::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Only names in /etc/hosts: a lookup of anything else would leave the
    // machine (its resolver points elsewhere).
    #[test]
    fn names_in_etc_hosts_resolve() {
        let addrs = lookup("localhost").unwrap();
        assert!(addrs.iter().any(|a| a.is_loopback()), "{addrs:?}");
        let mut unique = addrs.clone();
        unique.dedup();
        assert_eq!(unique, addrs, "no repeats");
    }

    #[test]
    fn resolver_errors_are_named() {
        assert_eq!(classify(LookupErrorKind::NoName), ResolveError::NoSuchHost);
        assert_eq!(classify(LookupErrorKind::NoData), ResolveError::NoAddress);
        assert_eq!(
            classify(LookupErrorKind::Again),
            ResolveError::TemporaryFailure
        );
        assert_eq!(classify(LookupErrorKind::Fail), ResolveError::Failed);
        assert_eq!(
            ResolveError::NoSuchHost.to_string(),
            "no such host",
            "the log says it in words"
        );
    }
}
