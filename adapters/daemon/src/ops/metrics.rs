//! Prometheus metrics: what the books count, encoded by `prometheus-client` in
//! the Prometheus text format and served at `GET /metrics` over the runtime's
//! own sockets (`--metrics-listen`). Only loopback and the `metrics_allow` nets
//! may scrape; anyone else is closed at once. The listener has its own bounds,
//! apart from the SOCKS listeners': at most `[limits] max_metrics_connections`
//! at once (more are closed at once), each within `[timeouts] metrics` for
//! its request and the answer.
//!
//! The same listener answers the probes of a load balancer or an orchestrator,
//! and keeps answering while the server drains: `GET /live` is 200 while the
//! process runs; `GET /ready` is 200 while the server takes new connections
//! and 503 (with the reason as its body) while it drains after a stop, while
//! a binary upgrade starts a new process, or while it holds `max_connections`
//! ([`readiness`]). Once an upgrade handed the sockets over, the old process
//! stops answering here (the new one does).
//!
//! Every metric, with its labels:
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `socks4_connections_opened_total` | counter | `listener` |
//! | `socks4_connections_closed_total` | counter | `listener` |
//! | `socks4_connections_active` | gauge | |
//! | `socks4_max_connections` | gauge | |
//! | `socks4_closes_total` | counter | `outcome` ([`CloseReason::LABELS`](socks4_proto::server::CloseReason::LABELS)) |
//! | `socks4_replies_total` | counter | `code` (90–93) |
//! | `socks4_relayed_bytes_total` | counter | `direction` (`client_to_dest`, `dest_to_client`) |
//! | `socks4_relays_open` | gauge | |
//! | `socks4_handshake_duration_seconds` | histogram | |
//! | `socks4_ident_queries_total` | counter | `result` (`user`, `error`, `no_answer`) |
//! | `socks4_dns_lookups_total` | counter | `result` (`ok`, `timeout`, `no_such_host`, `no_address`, `temporary_failure`, `failed`) |
//! | `socks4_limited_total` | counter | `limit` (`connections`, `bind_listeners`, `rate`, `quota`, `resolver`) |
//! | `socks4_accept_pauses_total` | counter | |
//! | `socks4_log_lines_dropped_total` | counter | |
//! | `socks4_reloads_total` | counter | `result` (`ok`, `failed`) |
//! | `socks4_proxy_headers_total` | counter | `result` ([`PROXY_RESULTS`](crate::observe::counters::PROXY_RESULTS)) |
//! | `socks4_notifications_total` | counter | `result` ([`NOTIFY_RESULTS`](crate::observe::notify::NOTIFY_RESULTS)) |
//! | `socks4_tls_failures_total` | counter | `side` (`client`, `destination`, `parent`), `kind` ([`TlsFailure::label`](socks4_proto::server::TlsFailure::label)) |
//! | `socks4_parent_up` | gauge (0/1) | `parent` |
//! | `socks4_parent_attempts_total` | counter | `parent`, `result` (`won`, `error`, `timeout`, `lost`) |
//! | `socks4_resolver_cache_total` | counter | `result` (`hit`, `miss`, `stale`, `negative`) |
//! | `socks4_connect_attempts_total` | counter | `family` (`ipv4`, `ipv6`), `result` (`won`, `error`, `timeout`, `lost`) |
//! | `socks4_connections_killed_total` | counter | |
//! | `socks4_runtime_list_entries` | gauge | `list` (`deny`, `exempt`) |
//! | `socks4_build_info` | gauge (1) | `version`, `runtime` |

use crate::daemon::Daemon;
use crate::observe::books::Books;
use crate::observe::counters::Snapshot;
use crate::runtime::{before, read, write_all, Runtime};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use socks4_acl::Netmask;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The longest request accepted.
const MAX_REQUEST: usize = 8192;

/// The metrics of one server.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
}

impl Metrics {
    /// Metrics for `daemon`, running on a runtime named `runtime`.
    pub(crate) fn new(daemon: &Daemon, runtime: &'static str) -> Metrics {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(BooksCollector {
            daemon: daemon.clone(),
            runtime,
        }));
        Metrics { registry }
    }

    /// The metrics now, in the Prometheus text format (version 0.0.4).
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

#[derive(Debug)]
struct BooksCollector {
    daemon: Daemon,
    runtime: &'static str,
}

fn family<L: prometheus_client::encoding::EncodeLabelSet>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    counter: bool,
    samples: impl IntoIterator<Item = (L, u64)>,
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

fn single(e: &mut DescriptorEncoder, name: &str, help: &str, counter: bool, v: u64) -> fmt::Result {
    let kind = if counter {
        MetricType::Counter
    } else {
        MetricType::Gauge
    };
    let m = e.encode_descriptor(name, help, None, kind)?;
    if counter {
        ConstCounter::new(v).encode(m)
    } else {
        ConstGauge::new(v as i64).encode(m)
    }
}

