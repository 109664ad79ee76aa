//! `ctl conns [FILTER] [--sort bytes|age]` and `ctl kill ID | FILTER`: the
//! open connections as the operator sees them (one line each: id, listener,
//! client, identity, destination asked and reached, route, deciding rule,
//! phase, age, bytes and rate each way), and ending them at once (outcome
//! `killed`, logged with who asked).
//!
//! A filter is pairs of words, all of which must match: `client NET`,
//! `user U` (the request's USERID or identd's answer), `cert NAME`,
//! `dest NET|NAME|.DOMAIN` (an address in NET, asked or reached; a name as
//! asked; a name in DOMAIN), `listener ADDR` (`IP:PORT`, or an IP for all
//! its ports), `older-than DURATION`.

use crate::daemon::Daemon;
use crate::observe::conns::{ConnEntry, ConnView};
use serde_json::json;
use socks4_acl::Netmask;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// What a filter can ask for.
#[derive(Debug, Default)]
struct Filter {
    client: Option<Netmask>,
    user: Option<String>,
    cert: Option<String>,
    dest: Option<String>,
    listener: Option<String>,
    older_than: Option<Duration>,
}

/// How `ctl conns` orders its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sort {
    /// By id (the oldest first).
    Id,
    /// The most bytes (both ways) first.
    Bytes,
    /// The oldest first.
    Age,
}

/// The filter words `ctl` help names.
pub(crate) const FILTERS: &str =
    "client NET | user U | cert NAME | dest NET|NAME|.DOMAIN | listener ADDR | older-than DURATION";

fn parse(words: &[&str]) -> Result<(Filter, Sort), String> {
    let mut filter = Filter::default();
    let mut sort = Sort::Id;
    let mut words = words.iter();
    while let Some(word) = words.next() {
        let value = *words
            .next()
            .ok_or_else(|| format!("'{word}' needs a value"))?;
        match *word {
            "client" => filter.client = Some(value.parse().map_err(|e| format!("{e}"))?),
            "user" => filter.user = Some(value.to_owned()),
            "cert" => filter.cert = Some(value.to_owned()),
            "dest" => filter.dest = Some(value.to_ascii_lowercase()),
            "listener" => filter.listener = Some(value.to_owned()),
            "older-than" => {
                filter.older_than = Some(
                    humantime::parse_duration(value)
                        .map_err(|e| format!("older-than '{value}': {e}"))?,
                )
            }
            "--sort" | "sort" => {
                sort = match value {
                    "bytes" => Sort::Bytes,
                    "age" => Sort::Age,
                    other => return Err(format!("'{other}': sort by bytes or age")),
                }
            }
            other => return Err(format!("'{other}': expected {FILTERS} or --sort")),
        }
    }
    Ok((filter, sort))
}

impl Filter {
    fn matches(&self, c: &ConnView) -> bool {
        let i = &c.info;
        let client_ok = self
            .client
            .is_none_or(|n| i.client.is_some_and(|a| n.contains(a.ip())));
        let user_ok = self
            .user
            .as_ref()
            .is_none_or(|u| i.user.as_ref() == Some(u) || i.ident.as_ref() == Some(u));
        let cert_ok = self
            .cert
            .as_ref()
            .is_none_or(|n| i.cert.as_ref() == Some(n));
        let older_ok = self.older_than.is_none_or(|d| c.age > d);
        let listener_ok = self.listener.as_ref().is_none_or(|l| {
            l.parse::<SocketAddr>().map_or_else(
                |_| l.parse::<IpAddr>().is_ok_and(|ip| ip == c.listener.ip()),
                |a| a == c.listener,
            )
        });
        client_ok && user_ok && cert_ok && older_ok && listener_ok && self.dest_matches(c)
    }

