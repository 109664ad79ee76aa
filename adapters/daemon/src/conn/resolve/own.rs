//! The own resolver: the hosts file first, then the shared cache, then the
//! nameservers, one question in flight per name and type however many
//! clients ask (the others wait for its answer), a stale answer served when
//! no nameserver answers within RFC 8767's client-response timer, and AAAA
//! and A asked at once, the answer given in two parts when one family's
//! comes first (RFC 8305 §3: see [`resolve`]).

use super::query::{self, Servers};
use crate::daemon::outbound::{Flight, ResolverState};
use crate::daemon::Daemon;
use crate::runtime::{before, Runtime};
use socks4_proto::dns_cache::{Answer, Found, Key, RecordType};
use socks4_proto::eyeballs::{Only, Prefer, RESOLUTION_DELAY};
use socks4_proto::server::ResolveError;
use std::future::{poll_fn, Future};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

/// RFC 8767's client-response timer: past it, a stale answer is served
/// while the question goes on.
pub(crate) const CLIENT_RESPONSE_TIMER: Duration = Duration::from_millis(1800);

/// A lookup of one record type, owned (it may outlive the request that
/// started it: the rest of a two-part answer).
type Lookup = Pin<Box<dyn Future<Output = Result<Got, ResolveError>> + Send>>;

/// The rest of a two-part answer: the other family's addresses (none when it
/// had none or its lookup failed), and whether they were served stale.
pub(crate) type Rest = Pin<Box<dyn Future<Output = (Vec<IpAddr>, bool)> + Send>>;

/// How one record type's answer was had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Got {
    pub(crate) answer: Answer,
    /// Served stale: past its TTL, no nameserver answered.
    pub(crate) stale: bool,
}

/// A name's answer, whole or in two parts.
pub(crate) struct Addrs {
    /// The addresses known now (the preferred family's first when both are
    /// in).
    pub(crate) addrs: Vec<IpAddr>,
    /// Whether any was served stale.
    pub(crate) stale: bool,
    /// The other family's addresses, when the answer came in two parts.
    pub(crate) rest: Option<Rest>,
}

fn lookup_owned<R: Runtime>(rt: &R, daemon: &Daemon, host: &str, rtype: RecordType) -> Lookup {
    let (rt, daemon, host) = (rt.clone(), daemon.clone(), host.to_owned());
    Box::pin(async move { lookup(&rt, &daemon, &host, rtype).await })
}

fn has_addrs(r: &Option<Result<Got, ResolveError>>) -> bool {
    matches!(
        r,
        Some(Ok(Got {
            answer: Answer::Addrs(_),
            ..
        }))
    )
}

