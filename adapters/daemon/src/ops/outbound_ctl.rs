//! The outbound side as the operator sees it: `ctl parents` (each parent's
//! state, consecutive failures, last error and when, open connections,
//! median connect time), `ctl resolve NAME` (what the resolver's cache holds,
//! with the TTL left, and the hosts file's entry; it never asks a
//! nameserver), `ctl cache flush [NAME]`, and the metrics
//! `socks4_parent_up`, `socks4_parent_attempts_total`,
//! `socks4_resolver_cache_total` and `socks4_connect_attempts_total`.

use crate::daemon::outbound::{ATTEMPT_RESULTS, CACHE_RESULTS};
use crate::daemon::Daemon;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use std::fmt;
use std::time::Duration;

/// Runs `parents`, `resolve NAME` or `cache flush [NAME]`; with `as_json`,
/// the output as JSON (docs/operations.md).
pub(crate) fn run(
    daemon: &Daemon,
    cmd: &str,
    rest: &[&str],
    as_json: bool,
) -> Result<String, String> {
    let outbound = daemon.outbound();
    let now = outbound
        .now()
        .ok_or_else(|| "the server has not started yet".to_owned())?;
    if as_json {
        return json_answer(daemon, cmd, rest, now);
    }
    match (cmd, rest) {
        ("parents", []) => Ok(parents(daemon, now)),
        ("resolve", [name]) => Ok(resolve(daemon, name, now)),
        ("cache", ["flush"]) => Ok(format!(
            "{} cached answers flushed\n",
            outbound.resolver.cache().flush(None)
        )),
        ("cache", ["flush", name]) => Ok(format!(
            "{} cached answers of {name} flushed\n",
            outbound.resolver.cache().flush(Some(name))
        )),
        _ => Err(format!(
            "usage: parents | resolve NAME | cache flush [NAME], not '{cmd} {}'",
            rest.join(" ")
        )),
    }
}

/// `parents`, `resolve NAME` and `cache flush [NAME]` as JSON.
fn json_answer(
    daemon: &Daemon,
    cmd: &str,
    rest: &[&str],
    now: std::time::Instant,
) -> Result<String, String> {
    use serde_json::json;
    let outbound = daemon.outbound();
    let value = match (cmd, rest) {
        ("parents", []) => json!(outbound
            .parents
            .view(now)
            .iter()
            .map(|p| json!({
                "parent": p.parent,
                "up": p.down_for.is_none(),
                "down_for_seconds": p.down_for.map(|d| d.as_secs_f64()),
                "failures": p.failures,
                "open": p.open,
                "median_connect_ms": p.median_connect.map(|d| d.as_millis() as u64),
                "last_error": p.last_error.as_ref().map(|(why, _)| why.to_string()),
                "last_error_seconds_ago": p.last_error.as_ref().map(|(_, ago)| ago.as_secs_f64()),
            }))
            .collect::<Vec<_>>()),
        ("resolve", [name]) => {
            let key = socks4_proto::dns_cache::normalize(name);
            let cached: Vec<String> = match daemon.settings().outbound.own_resolver {
                true => outbound
                    .resolver
                    .cached(name, now)
                    .iter()
                    .map(|l| l.to_string())
                    .collect(),
                false => Vec::new(),
            };
            let hosts = outbound
                .resolver
                .hosts()
                .names
                .get(&key)
                .map(|a| a.iter().map(|ip| ip.to_string()).collect::<Vec<_>>());
            json!({"name": key, "cached": cached, "hosts": hosts})
        }
        ("cache", ["flush"]) => json!({"flushed": outbound.resolver.cache().flush(None)}),
        ("cache", ["flush", name]) => {
            json!({"flushed": outbound.resolver.cache().flush(Some(name)), "name": name})
        }
        _ => return run(daemon, cmd, rest, false),
    };
    Ok(format!("{value}\n"))
}