type Labels = Vec<(&'static str, String)>;

fn one(key: &'static str, value: impl ToString) -> Labels {
    vec![(key, value.to_string())]
}

impl Collector for BooksCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let s = self.daemon.counters();
        connections(&mut e, &s)?;
        single(
            &mut e,
            "socks4_max_connections",
            "The cap on connections open at once (max_connections): at it, accepting pauses.",
            false,
            self.daemon.max_connections() as u64,
        )?;
        requests(&mut e, &s, self.daemon.books())?;
        crate::ops::outbound_ctl::metrics(&mut e, &self.daemon)?;
        crate::ops::conns_ctl::metrics(&mut e, &self.daemon)?;
        crate::ops::fleet_ctl::metrics(&mut e, &self.daemon)?;
        operations(&mut e, &s, self.runtime)
    }
}

/// Connections and relays: opened, closed, open now, outcomes, replies, bytes.
fn connections(e: &mut DescriptorEncoder, s: &Snapshot) -> fmt::Result {
    family(
        e,
        "socks4_connections_opened",
        "Connections accepted, by listener (its bound address).",
        true,
        s.listeners.iter().map(|(a, o, _)| (one("listener", a), *o)),
    )?;
    family(
        e,
        "socks4_connections_closed",
        "Connections finished, by listener.",
        true,
        s.listeners.iter().map(|(a, _, c)| (one("listener", a), *c)),
    )?;
    single(
        e,
        "socks4_connections_active",
        "Connections open now.",
        false,
        s.active,
    )?;
    family(
        e,
        "socks4_closes",
        "Connections finished, by outcome.",
        true,
        s.by_outcome.iter().map(|(l, n)| (one("outcome", l), *n)),
    )?;
    family(
        e,
        "socks4_replies",
        "Replies sent, by code.",
        true,
        s.by_reply.iter().map(|(c, n)| (one("code", c.as_u8()), *n)),
    )?;
    family(
        e,
        "socks4_relayed_bytes",
        "Bytes relayed, by direction.",
        true,
        [
            (one("direction", "client_to_dest"), s.client_to_dest),
            (one("direction", "dest_to_client"), s.dest_to_client),
        ],
    )?;
    single(
        e,
        "socks4_relays_open",
        "Relays running now.",
        false,
        s.relays_open,
    )?;
    Ok(())
}

/// What requests needed and met: handshake times, IDENT, lookups, limits.
fn requests(e: &mut DescriptorEncoder, s: &Snapshot, books: &Books) -> fmt::Result {
    let m = e.encode_descriptor(
        "socks4_handshake_duration_seconds",
        "Time from accept to the first reply.",
        None,
        MetricType::Histogram,
    )?;
    books.handshake.encode(m)?;
    family(
        e,
        "socks4_ident_queries",
        "IDENT queries, by result.",
        true,
        s.idents.iter().map(|(l, n)| (one("result", l), *n)),
    )?;
    family(
        e,
        "socks4_dns_lookups",
        "SOCKS4a name lookups, by result.",
        true,
        s.lookups.iter().map(|(l, n)| (one("result", l), *n)),
    )?;
    family(
        e,
        "socks4_limited",
        "Requests or connections refused by a per-client limit, by limit.",
        true,
        s.limited.iter().map(|(l, n)| (one("limit", l), *n)),
    )?;
    Ok(())
}

/// The server itself: accept pauses, dropped log lines, reloads, PROXY
/// headers, notifications, TLS failures, build.
fn operations(e: &mut DescriptorEncoder, s: &Snapshot, runtime: &str) -> fmt::Result {
    single(
        e,
        "socks4_accept_pauses",
        "Times accepting paused because max_connections were open.",
        true,
        s.accept_pauses,
    )?;
    single(
        e,
        "socks4_log_lines_dropped",
        "Log lines dropped because a log output could not keep up (or syslog could not be reached).",
        true,
        s.log_lines_dropped,
    )?;
    family(
        e,
        "socks4_reloads",
        "Configuration reloads, by result.",
        true,
        [
            (one("result", "ok"), s.reloads_ok),
            (one("result", "failed"), s.reloads_failed),
        ],
    )?;
    family(
        e,
        "socks4_proxy_headers",
        "Connections to PROXY protocol listeners, by what their header did.",
        true,
        s.proxy_headers.iter().map(|(l, n)| (one("result", l), *n)),
    )?;
    family(
        e,
        "socks4_notifications",
        "Notifications of rules with notify, by result.",
        true,
        s.notifications.iter().map(|(l, n)| (one("result", l), *n)),
    )?;
    family(
        e,
        "socks4_tls_failures",
        "TLS handshakes that failed, by side and kind.",
        true,
        s.tls_failures.iter().map(|(side, kind, n)| {
            (
                vec![("side", (*side).to_owned()), ("kind", (*kind).to_owned())],
                *n,
            )
        }),
    )?;
    family(
        e,
        "socks4_build_info",
        "The server's version and runtime (always 1).",
        false,
        [(
            vec![
                ("version", env!("CARGO_PKG_VERSION").to_owned()),
                ("runtime", runtime.to_owned()),
            ],
            1,
        )],
    )?;
    Ok(())
}