    fn dest_matches(&self, c: &ConnView) -> bool {
        let Some(want) = &self.dest else {
            return true;
        };
        let asked = c.info.dest.as_deref().unwrap_or_default();
        // The asked destination's host: a name, an address, or [v6]:port.
        let host = asked
            .rsplit_once(':')
            .map_or(asked, |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if let Ok(net) = want.parse::<Netmask>() {
            let reached = c.info.reached.map(|a| a.ip());
            let asked_ip = host.parse::<IpAddr>().ok();
            return [reached, asked_ip]
                .into_iter()
                .flatten()
                .any(|ip| net.contains(ip));
        }
        match want.strip_prefix('.') {
            Some(domain) => host == domain || host.ends_with(want.as_str()),
            None => host == *want,
        }
    }
}

/// The matching connections' views, sorted.
fn select(daemon: &Daemon, words: &[&str]) -> Result<Vec<(Arc<ConnEntry>, ConnView)>, String> {
    let (filter, sort) = parse(words)?;
    let now = daemon
        .outbound()
        .now()
        .ok_or_else(|| "the server has not started yet".to_owned())?;
    let mut found: Vec<_> = daemon
        .conns()
        .entries()
        .into_iter()
        .map(|e| {
            let v = e.view(now);
            (e, v)
        })
        .filter(|(_, v)| filter.matches(v))
        .collect();
    match sort {
        Sort::Id => {}
        Sort::Bytes => found.sort_by_key(|(_, v)| std::cmp::Reverse(v.bytes_up + v.bytes_down)),
        Sort::Age => found.sort_by_key(|(_, v)| std::cmp::Reverse(v.age)),
    }
    Ok(found)
}

/// `ctl conns [FILTER] [--sort bytes|age]`.
pub(crate) fn conns(daemon: &Daemon, words: &[&str], as_json: bool) -> Result<String, String> {
    let found = select(daemon, words)?;
    if as_json {
        let list: Vec<&ConnView> = found.iter().map(|(_, v)| v).collect();
        return Ok(format!("{}\n", json!(list)));
    }
    Ok(found.iter().map(|(_, v)| line(v)).collect())
}

/// One connection's line; what a client sent is escaped.
fn line(v: &ConnView) -> String {
    let i = &v.info;
    let opt = |s: &Option<String>| {
        s.as_deref()
            .map_or_else(|| "-".to_owned(), |s| s.escape_debug().to_string())
    };
    let addr = |a: Option<SocketAddr>| a.map_or_else(|| "-".to_owned(), |a| a.to_string());
    format!(
        "{} listener={} client={} cert={}(verified) user={}(claimed) ident={}(identd) dest={}{} reached={} via={} rule={} state={} age={:.1}s bytes_up={} bytes_down={} rate_up={}/s rate_down={}/s\n",
        v.id,
        v.listener,
        addr(i.client),
        opt(&i.cert),
        opt(&i.user),
        opt(&i.ident),
        opt(&i.dest),
        // A name sniffed from the client's first bytes: `(sni)`, `(host)`.
        i.sniffed
            .as_deref()
            .map_or_else(String::new, |k| format!("({k})")),
        addr(i.reached),
        i.via.as_deref().unwrap_or("direct"),
        opt(&i.rule),
        i.state.name(),
        v.age.as_secs_f64(),
        v.bytes_up,
        v.bytes_down,
        v.rate_up,
        v.rate_down,
    )
}

/// `ctl kill ID | FILTER`: ends the matching connections at once; `who`
/// asked (logged).
pub(crate) fn kill(
    daemon: &Daemon,
    words: &[&str],
    who: &str,
    as_json: bool,
) -> Result<String, String> {
    let found: Vec<Arc<ConnEntry>> = match words {
        [id] if id.parse::<u64>().is_ok() => {
            let id: u64 = id.parse().unwrap_or_default();
            daemon
                .conns()
                .entries()
                .into_iter()
                .filter(|e| e.id() == id)
                .collect()
        }
        [] => return Err(format!("kill what? an ID or a filter: {FILTERS}")),
        _ => select(daemon, words)?.into_iter().map(|(e, _)| e).collect(),
    };
    let n = daemon.conns().kill(&found);
    let ids: Vec<String> = found.iter().map(|e| e.id().to_string()).collect();
    tracing::warn!(target: "socks4d", by = who, killed = n, conns = %ids.join(","), filter = %words.join(" "), "control: connections killed");
    Ok(match as_json {
        true => format!(
            "{}\n",
            json!({"killed": n, "ids": found.iter().map(|e| e.id()).collect::<Vec<_>>()})
        ),
        false => format!("killed {n} connection{}\n", if n == 1 { "" } else { "s" }),
    })
}

/// The metrics of what the control socket did: `socks4_connections_killed_total`
/// and `socks4_runtime_list_entries{list}`.
pub(crate) fn metrics(
    e: &mut prometheus_client::encoding::DescriptorEncoder,
    daemon: &Daemon,
) -> std::fmt::Result {
    use crate::daemon::runtime_lists::ListKind;
    use prometheus_client::encoding::EncodeMetric;
    use prometheus_client::metrics::{counter::ConstCounter, gauge::ConstGauge, MetricType};
    let m = e.encode_descriptor(
        "socks4_connections_killed",
        "Connections ended by an operator (ctl kill).",
        None,
        MetricType::Counter,
    )?;
    ConstCounter::new(daemon.conns().killed_total()).encode(m)?;
    let mut m = e.encode_descriptor(
        "socks4_runtime_list_entries",
        "Run-time entries (ctl deny add, ctl exempt add) on each list.",
        None,
        MetricType::Gauge,
    )?;
    for kind in [ListKind::Deny, ListKind::Exempt] {
        let labels = [("list", kind.name())];
        let n = daemon.runtime_list_len(kind) as i64;
        ConstGauge::new(n).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}