/// `ctl resolve NAME`: what the cache holds for the name, one line per
/// record type with the TTL left (or `stale`), and what the hosts file (read
/// before the cache) gives it as last read; it never asks a nameserver.
fn resolve(daemon: &Daemon, name: &str, now: std::time::Instant) -> String {
    if !daemon.settings().outbound.own_resolver {
        return format!(
            "{name}: not cached: [resolver] mode = \"system\" asks getaddrinfo every time and keeps no cache\n"
        );
    }
    let resolver = &daemon.outbound().resolver;
    let mut out: String = resolver
        .cached(name, now)
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    let key = socks4_proto::dns_cache::normalize(name);
    if let Some(addrs) = resolver.hosts().names.get(&key) {
        let addrs: Vec<String> = addrs.iter().map(|ip| ip.to_string()).collect();
        out.push_str(&format!(
            "{key} hosts {} (the hosts file answers first)\n",
            addrs.join(" ")
        ));
    }
    if out.is_empty() {
        out = format!(
            "{name}: not cached (not asked for yet, flushed, or expired longer than stale_for ago); ctl resolve does not ask the nameservers\n"
        );
    }
    out
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

fn parents(daemon: &Daemon, now: std::time::Instant) -> String {
    let mut out = String::new();
    for p in daemon.outbound().parents.view(now) {
        let state = match p.down_for {
            Some(d) if !d.is_zero() => format!("down for {}", secs(d)),
            Some(_) => "down, retrying".to_owned(),
            None => "up".to_owned(),
        };
        let last = p.last_error.as_ref().map_or_else(
            || "-".to_owned(),
            |(why, ago)| format!("{why:?} {} ago", secs(*ago)),
        );
        let median = p
            .median_connect
            .map_or_else(|| "-".to_owned(), |d| format!("{}ms", d.as_millis()));
        out.push_str(&format!(
            "{} state={state:?} failures={} open={} median_connect={median} last_error={last}\n",
            p.parent, p.failures, p.open
        ));
    }
    if out.is_empty() {
        out.push_str("no parent used yet\n");
    }
    out
}

/// The outbound metrics.
pub(crate) fn metrics(e: &mut DescriptorEncoder, daemon: &Daemon) -> fmt::Result {
    let outbound = daemon.outbound();
    let view = outbound
        .now()
        .map(|now| outbound.parents.view(now))
        .unwrap_or_default();
    family(
        e,
        "socks4_parent_up",
        "Whether each parent proxy is up (0: marked down after consecutive failures)",
        false,
        view.iter().map(|p| {
            (
                vec![("parent", p.parent.clone())],
                u64::from(p.down_for.is_none()),
            )
        }),
    )?;
    family(
        e,
        "socks4_parent_attempts",
        "Attempts through each parent proxy by result (won, error, timeout, lost)",
        true,
        view.iter().flat_map(|p| {
            ATTEMPT_RESULTS.iter().zip(p.attempts).map(|(r, n)| {
                (
                    vec![("parent", p.parent.clone()), ("result", (*r).to_owned())],
                    n,
                )
            })
        }),
    )?;
    family(
        e,
        "socks4_resolver_cache",
        "Lookups of the own resolver's cache by result (hit, miss, stale, negative)",
        true,
        CACHE_RESULTS
            .iter()
            .zip(outbound.resolver.cache_results())
            .map(|(r, n)| (vec![("result", (*r).to_owned())], n)),
    )?;
    family(
        e,
        "socks4_connect_attempts",
        "Direct connect attempts by address family and result (won, error, timeout, lost)",
        true,
        outbound
            .connect_attempts()
            .into_iter()
            .map(|(f, r, n)| (vec![("family", f.to_owned()), ("result", r.to_owned())], n)),
    )
}

/// One metric family of `(labels, value)` samples (its own copy of the
/// metrics page's helper: that page calls this file).
fn family(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    counter: bool,
    samples: impl IntoIterator<Item = (Vec<(&'static str, String)>, u64)>,
) -> fmt::Result {
    let kind = if counter {
        MetricType::Counter
    } else {
        MetricType::Gauge
    };
    let mut m = e.encode_descriptor(name, help, None, kind)?;
    for (labels, v) in samples {
        let fam = m.encode_family(&labels)?;
        if counter {
            ConstCounter::new(v).encode(fam)?;
        } else {
            ConstGauge::new(v as i64).encode(fam)?;
        }
    }
    Ok(())
}