/// Whether `peer` may scrape: loopback, or one of `allow`.
pub(crate) fn may_scrape(peer: SocketAddr, allow: &[Netmask]) -> bool {
    let ip = socks4_acl::canonical(peer.ip());
    ip.is_loopback() || allow.iter().any(|n| n.contains(ip))
}

/// Why the server is not ready for new connections, or `Ok` when it is:
/// what `GET /ready` answers (200, or 503 with the reason).
pub(crate) fn readiness(daemon: &Daemon) -> Result<(), &'static str> {
    if daemon.upgrade().upgrading() {
        Err("upgrading: a new process is taking over the listeners")
    } else if daemon.is_shutting_down() {
        Err("draining: stopping, new connections are not accepted")
    } else if !daemon.has_room() {
        Err(match daemon.current().when_full {
            crate::config::options::WhenFull::Wait => {
                "full: max_connections are open, accepting is paused"
            }
            crate::config::options::WhenFull::Refuse => {
                "full: max_connections are open, new connections are refused"
            }
        })
    } else {
        Ok(())
    }
}

/// Serves `GET /metrics`, `/ready` and `/live` on `listener` until `stop`
/// completes (when serving ends: after the drain, so that the probes see it).
pub(crate) async fn serve<R: Runtime>(
    rt: R,
    daemon: Daemon,
    listener: R::Listener,
    metrics: std::sync::Arc<Metrics>,
    stop: impl std::future::Future<Output = ()>,
) {
    use futures_lite::future::FutureExt;
    let open = std::sync::Arc::new(AtomicUsize::new(0));
    let mut backoff = Duration::from_millis(5);
    let mut stop = std::pin::pin!(stop);
    loop {
        let accepted = async { Some(rt.accept(&listener).await) }
            .or(async {
                stop.as_mut().await;
                None
            })
            .await;
        let Some(accepted) = accepted else { return };
        let Ok((stream, peer)) = accepted else {
            // EMFILE and the like: pause, doubling up to a second.
            rt.sleep_until(rt.now() + backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
            continue;
        };
        backoff = Duration::from_millis(5);
        if !may_scrape(peer, &daemon.current().metrics_allow) {
            if daemon.books().may_log_warning(rt.now()) {
                tracing::warn!(target: "socks4d", %peer, "metrics scrape refused: not from loopback or metrics_allow");
            }
            continue;
        }
        let max = daemon.settings().max_metrics_connections;
        let taken = open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        });
        if taken.is_err() {
            tracing::debug!(target: "socks4d", %peer, max, "metrics connection closed: max_metrics_connections open");
            continue;
        }
        let (metrics, open) = (metrics.clone(), open.clone());
        let rt2 = rt.clone();
        let timeout = daemon.settings().metrics_timeout;
        let daemon = daemon.clone();
        rt.spawn(async move {
            let deadline = rt2.now() + timeout;
            let answer = before(&rt2, Some(deadline), answer(&stream, &metrics, &daemon)).await;
            drop(stream);
            open.fetch_sub(1, Ordering::AcqRel);
            if let Some(Err(e)) = answer {
                tracing::debug!(target: "socks4d", %peer, error = %e, "metrics request failed");
            }
        });
    }
}

/// The answer to `GET path`: its status and body.
fn route(path: &str, metrics: &Metrics, daemon: &Daemon) -> (&'static str, String) {
    match path {
        "/metrics" => ("200 OK", metrics.render()),
        "/live" => ("200 OK", "live\n".to_owned()),
        "/ready" => match readiness(daemon) {
            Ok(()) => ("200 OK", "ready\n".to_owned()),
            Err(why) => ("503 Service Unavailable", format!("{why}\n")),
        },
        _ => (
            "404 Not Found",
            "not found: try /metrics, /ready or /live\n".to_owned(),
        ),
    }
}

/// Reads one HTTP request and answers it.
async fn answer<S: crate::runtime::Stream>(
    stream: &S,
    metrics: &Metrics,
    daemon: &Daemon,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; MAX_REQUEST];
    let mut have = 0;
    let (status, body) = loop {
        let n = read(stream, &mut buf[have..]).await?;
        if n == 0 {
            return Ok(());
        }
        have += n;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf[..have]) {
            Ok(httparse::Status::Complete(_)) => {
                break match (req.method, req.path) {
                    (Some("GET"), Some(path)) => route(path, metrics, daemon),
                    _ => ("405 Method Not Allowed", "GET only\n".to_owned()),
                };
            }
            Ok(httparse::Status::Partial) if have < buf.len() => continue,
            _ => break ("400 Bad Request", "bad request\n".to_owned()),
        }
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    write_all(stream, head.as_bytes()).await?;
    write_all(stream, body.as_bytes()).await
}