/// The addresses of `host` (without the hosts file: the caller looked), of
/// the families `only` allows. With both, AAAA and A are asked at once and
/// the answer may come in two parts (RFC 8305 §3): when the preferred
/// family's addresses come first they are returned at once, the other's to
/// follow as [`Addrs::rest`]; when the other family's come first, the
/// preferred's get [`RESOLUTION_DELAY`] more, and follow as the rest if they
/// are not in by then.
pub(crate) async fn resolve<R: Runtime>(
    rt: &R,
    daemon: &Daemon,
    host: &str,
    only: Only,
    prefer: Prefer,
) -> Result<Addrs, ResolveError> {
    let types: &[RecordType] = match only {
        Only::Any => &[RecordType::Aaaa, RecordType::A],
        Only::Ipv6 => &[RecordType::Aaaa],
        Only::Ipv4 => &[RecordType::A],
    };
    if let [one] = types {
        let got = lookup(rt, daemon, host, *one).await?;
        return whole(vec![Ok(got)]);
    }
    let (preferred, other) = if prefer.waits_for_ipv6() {
        (RecordType::Aaaa, RecordType::A)
    } else {
        (RecordType::A, RecordType::Aaaa)
    };
    let mut lookups = [
        lookup_owned(rt, daemon, host, preferred),
        lookup_owned(rt, daemon, host, other),
    ];
    // [preferred, other]
    let mut results: [Option<Result<Got, ResolveError>>; 2] = [None, None];
    poll_fn(|cx| {
        for (lookup, result) in lookups.iter_mut().zip(results.iter_mut()) {
            if result.is_none() {
                if let Poll::Ready(r) = lookup.as_mut().poll(cx) {
                    *result = Some(r);
                }
            }
        }
        let both = results.iter().all(Option::is_some);
        if both || has_addrs(&results[0]) || has_addrs(&results[1]) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    let [mut preferred_lookup, other_lookup] = lookups;
    let (first, rest) = match results {
        [Some(p), Some(o)] => return whole(vec![p, o]),
        // The preferred family's addresses came first: go on with them.
        [Some(p), None] => (p, other_lookup),
        // The other family's came first: the preferred's get a short while.
        [None, Some(o)] => {
            let deadline = rt.now() + RESOLUTION_DELAY;
            match before(rt, Some(deadline), &mut preferred_lookup).await {
                Some(p) => return whole(vec![p, o]),
                None => (o, preferred_lookup),
            }
        }
        [None, None] => return Err(ResolveError::TemporaryFailure),
    };
    let (addrs, stale) = combine(vec![first])?;
    let rest: Rest = Box::pin(async move {
        match rest.await {
            Ok(Got {
                answer: Answer::Addrs(addrs),
                stale,
            }) => (addrs, stale),
            _ => (Vec::new(), false),
        }
    });
    Ok(Addrs {
        addrs,
        stale,
        rest: Some(rest),
    })
}

/// A whole answer.
fn whole(results: Vec<Result<Got, ResolveError>>) -> Result<Addrs, ResolveError> {
    let (addrs, stale) = combine(results)?;
    Ok(Addrs {
        addrs,
        stale,
        rest: None,
    })
}

/// The addresses of the answers (in their order), whether any was stale, or
/// the error that says most.
fn combine(results: Vec<Result<Got, ResolveError>>) -> Result<(Vec<IpAddr>, bool), ResolveError> {
    let mut addrs = Vec::new();
    let mut stale = false;
    let mut error: Option<ResolveError> = None;
    let mut no_name = true;
    for r in results {
        match r {
            Ok(Got {
                answer: Answer::Addrs(a),
                stale: s,
            }) => {
                addrs.extend(a);
                stale |= s;
            }
            Ok(Got {
                answer: Answer::NoData,
                ..
            }) => no_name = false,
            Ok(Got {
                answer: Answer::NoName,
                ..
            }) => {}
            Err(e) => {
                no_name = false;
                error.get_or_insert(e);
            }
        }
    }
    match (addrs.is_empty(), error) {
        (false, _) => Ok((addrs, stale)),
        (true, Some(e)) => Err(e),
        (true, None) if no_name => Err(ResolveError::NoSuchHost),
        (true, None) => Err(ResolveError::NoAddress),
    }
}

/// One record type of `host`: from the cache, or from the question in
/// flight for it (started here when none is), or stale.
pub(crate) async fn lookup<R: Runtime>(
    rt: &R,
    daemon: &Daemon,
    host: &str,
    rtype: RecordType,
) -> Result<Got, ResolveError> {
    let state = &daemon.outbound().resolver;
    let key = Key::new(host, rtype);
    let found = state.cache().get(&key, rt.now());
    let stale = match found {
        Found::Fresh { answer, .. } => {
            state.count(if answer.is_negative() {
                "negative"
            } else {
                "hit"
            });
            return Ok(Got {
                answer,
                stale: false,
            });
        }
        Found::Stale {
            answer,
            refresh: false,
        } => {
            state.count("stale");
            return Ok(Got {
                answer,
                stale: true,
            });
        }
        Found::Stale {
            answer,
            refresh: true,
        } => Some(answer),
        Found::Miss => {
            state.count("miss");
            None
        }
    };
    let flight = join(rt, daemon, key);
    let waited = match &stale {
        // With a stale answer to fall back on, the nameservers get the
        // client-response timer.
        Some(_) => before(rt, Some(rt.now() + CLIENT_RESPONSE_TIMER), wait(&flight)).await,
        None => Some(wait(&flight).await),
    };
    match (waited, stale) {
        (Some(Ok(answer)), _) => Ok(Got {
            answer,
            stale: false,
        }),
        (_, Some(answer)) => {
            state.count("stale");
            Ok(Got {
                answer,
                stale: true,
            })
        }
        (Some(Err(e)), None) => Err(e),
        (None, None) => Err(ResolveError::TemporaryFailure),
    }
}

/// The flight for `key`: the one in the air, or a new one, spawned (so that
/// it ends and fills the cache whoever stops waiting for it).
fn join<R: Runtime>(rt: &R, daemon: &Daemon, key: Key) -> Arc<Flight> {
    let state = &daemon.outbound().resolver;
    let mut flights = state.flights();
    if let Some(f) = flights.get(&key) {
        return f.clone();
    }
    let flight = Arc::new(Flight::default());
    flights.insert(key.clone(), flight.clone());
    drop(flights);
    let (rt2, daemon, f) = (rt.clone(), daemon.clone(), flight.clone());
    rt.spawn(async move { fly(&rt2, &daemon, key, f).await });
    flight
}

/// Asks the nameservers (within a `max_lookups` permit), fills the cache,
/// and hands the result to everyone waiting.
async fn fly<R: Runtime>(rt: &R, daemon: &Daemon, key: Key, flight: Arc<Flight>) {
    let permit = daemon.lookups().acquire_arc().await;
    let servers = query::servers(&daemon.settings().outbound);
    let result = ask_all(rt, &servers, &key).await;
    drop(permit);
    let state: &ResolverState = &daemon.outbound().resolver;
    let now = rt.now();
    let result = match result {
        Ok((answer, ttl)) => {
            state.cache().insert(key.clone(), answer.clone(), ttl, now);
            Ok(answer)
        }
        Err(e) => {
            state.cache().refresh_failed(&key, now);
            Err(e)
        }
    };
    *flight.result.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
    state.flights().remove(&key);
    flight.done.notify(usize::MAX);
}

/// The names the search list makes of the key's, asked in turn until one
/// exists.
async fn ask_all<R: Runtime>(
    rt: &R,
    servers: &Servers,
    key: &Key,
) -> Result<query::Said, ResolveError> {
    let mut last: Result<query::Said, ResolveError> = Err(ResolveError::NoSuchHost);
    for name in query::candidates(&key.name, servers) {
        let fqdn = if name.ends_with('.') {
            name
        } else {
            format!("{name}.")
        };
        last = query::ask(rt, servers, &fqdn, key.rtype).await;
        match &last {
            Ok((Answer::NoName, _)) => continue,
            _ => return last,
        }
    }
    last
}

/// The flight's result, once it is in.
async fn wait(flight: &Flight) -> Result<Answer, ResolveError> {
    loop {
        let listener = flight.done.listen();
        if let Some(r) = flight
            .result
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return r;
        }
        listener.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn got(answer: Answer) -> Result<Got, ResolveError> {
        Ok(Got {
            answer,
            stale: false,
        })
    }

    #[test]
    fn answers_combine() {
        let v6: IpAddr = "::1".parse().unwrap();
        assert_eq!(
            combine(vec![got(Answer::Addrs(vec![v6])), got(Answer::NoName)]),
            Ok((vec![v6], false))
        );
        assert_eq!(
            combine(vec![got(Answer::NoName), got(Answer::NoName)]),
            Err(ResolveError::NoSuchHost)
        );
        assert_eq!(
            combine(vec![got(Answer::NoData), got(Answer::NoName)]),
            Err(ResolveError::NoAddress)
        );
        assert_eq!(
            combine(vec![
                got(Answer::NoName),
                Err(ResolveError::TemporaryFailure)
            ]),
            Err(ResolveError::TemporaryFailure)
        );
    }
}
